//! The folder's index: for each file this device holds, its size, modification time, content
//! hash and the version it is. Saved in `<folder>/.ferry/index.json` (at most every few
//! seconds, and when the folder stops) so that after a restart a file changed or deleted while
//! the node was not running is told apart from one it wrote itself.

use std::{
    collections::BTreeMap,
    path::{Path, PathBuf},
};

use serde::{Deserialize, Serialize};

use crate::{
    atomic::write_atomic,
    folder::{engine::FolderSync, ignore::STATE_DIR, place, scan::Scanned, version::VersionVector},
};

/// What this device last saw of a file it manages.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(super) struct Known {
    pub(super) size: u64,
    pub(super) mtime_ms: u64,
    pub(super) hash: String,
    /// The version the file on disk is: a local change builds on it, so a change made while
    /// a newer remote version was on its way (or while offline) is a conflict, not a silent
    /// overwrite.
    #[serde(default)]
    pub(super) vector: VersionVector,
}

impl Known {
    /// True if the file the scan saw has the size and modification time this entry records.
    pub(super) fn describes(&self, seen: &Scanned) -> bool {
        self.size == seen.size && self.mtime_ms == seen.mtime_ms
    }
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

/// The saved index of the folder at `root` for document `doc` (empty if none or another
/// document's). Paths are checked again as they are read: the index names files Ferry may
/// later move to the trash.
pub(super) fn load_index(root: &Path, doc: &str) -> BTreeMap<String, Known> {
    let mut files = std::fs::read(index_path(root))
        .ok()
        .and_then(|b| serde_json::from_slice::<SavedIndex>(&b).ok())
        .filter(|saved| saved.doc == doc)
        .map(|saved| saved.files)
        .unwrap_or_default();
    files.retain(|rel, _| place::record_path(rel).is_ok());
    files
}

impl FolderSync {
    /// Notes that the index changed and is to be saved.
    pub(super) fn index_touched(&self) {
        self.index_changed
            .store(true, std::sync::atomic::Ordering::Relaxed);
    }

    /// Saves the index if it changed.
    pub(super) async fn save_index(&self) {
        if !self
            .index_changed
            .swap(false, std::sync::atomic::Ordering::Relaxed)
        {
            return;
        }
        let index = self.index.lock().await;
        let saved = SavedIndex {
            doc: self.folder_id.clone(),
            files: index.clone(),
        };
        drop(index);
        let path = index_path(&self.root);
        let written = std::fs::create_dir_all(path.parent().expect("in the state dir"))
            .and_then(|_| write_atomic(&path, &serde_json::to_vec(&saved).expect("serializable")));
        if let Err(e) = written {
            tracing::warn!("cannot save {}: {e}", path.display());
            self.index_touched();
        }
    }
}
