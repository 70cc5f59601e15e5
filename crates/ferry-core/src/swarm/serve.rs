//! Serving the pieces a receiver already has to the other receivers of the same share.
//!
//! A one-shot receive downloads into a store of its own (see [`crate::transfer_store`]), which
//! the node's blobs protocol does not serve. This protocol ([`ALPN`]) speaks plain iroh-blobs
//! requests (get and observe only) and answers each from the store that holds the asked hash:
//! a live receive's store, else the node's own store. Who may have what is decided as for
//! every other request, by the provider's gatekeeper ([`crate::access`]): a share's blobs go
//! only to a peer that opened its root, so a stranger without the ticket gets nothing, not
//! even whether this node holds the blob. Rate limits apply the same way.

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

/// The protocol's ALPN.
pub const ALPN: &[u8] = b"ferry/swarm-blobs/0";

#[derive(Debug, Default)]
struct Inner {
    next: u64,
    /// The stores of live receives: id to the store and the hashes it may answer for.
    stores: HashMap<u64, (Store, HashSet<Hash>)>,
}

/// The stores this node serves swarm requests from, besides its own.
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
    /// Serves `hashes` from `store` until the guard is dropped.
    pub fn add(&self, store: Store, hashes: impl IntoIterator<Item = Hash>) -> StoreGuard {
        let mut inner = self.0.lock().expect("stores lock");
        inner.next += 1;
        let id = inner.next;
        inner
            .stores
            .insert(id, (store, hashes.into_iter().collect()));
        StoreGuard {
            stores: self.clone(),
            id,
        }
    }

    /// The store to answer for `hash`, if a live receive holds it.
    fn holding(&self, hash: &Hash) -> Option<Store> {
        let inner = self.0.lock().expect("stores lock");
        inner
            .stores
            .values()
            .find(|(_, hashes)| hashes.contains(hash))
            .map(|(store, _)| store.clone())
    }
}

/// The protocol handler.
#[derive(Debug, Clone)]
pub struct SwarmBlobs {
    /// The node's own store.
    main: Store,
    stores: Stores,
    events: EventSender,
}

impl SwarmBlobs {
    /// Serves from `stores`, else from `main`; every request goes through `events` (the
    /// gatekeeper).
    pub fn new(main: Store, stores: Stores, events: EventSender) -> SwarmBlobs {
        SwarmBlobs {
            main,
            stores,
            events,
        }
    }
}

impl ProtocolHandler for SwarmBlobs {
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
        while let Ok(mut pair) = StreamPair::accept(&conn, self.events.clone()).await {
            let this = self.clone();
            tokio::spawn(async move {
                let Ok(request) = pair.read_request().await else {
                    return;
                };
                let store = |hash: &Hash| this.stores.holding(hash).unwrap_or(this.main.clone());
                let res = match request {
                    Request::Get(r) => handle_get(pair, store(&r.hash), r).await,
                    Request::Observe(r) => handle_observe(pair, store(&r.hash), r).await,
                    // Nothing else is served here.
                    _ => Ok(()),
                };
                if let Err(e) = res {
                    tracing::debug!("swarm request: {e}");
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
