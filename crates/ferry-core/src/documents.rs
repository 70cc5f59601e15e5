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
//!
//! A record just written is kept from the store's garbage collection under a temporary tag
//! through the next two collections ([`HeldRecords`]): a collection asks which blobs the
//! documents name (`node::records_kept`) *before* it reads the temporary tags, and reading a
//! million entries takes a while; a record written meanwhile, its tag already dropped, was
//! named by neither, and deleted (a run of 1,000,000 files lost 6,352 records that way, which
//! the joined side then waited for forever).

use std::{
    path::Path,
    sync::{Arc, Mutex},
};

use bytes::Bytes;
use iroh_blobs::api::{Store as BlobStore, TempTag};
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
    held: HeldRecords,
}

/// The temporary tags of the records written lately (see the module docs): those written since
/// the last garbage collection began, and those written before it since the one before.
#[derive(Clone, Debug, Default)]
pub(crate) struct HeldRecords(Arc<Mutex<(Vec<TempTag>, Vec<TempTag>)>>);

impl HeldRecords {
    fn hold(&self, tag: TempTag) {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).0.push(tag);
    }

    /// A garbage collection begins: what was held since the one before began is let go (the
    /// documents name those records by now); what was held since is held through this one.
    pub(crate) fn collection_begins(&self) {
        let released = {
            let mut held = self.0.lock().unwrap_or_else(|e| e.into_inner());
            let newer = std::mem::take(&mut held.0);
            std::mem::replace(&mut held.1, newer)
        };
        // Let go outside the lock: each tag tells the store, and writers wait on the lock.
        drop(released);
    }

    /// How many records are held.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        let held = self.0.lock().unwrap_or_else(|e| e.into_inner());
        held.0.len() + held.1.len()
    }
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
    /// Writes into the document `namespace` as `author`, holding what it writes in `held`.
    pub(crate) fn new(
        sync: SyncHandle,
        store: BlobStore,
        namespace: NamespaceId,
        author: AuthorId,
        held: HeldRecords,
    ) -> Writer {
        Writer {
            sync,
            store,
            namespace,
            author,
            held,
        }
    }

    /// Sets `key` to `value`: the value is stored as a blob, then the entry naming it is
    /// inserted (signed, stored and announced to the document's peers).
    pub(crate) async fn put(&self, key: impl Into<Bytes>, value: Bytes) -> Result<()> {
        let len = value.len() as u64;
        // Held until the entry names the blob and the garbage collections that may not have
        // seen the entry have run (see the module docs).
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
        self.held.hold(tag);
        Ok(())
    }
}

/// The documents engine in memory over `store`, on an endpoint bound to loopback with relays
/// off: for tests.
#[cfg(test)]
pub(crate) async fn spawn_on_loopback(store: BlobStore) -> (Docs, SyncHandle) {
    use iroh::{endpoint::presets, RelayMode};
    let ep = iroh::Endpoint::builder(presets::Minimal)
        .relay_mode(RelayMode::Disabled)
        .clear_ip_transports()
        .bind_addr("127.0.0.1:0".parse::<std::net::SocketAddr>().unwrap())
        .unwrap()
        .bind()
        .await
        .unwrap();
    let gossip = iroh_gossip::net::Gossip::builder().spawn(ep.clone());
    spawn(None, ep, store, gossip).await.unwrap()
}

#[cfg(test)]
mod tests {
    use std::{
        collections::HashSet,
        sync::atomic::{AtomicBool, Ordering},
        time::Duration,
    };

    use iroh_blobs::store::{
        fs::{options::Options, FsStore},
        GcConfig, ProtectOutcome,
    };

    use super::*;

    /// Regression: a record written while a garbage collection was asking the documents what
    /// they name (seen by neither that question nor the temporary tags read after it) was
    /// deleted from the store. Here no collection's question names it, as if each had begun
    /// just before the write: it stays through the first whole collection after it all the
    /// same, and is let go after that (the documents name it by then).
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_record_written_during_a_garbage_collection_survives_it() {
        let dir = tempfile::tempdir().unwrap();
        let held = HeldRecords::default();
        let value = Bytes::from_static(b"a record nobody else names");
        let hash = iroh_blobs::Hash::new(&value);
        // Whether the record was in the store as each collection began, from the first that
        // found it held (the first to begin after the write).
        let seen: Arc<Mutex<Vec<bool>>> = Default::default();
        let written = Arc::new(AtomicBool::new(false));
        let store_cell: Arc<std::sync::OnceLock<BlobStore>> = Default::default();
        let mut options = Options::new(dir.path());
        let (h, s, w, cell) = (
            held.clone(),
            seen.clone(),
            written.clone(),
            store_cell.clone(),
        );
        options.gc = Some(GcConfig {
            interval: Duration::from_millis(50),
            add_protected: Some(Arc::new(move |_live: &mut HashSet<iroh_blobs::Hash>| {
                if h.len() > 0 {
                    w.store(true, Ordering::SeqCst);
                }
                h.collection_begins();
                let (s, store) = (s.clone(), cell.get().cloned());
                let after = w.load(Ordering::SeqCst);
                // Asked in a task of its own: the callback's future must be `Sync`.
                let (tx, rx) = tokio::sync::oneshot::channel();
                tokio::spawn(async move {
                    if let (true, Some(store)) = (after, store) {
                        let has = store.has(hash).await.unwrap_or(false);
                        s.lock().unwrap().push(has);
                    }
                    tx.send(()).ok();
                });
                Box::pin(async move {
                    rx.await.ok();
                    ProtectOutcome::Continue
                })
            })),
        });
        let store = FsStore::load_with_opts(dir.path().join("blobs.db"), options)
            .await
            .unwrap();
        store_cell.set((*store).clone()).ok();
        let (docs, sync) = spawn_on_loopback((*store).clone()).await;
        let doc = docs.create().await.unwrap();
        let author = docs.author_default().await.unwrap();
        let writer = Writer::new(sync, (*store).clone(), doc.id(), author, held.clone());
        writer.put(&b"f/x\0"[..], value).await.unwrap();
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        while seen.lock().unwrap().len() < 3 {
            assert!(
                std::time::Instant::now() < deadline,
                "no three collections after the write (it was never held?): {:?}",
                seen.lock().unwrap()
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let seen = seen.lock().unwrap().clone();
        assert!(
            seen[0] && seen[1],
            "deleted by a collection after it: {seen:?}"
        );
        assert!(!seen[2], "held for good: {seen:?}");
        assert_eq!(held.len(), 0);
        drop(docs);
    }
}
