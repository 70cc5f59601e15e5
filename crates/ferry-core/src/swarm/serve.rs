//! The node's blobs provider (iroh-blobs' protocol, get and observe requests only), serving
//! each request from the store that holds the asked hash: the store of a live receive or seed
//! if one registered the hash ([`Stores`]), else the node's own store.
//!
//! This is how receivers serve the pieces they have to the other receivers of a share: a
//! one-shot receive downloads into a store of its own (see [`crate::transfer_store`]), and
//! registers it here for as long as it runs. A hash a receive registered is served from that
//! store only, never from the node's own: the hashes of a received share are whatever its
//! sender listed, and a hostile sender could list a hash this node holds for something else
//! (another share, a folder) to have it served to the share's holders. What a receive's store
//! holds was fetched for that share, so serving it leaks nothing. A store that references files
//! the user may change (a received share served on, see [`crate::kept`]) comes with a check
//! that each get request must pass.
//!
//! Who may have what is decided by the provider's gatekeeper ([`crate::access`]) as before: a
//! share's blobs go only to a peer that opened its root, so a stranger without the ticket
//! gets nothing, not even whether this node holds the blob. Rate limits apply the same way.

use std::{
    collections::{HashMap, HashSet},
    sync::{Arc, Mutex},
};

use iroh::{
    endpoint::Connection,
    protocol::{AcceptError, ProtocolHandler},
};
use iroh_blobs::{
    api::Store,
    protocol::Request,
    provider::{
        events::{ClientConnected, ConnectionClosed, EventSender, HasErrorCode},
        handle_get, handle_observe, StreamPair,
    },
    Hash,
};

/// Asked before a get or observe request is answered from a registered store: `false`
/// refuses it (the data behind that hash may have changed; see [`crate::kept`]).
pub type Check = Arc<dyn Fn(&Hash) -> bool + Send + Sync>;

/// A registered store: the share's root, the store, the hashes it may answer for, and what
/// to ask before answering.
struct Entry {
    root: Hash,
    store: Store,
    hashes: HashSet<Hash>,
    check: Option<Check>,
}

#[derive(Default)]
struct Inner {
    next: u64,
    /// The stores of live receives and seeds, by id.
    stores: HashMap<u64, Entry>,
}

impl std::fmt::Debug for Inner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Stores")
            .field("stores", &self.stores.len())
            .finish()
    }
}

/// The stores of live receives and seeds, by the hashes they registered.
#[derive(Debug, Clone, Default)]
pub struct Stores(Arc<Mutex<Inner>>);

/// Keeps a store served; dropping it stops serving.
#[derive(Debug)]
pub struct StoreGuard {
    stores: Stores,
    id: u64,
}

impl Drop for StoreGuard {
    fn drop(&mut self) {
        self.stores
            .0
            .lock()
            .expect("stores lock")
            .stores
            .remove(&self.id);
    }
}

impl Stores {
    /// Serves `hashes` of the share `root` from `store` until the guard is dropped; each get
    /// request only if `check` (if given) says yes for the asked hash.
    pub fn add(
        &self,
        root: Hash,
        store: Store,
        hashes: impl IntoIterator<Item = Hash>,
        check: Option<Check>,
    ) -> StoreGuard {
        let mut inner = self.0.lock().expect("stores lock");
        inner.next += 1;
        let id = inner.next;
        inner.stores.insert(
            id,
            Entry {
                root,
                store,
                hashes: hashes.into_iter().collect(),
                check,
            },
        );
        StoreGuard {
            stores: self.clone(),
            id,
        }
    }

    /// The store to answer `hash` from for a peer that opened the shares `opened`: that of
    /// a live receive or seed of one of them that registered the hash, if any. A request for
    /// a share's root is that share's (asking for it opens it, see [`crate::access`]).
    fn holding(&self, hash: &Hash, opened: &HashSet<Hash>) -> Option<(Store, Option<Check>)> {
        let inner = self.0.lock().expect("stores lock");
        inner
            .stores
            .values()
            .find(|e| e.hashes.contains(hash) && (opened.contains(&e.root) || e.root == *hash))
            .map(|e| (e.store.clone(), e.check.clone()))
    }
}

/// The protocol handler.
#[derive(Debug, Clone)]
pub struct Provider {
    /// The node's own store.
    main: Store,
    stores: Stores,
    registry: crate::registry::Registry,
    events: EventSender,
}

impl Provider {
    /// Serves from `stores`, else from `main`; every request goes through `events` (the
    /// gatekeeper), whose `registry` says which shares a peer opened.
    pub fn new(
        main: Store,
        stores: Stores,
        registry: crate::registry::Registry,
        events: EventSender,
    ) -> Provider {
        Provider {
            main,
            stores,
            registry,
            events,
        }
    }
}

impl ProtocolHandler for Provider {
    async fn accept(&self, conn: Connection) -> Result<(), AcceptError> {
        let connection_id = conn.stable_id() as u64;
        if let Err(cause) = self
            .events
            .client_connected(|| ClientConnected {
                connection_id,
                endpoint_id: Some(conn.remote_id()),
            })
            .await
        {
            conn.close(cause.code(), cause.reason());
            return Ok(());
        }
        let peer = conn.remote_id();
        while let Ok((writer, reader)) = conn.accept_bi().await {
            let reader = super::lean::Lean(reader);
            let mut pair = StreamPair::new(connection_id, reader, writer, self.events.clone());
            let this = self.clone();
            tokio::spawn(async move {
                let Ok(request) = pair.read_request().await else {
                    return;
                };
                // A hash of a received share only from the store that fetched it, for the
                // peers of that share (see the module docs); everything else from the node's
                // own store.
                let opened = this.registry.opened_by(&peer);
                let store = |hash: &Hash| {
                    this.stores
                        .holding(hash, &opened)
                        .unwrap_or((this.main.clone(), None))
                };
                let res = match request {
                    Request::Get(r) => match store(&r.hash) {
                        // Refused: the stream ends with nothing, as for an unknown hash.
                        (_, Some(check)) if !check(&r.hash) => Ok(()),
                        (store, _) => handle_get(pair, store, r).await,
                    },
                    // Checked too: an observed blob keeps its file open in the store.
                    Request::Observe(r) => match store(&r.hash) {
                        (_, Some(check)) if !check(&r.hash) => Ok(()),
                        (store, _) => handle_observe(pair, store, r).await,
                    },
                    // Nothing else is served here.
                    _ => Ok(()),
                };
                if let Err(e) = res {
                    tracing::debug!("blobs request: {e}");
                }
            });
        }
        self.events
            .connection_closed(|| ConnectionClosed { connection_id })
            .await
            .ok();
        Ok(())
    }
}
