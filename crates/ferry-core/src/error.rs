//! Errors of the core, each with a stable machine-readable code.
//!
//! Front ends (the CLI, the app's UI) switch on [`Error::code`], never on the message text. Codes
//! are part of Ferry's interface: once published, a code keeps its meaning.

use std::{collections::BTreeMap, path::PathBuf};

use crate::names::NameError;
use crate::ticket::TicketError;

/// Result alias for the core.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong in the core.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The ticket text could not be understood.
    #[error(transparent)]
    Ticket(#[from] TicketError),
    /// A name in a received collection is unsafe to write to disk.
    #[error(transparent)]
    Name(#[from] NameError),
    /// A path given to share does not exist or cannot be read.
    #[error("cannot share {path}: {source}")]
    ShareSource {
        /// The path that was given.
        path: PathBuf,
        /// What the filesystem said.
        source: std::io::Error,
    },
    /// Nothing to share: the paths hold no regular files.
    #[error("nothing to share: {0} holds no files")]
    EmptyShare(String),
    /// The sender could not be reached.
    #[error("could not connect to the sender: {0}")]
    Connect(String),
    /// A device sent to (an offer, a hello) could not be reached.
    #[error("could not reach the device {0}")]
    Unreachable(String),
    /// The transfer failed on the network (peer vanished, stream reset, ...).
    #[error("transfer failed: {0}")]
    Transfer(String),
    /// The sender sent data that is not what the ticket promised.
    #[error("the sender sent invalid data: {0}")]
    BadData(String),
    /// The transfer was cancelled.
    #[error("the transfer was cancelled")]
    Cancelled,
    /// Writing the received files failed.
    #[error("cannot write {path}: {source}")]
    Write {
        /// The path that was being written.
        path: PathBuf,
        /// What the filesystem said.
        source: std::io::Error,
    },
    /// Not enough free space at the destination.
    #[error("not enough free space in {path}: {needed} bytes needed, {available} available")]
    DiskFull {
        /// The destination directory.
        path: PathBuf,
        /// Bytes the transfer needs.
        needed: u64,
        /// Bytes free.
        available: u64,
    },
    /// The data directory (home) cannot be used.
    #[error("cannot use the data directory {path}: {reason}")]
    Home {
        /// The home directory.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// No node runs for this home (a command that only asks a running node).
    #[error("no Ferry node is running for {path}; start one with `ferry run` (or open the app)")]
    NotRunning {
        /// The home directory.
        path: PathBuf,
    },
    /// Another process holds this home and cannot be reached over the control channel.
    #[error("the node of {path} is held by another process that does not answer: {reason}")]
    NodeUnreachable {
        /// The home directory.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// The control channel failed or was used incorrectly.
    #[error("control channel: {0}")]
    Control(String),
    /// The configuration is invalid.
    #[error("invalid configuration: {0}")]
    Config(String),
    /// A folder cannot be shared or joined there: it already syncs, or overlaps one that does.
    #[error("{0}")]
    Folder(String),
    /// The blob store failed.
    #[error("store: {0}")]
    Store(String),
    /// The network endpoint could not be started.
    #[error("network: {0}")]
    Network(String),
    /// An error reported by the node of another process, with its original code.
    #[error("{}", .0.message)]
    Remote(ErrorInfo),
}

/// Every code [`Error::code`] can return, so a code received as text maps back to it.
pub const CODES: &[&str] = &[
    "ticket_empty",
    "ticket_malformed",
    "ticket_not_collection",
    "ticket_is_folder",
    "ticket_is_send",
    "ticket_cut_off",
    "unsafe_name",
    "share_source",
    "empty_share",
    "connect_failed",
    "device_unreachable",
    "transfer_failed",
    "bad_data",
    "cancelled",
    "write_failed",
    "disk_full",
    "home_unusable",
    "node_unreachable",
    "not_running",
    "control",
    "invalid_config",
    "folder_refused",
    "store",
    "network",
];

impl Error {
    /// A stable, machine-readable code for this error.
    pub fn code(&self) -> &'static str {
        match self {
            Error::Ticket(e) => e.code(),
            Error::Name(_) => "unsafe_name",
            Error::ShareSource { .. } => "share_source",
            Error::EmptyShare(_) => "empty_share",
            Error::Connect(_) => "connect_failed",
            Error::Unreachable(_) => "device_unreachable",
            Error::Transfer(_) => "transfer_failed",
            Error::BadData(_) => "bad_data",
            Error::Cancelled => "cancelled",
            Error::Write { .. } => "write_failed",
            Error::DiskFull { .. } => "disk_full",
            Error::Home { .. } => "home_unusable",
            Error::NodeUnreachable { .. } => "node_unreachable",
            Error::NotRunning { .. } => "not_running",
            Error::Control(_) => "control",
            Error::Config(_) => "invalid_config",
            Error::Folder(_) => "folder_refused",
            Error::Store(_) => "store",
            Error::Network(_) => "network",
            Error::Remote(info) => CODES
                .iter()
                .find(|c| **c == info.code)
                .copied()
                .unwrap_or("control"),
        }
    }

    pub(crate) fn network(e: impl std::fmt::Display) -> Self {
        Error::Network(e.to_string())
    }

    pub(crate) fn store(e: impl std::fmt::Display) -> Self {
        Error::Store(e.to_string())
    }

    pub(crate) fn write(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        let path = path.into();
        if is_disk_full(&source) {
            return Error::Write {
                path,
                source: std::io::Error::new(source.kind(), "the disk is full"),
            };
        }
        Error::Write { path, source }
    }
}

/// True when an I/O error means the filesystem ran out of space.
pub(crate) fn is_disk_full(e: &std::io::Error) -> bool {
    e.kind() == std::io::ErrorKind::StorageFull || e.raw_os_error() == Some(28)
}

/// The serializable form of an error, as sent over the control channel and to the UI.
#[cfg_attr(feature = "specta", derive(specta::Type))]
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ErrorInfo {
    /// The stable code of [`Error::code`].
    pub code: String,
    /// A message for people, in English (the CLI prints it).
    pub message: String,
    /// What a front end needs to word the error itself, in its language: `path`, `reason`
    /// (what the system said), `needed` and `available` (bytes), `detail`.
    pub params: BTreeMap<String, String>,
}

impl ErrorInfo {
    /// Reads an error as any version wrote it: those before parameters have none. (Not
    /// `#[serde(default)]` on the field: the bindings generator then splits the type in two,
    /// which the generic event types cannot name.)
    pub fn deserialize_any_version<'de, D: serde::Deserializer<'de>>(
        d: D,
    ) -> std::result::Result<Option<ErrorInfo>, D::Error> {
        #[derive(serde::Deserialize)]
        struct Stored {
            code: String,
            message: String,
            #[serde(default)]
            params: BTreeMap<String, String>,
        }
        let stored: Option<Stored> = serde::Deserialize::deserialize(d)?;
        Ok(stored.map(|s| ErrorInfo {
            code: s.code,
            message: s.message,
            params: s.params,
        }))
    }

    /// An error with this code and message, without parameters.
    pub fn new(code: impl Into<String>, message: impl Into<String>) -> Self {
        ErrorInfo {
            code: code.into(),
            message: message.into(),
            params: BTreeMap::new(),
        }
    }

    /// Adds the parameter `key`.
    pub fn with(mut self, key: &str, value: impl ToString) -> Self {
        self.params.insert(key.to_string(), value.to_string());
        self
    }
}

impl From<&Error> for ErrorInfo {
    fn from(e: &Error) -> Self {
        let info = ErrorInfo::new(e.code(), e.to_string());
        match e {
            Error::Ticket(_) | Error::Cancelled => info,
            Error::Name(n) => info.with("detail", n),
            Error::ShareSource { path, source } | Error::Write { path, source } => {
                info.with("path", path.display()).with("reason", source)
            }
            Error::DiskFull {
                path,
                needed,
                available,
            } => info
                .with("path", path.display())
                .with("needed", needed)
                .with("available", available),
            Error::Home { path, reason } | Error::NodeUnreachable { path, reason } => {
                info.with("path", path.display()).with("reason", reason)
            }
            Error::NotRunning { path } => info.with("path", path.display()),
            Error::EmptyShare(what) => info.with("path", what),
            Error::Connect(d)
            | Error::Unreachable(d)
            | Error::Transfer(d)
            | Error::BadData(d)
            | Error::Control(d)
            | Error::Config(d)
            | Error::Folder(d)
            | Error::Store(d)
            | Error::Network(d) => info.with("detail", d),
            Error::Remote(remote) => ErrorInfo {
                code: info.code,
                ..remote.clone()
            },
        }
    }
}

impl std::fmt::Display for ErrorInfo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remote_errors_keep_their_code() {
        let local = Error::DiskFull {
            path: "/x".into(),
            needed: 2,
            available: 1,
        };
        let remote = Error::Remote(ErrorInfo::from(&local));
        assert_eq!(remote.code(), "disk_full");
        assert_eq!(remote.to_string(), local.to_string());
        let info = ErrorInfo::from(&remote);
        assert_eq!(
            info.params["needed"], "2",
            "parameters cross the control channel"
        );
        assert_eq!(info.params["path"], "/x");
        assert!(CODES.contains(&local.code()));
    }
}
