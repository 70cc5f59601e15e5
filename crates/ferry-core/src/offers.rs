//! Sending to a device: an offer of files, accepted or declined on the other side.
//!
//! The sender shares the files as usual (a one-shot ticket) and offers the ticket to a device
//! by id over [`ALPN`]: one stream per offer, carrying an [`OfferMsg`] (its device name, the
//! ticket, a title, how many files, how many bytes). The receiving node keeps the offer as
//! pending and answers on the same stream once its user decides (or an auto-accept rule of
//! the sender's contact does): [`Answer::Accepted`], [`Answer::Declined`], or
//! [`Answer::Expired`] after [`PENDING_FOR`]. Nothing is fetched or written before the
//! receiving user accepts; an accepted offer is then an ordinary receive of the ticket.
//!
//! Everything in an offer is the sender's claim and bounded before use: the message is at
//! most [`MAX_OFFER`] bytes, its strings are cut, the ticket must parse and must name the
//! offering device itself (an offer cannot make this device fetch from a third party), a
//! device may have [`MAX_PENDING_PER_PEER`] offers waiting and make [`MAX_PER_MINUTE`] per
//! minute, and at most [`MAX_PENDING`] wait in all. Offers over these limits are answered
//! [`Answer::Busy`] at once.

use std::{
    collections::{BTreeMap, HashMap, VecDeque},
    path::PathBuf,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use iroh::{
    endpoint::Connection,
    protocol::{AcceptError, ProtocolHandler},
    EndpointId,
};
use serde::{Deserialize, Serialize};
use tokio::sync::{mpsc, oneshot};

use crate::{
    contacts::{clean_name, clean_text, Contacts},
    error::{Error, Result},
    ticket::Ticket,
};

/// The protocol's ALPN.
pub const ALPN: &[u8] = b"ferry/offer/0";
/// Largest offer read.
pub const MAX_OFFER: usize = 8 * 1024;
/// Offers waiting for an answer, in all.
pub const MAX_PENDING: usize = 32;
/// Offers waiting from one device.
pub const MAX_PENDING_PER_PEER: usize = 3;
/// Offers one device may make per minute.
pub const MAX_PER_MINUTE: usize = 5;
/// How long an offer waits for its answer.
pub const PENDING_FOR: Duration = Duration::from_secs(600);
/// Characters of a title kept.
const MAX_TITLE: usize = 200;
/// Devices whose recent offers are counted at most (beyond: busy, until a minute passed).
const MAX_RECENT: usize = 256;
/// Offer connections open at once, at most.
const MAX_OPEN: usize = 64;
/// How long reading an offer (or the sender reading its answer) may take.
const READ_FOR: Duration = Duration::from_secs(10);

/// What a sender offers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OfferMsg {
    /// The sender's device name (a claim).
    pub name: String,
    /// The one-shot ticket of the files.
    pub ticket: String,
    /// What it is called ("Holiday and 2 more").
    pub title: String,
    /// How many files.
    pub files: u64,
    /// How many bytes.
    pub size: u64,
}

/// The answer to an offer.
#[cfg_attr(feature = "specta", derive(specta::Type))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Answer {
    /// The user accepted: the receive starts now.
    Accepted,
    /// The user declined.
    Declined,
    /// Nobody answered in time.
    Expired,
    /// Too many offers (from this device, or waiting in all): try later.
    Busy,
    /// The offer was not valid (why).
    Invalid(String),
}

/// What goes back on an offer's stream: the answer, and the answering device's name (a
/// claim), so that the sender knows the device by name from then on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reply {
    /// The answer.
    pub answer: Answer,
    /// The answering device's name.
    pub name: String,
}

/// An offer waiting here for the user.
#[cfg_attr(feature = "specta", derive(specta::Type))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IncomingOffer {
    /// Its number on this node.
    pub id: u32,
    /// The sender's node id.
    pub from: String,
    /// The sender as shown: a contact by the name this device knows it by, else the name the
    /// offer claims (cleaned).
    pub name: String,
    /// The name the offer claims (cleaned).
    pub claimed: String,
    /// True if the sender is a contact.
    pub contact: bool,
    /// What it is called (the sender's words; cleaned).
    pub title: String,
    /// How many files (the sender's claim; the preview checks).
    #[cfg_attr(feature = "specta", specta(type = specta_typescript::Number))]
    pub files: u64,
    /// How many bytes (the sender's claim).
    #[cfg_attr(feature = "specta", specta(type = specta_typescript::Number))]
    pub size: u64,
    /// The ticket, to receive it.
    pub ticket: String,
    /// When it arrived, Unix milliseconds.
    #[cfg_attr(feature = "specta", specta(type = specta_typescript::Number))]
    pub at_ms: u64,
}

/// The offers of a node: the protocol handler and the pending offers. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Offers {
    inner: Arc<Mutex<State>>,
    contacts: Contacts,
    /// The node's home: its device name is in the settings there.
    home: PathBuf,
    /// Room for offer connections open at once.
    open: Arc<tokio::sync::Semaphore>,
    /// Offers accepted by an auto-accept rule, with their folder: the node receives them.
    auto: mpsc::UnboundedSender<(IncomingOffer, PathBuf)>,
}

#[derive(Debug, Default)]
struct State {
    next: u32,
    pending: BTreeMap<u32, Pending>,
    /// When each device's recent offers came.
    recent: HashMap<EndpointId, VecDeque<Instant>>,
}

#[derive(Debug)]
struct Pending {
    offer: IncomingOffer,
    peer: EndpointId,
    answer: oneshot::Sender<Answer>,
}

impl Offers {
    /// The offers of a node with `contacts`; offers accepted by an auto-accept rule arrive on
    /// the returned channel.
    pub fn new(
        contacts: Contacts,
        home: PathBuf,
    ) -> (Offers, mpsc::UnboundedReceiver<(IncomingOffer, PathBuf)>) {
        let (auto, rx) = mpsc::unbounded_channel();
        (
            Offers {
                inner: Default::default(),
                contacts,
                home,
                open: Arc::new(tokio::sync::Semaphore::new(MAX_OPEN)),
                auto,
            },
            rx,
        )
    }

    /// The offers waiting for an answer, oldest first.
    pub fn pending(&self) -> Vec<IncomingOffer> {
        let state = self.inner.lock().expect("offers lock");
        state.pending.values().map(|p| p.offer.clone()).collect()
    }

    /// Answers the offer `id`: accepted (the caller receives its ticket) or declined.
    pub fn answer(&self, id: u32, accept: bool) -> Result<IncomingOffer> {
        let pending = self
            .inner
            .lock()
            .expect("offers lock")
            .pending
            .remove(&id)
            .ok_or_else(|| {
                Error::Config(format!("no offer {id} is waiting (see `ferry incoming`)"))
            })?;
        let answer = if accept {
            Answer::Accepted
        } else {
            Answer::Declined
        };
        if accept {
            self.contacts
                .seen(&pending.peer.to_string(), &pending.offer.claimed)
                .ok();
        }
        // The sender may have gone meanwhile: the decision stands here all the same.
        pending.answer.send(answer).ok();
        Ok(pending.offer)
    }

    /// Checks an offer from `peer` and files it; its number and the answer to come.
    fn arrive(
        &self,
        peer: EndpointId,
        msg: OfferMsg,
    ) -> std::result::Result<(u32, oneshot::Receiver<Answer>), Answer> {
        let ticket: Ticket = msg
            .ticket
            .parse()
            .map_err(|e: crate::ticket::TicketError| Answer::Invalid(e.to_string()))?;
        if ticket.blob_ticket().addr().id != peer {
            return Err(Answer::Invalid(
                "the ticket is not the offering device's own".into(),
            ));
        }
        let contact = self.contacts.get(&peer.to_string());
        let claimed = clean_name(&msg.name);
        let offer_of = |id| IncomingOffer {
            id,
            from: peer.to_string(),
            // A contact is shown as this device knows it, not as the offer says.
            name: contact
                .as_ref()
                .map(|c| c.shown_name().to_string())
                .unwrap_or_else(|| claimed.clone()),
            claimed: claimed.clone(),
            contact: contact.is_some(),
            title: clean_text(&msg.title, MAX_TITLE),
            files: msg.files,
            size: msg.size,
            ticket: msg.ticket.clone(),
            at_ms: crate::history::now_ms(),
        };
        let auto = {
            let mut state = self.inner.lock().expect("offers lock");
            let now = Instant::now();
            let minute = Duration::from_secs(60);
            if !state.recent.contains_key(&peer) && state.recent.len() >= MAX_RECENT {
                state
                    .recent
                    .retain(|_, r| r.back().is_some_and(|t| now.duration_since(*t) < minute));
                if state.recent.len() >= MAX_RECENT {
                    return Err(Answer::Busy);
                }
            }
            let recent = state.recent.entry(peer).or_default();
            while recent
                .front()
                .is_some_and(|t| now.duration_since(*t) > minute)
            {
                recent.pop_front();
            }
            if recent.len() >= MAX_PER_MINUTE {
                return Err(Answer::Busy);
            }
            recent.push_back(now);
            state.next = state.next.wrapping_add(1);
            let id = state.next;
            let offer = offer_of(id);
            match contact.as_ref().and_then(|c| c.auto_accept.clone()) {
                // An auto-accept rule: accepted at once, received by the node.
                Some(dir) => (offer, dir),
                None => {
                    let from_peer = state.pending.values().filter(|p| p.peer == peer).count();
                    if from_peer >= MAX_PENDING_PER_PEER || state.pending.len() >= MAX_PENDING {
                        return Err(Answer::Busy);
                    }
                    let (tx, rx) = oneshot::channel();
                    state.pending.insert(
                        id,
                        Pending {
                            offer,
                            peer,
                            answer: tx,
                        },
                    );
                    return Ok((id, rx));
                }
            }
        };
        // Outside the lock: writing the contacts touches the disk.
        let (offer, dir) = auto;
        let (tx, rx) = oneshot::channel();
        tx.send(Answer::Accepted).ok();
        self.contacts.seen(&peer.to_string(), &offer.claimed).ok();
        let id = offer.id;
        self.auto.send((offer, dir)).ok();
        Ok((id, rx))
    }

    /// Forgets the offer `id` if it still waits; true if it did (nobody answered it).
    fn expire(&self, id: u32) -> bool {
        self.inner
            .lock()
            .expect("offers lock")
            .pending
            .remove(&id)
            .is_some()
    }

    /// Reads one offer on `conn`, files it and waits for its answer.
    async fn handle(
        &self,
        conn: &Connection,
        peer: EndpointId,
    ) -> Option<(iroh::endpoint::SendStream, Answer)> {
        let (send, mut recv) = tokio::time::timeout(READ_FOR, conn.accept_bi())
            .await
            .ok()?
            .ok()?;
        let read = tokio::time::timeout(READ_FOR, recv.read_to_end(MAX_OFFER));
        let msg = match read.await {
            Ok(Ok(bytes)) => match serde_json::from_slice::<OfferMsg>(&bytes) {
                Ok(msg) => msg,
                Err(e) => return Some((send, Answer::Invalid(format!("not an offer: {e}")))),
            },
            _ => {
                let why = format!("no offer within {MAX_OFFER} bytes and {READ_FOR:?}");
                return Some((send, Answer::Invalid(why)));
            }
        };
        let (id, mut decided) = match self.arrive(peer, msg) {
            Ok(filed) => filed,
            Err(refused) => return Some((send, refused)),
        };
        let answer = tokio::select! {
            answer = &mut decided => answer.unwrap_or(Answer::Expired),
            // The sender went (Ctrl-C): its offer goes too.
            _ = conn.closed() => {
                self.expire(id);
                return None;
            }
            _ = tokio::time::sleep(PENDING_FOR) => {
                if self.expire(id) {
                    Answer::Expired
                } else {
                    // Answered in the same instant: that answer stands.
                    decided.await.unwrap_or(Answer::Expired)
                }
            }
        };
        Some((send, answer))
    }
}

impl ProtocolHandler for Offers {
    async fn accept(&self, conn: Connection) -> std::result::Result<(), AcceptError> {
        // Connections beyond the limit are closed at once: a flood holds no more than that.
        let Ok(_slot) = self.open.clone().try_acquire_owned() else {
            conn.close(1u32.into(), b"busy");
            return Ok(());
        };
        let peer = conn.remote_id();
        let Some((mut send, answer)) = self.handle(&conn, peer).await else {
            return Ok(());
        };
        if let Answer::Invalid(why) = &answer {
            tracing::debug!("offer from {} refused: {why}", peer.fmt_short());
        }
        let reply = Reply {
            // This device's name goes only to a device whose offer it accepted.
            name: if answer == Answer::Accepted {
                crate::settings::Settings::load(&self.home).device_name
            } else {
                String::new()
            },
            answer,
        };
        let out = serde_json::to_vec(&reply).expect("serializable");
        send.write_all(&out).await.ok();
        send.finish().ok();
        // Give the sender a moment to read the answer before the connection goes.
        tokio::time::timeout(READ_FOR, conn.closed()).await.ok();
        Ok(())
    }
}

/// Offers `msg` to the device `to` and waits for its reply (up to [`PENDING_FOR`]).
pub async fn offer(
    endpoint: &iroh::Endpoint,
    to: iroh::EndpointAddr,
    msg: &OfferMsg,
) -> Result<Reply> {
    let id = to.id;
    let conn = tokio::time::timeout(Duration::from_secs(30), endpoint.connect(to, ALPN))
        .await
        .map_err(|_| {
            Error::Unreachable(format!(
                "{}: no answer within 30 s (is Ferry running there: the app, or `ferry run`?)",
                id.fmt_short()
            ))
        })?
        .map_err(|e| Error::Unreachable(format!("{}: {e}", id.fmt_short())))?;
    let run = async {
        let (mut send, mut recv) = conn.open_bi().await.map_err(Error::network)?;
        send.write_all(&serde_json::to_vec(msg).expect("serializable"))
            .await
            .map_err(Error::network)?;
        send.finish().map_err(Error::network)?;
        let bytes = recv.read_to_end(4096).await.map_err(Error::network)?;
        serde_json::from_slice::<Reply>(&bytes)
            .map_err(|e| Error::BadData(format!("an answer to an offer: {e}")))
    };
    let mut reply = tokio::time::timeout(PENDING_FOR + Duration::from_secs(30), run)
        .await
        .map_err(|_| Error::Transfer("the device did not answer the offer".into()))??;
    conn.close(0u32.into(), b"answered");
    // The other device's words: cleaned like any name before they are shown.
    reply.name = clean_name(&reply.name);
    if let Answer::Invalid(why) = &reply.answer {
        reply.answer = Answer::Invalid(clean_text(why, 200));
    }
    Ok(reply)
}

/// Receives the offers an auto-accept rule accepted, each into its contact's folder, while
/// the node lives.
pub(crate) fn receive_accepted(
    node: std::sync::Weak<crate::node::Inner>,
    mut accepted: mpsc::UnboundedReceiver<(IncomingOffer, PathBuf)>,
) {
    tokio::spawn(async move {
        while let Some((offer, dir)) = accepted.recv().await {
            let Some(inner) = node.upgrade() else { return };
            let node = crate::node::Node { inner };
            let Ok(ticket) = offer.ticket.parse::<Ticket>() else {
                continue;
            };
            tracing::info!(
                "receiving {:?} from {} into {} (accepted by its contact's rule)",
                offer.title,
                offer.name,
                dir.display()
            );
            let mut events = crate::session::local_receive(node, ticket, dir, None);
            tokio::spawn(async move {
                while let Some(item) = events.next().await {
                    if let Err(e) = item {
                        tracing::warn!("an auto-accepted receive failed: {e}");
                    }
                }
            });
        }
    });
}

impl crate::node::Node {
    /// The devices this one exchanged files with.
    pub fn contacts(&self) -> &Contacts {
        &self.inner.contacts
    }

    /// The offers waiting for an answer here.
    pub fn incoming_offers(&self) -> Vec<IncomingOffer> {
        self.inner.offers.pending()
    }

    /// Accepts (the caller then receives its ticket) or declines the offer `id`.
    pub fn answer_offer(&self, id: u32, accept: bool) -> Result<IncomingOffer> {
        let offer = self.inner.offers.answer(id, accept)?;
        if accept {
            self.remember_addresses(&offer.from);
        }
        Ok(offer)
    }

    /// Keeps where the device `id` was reached, so that it is found again by id.
    fn remember_addresses(&self, id: &str) {
        if let Ok(id) = id.parse::<EndpointId>() {
            let node = self.clone();
            tokio::spawn(async move { node.inner.book.remember_seen(node.endpoint(), id).await });
        }
    }

    /// Offers the files of `ticket` to the device `to`, as this device; waits for the answer.
    /// An accepted offer makes `to` a contact.
    pub async fn offer_to(
        &self,
        to: iroh::EndpointAddr,
        ticket: &Ticket,
        title: String,
        files: u64,
        size: u64,
    ) -> Result<Answer> {
        let msg = OfferMsg {
            name: crate::settings::Settings::load(self.home()).device_name,
            ticket: ticket.to_string(),
            title,
            files,
            size,
        };
        let id = to.id;
        let reply = offer(self.endpoint(), to, &msg).await?;
        if reply.answer == Answer::Accepted {
            self.inner.contacts.seen(&id.to_string(), &reply.name).ok();
            self.remember_addresses(&id.to_string());
        }
        Ok(reply.answer)
    }
}
