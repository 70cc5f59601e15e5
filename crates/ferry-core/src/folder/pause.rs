//! Pausing and resuming synced folders.
//!
//! A paused folder runs nothing: no watcher, no rounds, no live sync with its peers, no walk
//! over its files (its counts are the last it had). It stays listed, marked `paused` in
//! `folders.json`, so a restart keeps it paused. Resuming starts it as a node start does:
//! its first round is a full pass, which finds whatever changed meanwhile on either side.
//! Its document stays open here so that the records it names survive garbage collection
//! (the store keeps only what running or paused folders' documents name).

use std::{collections::HashMap, path::PathBuf};

use super::manage::{folders_of, load_list, save_list, save_list_in, FolderInfo, FolderStatus};
use crate::{
    error::{Error, Result},
    node::Node,
};

/// The paused folders of a node: their documents and last counts.
#[derive(Debug, Default)]
pub(crate) struct Paused(std::sync::Mutex<HashMap<String, Held>>);

#[derive(Debug)]
struct Held {
    doc: Option<iroh_docs::api::Doc>,
    files: u64,
    bytes: u64,
}

impl Paused {
    fn insert(&self, id: &str, doc: Option<iroh_docs::api::Doc>, (files, bytes): (u64, u64)) {
        self.0
            .lock()
            .expect("paused lock")
            .insert(id.to_string(), Held { doc, files, bytes });
    }

    fn set_counts(&self, id: &str, (files, bytes): (u64, u64)) {
        if let Some(held) = self.0.lock().expect("paused lock").get_mut(id) {
            (held.files, held.bytes) = (files, bytes);
        }
    }

    /// Forgets the folder `id` (resumed or left).
    pub(crate) fn remove(&self, id: &str) {
        self.0.lock().expect("paused lock").remove(id);
    }

    /// The paused folders' documents.
    pub(crate) fn docs(&self) -> Vec<iroh_docs::api::Doc> {
        let held = self.0.lock().expect("paused lock");
        held.values().filter_map(|h| h.doc.clone()).collect()
    }

    /// The files and bytes the paused folder `id` had.
    pub(crate) fn counts(&self, id: &str) -> Option<(u64, u64)> {
        let held = self.0.lock().expect("paused lock");
        held.get(id).map(|h| (h.files, h.bytes))
    }
}

impl Node {
    /// Pauses (`paused`) or resumes the folder at `path` (see the module docs). Pausing a
    /// paused folder, or resuming a running one, changes nothing.
    pub async fn folder_pause(&self, path: PathBuf, paused: bool) -> Result<FolderInfo> {
        let _ops = self.inner.folder_ops.lock().await;
        let path = std::fs::canonicalize(&path).unwrap_or(path);
        let mut list = load_list(self);
        let Some(info) = list.iter_mut().find(|f| f.path == path) else {
            return Err(not_synced(&path));
        };
        if info.paused == paused {
            return Ok(info.clone());
        }
        if paused {
            // Held as paused before it stops running: a garbage collection in between keeps
            // its records either way.
            let counts = self.running_counts(&info.id).unwrap_or_else(|| {
                let s = FolderStatus::of(info);
                (s.files, s.bytes)
            });
            self.inner
                .paused
                .insert(&info.id, self.open_doc(&info.id).await, counts);
            if let Some(last) = self.stop_folder(&info.id).await {
                self.inner.paused.set_counts(&info.id, last);
            }
            info.paused = true;
        } else {
            // Started first, listed as running only once it runs: a folder that cannot start
            // stays paused, and says why.
            let mut resumed = info.clone();
            resumed.paused = false;
            self.resume_folder(&resumed).await?;
            self.inner.paused.remove(&info.id);
            info.paused = false;
        }
        let info = info.clone();
        save_list(self, &list)?;
        Ok(info)
    }

    /// Pauses (`paused`) or resumes every synced folder. Each is tried; the first error (if
    /// any) comes back once all were.
    pub async fn folder_pause_all(&self, paused: bool) -> Result<()> {
        let mut first = None;
        for folder in load_list(self) {
            if folder.paused != paused {
                if let Err(e) = self.folder_pause(folder.path.clone(), paused).await {
                    tracing::warn!("cannot pause or resume {}: {e}", folder.path.display());
                    first.get_or_insert(e);
                }
            }
        }
        first.map_or(Ok(()), Err)
    }

    /// Holds a folder listed as paused at node start: its document open, its files counted
    /// once.
    pub(crate) async fn hold_paused(&self, info: &FolderInfo) {
        let status = FolderStatus::of(info);
        self.inner.paused.insert(
            &info.id,
            self.open_doc(&info.id).await,
            (status.files, status.bytes),
        );
    }

    fn running_counts(&self, id: &str) -> Option<(u64, u64)> {
        let running = self.inner.folders.lock().expect("folders lock");
        let folder = running.iter().find(|r| r.folder.folder_id == id)?;
        let activity = folder.folder.activity();
        Some((activity.files, activity.bytes))
    }

    async fn open_doc(&self, id: &str) -> Option<iroh_docs::api::Doc> {
        self.folder_doc(id).await.ok()
    }
}

/// Without a running node: marks the folder at `path` in `home`'s list as paused or not;
/// the next node start holds or runs it.
pub fn set_paused_on_disk(
    home: &std::path::Path,
    path: PathBuf,
    paused: bool,
) -> Result<FolderInfo> {
    // The home's lock, held while the list changes: a node starting meanwhile would run the
    // folder as the list said before.
    let _lock = match crate::node::HomeLock::acquire(home)? {
        crate::node::Acquire::Owned(lock) => lock,
        crate::node::Acquire::Busy => {
            return Err(Error::Folder(
                "a Ferry node started for this home meanwhile; pause or resume through it (run the command again)"
                    .into(),
            ))
        }
    };
    let path = std::fs::canonicalize(&path).unwrap_or(path);
    let mut list = folders_of(home);
    let Some(info) = list.iter_mut().find(|f| f.path == path) else {
        return Err(not_synced(&path));
    };
    info.paused = paused;
    let info = info.clone();
    save_list_in(home, &list)?;
    Ok(info)
}

fn not_synced(path: &std::path::Path) -> Error {
    Error::Config(format!("{} is not a synced folder", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn without_a_node_the_flag_changes_on_disk_and_nothing_else() {
        let home = tempfile::tempdir().unwrap();
        let folder = tempfile::tempdir().unwrap();
        let path = std::fs::canonicalize(folder.path()).unwrap();
        let listed = FolderInfo {
            id: "doc".into(),
            path: path.clone(),
            read_only: true,
            peers: vec!["peer".into()],
            paused: false,
        };
        save_list_in(home.path(), std::slice::from_ref(&listed)).unwrap();
        let info = set_paused_on_disk(home.path(), path.clone(), true).unwrap();
        assert_eq!(
            folders_of(home.path()),
            [FolderInfo {
                paused: true,
                ..listed.clone()
            }]
        );
        assert!(info.paused);
        set_paused_on_disk(home.path(), path, false).unwrap();
        assert_eq!(folders_of(home.path()), [listed]);
        let err = set_paused_on_disk(home.path(), home.path().join("other"), true).unwrap_err();
        assert!(err.to_string().contains("is not a synced folder"), "{err}");
    }
}
