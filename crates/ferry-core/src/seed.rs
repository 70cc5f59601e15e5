//! A helper that keeps a share available: [`Node::seed`] fetches a share into a store of its
//! own (`<home>/seeds/<root>`: from the sender and its swarm, like a receive, but writing no
//! files anywhere) and serves it from there for as long as the [`Seed`] lives, with a ticket
//! of its own for the same share. Run on an always-on machine (`ferry seed TICKET`), it lets the sender close
//! their laptop: the helper's ticket works without the sender, and the sender's receivers meet
//! the helper in the share's swarm while both run (the helper greets the sender every
//! [`GREET_EVERY`]). Helpers make the network more available; nothing needs one.
//!
//! A store of its own, like a receive's: the share's hashes are whatever its sender listed, and
//! serving them from the node's own store would let a hostile sender list a hash the node
//! holds for something else and have it served (see [`crate::swarm::serve`]). The store stays
//! on disk when the seed stops, so that a helper that restarts resumes, and serves, what it
//! had; [`Node::unseed`] removes it.
//!
//! A receiver serves what it received the same way, while the sender shares it (see
//! [`crate::kept`]).

use std::time::{Duration, Instant};

use iroh_blobs::{ticket::BlobTicket, BlobFormat, Hash};
use tokio::sync::mpsc;

use crate::{
    error::{Error, Result},
    node::Node,
    progress::{ReceiveEvent, ShareEvent},
    registry::ShareGuard,
    swarm::{
        members::{self, About, Contact, MembersGuard},
        serve::{Check, StoreGuard},
    },
    ticket::Ticket,
    transfer_store::{self, TransferStore},
};

/// How often a helper greets the sender, to stay in its list of members.
pub const GREET_EVERY: Duration = Duration::from_secs(60);

/// A received share is no longer served once its sender has been out of reach this long.
pub const SENDER_GONE_AFTER: Duration = Duration::from_secs(600);

/// A share this node keeps serving. Dropping it stops serving (a helper's data stays on disk;
/// a received share's references to its saved files are removed).
pub struct Seed {
    ticket: Ticket,
    // Dropped in this order: out of the registry before the store stops being served.
    _guard: ShareGuard,
    _members: MembersGuard,
    _served: StoreGuard,
    greeter: tokio::task::JoinHandle<()>,
    /// Closed (kept on disk, or removed for a received share) when the seed is dropped.
    _store: TransferStore,
}

impl Drop for Seed {
    fn drop(&mut self) {
        self.greeter.abort();
    }
}

impl std::fmt::Debug for Seed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Seed")
            .field("ticket", &self.ticket)
            .finish()
    }
}

impl Seed {
    /// The helper's ticket for the share: same content, this node's address.
    pub fn ticket(&self) -> &Ticket {
        &self.ticket
    }
}

fn seed_dir(home: &std::path::Path, root: &Hash) -> std::path::PathBuf {
    home.join("seeds").join(root.to_hex())
}

/// How long a seed greets the share's sender.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Greet {
    /// For as long as the seed runs (a helper outlives its sender).
    Always,
    /// Until the sender says it no longer shares the root, or has been out of reach for
    /// [`SENDER_GONE_AFTER`]; the seed then ends.
    WhileShared,
}

/// How a seed is served.
pub(crate) struct Serve {
    /// How long it greets the sender.
    pub greet: Greet,
    /// Called when the greeting ends (with [`Greet::WhileShared`]).
    pub on_end: Option<Box<dyn FnOnce() + Send>>,
    /// Asked before each request is served from the seed's store (see
    /// [`crate::swarm::serve::Stores::add`]).
    pub check: Option<Check>,
}

impl Node {
    /// Fetches what `ticket` offers into this node's store and serves it until the returned
    /// [`Seed`] is dropped. Progress of the fetch goes to `events`; the peers it serves are
    /// reported on `share_events`.
    pub async fn seed(
        &self,
        ticket: &Ticket,
        events: &mpsc::UnboundedSender<ReceiveEvent>,
        share_events: mpsc::UnboundedSender<ShareEvent>,
    ) -> Result<Seed> {
        let root = ticket.blob_ticket().hash();
        let transfer = TransferStore::open_dir(seed_dir(self.home(), &root)).await?;
        let store = transfer.store().clone();
        // Kept on failure: the next attempt resumes.
        let checked = self.fetch_whole(&store, ticket, events).await?;
        let sizes = checked.iter().map(|(_, size)| *size).collect();
        let how = Serve {
            greet: Greet::Always,
            on_end: None,
            check: None,
        };
        self.serve_seed(ticket, transfer, sizes, share_events, how)
            .await
    }

    /// Serves the share in `transfer` (whole) as a seed.
    pub(crate) async fn serve_seed(
        &self,
        ticket: &Ticket,
        transfer: TransferStore,
        sizes: Vec<u64>,
        share_events: mpsc::UnboundedSender<ShareEvent>,
        how: Serve,
    ) -> Result<Seed> {
        let root = ticket.blob_ticket().hash();
        let store = transfer.store().clone();
        let hashes = crate::share::share_hashes(&store, root).await?;
        let served =
            self.inner
                .swarm_stores
                .add(root, store.clone(), hashes.iter().copied(), how.check);
        let guard = self.inner.registry.add(root, hashes, sizes, share_events);
        let joined = self.inner.members.join(root);
        let addr = self.ticket_addr().await;
        let own = Ticket::new(BlobTicket::new(addr, root, BlobFormat::HashSeq))?;
        let name = crate::settings::Settings::load(self.home()).device_name;
        let greeter = tokio::spawn(greet(
            self.endpoint().clone(),
            ticket.blob_ticket().addr().clone(),
            root,
            name,
            how.greet,
            how.on_end,
            GREET_EVERY,
        ));
        Ok(Seed {
            ticket: own,
            _guard: guard,
            _members: joined,
            _served: served,
            greeter,
            _store: transfer,
        })
    }

    /// Removes what a stopped seed of `root` kept on disk.
    pub fn unseed(&self, root: Hash) -> Result<()> {
        let dir = seed_dir(self.home(), &root);
        if transfer_store::is_open_dir(&dir) {
            return Err(Error::Transfer(
                "this share is being seeded; stop it first".into(),
            ));
        }
        match std::fs::remove_dir_all(&dir) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(Error::write(dir, e)),
        }
    }
}

/// Greets the sender now and then, so that its receivers meet this seed; with
/// [`Greet::WhileShared`], ends (calling `on_end`) once the sender no longer shares the root.
async fn greet(
    endpoint: iroh::Endpoint,
    sender: iroh::EndpointAddr,
    root: Hash,
    name: String,
    mode: Greet,
    on_end: Option<Box<dyn FnOnce() + Send>>,
    every: Duration,
) {
    let mut heard = Instant::now();
    // The connection stays open between greetings: the sender passes a member on only while
    // a connection it said hello on is open (see `members`).
    let mut greeting: Option<iroh::endpoint::Connection> = None;
    loop {
        if greeting.as_ref().is_none_or(|c| c.close_reason().is_some()) {
            greeting =
                crate::swarm::session::connect(&endpoint, sender.clone(), members::ALPN).await;
        }
        if let Some(conn) = &greeting {
            let me = Contact::of(&endpoint.addr());
            let about = About {
                name: Some(name.clone()),
                ..Default::default()
            };
            match members::exchange(conn, root, me, about).await {
                Ok(Some(_)) => heard = Instant::now(),
                Ok(None) if mode == Greet::WhileShared => {
                    tracing::info!("the sender stopped sharing {}", root.fmt_short());
                    break;
                }
                Ok(None) => {}
                Err(e) => {
                    tracing::debug!("greeting the sender: {e}");
                    greeting = None;
                }
            }
        }
        if mode == Greet::WhileShared && heard.elapsed() > SENDER_GONE_AFTER {
            tracing::info!("the sender of {} is out of reach", root.fmt_short());
            break;
        }
        tokio::time::sleep(every).await;
    }
    if let Some(f) = on_end {
        f();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::NodeConfig;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn serving_a_received_share_ends_when_its_sender_stops_sharing_it() {
        let dir = tempfile::tempdir().unwrap();
        let sender = Node::spawn(NodeConfig::local(dir.path().join("s")))
            .await
            .unwrap();
        let receiver = Node::spawn(NodeConfig::local(dir.path().join("r")))
            .await
            .unwrap();
        let file = dir.path().join("f.txt");
        std::fs::write(&file, b"shared for a while").unwrap();
        let (tx, _rx) = mpsc::unbounded_channel();
        let share = sender.share(&[file], tx).await.unwrap();
        let ticket: Ticket = share.ticket().parse().unwrap();
        let (ended_tx, ended_rx) = tokio::sync::oneshot::channel();
        let on_end: Box<dyn FnOnce() + Send> = Box::new(move || {
            ended_tx.send(()).ok();
        });
        let greeter = tokio::spawn(greet(
            receiver.endpoint().clone(),
            ticket.blob_ticket().addr().clone(),
            ticket.blob_ticket().hash(),
            "receiver".into(),
            Greet::WhileShared,
            Some(on_end),
            Duration::from_millis(50),
        ));
        // While the share lives, the greeting goes on.
        let early = tokio::time::timeout(Duration::from_millis(300), greeter).await;
        assert!(early.is_err(), "ended while the sender still shares it");
        drop(share);
        tokio::time::timeout(Duration::from_secs(20), ended_rx)
            .await
            .expect("ends once the sender stops sharing")
            .unwrap();
        sender.shutdown().await.unwrap();
        receiver.shutdown().await.unwrap();
    }
}
