//! The folder documents' engine (iroh-docs), started by Ferry itself so that it keeps a handle
//! on the engine's replica actor next to the usual [`Docs`] API.
//!
//! Why: every call through the [`Docs`] API goes through one task that answers one request
//! at a time, and a `set_bytes` there is three round trips in a row (the blob into the store,
//! the entry into the replica, the entry read back). A folder publishing 10,000 files waited
//! on that line: neither core was busy (docs/BENCHMARKS.md, "Profile of 10,000 small files").
//! [`Writer::put`] adds the record to the store on its own and hands the entry straight to the
//! replica actor, so many records can be on their way at once; the actor still inserts,
//! signs and announces them one by one, exactly as the API would.

use std::path::Path;

use bytes::Bytes;
use iroh_blobs::api::Store as BlobStore;
use iroh_docs::{
    actor::SyncHandle,
    engine::{DefaultAuthorStorage, Engine},
    protocol::Docs,
    AuthorId, NamespaceId,
};

use crate::error::{Error, Result};

/// Starts the documents engine with its replicas and default author under `dir` (in memory
/// if `None`); returns the API and the handle [`Writer`]s write through.
pub(crate) async fn spawn(
    dir: Option<&Path>,
    endpoint: iroh::Endpoint,
    store: BlobStore,
    gossip: iroh_gossip::net::Gossip,
) -> Result<(Docs, SyncHandle)> {
    let failed =
        |e: &dyn std::fmt::Display| Error::Store(format!("cannot open the folder documents: {e}"));
    let (replicas, author) = match dir {
        Some(dir) => (
            iroh_docs::store::fs::Store::persistent(dir.join("docs.redb"))
                .map_err(|e| failed(&e))?,
            DefaultAuthorStorage::Persistent(dir.join("default-author")),
        ),
        None => (
            iroh_docs::store::fs::Store::memory(),
            DefaultAuthorStorage::Mem,
        ),
    };
    let downloader = store.downloader(&endpoint);
    let engine = Engine::spawn(endpoint, gossip, replicas, store, downloader, author, None)
        .await
        .map_err(|e| failed(&e))?;
    let sync = engine.sync.clone();
    Ok((Docs::new(engine), sync))
}

/// Writes one author's entries into one document (see the module docs).
#[derive(Clone)]
pub(crate) struct Writer {
    sync: SyncHandle,
    store: BlobStore,
    namespace: NamespaceId,
    author: AuthorId,
}

impl std::fmt::Debug for Writer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Writer")
            .field("namespace", &self.namespace)
            .field("author", &self.author)
            .finish()
    }
}

impl Writer {
    /// Writes into the document `namespace` as `author`.
    pub(crate) fn new(
        sync: SyncHandle,
        store: BlobStore,
        namespace: NamespaceId,
        author: AuthorId,
    ) -> Writer {
        Writer {
            sync,
            store,
            namespace,
            author,
        }
    }

    /// Sets `key` to `value`: the value is stored as a blob, then the entry naming it is
    /// inserted (signed, stored and announced to the document's peers).
    pub(crate) async fn put(&self, key: impl Into<Bytes>, value: Bytes) -> Result<()> {
        let len = value.len() as u64;
        // Held until the entry names the blob: from then on the document keeps it.
        let tag = self
            .store
            .add_bytes(value)
            .temp_tag()
            .await
            .map_err(Error::store)?;
        self.sync
            .insert_local(self.namespace, self.author, key.into(), tag.hash(), len)
            .await
            .map_err(Error::store)?;
        drop(tag);
        Ok(())
    }
}
