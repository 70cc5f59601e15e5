//! One-shot tickets: parsing what people paste, and the `ferry://` link form.
//!
//! A Ferry one-shot ticket *is* an iroh-blobs [`BlobTicket`] of a HashSeq collection, the same
//! format sendme uses, so the two tools read each other's tickets. Around it Ferry accepts what
//! people actually paste: surrounding whitespace, a `ferry://` link, or a whole
//! `sendme receive <ticket>` command line.

use std::str::FromStr;

use iroh_blobs::{ticket::BlobTicket, BlobFormat};

/// The URL scheme of Ferry links.
pub const LINK_SCHEME: &str = "ferry";

/// Why a ticket was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TicketError {
    /// Nothing was given.
    #[error("the ticket is empty")]
    Empty,
    /// The text is not a ticket at all.
    #[error("this is not a Ferry ticket: {0}")]
    Malformed(String),
    /// The ticket points at a single raw blob rather than a collection of files.
    #[error("this ticket points at raw data, not at files (format {0})")]
    NotACollection(String),
    /// The ticket is for a shared folder, not a one-shot transfer.
    #[error(
        "this is a folder ticket: join it as a folder (`ferry folder join TICKET FOLDER`, or the app's Folders screen)"
    )]
    FolderTicket,
    /// A one-shot ticket where a folder ticket was expected.
    #[error(
        "this is a ticket for files, not a folder: receive it with `ferry receive TICKET` (or the app's Receive screen)"
    )]
    SendTicket,
    /// It starts like a ticket but does not decode: usually cut off when copied.
    #[error("this ticket looks cut off or changed ({0}); copy it again, whole")]
    CutOff(String),
}

impl TicketError {
    /// Stable code of this error.
    pub fn code(&self) -> &'static str {
        match self {
            TicketError::Empty => "ticket_empty",
            TicketError::Malformed(_) => "ticket_malformed",
            TicketError::NotACollection(_) => "ticket_not_collection",
            TicketError::FolderTicket => "ticket_is_folder",
            TicketError::SendTicket => "ticket_is_send",
            TicketError::CutOff(_) => "ticket_cut_off",
        }
    }
}

/// A parsed one-shot ticket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ticket(BlobTicket);

impl Ticket {
    /// Wraps a blob ticket; it must point at a HashSeq collection.
    pub fn new(inner: BlobTicket) -> Result<Self, TicketError> {
        if inner.format() != BlobFormat::HashSeq {
            return Err(TicketError::NotACollection(format!("{:?}", inner.format())));
        }
        Ok(Ticket(inner))
    }

    /// The underlying iroh-blobs ticket.
    pub fn blob_ticket(&self) -> &BlobTicket {
        &self.0
    }

    /// The `ferry://` link that opens this ticket in the app.
    pub fn to_link(&self) -> String {
        format!("{LINK_SCHEME}://receive/{}", self.0)
    }
}

impl std::fmt::Display for Ticket {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

impl FromStr for Ticket {
    type Err = TicketError;

    fn from_str(input: &str) -> Result<Self, Self::Err> {
        let mut text = input.trim();
        if text.is_empty() {
            return Err(TicketError::Empty);
        }
        // A pasted `sendme receive <ticket>` or `ferry receive <ticket>` command line.
        if let Some(last) = text.split_whitespace().last() {
            if text.split_whitespace().count() > 1 {
                text = last;
            }
        }
        if let Some(rest) = strip_scheme(text) {
            text = rest
                .trim_start_matches("receive/")
                .trim_start_matches("receive?ticket=");
            text = text.trim_end_matches('/');
        }
        if text.starts_with("docaaa") || text.starts_with("folder") {
            return Err(TicketError::FolderTicket);
        }
        if !text.starts_with("blob") {
            return Err(TicketError::Malformed(describe(text)));
        }
        let inner = BlobTicket::from_str(text).map_err(|e| {
            tracing::debug!("ticket {}: {e}", describe(text));
            TicketError::CutOff(describe(text))
        })?;
        Ticket::new(inner)
    }
}

/// Reads a folder ticket (iroh-docs' `DocTicket`), with the same care for pasted text as a
/// one-shot ticket and a message that says what to do with a one-shot ticket instead.
pub fn parse_folder_ticket(input: &str) -> Result<iroh_docs::DocTicket, TicketError> {
    let text = input.trim();
    if text.is_empty() {
        return Err(TicketError::Empty);
    }
    // A pasted command line (`ferry folder join TICKET DIR`): the word that looks like a ticket.
    let text = text
        .split_whitespace()
        .find(|w| w.starts_with("doc") || w.starts_with("blob") || strip_scheme(w).is_some())
        .unwrap_or(text);
    if text.starts_with("blob") || strip_scheme(text).is_some() {
        return Err(TicketError::SendTicket);
    }
    if !text.starts_with("doc") {
        return Err(TicketError::Malformed(describe(text)));
    }
    iroh_docs::DocTicket::from_str(text).map_err(|e| {
        tracing::debug!("folder ticket {}: {e}", describe(text));
        TicketError::CutOff(describe(text))
    })
}

fn strip_scheme(text: &str) -> Option<&str> {
    let (scheme, rest) = text.split_once("://")?;
    scheme.eq_ignore_ascii_case(LINK_SCHEME).then_some(rest)
}

/// A short description of bad input, safe to show (long input is cut).
fn describe(text: &str) -> String {
    let shown: String = text.chars().take(24).collect();
    if shown.len() < text.len() {
        format!("{shown:?}… ({} characters)", text.chars().count())
    } else {
        format!("{shown:?}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use iroh::{EndpointAddr, SecretKey};
    use iroh_blobs::Hash;

    fn sample() -> BlobTicket {
        let id = SecretKey::from_bytes(&[7; 32]).public();
        let addr = EndpointAddr::new(id).with_ip_addr("127.0.0.1:4242".parse().unwrap());
        BlobTicket::new(addr, Hash::new(b"hello"), BlobFormat::HashSeq)
    }

    #[test]
    fn parses_plain_link_and_command_forms() {
        let t = sample();
        let s = t.to_string();
        let plain: Ticket = s.parse().unwrap();
        assert_eq!(plain.blob_ticket(), &t);
        let link: Ticket = plain.to_link().parse().unwrap();
        assert_eq!(link, plain);
        let cmd: Ticket = format!("  sendme receive {s}\n").parse().unwrap();
        assert_eq!(cmd, plain);
    }

    #[test]
    fn rejects_bad_input_with_clear_errors() {
        assert_eq!("".parse::<Ticket>(), Err(TicketError::Empty));
        assert_eq!("   \n".parse::<Ticket>(), Err(TicketError::Empty));
        let err = "hello".parse::<Ticket>().unwrap_err();
        assert!(matches!(err, TicketError::Malformed(_)));
        assert!(err.to_string().contains("hello"));
        let mut s = sample().to_string();
        s.truncate(s.len() - 5);
        let cut = s.parse::<Ticket>().unwrap_err();
        assert!(matches!(cut, TicketError::CutOff(_)), "{cut:?}");
        assert!(cut.to_string().contains("looks cut off"), "{cut}");
        assert!(
            !cut.to_string().contains("decod"),
            "no decoder internals: {cut}"
        );
        let raw = BlobTicket::new(sample().addr().clone(), Hash::new(b"x"), BlobFormat::Raw);
        assert!(matches!(
            raw.to_string().parse::<Ticket>(),
            Err(TicketError::NotACollection(_))
        ));
        let long = "blob".to_string() + &"z".repeat(100_000);
        let err = long.parse::<Ticket>().unwrap_err();
        assert!(err.to_string().len() < 300, "error text stays short");
    }

    #[test]
    fn each_kind_of_ticket_given_in_the_wrong_place_points_to_the_right_one() {
        let send = sample().to_string();
        let err = parse_folder_ticket(&send).unwrap_err();
        assert_eq!(err, TicketError::SendTicket);
        assert!(err.to_string().contains("ferry receive"), "{err}");
        let err = parse_folder_ticket(&Ticket::new(sample()).unwrap().to_link()).unwrap_err();
        assert_eq!(err, TicketError::SendTicket);
        let err = "docaaaacut".parse::<Ticket>().unwrap_err();
        assert_eq!(err, TicketError::FolderTicket);
        assert!(err.to_string().contains("ferry folder join"), "{err}");
        assert!(matches!(
            parse_folder_ticket("docaaaacut"),
            Err(TicketError::CutOff(_))
        ));
        assert!(matches!(
            parse_folder_ticket("hello"),
            Err(TicketError::Malformed(_))
        ));
        // A pasted command line: the ticket is found among the words.
        assert!(matches!(
            parse_folder_ticket("ferry folder join docaaaacut ~/band"),
            Err(TicketError::CutOff(_))
        ));
    }
}
