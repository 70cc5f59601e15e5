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
    contacts::{clean_name, Contacts},
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
    /// The sender's device name (a claim; cleaned).
    pub name: String,
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
                .seen(&pending.peer.to_string(), &pending.offer.name)
                .ok();
        }
        // The sender may have gone meanwhile: the decision stands here all the same.
        pending.answer.send(answer).ok();
        Ok(pending.offer)
    }

    /// Checks an offer from `peer` and files it; the answer comes on the receiver.
    fn arrive(
        &self,
        peer: EndpointId,
        msg: OfferMsg,
    ) -> std::result::Result<oneshot::Receiver<Answer>, Answer> {
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
        let offer_of = |id| IncomingOffer {
            id,
            from: peer.to_string(),
            name: clean_name(&msg.name),
            contact: contact.is_some(),
            title: msg.title.chars().take(MAX_TITLE).collect::<String>(),
            files: msg.files,
            size: msg.size,
            ticket: msg.ticket.clone(),
            at_ms: crate::history::now_ms(),
        };
        let mut state = self.inner.lock().expect("offers lock");
        let now = Instant::now();
        let recent = state.recent.entry(peer).or_default();
        while recent
            .front()
            .is_some_and(|t| now.duration_since(*t) > Duration::from_secs(60))
        {
            recent.pop_front();
        }
        if recent.len() >= MAX_PER_MINUTE {
            return Err(Answer::Busy);
        }
        recent.push_back(now);
        if state.recent.len() > 4 * MAX_PENDING {
            // Devices with no offer in the last minute take no room.
            state.recent.retain(|_, r| {
                r.back()
                    .is_some_and(|t| now.duration_since(*t) < Duration::from_secs(60))
            });
        }
        state.next = state.next.wrapping_add(1);
        let id = state.next;
        let offer = offer_of(id);
        // An auto-accept rule: accepted at once, received by the node.
        if let Some(dir) = contact.and_then(|c| c.auto_accept) {
            let (tx, rx) = oneshot::channel();
            tx.send(Answer::Accepted).ok();
            self.contacts.seen(&peer.to_string(), &offer.name).ok();
            self.auto.send((offer, dir)).ok();
            return Ok(rx);
        }
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
        Ok(rx)
    }

    /// Forgets the offer `id` if it still waits (it expired).
    fn expire(&self, id: u32) {
        self.inner.lock().expect("offers lock").pending.remove(&id);
    }

    fn pending_id(&self, peer: EndpointId, ticket: &str) -> Option<u32> {
        let state = self.inner.lock().expect("offers lock");
        state
            .pending
            .iter()
            .rev()
            .find(|(_, p)| p.peer == peer && p.offer.ticket == ticket)
            .map(|(id, _)| *id)
    }
}

impl ProtocolHandler for Offers {
    async fn accept(&self, conn: Connection) -> std::result::Result<(), AcceptError> {
        let peer = conn.remote_id();
        let Ok((mut send, mut recv)) = conn.accept_bi().await else {
            return Ok(());
        };
        let read = tokio::time::timeout(Duration::from_secs(10), recv.read_to_end(MAX_OFFER));
        let answer = match read.await {
            Ok(Ok(bytes)) => match serde_json::from_slice::<OfferMsg>(&bytes) {
                Ok(msg) => {
                    let ticket = msg.ticket.clone();
                    match self.arrive(peer, msg) {
                        Ok(decided) => match tokio::time::timeout(PENDING_FOR, decided).await {
                            Ok(Ok(answer)) => answer,
                            // The node dropped it (shutting down).
                            Ok(Err(_)) => Answer::Expired,
                            Err(_) => {
                                if let Some(id) = self.pending_id(peer, &ticket) {
                                    self.expire(id);
                                }
                                Answer::Expired
                            }
                        },
                        Err(refused) => refused,
                    }
                }
                Err(e) => Answer::Invalid(format!("not an offer: {e}")),
            },
            _ => Answer::Invalid(format!("no offer within {MAX_OFFER} bytes and 10 s")),
        };
        if let Answer::Invalid(why) = &answer {
            tracing::debug!("offer from {} refused: {why}", peer.fmt_short());
        }
        let reply = Reply {
            answer,
            name: crate::settings::Settings::load(&self.home).device_name,
        };
        let out = serde_json::to_vec(&reply).expect("serializable");
        send.write_all(&out).await.ok();
        send.finish().ok();
        // Wait for the sender to read the answer before the connection goes.
        conn.closed().await;
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
        .map_err(|_| Error::Connect(format!("{}: no answer within 30 s", id.fmt_short())))?
        .map_err(|e| Error::Connect(format!("{}: {e}", id.fmt_short())))?;
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
    let reply = tokio::time::timeout(PENDING_FOR + Duration::from_secs(30), run)
        .await
        .map_err(|_| Error::Transfer("the device did not answer the offer".into()))??;
    conn.close(0u32.into(), b"answered");
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

    /// The device `name` names: a contact by its shown name (exactly one), or a node id,
    /// optionally with `@ip:port` where it can be reached (a device found no other way).
    pub fn device(&self, name: &str) -> Result<iroh::EndpointAddr> {
        if let Some((id, addr)) = name.trim().split_once('@') {
            let id: EndpointId = id
                .parse()
                .map_err(|_| Error::Config(format!("{id:?} is not a node id")))?;
            let addr: std::net::SocketAddr = addr
                .parse()
                .map_err(|_| Error::Config(format!("{addr:?} is not an ip:port address")))?;
            return Ok(iroh::EndpointAddr::new(id).with_ip_addr(addr));
        }
        let found = self.inner.contacts.find(name);
        let id = match found.as_slice() {
            [one] => one.id.clone(),
            [] => name.trim().to_string(),
            many => {
                let ids: Vec<String> = many.iter().map(|c| c.id[..10].to_string()).collect();
                return Err(Error::Config(format!(
                    "{} devices are called {name:?} ({}); name one by its id",
                    many.len(),
                    ids.join(", ")
                )));
            }
        };
        let id: EndpointId = id.parse().map_err(|_| {
            Error::Config(format!(
                "no device is called {name:?}; see `ferry devices`, or give its node id"
            ))
        })?;
        // Its addresses come from the address book (the endpoint's lookup).
        Ok(iroh::EndpointAddr::new(id))
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
