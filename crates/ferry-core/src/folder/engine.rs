//! A synced folder at run time: the watcher publishes local changes as records, and every
//! change to the document (remote or local) reconciles the files on disk with the outcome of
//! each path's versions ([`PathState::outcome`]).
//!
//! Reconciliation reads the whole document each time. That is simple and converges by
//! construction; folders of 100,000 files need an incremental version (tracked in the issue).

use std::{
    collections::{BTreeMap, HashMap},
    path::{Path, PathBuf},
    sync::Arc,
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use iroh::EndpointId;
use iroh_blobs::{
    api::{
        blobs::{AddPathOptions, ExportMode, ExportOptions, ImportMode},
        downloader::Shuffled,
        Store,
    },
    BlobFormat, Hash, HashAndFormat,
};
use iroh_docs::{api::Doc, store::Query, AuthorId};
use n0_future::StreamExt;
use tokio::sync::{mpsc, Mutex};

use crate::{
    error::{Error, Result},
    folder::{
        decide::PathState,
        ignore::{IgnoreRules, TEMP_SUFFIX},
        scan::{hash_if_stable, mtime_ms, scan, Scanned},
        trash::Trash,
        version::FileVersion,
    },
    names::validate_name,
    registry::Registry,
};

/// Prefix of file entries in a folder document.
pub const KEY_PREFIX: &str = "f/";

/// What this device last saw of a file it manages.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Known {
    size: u64,
    mtime_ms: u64,
    hash: String,
}

/// A running synced folder.
pub struct FolderSync {
    pub(crate) doc: Doc,
    pub(crate) root: PathBuf,
    pub(crate) read_only: bool,
    author: AuthorId,
    device: String,
    device_name: String,
    store: Store,
    endpoint: iroh::Endpoint,
    registry: Registry,
    /// Files as this device last wrote or published them.
    index: Mutex<HashMap<String, Known>>,
    /// Peers seen in this folder's swarm: where content is fetched from.
    peers: std::sync::Mutex<std::collections::HashSet<EndpointId>>,
    /// Told about every newly seen peer.
    peer_seen: std::sync::Mutex<Option<mpsc::UnboundedSender<EndpointId>>>,
    trash: Trash,
}

impl std::fmt::Debug for FolderSync {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FolderSync")
            .field("root", &self.root)
            .finish()
    }
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or_default()
}

impl FolderSync {
    /// Wraps an open document for the folder at `root`.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn new(
        doc: Doc,
        root: PathBuf,
        read_only: bool,
        author: AuthorId,
        device: EndpointId,
        device_name: String,
        store: Store,
        endpoint: iroh::Endpoint,
        registry: Registry,
    ) -> Arc<FolderSync> {
        Arc::new(FolderSync {
            doc,
            trash: Trash::new(&root),
            root,
            read_only,
            author,
            device: device.to_string(),
            device_name,
            store,
            endpoint,
            registry,
            index: Mutex::new(HashMap::new()),
            peers: std::sync::Mutex::new(Default::default()),
            peer_seen: std::sync::Mutex::new(None),
        })
    }

    /// Reports every newly seen peer on `tx`.
    pub fn on_peer(&self, tx: mpsc::UnboundedSender<EndpointId>) {
        *self.peer_seen.lock().expect("peer lock") = Some(tx);
    }

    /// Remembers a peer of this folder (from the ticket, or seen in the swarm).
    pub fn add_peer(&self, peer: EndpointId) {
        if peer != self.endpoint.id() && self.peers.lock().expect("peers lock").insert(peer) {
            if let Some(tx) = self.peer_seen.lock().expect("peer lock").as_ref() {
                tx.send(peer).ok();
            }
        }
    }

    fn known_peers(&self) -> Vec<EndpointId> {
        self.peers
            .lock()
            .expect("peers lock")
            .iter()
            .copied()
            .collect()
    }

    /// Reads every record of the document, grouped by path.
    async fn states(&self) -> Result<BTreeMap<String, PathState>> {
        Ok(self.states_and_missing().await?.0)
    }

    /// Reads every record of the document, grouped by path, and lists the records whose blob
    /// has not arrived (iroh-docs does not retry a failed download; the folder does).
    async fn states_and_missing(&self) -> Result<(BTreeMap<String, PathState>, Vec<Hash>)> {
        let mut out: BTreeMap<String, PathState> = BTreeMap::new();
        let mut missing = Vec::new();
        let mut entries = Box::pin(
            self.doc
                .get_many(Query::all())
                .await
                .map_err(|e| Error::Store(e.to_string()))?,
        );
        while let Some(entry) = entries.next().await {
            let entry = entry.map_err(|e| Error::Store(e.to_string()))?;
            let Ok(key) = std::str::from_utf8(entry.key()) else {
                continue;
            };
            let Some(rel) = key.strip_prefix(KEY_PREFIX) else {
                continue;
            };
            if validate_name(rel).is_err() {
                tracing::warn!("ignoring a record with an unsafe path {rel:?}");
                continue;
            }
            // Members fetch records from each other, not only from their authors.
            self.registry.allow_folder(entry.content_hash());
            let Ok(bytes) = self.store.get_bytes(entry.content_hash()).await else {
                missing.push(entry.content_hash());
                continue;
            };
            match FileVersion::decode(&bytes) {
                Ok(v) => {
                    out.entry(rel.to_string()).or_default().add(v);
                }
                Err(e) => tracing::warn!("ignoring a malformed record for {rel:?}: {e}"),
            }
        }
        Ok((out, missing))
    }

    /// Fetches blobs from the folder's peers; true if all arrived.
    async fn fetch(&self, hashes: &[Hash]) -> bool {
        let mut peers = self.known_peers();
        for p in self
            .doc
            .get_sync_peers()
            .await
            .ok()
            .flatten()
            .unwrap_or_default()
        {
            if let Ok(id) = EndpointId::from_bytes(&p) {
                if !peers.contains(&id) {
                    peers.push(id);
                }
            }
        }
        if peers.is_empty() {
            return false;
        }
        let downloader = self.store.downloader(&self.endpoint);
        let mut all = true;
        for hash in hashes {
            let fetch =
                downloader.download(HashAndFormat::raw(*hash), Shuffled::new(peers.clone()));
            match tokio::time::timeout(Duration::from_secs(10), fetch).await {
                Ok(Ok(_)) => {}
                Ok(Err(e)) => {
                    tracing::debug!("blob {} not available yet: {e}", hash.fmt_short());
                    all = false;
                }
                Err(_) => {
                    tracing::debug!("fetching blob {} timed out", hash.fmt_short());
                    all = false;
                }
            }
        }
        all
    }

    /// Publishes what changed on disk since the last look (new, modified, deleted files).
    pub async fn publish_local(&self, rules: &IgnoreRules) -> Result<usize> {
        let states = self.states().await?;
        self.publish(rules, &states).await
    }

    /// Publishes local changes on top of the versions in `states`.
    async fn publish(
        &self,
        rules: &IgnoreRules,
        states: &BTreeMap<String, PathState>,
    ) -> Result<usize> {
        if self.read_only {
            return Ok(0);
        }
        let root = self.root.clone();
        let scanned = scan(&root, rules);
        let mut index = self.index.lock().await;
        let mut published = 0;
        let mut present = std::collections::HashSet::new();
        for s in &scanned {
            present.insert(s.rel.clone());
            // A file with no record yet (a conflict copy this device wrote) is published too,
            // so that deleting or editing it later reaches the other peers.
            let unchanged = states.contains_key(&s.rel)
                && index
                    .get(&s.rel)
                    .is_some_and(|k| k.size == s.size && k.mtime_ms == s.mtime_ms);
            if unchanged {
                continue;
            }
            let Some(hash) = hash_if_stable(&root.join(&s.rel), s)
                .map_err(|e| Error::write(root.join(&s.rel), e))?
            else {
                continue; // still being written: next round
            };
            let state = states.get(&s.rel).cloned().unwrap_or_default();
            let known = Known {
                size: s.size,
                mtime_ms: s.mtime_ms,
                hash: hash.clone(),
            };
            if state.outcome(&s.rel).main.is_some_and(|c| c.hash == hash) {
                index.insert(s.rel.clone(), known);
                continue;
            }
            self.import(&root.join(&s.rel)).await?;
            let v = FileVersion {
                hash,
                size: s.size,
                mtime_ms: s.mtime_ms,
                deleted: false,
                device: self.device.clone(),
                device_name: self.device_name.clone(),
                version: state.next_vector(&self.device),
            };
            self.put(&s.rel, &v).await?;
            index.insert(s.rel.clone(), known);
            published += 1;
        }
        let gone: Vec<String> = index
            .keys()
            .filter(|k| !present.contains(*k))
            .cloned()
            .collect();
        for rel in gone {
            index.remove(&rel);
            let state = states.get(&rel).cloned().unwrap_or_default();
            if state.outcome(&rel).main.is_none() {
                continue;
            }
            let v = FileVersion {
                hash: String::new(),
                size: 0,
                mtime_ms: now_ms(),
                deleted: true,
                device: self.device.clone(),
                device_name: self.device_name.clone(),
                version: state.next_vector(&self.device),
            };
            self.put(&rel, &v).await?;
            published += 1;
        }
        Ok(published)
    }

    /// Copies a file's content into the store. Not by reference: the store's copy is what
    /// peers are served and what conflict copies and replaced files are written from, so it must
    /// not change or vanish when the user edits, renames or deletes the file (see DESIGN.md).
    async fn import(&self, path: &Path) -> Result<Hash> {
        let tt = self
            .store
            .add_path_with_opts(AddPathOptions {
                path: path.to_path_buf(),
                format: BlobFormat::Raw,
                mode: ImportMode::Copy,
            })
            .temp_tag()
            .await
            .map_err(Error::store)?;
        let hash = tt.hash();
        self.store
            .tags()
            .set(format!("ferry/folder/{hash}"), HashAndFormat::raw(hash))
            .await
            .map_err(Error::store)?;
        self.registry.allow_folder(hash);
        Ok(hash)
    }

    async fn put(&self, rel: &str, v: &FileVersion) -> Result<()> {
        let bytes = v.encode();
        // Servable before peers hear of it: they ask for the record as soon as it is inserted.
        self.registry.allow_folder(Hash::new(&bytes));
        self.doc
            .set_bytes(self.author, format!("{KEY_PREFIX}{rel}"), bytes)
            .await
            .map_err(|e| Error::Store(e.to_string()))?;
        Ok(())
    }

    /// The versions of every path, after fetching records that had not arrived. Also returns
    /// whether some records are still missing (the caller retries).
    async fn gather(&self) -> Result<(BTreeMap<String, PathState>, bool)> {
        let (states, missing_records) = self.states_and_missing().await?;
        if missing_records.is_empty() {
            return Ok((states, false));
        }
        let complete = self.fetch(&missing_records).await;
        Ok((self.states_and_missing().await?.0, !complete))
    }

    /// Makes the files on disk match `states`.
    async fn apply(&self, states: &BTreeMap<String, PathState>) -> Result<(usize, bool)> {
        let mut index = self.index.lock().await;
        let mut changed = 0;
        let mut missing = false;
        for (rel, state) in states {
            for v in state.versions() {
                if let Some(h) = v.content_hash() {
                    self.registry.allow_folder(h);
                }
            }
            let out = state.outcome(rel);
            match &out.main {
                Some(v) => match self.ensure_file(rel, v, &mut index).await? {
                    Written::Yes => changed += 1,
                    Written::Unavailable => missing = true,
                    Written::AlreadyThere => {}
                },
                None => {
                    let path = self.root.join(rel);
                    if index.contains_key(rel) && path.is_file() {
                        self.trash.put(rel, now_ms())?;
                        index.remove(rel);
                        changed += 1;
                    }
                }
            }
            for (copy, v) in &out.copies {
                if states.contains_key(copy) {
                    // The copy has been published: its own records decide what is there.
                    continue;
                }
                match self.ensure_file(copy, v, &mut index).await? {
                    Written::Yes => changed += 1,
                    Written::Unavailable => missing = true,
                    Written::AlreadyThere => {}
                }
            }
        }
        Ok((changed, missing))
    }

    /// Writes `v`'s content at `rel` unless it is there already.
    async fn ensure_file(
        &self,
        rel: &str,
        v: &FileVersion,
        index: &mut HashMap<String, Known>,
    ) -> Result<Written> {
        if index.get(rel).is_some_and(|k| k.hash == v.hash) {
            return Ok(Written::AlreadyThere);
        }
        let path = self.root.join(rel);
        let hash: Hash = v
            .content_hash()
            .ok_or_else(|| Error::BadData(format!("bad content hash for {rel:?}")))?;
        if !self.store.has(hash).await.map_err(Error::store)? && !self.fetch(&[hash]).await {
            return Ok(Written::Unavailable);
        }
        // A file that is there and is not what this device last knew is a local edit: keep it.
        if path.exists() {
            let known = index.get(rel);
            let on_disk_known = known.is_some_and(|k| {
                std::fs::metadata(&path)
                    .is_ok_and(|m| m.len() == k.size && mtime_ms(&m) == k.mtime_ms)
            });
            if !on_disk_known {
                let seen = std::fs::metadata(&path).map(|m| Scanned {
                    rel: rel.into(),
                    size: m.len(),
                    mtime_ms: mtime_ms(&m),
                });
                if let Ok(seen) = seen {
                    if hash_if_stable(&path, &seen).ok().flatten().as_deref()
                        == Some(v.hash.as_str())
                    {
                        index.insert(
                            rel.into(),
                            Known {
                                size: seen.size,
                                mtime_ms: seen.mtime_ms,
                                hash: v.hash.clone(),
                            },
                        );
                        return Ok(Written::AlreadyThere);
                    }
                }
            }
            self.trash.put(rel, now_ms())?;
        }
        let tmp = PathBuf::from(format!("{}{TEMP_SUFFIX}", path.display()));
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(|e| Error::write(parent, e))?;
        }
        self.store
            .export_with_opts(ExportOptions {
                hash,
                target: tmp.clone(),
                mode: ExportMode::Copy,
            })
            .finish()
            .await
            .map_err(|e| Error::write(&tmp, std::io::Error::other(e.to_string())))?;
        std::fs::rename(&tmp, &path).map_err(|e| Error::write(&path, e))?;
        let m = std::fs::metadata(&path).map_err(|e| Error::write(&path, e))?;
        index.insert(
            rel.into(),
            Known {
                size: m.len(),
                mtime_ms: mtime_ms(&m),
                hash: v.hash.clone(),
            },
        );
        Ok(Written::Yes)
    }

    /// Runs the folder until `stop` fires: watches the disk and the document.
    pub async fn run(self: Arc<Self>, mut stop: tokio::sync::oneshot::Receiver<()>) {
        let (tx, mut rx) = mpsc::unbounded_channel::<()>();
        let watch_tx = tx.clone();
        let mut watcher = notify::recommended_watcher(move |res: notify::Result<notify::Event>| {
            if let Ok(ev) = res {
                if !ev.kind.is_access() {
                    watch_tx.send(()).ok();
                }
            }
        })
        .ok();
        if let Some(w) = watcher.as_mut() {
            use notify::Watcher;
            if let Err(e) = w.watch(&self.root, notify::RecursiveMode::Recursive) {
                tracing::warn!("cannot watch {}: {e}", self.root.display());
            }
        }
        let doc_tx = tx.clone();
        let mut events = match self.doc.subscribe().await {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!("cannot follow the folder document: {e}");
                return;
            }
        };
        let me = self.clone();
        tokio::spawn(async move {
            while let Some(ev) = events.next().await {
                match &ev {
                    Ok(iroh_docs::engine::LiveEvent::InsertRemote { from, .. }) => {
                        me.add_peer(*from)
                    }
                    Ok(iroh_docs::engine::LiveEvent::NeighborUp(peer)) => me.add_peer(*peer),
                    _ => {}
                }
                if ev.is_err() || doc_tx.send(()).is_err() {
                    break;
                }
            }
        });
        tx.send(()).ok();
        let mut rescan = tokio::time::interval(Duration::from_secs(60));
        loop {
            tokio::select! {
                _ = &mut stop => break,
                _ = rescan.tick() => {}
                got = rx.recv() => {
                    if got.is_none() { break; }
                    // Batch whatever else arrives within a short window.
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    while rx.try_recv().is_ok() {}
                }
            }
            // Reloaded each round: `.ferryignore` may have changed.
            let rules = IgnoreRules::load(&self.root);
            // One read of the document serves both directions of the round.
            let (states, mut missing) = match self.gather().await {
                Ok(gathered) => gathered,
                Err(e) => {
                    tracing::warn!("reading the folder document {}: {e}", self.root.display());
                    continue;
                }
            };
            match self.apply(&states).await {
                Ok((_, unavailable)) => missing |= unavailable,
                Err(e) => tracing::warn!("reconcile {}: {e}", self.root.display()),
            }
            if missing {
                // Some content is not reachable yet: try again shortly.
                let retry = tx.clone();
                tokio::spawn(async move {
                    tokio::time::sleep(Duration::from_millis(500)).await;
                    retry.send(()).ok();
                });
            }
            if let Err(e) = self.publish(&rules, &states).await {
                tracing::warn!("publish {}: {e}", self.root.display());
            }
        }
        // The watcher stops with the loop.
        drop(watcher);
    }
}

/// What [`FolderSync::ensure_file`] did.
enum Written {
    Yes,
    AlreadyThere,
    Unavailable,
}
