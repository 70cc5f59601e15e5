//! A synced folder at run time: the watcher publishes local changes as records, and every
//! change to the document (remote or local) reconciles the files on disk with the outcome of
//! each path's versions ([`PathState::outcome`]).
//!
//! Work is incremental: watcher events mark paths, document events mark keys, and a round
//! looks only at what was marked (a changed file, a new or removed directory). The versions of
//! every path are cached in memory. A full pass (every file on disk, every record) runs at
//! start, after the watcher overflowed, and every few minutes as the safety net.

use std::{
    collections::{BTreeMap, BTreeSet},
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
use n0_future::{BufferedStreamExt, StreamExt};
use serde::{Deserialize, Serialize};
use tokio::sync::{mpsc, Mutex};

use crate::{
    error::{Error, Result},
    folder::{
        activity::{
            Change, ChangeKind, ConflictCopy, FolderActivity, FolderPeer, FolderState, Recent,
        },
        conflict::{is_conflict_copy, original_of},
        decide::PathState,
        ignore::STATE_DIR,
        ignore::{IgnoreRules, TEMP_SUFFIX},
        scan::{hash_if_stable, mtime_ms, scan, scan_some, Scanned},
        trash::Trash,
        version::{FileVersion, VersionVector},
    },
    names::validate_name,
    registry::Registry,
};

/// Prefix of file entries in a folder document.
pub const KEY_PREFIX: &str = "f/";

/// What this device last saw of a file it manages.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Known {
    size: u64,
    mtime_ms: u64,
    hash: String,
    /// The version the file on disk is: a local change builds on it, so a change made while
    /// a newer remote version was on its way (or while offline) is a conflict, not a silent
    /// overwrite.
    #[serde(default)]
    vector: VersionVector,
}

/// The index as saved in `<folder>/.ferry/index.json`, so a restarted node can tell files it
/// wrote from files changed or deleted while it was not running.
#[derive(Serialize, Deserialize)]
struct SavedIndex {
    doc: String,
    files: BTreeMap<String, Known>,
}

/// Where the index is saved.
fn index_path(root: &Path) -> PathBuf {
    root.join(STATE_DIR).join("index.json")
}

fn load_index(root: &Path, doc: &str) -> BTreeMap<String, Known> {
    std::fs::read(index_path(root))
        .ok()
        .and_then(|b| serde_json::from_slice::<SavedIndex>(&b).ok())
        .filter(|saved| saved.doc == doc)
        .map(|saved| saved.files)
        .unwrap_or_default()
}

/// A running synced folder.
pub struct FolderSync {
    pub(crate) doc: Doc,
    /// The document id, as text: the folder's name in the registry.
    folder_id: String,
    pub(crate) root: PathBuf,
    pub(crate) read_only: bool,
    author: AuthorId,
    device: String,
    device_name: String,
    store: Store,
    endpoint: iroh::Endpoint,
    /// One downloader for the folder's lifetime: it keeps its connections to peers open
    /// between fetches (a new one per fetch would open new connections each time).
    downloader: iroh_blobs::api::downloader::Downloader,
    registry: Registry,
    /// Files as this device last wrote or published them, by path.
    index: Mutex<BTreeMap<String, Known>>,
    /// True when the index changed since it was last saved.
    index_changed: std::sync::atomic::AtomicBool,
    /// The maximal versions of every path in the document.
    states: Mutex<BTreeMap<String, PathState>>,
    /// What the next round has to look at.
    dirty: std::sync::Mutex<Dirty>,
    /// Woken when `dirty` gains something.
    wake: tokio::sync::Notify,
    /// Paths whose record or content could not be fetched yet: looked at again when a peer
    /// connects, when content arrives, and shortly after each round that left them.
    wanted: std::sync::Mutex<BTreeSet<String>>,
    /// Peers seen in this folder's swarm: where content is fetched from.
    peers: std::sync::Mutex<std::collections::HashSet<EndpointId>>,
    /// Told about every newly seen peer.
    peer_seen: std::sync::Mutex<Option<mpsc::UnboundedSender<EndpointId>>>,
    /// Peers currently connected for this folder.
    connected: std::sync::Mutex<std::collections::HashSet<EndpointId>>,
    /// Recent changes, for people.
    recent: std::sync::Mutex<Recent>,
    /// Counts for people, refreshed at the end of each round.
    summary: std::sync::Mutex<Summary>,
    trash: Trash,
}

/// What a round leaves for [`FolderSync::activity`].
#[derive(Debug, Default, Clone)]
struct Summary {
    files: u64,
    bytes: u64,
    waiting: u64,
    waiting_bytes: u64,
    conflicts: Vec<ConflictCopy>,
    /// 0: idle, 1: a round runs, 2: a full pass runs.
    busy: u8,
    error: Option<String>,
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
        // Loaded before anything runs: it tells files this device wrote from files changed
        // while it was not running.
        let index = load_index(&root, &doc.id().to_string());
        let downloader = store.downloader(&endpoint);
        Arc::new(FolderSync {
            downloader,
            folder_id: doc.id().to_string(),
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
            index: Mutex::new(index),
            index_changed: std::sync::atomic::AtomicBool::new(false),
            states: Mutex::new(BTreeMap::new()),
            dirty: std::sync::Mutex::new(Dirty {
                full: true,
                ..Default::default()
            }),
            wake: tokio::sync::Notify::new(),
            wanted: std::sync::Mutex::new(BTreeSet::new()),
            connected: std::sync::Mutex::new(Default::default()),
            recent: std::sync::Mutex::new(Recent::default()),
            summary: std::sync::Mutex::new(Summary {
                busy: 2,
                ..Default::default()
            }),
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
        if peer == self.endpoint.id() {
            return;
        }
        // Only the folder's peers are served its records and content.
        self.registry.add_member(&self.folder_id, peer);
        if self.peers.lock().expect("peers lock").insert(peer) {
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

    /// What the folder is doing, for people. Cheap: read from memory.
    pub fn activity(&self) -> FolderActivity {
        let summary = self.summary.lock().expect("summary lock").clone();
        let connected = self.connected.lock().expect("connected lock").clone();
        let mut peers: Vec<FolderPeer> = self
            .known_peers()
            .into_iter()
            .map(|id| FolderPeer {
                id: id.to_string(),
                connected: connected.contains(&id),
            })
            .collect();
        peers.sort_by(|a, b| (!a.connected, &a.id).cmp(&(!b.connected, &b.id)));
        let state = match (summary.busy, &summary.error) {
            (2, _) => FolderState::Scanning,
            (_, Some(_)) => FolderState::Error,
            (1, _) => FolderState::Syncing,
            _ if summary.waiting > 0 => FolderState::Syncing,
            _ => FolderState::UpToDate,
        };
        FolderActivity {
            state,
            files: summary.files,
            bytes: summary.bytes,
            waiting: summary.waiting,
            waiting_bytes: summary.waiting_bytes,
            peers,
            recent: self.recent.lock().expect("recent lock").list(),
            conflicts: summary.conflicts,
            error: summary.error,
        }
    }

    fn note(&self, path: &str, kind: ChangeKind, by: &FileVersion) {
        let by = if by.device == self.device {
            String::new()
        } else {
            by.device_name.clone()
        };
        self.recent.lock().expect("recent lock").push(Change {
            path: path.to_string(),
            kind,
            by,
            at_ms: now_ms(),
        });
    }

    /// Reads the records matching `query`, grouped by path, and lists the paths whose record
    /// blobs have not arrived (iroh-docs does not retry a failed download; the folder does).
    async fn read_records(
        &self,
        query: Query,
    ) -> Result<(BTreeMap<String, PathState>, Vec<(String, Hash)>)> {
        let mut out: BTreeMap<String, PathState> = BTreeMap::new();
        let mut missing = Vec::new();
        let mut entries = Box::pin(
            self.doc
                .get_many(query)
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
            self.registry
                .allow_folder(&self.folder_id, entry.content_hash());
            let Ok(bytes) = self.store.get_bytes(entry.content_hash()).await else {
                missing.push((rel.to_string(), entry.content_hash()));
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
        let downloader = &self.downloader;
        // Many small files are many round trips: keep several in flight.
        let jobs: Vec<_> = hashes
            .iter()
            .copied()
            .map(|hash| {
                let fetch =
                    downloader.download(HashAndFormat::raw(hash), Shuffled::new(peers.clone()));
                async move {
                    match tokio::time::timeout(FETCH_TIMEOUT, fetch).await {
                        Ok(Ok(_)) => true,
                        Ok(Err(e)) => {
                            tracing::debug!("blob {} not available yet: {e}", hash.fmt_short());
                            false
                        }
                        Err(_) => {
                            tracing::debug!("fetching blob {} timed out", hash.fmt_short());
                            false
                        }
                    }
                }
            })
            .collect();
        let fetched: Vec<bool> = n0_future::stream::iter(jobs)
            .buffered_unordered(FETCH_PARALLEL)
            .collect()
            .await;
        fetched.iter().all(|ok| *ok)
    }

    /// Publishes what changed on disk since the last look (new, modified, deleted files).
    pub async fn publish_local(&self, rules: &IgnoreRules) -> Result<usize> {
        let mut states = self.states.lock().await;
        Ok(self.publish(rules, &mut states, None).await?.len())
    }

    /// Publishes local changes on top of the versions in `states`: of the whole folder, or only
    /// at and under the paths in `only`.
    async fn publish(
        &self,
        rules: &IgnoreRules,
        states: &mut BTreeMap<String, PathState>,
        only: Option<&BTreeSet<String>>,
    ) -> Result<Vec<String>> {
        if self.read_only {
            return Ok(Vec::new());
        }
        let root = self.root.clone();
        let scanned = match only {
            None => scan(&root, rules),
            Some(rels) => scan_some(&root, rules, rels),
        };
        let mut index = self.index.lock().await;
        let mut published = Vec::new();
        let mut present = BTreeSet::new();
        // First decide what to publish (hashing each changed file once it is stable)...
        let mut to_publish: Vec<(String, FileVersion, Known, ChangeKind)> = Vec::new();
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
                // Still being written: look again shortly.
                self.mark(|d| {
                    d.disk.insert(s.rel.clone());
                });
                continue;
            };
            let state = states.get(&s.rel).cloned().unwrap_or_default();
            self.index_changed
                .store(true, std::sync::atomic::Ordering::Relaxed);
            let main = state.outcome(&s.rel).main;
            if let Some(main) = main.as_ref().filter(|c| c.hash == hash) {
                let known = Known {
                    size: s.size,
                    mtime_ms: s.mtime_ms,
                    hash,
                    vector: main.version.clone(),
                };
                index.insert(s.rel.clone(), known);
                continue;
            }
            let vector = self.local_vector(&state, index.get(&s.rel));
            let known = Known {
                size: s.size,
                mtime_ms: s.mtime_ms,
                hash: hash.clone(),
                vector: vector.clone(),
            };
            let v = FileVersion {
                hash,
                size: s.size,
                mtime_ms: s.mtime_ms,
                deleted: false,
                device: self.device.clone(),
                device_name: self.device_name.clone(),
                version: vector,
            };
            let kind = if main.is_some() {
                ChangeKind::Updated
            } else {
                ChangeKind::Added
            };
            to_publish.push((s.rel.clone(), v, known, kind));
        }
        // ...then copy the contents into the store and insert the records, several at once:
        // a folder of many small files is otherwise a long line of round trips.
        let jobs: Vec<_> = to_publish
            .iter()
            .map(|(rel, v, _, _)| {
                let (rel, v) = (rel.clone(), v.clone());
                async move {
                    let res = match self.import(&self.root.join(&rel)).await {
                        Ok(_) => self.put(&rel, &v).await,
                        Err(e) => Err(e),
                    };
                    (rel, res)
                }
            })
            .collect();
        let done: Vec<(String, Result<()>)> = n0_future::stream::iter(jobs)
            .buffered_ordered(PUBLISH_PARALLEL)
            .collect()
            .await;
        for ((_, v, known, kind), (rel, res)) in to_publish.into_iter().zip(done) {
            if let Err(e) = res {
                // Gone or changed while being copied: the next look sees what is there now.
                tracing::debug!("publishing {rel:?}: {e}");
                self.mark(|d| {
                    d.disk.insert(rel.clone());
                });
                continue;
            }
            self.note(&rel, kind, &v);
            states.entry(rel.clone()).or_default().add(v);
            index.insert(rel.clone(), known);
            published.push(rel);
        }
        // Files this device knew that are no longer there.
        let gone: Vec<String> = match only {
            None => index
                .keys()
                .filter(|k| !present.contains(*k))
                .cloned()
                .collect(),
            Some(rels) => {
                let mut gone = BTreeSet::new();
                for rel in rels {
                    let under = format!("{rel}/");
                    let candidates = index
                        .get_key_value(rel)
                        .into_iter()
                        .chain(
                            index
                                .range(under.clone()..)
                                .take_while(|(k, _)| k.starts_with(&under)),
                        )
                        .map(|(k, _)| k);
                    for k in candidates {
                        if !present.contains(k) && !root.join(k).is_file() {
                            gone.insert(k.clone());
                        }
                    }
                }
                gone.into_iter().collect()
            }
        };
        for rel in gone {
            let base = index.remove(&rel);
            self.index_changed
                .store(true, std::sync::atomic::Ordering::Relaxed);
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
                version: self.local_vector(&state, base.as_ref()),
            };
            self.put(&rel, &v).await?;
            self.note(&rel, ChangeKind::Deleted, &v);
            states.entry(rel.clone()).or_default().add(v);
            published.push(rel);
        }
        Ok(published)
    }

    /// The version vector of a local change to a path whose file was `base` (`None`: a file
    /// this device did not have). It follows `base` and every earlier change
    /// of this device to the path, and nothing else: a remote version this device has not
    /// written to disk stays concurrent, so both are kept.
    fn local_vector(&self, state: &PathState, base: Option<&Known>) -> VersionVector {
        let mine = state
            .versions()
            .iter()
            .filter_map(|v| v.version.0.get(&self.device).copied())
            .max()
            .unwrap_or(0);
        let mut vector = base.map(|k| k.vector.clone()).unwrap_or_default();
        // Other devices' records of the very content this file had were seen too (peers that
        // wrote the same conflict copy each publish it).
        if let Some(k) = base {
            for v in state.versions().iter().filter(|v| v.hash == k.hash) {
                vector = vector.merge(&v.version);
            }
        }
        let own = vector.0.entry(self.device.clone()).or_default();
        *own = (*own).max(mine);
        vector.bump(&self.device)
    }

    /// Saves the index if it changed.
    async fn save_index(&self) {
        if !self
            .index_changed
            .swap(false, std::sync::atomic::Ordering::Relaxed)
        {
            return;
        }
        let index = self.index.lock().await;
        let saved = SavedIndex {
            doc: self.doc.id().to_string(),
            files: index
                .iter()
                .map(|(k, v)| {
                    (
                        k.clone(),
                        Known {
                            size: v.size,
                            mtime_ms: v.mtime_ms,
                            hash: v.hash.clone(),
                            vector: v.vector.clone(),
                        },
                    )
                })
                .collect(),
        };
        drop(index);
        let path = index_path(&self.root);
        let tmp = path.with_extension("json.tmp");
        let written = std::fs::create_dir_all(path.parent().expect("in the state dir"))
            .and_then(|_| std::fs::write(&tmp, serde_json::to_vec(&saved).expect("serializable")))
            .and_then(|_| std::fs::rename(&tmp, &path));
        if let Err(e) = written {
            tracing::warn!("cannot save {}: {e}", path.display());
            self.index_changed
                .store(true, std::sync::atomic::Ordering::Relaxed);
        }
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
        self.registry.allow_folder(&self.folder_id, hash);
        Ok(hash)
    }

    async fn put(&self, rel: &str, v: &FileVersion) -> Result<()> {
        tracing::debug!(
            "{}: publishing {rel:?} {:?}{}",
            self.root.display(),
            v.version,
            if v.deleted { " (deleted)" } else { "" }
        );
        let bytes = v.encode();
        // Servable before peers hear of it: they ask for the record as soon as it is inserted.
        self.registry
            .allow_folder(&self.folder_id, Hash::new(&bytes));
        self.doc
            .set_bytes(self.author, format!("{KEY_PREFIX}{rel}"), bytes)
            .await
            .map_err(|e| Error::Store(e.to_string()))?;
        Ok(())
    }

    /// The versions of the paths matching `query`, after fetching records that had not
    /// arrived. Also returns the paths whose records are still missing (the caller retries).
    async fn gather(
        &self,
        query: impl Into<Query>,
    ) -> Result<(BTreeMap<String, PathState>, BTreeSet<String>)> {
        let query: Query = query.into();
        let (states, missing) = self.read_records(query.clone()).await?;
        if missing.is_empty() {
            return Ok((states, BTreeSet::new()));
        }
        let hashes: Vec<Hash> = missing.iter().map(|(_, h)| *h).collect();
        self.fetch(&hashes).await;
        let (states, missing) = self.read_records(query).await?;
        Ok((states, missing.into_iter().map(|(rel, _)| rel).collect()))
    }

    /// Makes the files at `paths` match `states`. Returns how many files it wrote or removed,
    /// and the paths whose content could not be fetched yet.
    async fn apply(
        &self,
        states: &BTreeMap<String, PathState>,
        paths: &[String],
    ) -> Result<(usize, BTreeSet<String>)> {
        let mut index = self.index.lock().await;
        // Fetch every content this round needs at once, then write the files.
        let mut need = BTreeSet::new();
        for rel in paths {
            let Some(state) = states.get(rel) else {
                continue;
            };
            let out = state.outcome(rel);
            let wanted = out.main.iter().map(|v| (rel.as_str(), v));
            for (at, v) in wanted.chain(out.copies.iter().map(|(c, v)| (c.as_str(), v))) {
                if index.get(at).is_some_and(|k| k.hash == v.hash) {
                    continue;
                }
                if let Some(h) = v.content_hash() {
                    if !self.store.has(h).await.map_err(Error::store)? {
                        need.insert(h);
                    }
                }
            }
        }
        if !need.is_empty() {
            self.fetch(&need.into_iter().collect::<Vec<_>>()).await;
        }
        let mut changed = 0;
        let mut missing = BTreeSet::new();
        for rel in paths {
            let Some(state) = states.get(rel) else {
                continue;
            };
            for v in state.versions() {
                if let Some(h) = v.content_hash() {
                    self.registry.allow_folder(&self.folder_id, h);
                }
            }
            let out = state.outcome(rel);
            match &out.main {
                Some(v) => match self.ensure_file(rel, v, &mut index).await? {
                    Written::Yes(replaced) => {
                        let kind = if replaced {
                            ChangeKind::Updated
                        } else {
                            ChangeKind::Added
                        };
                        self.note(rel, kind, v);
                        changed += 1
                    }
                    Written::Unavailable => {
                        missing.insert(rel.clone());
                    }
                    Written::AlreadyThere | Written::LocalEdit => {}
                },
                None => {
                    let path = self.root.join(rel);
                    let unchanged_here = index.get(rel).is_some_and(|k| {
                        std::fs::metadata(&path)
                            .is_ok_and(|m| m.len() == k.size && mtime_ms(&m) == k.mtime_ms)
                    });
                    if index.contains_key(rel)
                        && path.is_file()
                        && !unchanged_here
                        && !self.read_only
                    {
                        // Edited here since: the edit is published and wins over the delete.
                        self.mark(|d| {
                            d.disk.insert(rel.clone());
                        });
                    } else if index.contains_key(rel) && path.is_file() {
                        self.trash.put(rel, now_ms())?;
                        index.remove(rel);
                        self.index_changed
                            .store(true, std::sync::atomic::Ordering::Relaxed);
                        if let Some(by) = state.versions().iter().find(|v| v.deleted) {
                            self.note(rel, ChangeKind::Deleted, by);
                        }
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
                    Written::Yes(_) => {
                        self.note(copy, ChangeKind::Conflict, v);
                        changed += 1
                    }
                    Written::Unavailable => {
                        missing.insert(rel.clone());
                    }
                    Written::AlreadyThere | Written::LocalEdit => {}
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
        index: &mut BTreeMap<String, Known>,
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
                                vector: v.version.clone(),
                            },
                        );
                        self.index_changed
                            .store(true, std::sync::atomic::Ordering::Relaxed);
                        return Ok(Written::AlreadyThere);
                    }
                }
                if !self.read_only {
                    // Changed here and not published yet: publish it first, so it meets the
                    // remote version as a conflict (both kept) instead of being replaced.
                    self.mark(|d| {
                        d.disk.insert(rel.to_string());
                    });
                    return Ok(Written::LocalEdit);
                }
            }
            self.trash.put(rel, now_ms())?;
        }
        let replaced = index.contains_key(rel);
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
                vector: v.version.clone(),
            },
        );
        self.index_changed
            .store(true, std::sync::atomic::Ordering::Relaxed);
        Ok(Written::Yes(replaced))
    }

    /// Adds work for the next round and wakes the loop.
    fn mark(&self, f: impl FnOnce(&mut Dirty)) {
        f(&mut self.dirty.lock().expect("dirty lock"));
        self.wake.notify_one();
    }

    /// Looks again at the paths that were waiting for a peer or for content.
    fn retry_wanted(&self) {
        let wanted = self.wanted.lock().expect("wanted lock").clone();
        if !wanted.is_empty() {
            self.mark(|d| d.keys.extend(wanted));
        }
    }

    /// One round: brings the cached versions of the marked paths up to date, writes what
    /// peers changed, then publishes what changed on disk.
    async fn round(&self) {
        let work = std::mem::take(&mut *self.dirty.lock().expect("dirty lock"));
        if work.is_empty() {
            return;
        }
        tracing::debug!(
            "round on {}: full {}, {} keys, {} records, {} paths",
            self.root.display(),
            work.full,
            work.keys.len(),
            work.records.len(),
            work.disk.len()
        );
        self.summary.lock().expect("summary lock").busy = if work.full { 2 } else { 1 };
        let mut error = None;
        // Reloaded each round: `.ferryignore` may have changed.
        let rules = IgnoreRules::load(&self.root);
        let mut states = self.states.lock().await;
        let mut unavailable = BTreeSet::new();
        let full = work.full || work.keys.len() > KEYS_PER_QUERY_MAX;
        let work = Dirty {
            // A full pass reads every record anyway.
            records: if full { Vec::new() } else { work.records },
            ..work
        };
        let paths: Vec<String> = if full {
            match self.gather(Query::all()).await {
                Ok((all, missing)) => {
                    *states = all;
                    unavailable = missing;
                    states.keys().cloned().collect()
                }
                Err(e) => {
                    tracing::warn!("reading the folder document {}: {e}", self.root.display());
                    let mut summary = self.summary.lock().expect("summary lock");
                    summary.busy = 0;
                    summary.error = Some(e.to_string());
                    drop(summary);
                    self.mark(|d| d.full = true);
                    return;
                }
            }
        } else {
            let mut paths = Vec::new();
            // New records named by document events: added to the cached versions directly,
            // without asking the document again.
            let missing: Vec<Hash> = {
                let mut missing = Vec::new();
                for (_, hash) in &work.records {
                    self.registry.allow_folder(&self.folder_id, *hash);
                    if !self.store.has(*hash).await.unwrap_or(false) {
                        missing.push(*hash);
                    }
                }
                missing
            };
            if !missing.is_empty() {
                self.fetch(&missing).await;
            }
            for (rel, hash) in &work.records {
                if validate_name(rel).is_err() {
                    tracing::warn!("ignoring a record with an unsafe path {rel:?}");
                    continue;
                }
                let Ok(bytes) = self.store.get_bytes(*hash).await else {
                    // Looked at again, from the document, with the wanted paths.
                    unavailable.insert(rel.clone());
                    continue;
                };
                match FileVersion::decode(&bytes) {
                    Ok(v) => {
                        states.entry(rel.clone()).or_default().add(v);
                        paths.push(rel.clone());
                    }
                    Err(e) => tracing::warn!("ignoring a malformed record for {rel:?}: {e}"),
                }
            }
            for rel in &work.keys {
                match self
                    .gather(Query::key_exact(format!("{KEY_PREFIX}{rel}")))
                    .await
                {
                    Ok((mut found, missing)) => {
                        match found.remove(rel) {
                            Some(state) => states.insert(rel.clone(), state),
                            None => states.remove(rel),
                        };
                        if missing.is_empty() {
                            paths.push(rel.clone());
                        } else {
                            unavailable.extend(missing);
                        }
                    }
                    Err(e) => {
                        tracing::warn!("reading {rel:?} of {}: {e}", self.root.display());
                        unavailable.insert(rel.clone());
                    }
                }
            }
            paths
        };
        // A path with records still missing is not acted on until they arrive.
        let paths: Vec<String> = paths
            .into_iter()
            .filter(|p| !unavailable.contains(p))
            .collect();
        match self.apply(&states, &paths).await {
            Ok((_, missing)) => unavailable.extend(missing),
            Err(e) => {
                tracing::warn!("reconcile {}: {e}", self.root.display());
                error = Some(e.to_string());
            }
        }
        let only = (!work.full).then_some(&work.disk);
        match self.publish(&rules, &mut states, only).await {
            Ok(published) => {
                // A change published on top of a concurrent remote one is a conflict: settle
                // it now (the copy is written) rather than at the next event.
                let conflicted: Vec<String> = published
                    .into_iter()
                    .filter(|rel| states.get(rel).is_some_and(|s| s.versions().len() > 1))
                    .collect();
                if !conflicted.is_empty() {
                    match self.apply(&states, &conflicted).await {
                        Ok((_, missing)) => unavailable.extend(missing),
                        Err(e) => error = Some(e.to_string()),
                    }
                }
            }
            Err(e) => {
                tracing::warn!("publish {}: {e}", self.root.display());
                error = Some(e.to_string());
            }
        }
        let wanted = {
            let mut wanted = self.wanted.lock().expect("wanted lock");
            for rel in work.keys.iter().chain(&paths) {
                wanted.remove(rel);
            }
            wanted.extend(unavailable);
            wanted.clone()
        };
        let index = self.index.lock().await;
        let summary = Summary {
            files: index.len() as u64,
            bytes: index.values().map(|k| k.size).sum(),
            waiting: wanted.len() as u64,
            waiting_bytes: wanted
                .iter()
                .filter_map(|rel| states.get(rel)?.outcome(rel).main.map(|v| v.size))
                .sum(),
            conflicts: index
                .keys()
                .filter(|k| is_conflict_copy(k))
                .filter_map(|copy| {
                    Some(ConflictCopy {
                        original: original_of(copy)?,
                        copy: copy.clone(),
                    })
                })
                .collect(),
            busy: 0,
            error,
        };
        *self.summary.lock().expect("summary lock") = summary;
    }

    /// Runs the folder until `stop` fires: watches the disk and the document.
    pub async fn run(self: Arc<Self>, mut stop: tokio::sync::oneshot::Receiver<()>) {
        let me = self.clone();
        let root = self.root.clone();
        let mut watcher =
            notify::recommended_watcher(move |res: notify::Result<notify::Event>| match res {
                Ok(ev) if ev.need_rescan() => me.mark(|d| d.full = true),
                Ok(ev) if !ev.kind.is_access() => {
                    let rels: Vec<String> =
                        ev.paths.iter().filter_map(|p| relative(&root, p)).collect();
                    if !rels.is_empty() {
                        me.mark(|d| d.disk.extend(rels));
                    }
                }
                Ok(_) => {}
                Err(e) => {
                    tracing::debug!("watcher: {e}");
                    me.mark(|d| d.full = true);
                }
            })
            .ok();
        if let Some(w) = watcher.as_mut() {
            use notify::Watcher;
            if let Err(e) = w.watch(&self.root, notify::RecursiveMode::Recursive) {
                tracing::warn!("cannot watch {}: {e}", self.root.display());
            }
        }
        let mut events = match self.doc.subscribe().await {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!("cannot follow the folder document: {e}");
                return;
            }
        };
        let me = self.clone();
        let follower = tokio::spawn(async move {
            use iroh_docs::engine::LiveEvent;
            while let Some(ev) = events.next().await {
                let Ok(ev) = ev else { break };
                match &ev {
                    LiveEvent::InsertRemote { from, entry, .. } => {
                        me.add_peer(*from);
                        if let Some(rel) = key_path(entry.key()) {
                            let hash = entry.content_hash();
                            // Servable at once: the other members may ask this node for it
                            // as soon as it announces having it.
                            me.registry.allow_folder(&me.folder_id, hash);
                            me.mark(|d| d.records.push((rel, hash)));
                        }
                    }
                    // This device's own records are in the cache already (see `publish`).
                    LiveEvent::InsertLocal { .. } => {}
                    LiveEvent::NeighborUp(peer) => {
                        me.add_peer(*peer);
                        me.connected.lock().expect("connected lock").insert(*peer);
                        me.retry_wanted();
                    }
                    LiveEvent::SyncFinished(sync) => me.add_peer(sync.peer),
                    LiveEvent::NeighborDown(peer) => {
                        me.connected.lock().expect("connected lock").remove(peer);
                    }
                    LiveEvent::ContentReady { .. } | LiveEvent::PendingContentReady => {
                        me.retry_wanted()
                    }
                }
            }
        });
        let mut rescan = tokio::time::interval(RESCAN_EVERY);
        rescan.tick().await; // the first tick is immediate; the start already does a full pass
        let mut retry = tokio::time::interval(Duration::from_millis(500));
        let mut save = tokio::time::interval(SAVE_EVERY);
        loop {
            tokio::select! {
                _ = &mut stop => break,
                _ = rescan.tick() => self.mark(|d| d.full = true),
                _ = retry.tick() => self.retry_wanted(),
                _ = save.tick() => {
                    self.save_index().await;
                    continue;
                }
                _ = self.wake.notified() => {
                    // Batch whatever else arrives within a short window.
                    tokio::time::sleep(BATCH_WINDOW).await;
                }
            }
            self.round().await;
        }
        follower.abort();
        self.save_index().await;
        // The watcher stops with the loop.
        drop(watcher);
    }
}

/// How many changed files a folder copies into the store and publishes at once.
const PUBLISH_PARALLEL: usize = 16;

/// How many blobs a folder fetches at once.
const FETCH_PARALLEL: usize = 32;

/// How long one blob may take to arrive before the path is retried later.
const FETCH_TIMEOUT: Duration = Duration::from_secs(10);

/// Above this many changed keys a round reads the whole document in one pass instead of
/// querying key by key.
const KEYS_PER_QUERY_MAX: usize = 256;

/// How long events are collected before a round runs.
const BATCH_WINDOW: Duration = Duration::from_millis(50);

/// How often the index is saved when it changed (and when the folder stops).
const SAVE_EVERY: Duration = Duration::from_secs(2);

/// How often every file and every record is looked at, whatever the watcher said.
const RESCAN_EVERY: Duration = Duration::from_secs(300);

/// What the next round has to look at.
#[derive(Debug, Default)]
struct Dirty {
    /// Paths the watcher saw change, relative to the folder.
    disk: BTreeSet<String>,
    /// Paths to read again from the document (their records were missing before).
    keys: BTreeSet<String>,
    /// Records that arrived from peers: path and record blob.
    records: Vec<(String, Hash)>,
    /// Everything.
    full: bool,
}

impl Dirty {
    fn is_empty(&self) -> bool {
        !self.full && self.disk.is_empty() && self.keys.is_empty() && self.records.is_empty()
    }
}

/// `path` relative to `root`, `/`-separated; `None` outside it, in Ferry's own state, or for
/// Ferry's temporary files (its own writes need no second look).
fn relative(root: &Path, path: &Path) -> Option<String> {
    let rel = path.strip_prefix(root).ok()?;
    let parts: Option<Vec<&str>> = rel.components().map(|c| c.as_os_str().to_str()).collect();
    let rel = parts?.join("/");
    if rel.is_empty() || rel == STATE_DIR || rel.starts_with(&format!("{STATE_DIR}/")) {
        return None;
    }
    if rel.ends_with(TEMP_SUFFIX) {
        return None;
    }
    Some(rel)
}

/// The file path of a document key, if it is a file entry.
fn key_path(key: &[u8]) -> Option<String> {
    std::str::from_utf8(key)
        .ok()?
        .strip_prefix(KEY_PREFIX)
        .map(str::to_string)
}

/// What [`FolderSync::ensure_file`] did.
enum Written {
    /// Not written: the file there is a local change that is published first.
    LocalEdit,
    /// Written; true if it replaced a file this device had.
    Yes(bool),
    AlreadyThere,
    Unavailable,
}
