//! Large files coming into a folder are fetched into a store of their own inside the folder's
//! state directory and moved into place from there: on the folder's filesystem that is a
//! rename, where fetching into the home's store meant writing the file twice (into the store,
//! then a copy to its place) before it appeared. The content moves to its private name and
//! the file becomes a second name of it; the home's store then references it in place, so that
//! this device can serve the file too (see [`content`](super::content)). An interrupted fetch keeps its
//! store and resumes from it. See docs/DESIGN.md, "Large files into place".

use std::{
    collections::{BTreeMap, HashSet},
    path::{Path, PathBuf},
};

use iroh_blobs::api::downloader::Shuffled;

use crate::{
    error::{Error, Result},
    folder::{
        decide::PathState,
        engine::{bounded, downloaded, holds_whole, FolderSync, FETCH_TIMEOUT},
        ignore::STATE_DIR,
        version::{parse_hash, FileVersion},
    },
    transfer_store::{self, TransferStore},
};

/// Files this large are fetched into place; smaller ones through the home's store, where a
/// store per file would cost more than the copy it saves.
pub const INTO_PLACE_MIN: u64 = 64 * 1024 * 1024;

impl FolderSync {
    /// Fetches `v`'s content into `tmp` (verified on arrival). False if it is not complete yet
    /// (no peer has it, or the time for one attempt ran out; what arrived is kept).
    pub(super) async fn fetch_into_place(&self, v: &FileVersion, tmp: &Path) -> Result<bool> {
        let Some(hash) = v.content_hash() else {
            return Ok(false);
        };
        let peers = self.fetch_peers().await;
        if peers.is_empty() {
            return Ok(false);
        }
        let dir = self.incoming_dir().join(hash.to_hex());
        let transfer = TransferStore::open_dir(dir).await?;
        let store = transfer.store();
        // No more than the record's size is fetched (see `engine::bounded`).
        let download = store
            .downloader(&self.endpoint)
            .download(bounded(hash, v.size), Shuffled::new(peers));
        if !downloaded(hash, FETCH_TIMEOUT, download).await {
            transfer.close(false).await;
            return Ok(false);
        }
        let what = format!("content {}", hash.fmt_short());
        match holds_whole(store, hash, v.size, &what).await {
            Ok(true) => {}
            Ok(false) => {
                transfer.close(false).await;
                return Ok(false);
            }
            Err(e) => {
                // A blob that is not what its record says is of no use to a later attempt.
                transfer.close(matches!(e, Error::BadData(_))).await;
                return Err(e);
            }
        }
        // Moved (renamed) to its private name, of which `tmp` becomes a second name: the
        // content is written once (see `content`).
        let moved = self.content.move_in(store, hash).await;
        transfer.close(moved.is_ok()).await;
        let name = moved?;
        self.content.link_out(&name, tmp)?;
        Ok(true)
    }

    pub(super) fn incoming_dir(&self) -> PathBuf {
        self.root.join(STATE_DIR).join("incoming")
    }

    /// Removes unfinished fetches that no version in `states` needs any more (the file was
    /// changed or deleted again before it arrived).
    pub(super) fn forget_stale_incoming(&self, states: &BTreeMap<String, PathState>) {
        let Ok(entries) = std::fs::read_dir(self.incoming_dir()) else {
            return;
        };
        let wanted: HashSet<&str> = states
            .values()
            .flat_map(|s| s.versions().iter().map(|v| v.hash.as_str()))
            .collect();
        for entry in entries.flatten() {
            let name = entry.file_name();
            // Only the stores this folder made (named by a hash) are its to remove.
            let Some(name) = name.to_str().filter(|n| parse_hash(n).is_some()) else {
                continue;
            };
            if !wanted.contains(name) && !transfer_store::is_open_dir(&entry.path()) {
                std::fs::remove_dir_all(entry.path()).ok();
            }
        }
    }
}
