//! Sharing, joining and listing synced folders; the list survives restarts (`folders.json`).

use std::{path::PathBuf, str::FromStr, sync::Arc};

use iroh_docs::{
    api::protocol::{AddrInfoOptions, ShareMode},
    store::DownloadPolicy,
    NamespaceId,
};
use serde::{Deserialize, Serialize};

use crate::{
    atomic::write_atomic,
    error::{Error, Result},
    folder::engine::FolderSync,
    node::Node,
    settings::Settings,
};

/// File in the home listing the synced folders.
pub const FOLDERS_FILE: &str = "folders.json";

/// A synced folder as listed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "specta", derive(specta::Type))]
pub struct FolderInfo {
    /// The document id.
    pub id: String,
    /// The local path.
    pub path: PathBuf,
    /// True if this device only receives.
    pub read_only: bool,
    /// Peers this folder synced with (node ids), dialled again at start.
    #[serde(default)]
    pub peers: Vec<String>,
    /// Paused by the user: nothing is published, applied or exchanged with peers until it is
    /// resumed, also across restarts.
    #[serde(default)]
    pub paused: bool,
}

/// A synced folder's state as shown to the user.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "specta", derive(specta::Type))]
pub struct FolderStatus {
    /// The folder.
    pub info: FolderInfo,
    /// Files present (not ignored).
    #[cfg_attr(feature = "specta", specta(type = specta_typescript::Number))]
    pub files: u64,
    /// Their total size.
    #[cfg_attr(feature = "specta", specta(type = specta_typescript::Number))]
    pub bytes: u64,
    /// What the trash holds, oldest first.
    pub trash: Vec<crate::folder::trash::TrashEntry>,
    /// What the running folder is doing; `None` if it is not running.
    pub activity: Option<crate::folder::activity::FolderActivity>,
}

impl FolderStatus {
    /// Reads the state of a folder from disk.
    pub fn of(info: &FolderInfo) -> FolderStatus {
        let rules = crate::folder::ignore::IgnoreRules::load(&info.path);
        let files = crate::folder::scan::scan(&info.path, &rules);
        FolderStatus {
            info: info.clone(),
            files: files.len() as u64,
            bytes: files.iter().map(|f| f.size).sum(),
            trash: crate::folder::trash::Trash::new(&info.path).list(),
            activity: None,
        }
    }

    /// The state of a running folder, from memory (no walk over its files).
    fn running(info: &FolderInfo, folder: &FolderSync) -> FolderStatus {
        let activity = folder.activity();
        FolderStatus {
            info: info.clone(),
            files: activity.files,
            bytes: activity.bytes,
            trash: crate::folder::trash::Trash::new(&info.path).list(),
            activity: Some(activity),
        }
    }
}

/// A folder syncing in this node.
#[derive(Debug)]
pub(crate) struct Running {
    pub(crate) folder: Arc<FolderSync>,
    stop: tokio::sync::oneshot::Sender<()>,
    task: tokio::task::JoinHandle<()>,
}

impl Running {
    /// Stops the folder and waits until it has saved its state.
    pub(crate) async fn stop(self) {
        self.stop.send(()).ok();
        self.task.await.ok();
    }
}

pub(super) fn load_list(node: &Node) -> Vec<FolderInfo> {
    folders_of(node.home())
}

/// The synced folders of `home`, as its list on disk says (whether a node runs or not).
pub fn folders_of(home: &std::path::Path) -> Vec<FolderInfo> {
    std::fs::read(home.join(FOLDERS_FILE))
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or_default()
}

/// A ticket for the folder document `doc`: read-only or read-write.
async fn ticket_of(doc: &iroh_docs::api::Doc, read_only: bool) -> Result<String> {
    let mode = if read_only {
        ShareMode::Read
    } else {
        ShareMode::Write
    };
    let ticket = doc
        .share(mode, AddrInfoOptions::RelayAndAddresses)
        .await
        .map_err(|e| Error::Store(e.to_string()))?;
    Ok(ticket.to_string())
}

/// Refuses a folder inside a synced folder, or one holding a synced folder: both would sync the
/// same files twice, each side taking the other's writes for local edits.
fn refuse_overlap(list: &[FolderInfo], path: &std::path::Path) -> Result<()> {
    for f in list {
        if path.starts_with(&f.path) {
            return Err(Error::Folder(format!(
                "{} is inside the synced folder {}",
                path.display(),
                f.path.display()
            )));
        }
        if f.path.starts_with(path) {
            return Err(Error::Folder(format!(
                "{} holds the synced folder {}",
                path.display(),
                f.path.display()
            )));
        }
    }
    Ok(())
}

pub(super) fn save_list(node: &Node, list: &[FolderInfo]) -> Result<()> {
    save_list_in(node.home(), list)
}

/// Writes `home`'s list of synced folders.
pub(super) fn save_list_in(home: &std::path::Path, list: &[FolderInfo]) -> Result<()> {
    let path = home.join(FOLDERS_FILE);
    write_atomic(
        &path,
        &serde_json::to_vec_pretty(list).expect("serializable"),
    )
    .map_err(|e| Error::write(&path, e))
}

impl Node {
    /// Shares the folder at `path`; returns the folder ticket (read-write unless `read_only`:
    /// then joiners only receive).
    pub async fn folder_share(&self, path: PathBuf, read_only: bool) -> Result<String> {
        let _ops = self.inner.folder_ops.lock().await;
        let path = std::fs::canonicalize(&path).map_err(|e| Error::ShareSource {
            path: path.clone(),
            source: e,
        })?;
        if !path.is_dir() {
            return Err(Error::ShareSource {
                path,
                source: std::io::Error::new(std::io::ErrorKind::InvalidInput, "not a folder"),
            });
        }
        let list = load_list(self);
        if let Some(existing) = list.iter().find(|f| f.path == path) {
            // Already synced: its ticket again (receive-only if this device only receives).
            return self.folder_ticket(existing, read_only).await;
        }
        refuse_overlap(&list, &path)?;
        let docs = self.docs();
        let doc = docs
            .create()
            .await
            .map_err(|e| Error::Store(e.to_string()))?;
        let info = FolderInfo {
            id: doc.id().to_string(),
            path,
            read_only: false,
            peers: Vec::new(),
            paused: false,
        };
        // The folder's first round scans and publishes what is there, in the background: a
        // folder of 100,000 files takes a while, and the ticket is useful at once (joiners
        // receive files as they are published; the folder shows "Scanning" meanwhile).
        self.start_folder(&info, doc.clone()).await?;
        let ticket = ticket_of(&doc, read_only).await?;
        let mut list = load_list(self);
        list.push(info);
        save_list(self, &list)?;
        Ok(ticket)
    }

    /// Joins a folder by ticket into `path` (created if missing; existing files are merged).
    pub async fn folder_join(&self, ticket: &str, path: PathBuf) -> Result<FolderInfo> {
        let _ops = self.inner.folder_ops.lock().await;
        let ticket = crate::ticket::parse_folder_ticket(ticket)?;
        let read_only = matches!(ticket.capability, iroh_docs::Capability::Read(_));
        let ticket_nodes = ticket.nodes.clone();
        let ticket_peers: Vec<iroh::EndpointId> = ticket_nodes.iter().map(|n| n.id).collect();
        for node in &ticket_nodes {
            self.inner.book.remember(node.clone());
        }
        let list = load_list(self);
        let id = ticket.capability.id().to_string();
        if let Some(existing) = list.iter().find(|f| f.id == id) {
            return Err(Error::Folder(format!(
                "this folder already syncs on this device, in {}",
                existing.path.display()
            )));
        }
        std::fs::create_dir_all(&path).map_err(|e| Error::write(&path, e))?;
        let path = std::fs::canonicalize(&path).map_err(|e| Error::write(&path, e))?;
        if list.iter().any(|f| f.path == path) {
            return Err(Error::Folder(format!(
                "{} already syncs another folder; join into a new folder",
                path.display()
            )));
        }
        refuse_overlap(&list, &path)?;
        // Imported without syncing first: the folder sets what the document may download
        // (`start_folder`) before any peer's entry arrives.
        let doc = self
            .docs()
            .import_namespace(ticket.capability)
            .await
            .map_err(|e| Error::Connect(e.to_string()))?;
        let info = FolderInfo {
            id: doc.id().to_string(),
            path,
            read_only,
            peers: ticket_peers.iter().map(|p| p.to_string()).collect(),
            paused: false,
        };
        let folder = self.start_folder(&info, doc.clone()).await?;
        for p in ticket_peers {
            folder.add_peer(p);
        }
        // Listed as soon as it runs: what syncs and what is listed are the same set.
        let mut list = load_list(self);
        list.retain(|f| f.id != info.id);
        list.push(info.clone());
        save_list(self, &list)?;
        // A peer that cannot be reached now is tried again with every resync.
        if let Err(e) = doc.start_sync(ticket_nodes).await {
            tracing::debug!("first sync of {}: {e}", info.path.display());
        }
        Ok(info)
    }

    /// The synced folders.
    pub fn folder_list(&self) -> Vec<FolderInfo> {
        load_list(self)
    }

    /// The synced folders with what each is doing, and how each connected peer is reached.
    pub async fn folder_statuses_now(&self) -> Vec<FolderStatus> {
        let mut statuses = self.folder_statuses();
        for peer in statuses
            .iter_mut()
            .filter_map(|s| s.activity.as_mut())
            .flat_map(|a| a.peers.iter_mut())
            .filter(|p| p.connected)
        {
            if let Ok(id) = peer.id.parse::<iroh::EndpointId>() {
                peer.via = crate::progress::Via::of_remote(self.endpoint(), id).await;
            }
        }
        statuses
    }

    /// The synced folders with what each is doing.
    pub fn folder_statuses(&self) -> Vec<FolderStatus> {
        let list = load_list(self);
        let mut statuses: Vec<Option<FolderStatus>> = {
            let running = self.inner.folders.lock().expect("folders lock");
            list.iter()
                .map(|info| {
                    running
                        .iter()
                        .find(|r| r.folder.folder_id == info.id)
                        .map(|r| FolderStatus::running(info, &r.folder))
                })
                .collect()
        };
        // The others, outside the lock: a paused folder as it was when paused (it runs
        // nothing, walking its files included); one that failed to start, from disk.
        list.iter()
            .zip(statuses.iter_mut())
            .map(|(info, status)| {
                status
                    .take()
                    .unwrap_or_else(|| match self.inner.paused.counts(&info.id) {
                        Some((files, bytes)) => FolderStatus {
                            info: info.clone(),
                            files,
                            bytes,
                            trash: crate::folder::trash::Trash::new(&info.path).list(),
                            activity: None,
                        },
                        None => FolderStatus::of(info),
                    })
            })
            .collect()
    }

    /// Looks at every file and every record of the folder at `path` now, as the periodic full
    /// pass does: what the watcher may have missed is published, what peers changed is
    /// written, and versions no longer named are no longer kept.
    pub fn folder_rescan(&self, path: PathBuf) -> Result<()> {
        let path = std::fs::canonicalize(&path).unwrap_or(path);
        let info = load_list(self)
            .into_iter()
            .find(|f| f.path == path)
            .ok_or_else(|| Error::Config(format!("{} is not a synced folder", path.display())))?;
        if info.paused {
            return Err(Error::Folder(format!(
                "{} is paused; resume it first",
                path.display()
            )));
        }
        let id = info.id;
        let running = self.inner.folders.lock().expect("folders lock");
        let folder = running
            .iter()
            .find(|r| r.folder.folder_id == id)
            .ok_or_else(|| Error::Config(format!("{} is not running", path.display())))?;
        folder.folder.mark(|d| d.full = true);
        Ok(())
    }

    /// Stops syncing the folder at `path` and forgets it. Its files (and its trash) stay where
    /// they are; other members are not affected.
    pub async fn folder_leave(&self, path: PathBuf) -> Result<FolderInfo> {
        let _ops = self.inner.folder_ops.lock().await;
        let path = std::fs::canonicalize(&path).unwrap_or(path);
        let mut list = load_list(self);
        let Some(at) = list.iter().position(|f| f.path == path) else {
            return Err(Error::Config(format!(
                "{} is not a synced folder",
                path.display()
            )));
        };
        let info = list.remove(at);
        save_list(self, &list)?;
        self.stop_folder(&info.id).await;
        self.inner.paused.remove(&info.id);
        Ok(info)
    }

    /// Stops the running folder `id` (if it runs) and its live sync; its document stays.
    /// Returns what it last counted: (files, bytes).
    pub(super) async fn stop_folder(&self, id: &str) -> Option<(u64, u64)> {
        let stopped = {
            let mut running = self.inner.folders.lock().expect("folders lock");
            running
                .iter()
                .position(|r| r.folder.folder_id == id)
                .map(|i| running.remove(i))
        };
        let mut counts = None;
        if let Some(running) = stopped {
            let activity = running.folder.activity();
            counts = Some((activity.files, activity.bytes));
            let doc = running.folder.doc().clone();
            // Stopped before its content is withdrawn: until it has stopped, a round could
            // still make content servable.
            running.stop().await;
            if let Err(e) = doc.leave().await {
                tracing::debug!("leaving the folder document: {e}");
            }
        }
        self.inner.registry.remove_folder(id);
        // What only this folder's document named (its records) is named by nothing now if the
        // folder was left; a paused folder's records stay kept (`node::records_kept`).
        self.inner.collection.wanted();
        counts
    }

    /// A ticket for a folder this device syncs: read-write unless `read_only` or this device
    /// only receives it.
    async fn folder_ticket(&self, info: &FolderInfo, read_only: bool) -> Result<String> {
        let doc = self.folder_doc(&info.id).await?;
        ticket_of(&doc, read_only || info.read_only).await
    }

    /// The document of the folder `id`, opened.
    pub(super) async fn folder_doc(&self, id: &str) -> Result<iroh_docs::api::Doc> {
        let ns = NamespaceId::from_str(id).map_err(|e| Error::Store(e.to_string()))?;
        self.docs()
            .open(ns)
            .await
            .map_err(|e| Error::Store(e.to_string()))?
            .ok_or_else(|| Error::Store(format!("folder {id} has no document")))
    }

    /// Starts every folder of the list (at node start).
    pub(crate) async fn start_folders(&self) {
        // Content kept for all folders at once by earlier versions: each folder keeps what it
        // holds under its own tags, then the old tags go (see `content`).
        let legacy = super::content::legacy_tags(self.store())
            .await
            .unwrap_or_default();
        let legacy_hashes: std::collections::HashSet<iroh_blobs::Hash> =
            legacy.iter().map(|(_, h)| *h).collect();
        let mut adopted = true;
        for info in load_list(self) {
            if info.paused {
                // Its content stays under the legacy tags until it runs again.
                adopted = false;
                self.hold_paused(&info).await;
                continue;
            }
            match self.resume_folder(&info).await {
                Ok(folder) => {
                    if !legacy_hashes.is_empty() {
                        adopted &= folder.adopt_legacy(&legacy_hashes).await.is_ok();
                    }
                }
                Err(e) => {
                    adopted = false;
                    tracing::warn!("cannot start folder {}: {e}", info.path.display())
                }
            }
        }
        if adopted && !legacy.is_empty() {
            if let Err(e) = super::content::drop_legacy_tags(self.store(), legacy).await {
                tracing::debug!("dropping legacy content tags: {e}");
            }
            self.inner.collection.wanted();
        }
    }

    /// Starts a listed folder from its document and rejoins its peers.
    pub(super) async fn resume_folder(&self, info: &FolderInfo) -> Result<Arc<FolderSync>> {
        let doc = self.folder_doc(&info.id).await?;
        let peers: Vec<iroh::EndpointAddr> = info
            .peers
            .iter()
            .filter_map(|p| p.parse::<iroh::EndpointId>().ok())
            .map(iroh::EndpointAddr::new)
            .collect();
        let folder = self.start_folder(info, doc.clone()).await?;
        for p in &peers {
            folder.add_peer(p.id);
        }
        // Rejoin the folder's swarm; addresses come from the address book.
        if let Err(e) = doc.start_sync(peers).await {
            tracing::warn!("cannot resume syncing {}: {e}", info.path.display());
        }
        Ok(folder)
    }

    async fn start_folder(
        &self,
        info: &FolderInfo,
        doc: iroh_docs::api::Doc,
    ) -> Result<Arc<FolderSync>> {
        let author = self
            .docs()
            .author_default()
            .await
            .map_err(|e| Error::Store(e.to_string()))?;
        // iroh-docs would download the blob of every entry, of any size a peer names. The folder
        // fetches records itself, bounded (`FolderSync::record`), so the document downloads
        // nothing on its own.
        doc.set_download_policy(DownloadPolicy::NothingExcept(Vec::new()))
            .await
            .map_err(|e| Error::Store(e.to_string()))?;
        let settings = Settings::load(self.home());
        let writer = crate::documents::Writer::new(
            self.inner.doc_sync.clone(),
            self.store().clone(),
            doc.id(),
            author,
            self.inner.held_records.clone(),
        );
        let folder = FolderSync::new(
            doc,
            info.path.clone(),
            info.read_only,
            writer,
            self.id(),
            &settings,
            self.store().clone(),
            self.endpoint().clone(),
            self.inner.registry.clone(),
            self.inner.download.clone(),
            self.inner.collection.clone(),
        );
        // Every peer seen in the folder is recorded: its addresses in the address book, its id in
        // the folder's list, so a restart finds it again.
        let (seen_tx, mut seen_rx) = tokio::sync::mpsc::unbounded_channel::<iroh::EndpointId>();
        folder.on_peer(seen_tx);
        let node = self.clone();
        let folder_id = info.id.clone();
        tokio::spawn(async move {
            while let Some(id) = seen_rx.recv().await {
                node.inner.book.remember_seen(node.endpoint(), id).await;
                let _ops = node.inner.folder_ops.lock().await;
                let mut list = load_list(&node);
                if let Some(f) = list.iter_mut().find(|f| f.id == folder_id) {
                    if !f.peers.contains(&id.to_string()) {
                        f.peers.push(id.to_string());
                        save_list(&node, &list).ok();
                    }
                }
            }
        });
        let (stop, stop_rx) = tokio::sync::oneshot::channel();
        let task = tokio::spawn(folder.clone().run(stop_rx));
        self.inner
            .folders
            .lock()
            .expect("folders lock")
            .push(Running {
                folder: folder.clone(),
                stop,
                task,
            });
        Ok(folder)
    }
}
