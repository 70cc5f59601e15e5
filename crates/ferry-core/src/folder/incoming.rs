//! Large files coming into a folder are fetched into a store of their own inside the folder's
//! state directory and moved into place from there: on the folder's filesystem that is a
//! rename, where fetching into the home's store meant writing the file twice (into the store,
//! then a copy to its place) before it appeared. The content moves to its private name and
//! the file becomes a second name of it; the home's store then references it in place, so that
//! this device can serve the file too (see `content`). An interrupted fetch keeps its
//! store and resumes from it. See docs/DESIGN.md, "Large files into place".

use std::{collections::HashSet, path::Path};

use crate::{
    error::Result,
    folder::{
        engine::FolderSync,
        states::States,
        version::{FileVersion, RecordHash},
    },
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
        let Some(transfer) = self.fetcher.fetch_apart(&peers, hash, v.size).await? else {
            return Ok(false);
        };
        // Moved (renamed) to its private name, of which `tmp` becomes a second name: the
        // content is written once (see `content`).
        let moved = self.content.move_in(transfer.store(), hash).await;
        transfer.close(moved.is_ok()).await;
        let name = moved?;
        self.content.link_out(&name, tmp)?;
        Ok(true)
    }

    /// Removes unfinished fetches that no version in `states` needs any more (the file was
    /// changed or deleted again before it arrived).
    pub(super) fn forget_stale_incoming(&self, states: &States) {
        let wanted: HashSet<RecordHash> = states.read_versions().map(|v| v.hash).collect();
        self.fetcher.forget_stale(&wanted);
    }
}
