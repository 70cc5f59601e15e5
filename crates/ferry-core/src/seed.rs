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

use std::time::Duration;

use iroh_blobs::{hashseq::HashSeq, ticket::BlobTicket, BlobFormat, Hash};
use tokio::sync::mpsc;

use crate::{
    error::{Error, Result},
    node::Node,
    progress::{ReceiveEvent, ShareEvent},
    registry::ShareGuard,
    swarm::{
        members::{self, Contact, MembersGuard},
        serve::StoreGuard,
    },
    ticket::Ticket,
    transfer_store::{self, TransferStore},
};

/// How often a helper greets the sender, to stay in its list of members.
pub const GREET_EVERY: Duration = Duration::from_secs(60);

/// A share this node keeps serving. Dropping it stops serving (the data stays on disk).
pub struct Seed {
    ticket: Ticket,
    // Dropped in this order: out of the registry before the store stops being served.
    _guard: ShareGuard,
    _members: MembersGuard,
    _served: StoreGuard,
    greeter: tokio::task::JoinHandle<()>,
    /// Closed (kept on disk) when the seed is dropped.
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
        let seq = HashSeq::try_from(store.get_bytes(root).await.map_err(Error::store)?)
            .map_err(|e| Error::BadData(format!("the list of files: {e}")))?;
        let mut hashes = vec![root];
        hashes.extend(seq.iter());
        let sizes = checked.iter().map(|(_, size)| *size).collect();
        let served = self
            .inner
            .swarm_stores
            .add(root, store.clone(), hashes.iter().copied());
        let guard = self.inner.registry.add(root, hashes, sizes, share_events);
        let joined = self.inner.members.join(root);
        let addr = self.ticket_addr().await;
        let own = Ticket::new(BlobTicket::new(addr, root, BlobFormat::HashSeq))?;
        let greeter = tokio::spawn(greet(
            self.endpoint().clone(),
            ticket.blob_ticket().addr().clone(),
            root,
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

/// Greets the sender now and then, so that its receivers meet this helper.
async fn greet(endpoint: iroh::Endpoint, sender: iroh::EndpointAddr, root: Hash) {
    loop {
        if let Some(conn) =
            crate::swarm::session::connect(&endpoint, sender.clone(), members::ALPN).await
        {
            let me = Contact::of(&endpoint.addr());
            if let Err(e) = members::exchange(&conn, root, me, None).await {
                tracing::debug!("greeting the sender: {e}");
            }
        }
        tokio::time::sleep(GREET_EVERY).await;
    }
}
