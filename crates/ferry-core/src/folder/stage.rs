//! Before a round writes its files, a batch at a time (`APPLY_BATCH` paths): the content the
//! batch needs is fetched, many blobs at once, and staged.
//!
//! Staging: before a round writes its files one by one, the content of the new ones (a path
//! this device holds nothing at, of content that reached the store for this folder) is written
//! to their temporary names and flushed, many at once. Writing one file is several questions to
//! the store and a flush of the disk; one after the other they left both cores mostly idle
//! while a folder of many small files arrived (docs/BENCHMARKS.md). What makes a file take its
//! name (the checks against what is on disk now, the index, the rename) stays one by one in
//! [`apply`](super::apply), which uses what was staged or, for anything else, writes as before.

use std::collections::{BTreeSet, HashSet};

use iroh_blobs::Hash;
use n0_future::{BufferedStreamExt, StreamExt};

use crate::{
    error::{Error, Result},
    folder::{
        content::INLINE_MAX, engine::FolderSync, engine::STORE_PARALLEL, fetch::MEMORY_MAX,
        incoming::INTO_PLACE_MIN, index::Index, place, states::States,
    },
};

impl FolderSync {
    /// Fetches the content the paths of `batch` (each with whether it is written) need and the
    /// store does not hold, many blobs at once.
    pub(super) async fn fetch_needed(
        &self,
        batch: &[(&String, bool)],
        states: &States,
        index: &Index,
    ) -> Result<()> {
        let mut candidates = BTreeSet::new();
        for (rel, _) in batch {
            let Some(state) = states.get(rel) else {
                continue;
            };
            let out = state.outcome(rel);
            let wanted = out.main.iter().map(|v| (rel.as_str(), v));
            for (at, v) in wanted.chain(out.copies.iter().map(|(c, v)| (c.as_str(), v))) {
                if index.get(at).is_some_and(|k| k.hash == v.hash) {
                    continue;
                }
                // A large file this device has an earlier version of: only the blocks that
                // differ are fetched, when it is written.
                if self.can_patch(at, v, index.get(at)) || v.size >= INTO_PLACE_MIN {
                    continue;
                }
                candidates.extend(v.content_hash().map(|h| (h, v.size)));
            }
        }
        // Content the store holds for another share or folder is not taken from there (see
        // `ensure_file`); it is fetched when the file is written. Many questions at once: each
        // is a message to the store's actor.
        let asks: Vec<_> = candidates
            .into_iter()
            .map(|(h, size)| async move {
                match self.store.has(h).await {
                    Ok(true) => Ok(None),
                    Ok(false) => Ok(Some((h, size))),
                    Err(e) => Err(Error::store(e)),
                }
            })
            .collect();
        let need: Vec<(Hash, u64)> = n0_future::stream::iter(asks)
            .buffered_unordered(STORE_PARALLEL)
            .collect::<Vec<Result<Option<(Hash, u64)>>>>()
            .await
            .into_iter()
            .collect::<Result<Vec<_>>>()?
            .into_iter()
            .flatten()
            .collect();
        if need.is_empty() {
            return Ok(());
        }
        // Small files are written once, to their private names, straight from memory; what
        // does not arrive that way is fetched through the store, which also reports a size
        // that is not the record's when the file is written.
        let (small, mut need): (Vec<_>, Vec<_>) = need
            .into_iter()
            .partition(|(_, size)| *size > INLINE_MAX && *size <= MEMORY_MAX);
        if !small.is_empty() {
            let kept = self
                .fetcher
                .fetch_small(&self.fetch_peers().await, &small, |h, data| async move {
                    match self.content.keep_received(h, data).await {
                        Ok(kept) => kept,
                        Err(e) => {
                            tracing::debug!("keeping {}: {e}", h.fmt_short());
                            false
                        }
                    }
                })
                .await;
            need.extend(small.into_iter().filter(|(h, _)| !kept.contains(h)));
        }
        if need.is_empty() {
            return Ok(());
        }
        self.fetch(&need).await;
        // What arrived came from this folder's peers (the store did not have it): the folder's
        // own, whatever else is still missing. Kept as such, so that after a restart it is
        // still known to be (and is not fetched again before it is written).
        for (h, size) in need {
            if self.fetcher.stored_size(h).await == Some(size) {
                self.content.keep(h).await?;
            }
        }
        Ok(())
    }

    /// Stages the new files among `paths` (each with whether it is written); returns the paths
    /// whose temporary name now holds their main version's content, whole and flushed.
    pub(super) async fn stage(
        &self,
        paths: &[(&String, bool)],
        states: &States,
        index: &Index,
    ) -> HashSet<String> {
        // Where names fold, which spelling takes a name is decided path by path.
        if self.names.fold {
            return HashSet::new();
        }
        let mut jobs = Vec::new();
        // One path per content: two paths staging one content at once would both move the
        // store's copy out (see `Content::place`); the second is written the usual way.
        let mut hashes = HashSet::new();
        let mut seen = HashSet::new();
        for (rel, written) in paths {
            if !*written || index.contains_key(*rel) || !seen.insert(rel.as_str()) {
                continue;
            }
            // A name this file system refuses is reported by the usual way.
            if self.names.cannot_hold(rel).is_some() {
                continue;
            }
            let Some(v) = states.get(rel).and_then(|s| s.outcome(rel).main) else {
                continue;
            };
            if v.dir || v.size >= INTO_PLACE_MIN {
                continue;
            }
            let Some(hash) = v.content_hash() else {
                continue;
            };
            // Only content that reached the store as this folder's (see `ensure_file`).
            if !self.registry.folder_holds(&self.folder_id, &hash) || !hashes.insert(hash) {
                continue;
            }
            let rel = (*rel).clone();
            jobs.push(async move {
                match self.stage_one(&rel, hash, v.size).await {
                    Ok(true) => Some(rel),
                    Ok(false) => None,
                    Err(e) => {
                        // Written the usual way, which reports what is wrong.
                        tracing::debug!("staging {rel:?}: {e}");
                        None
                    }
                }
            });
        }
        n0_future::stream::iter(jobs)
            .buffered_unordered(STORE_PARALLEL)
            .collect::<Vec<Option<String>>>()
            .await
            .into_iter()
            .flatten()
            .collect()
    }

    /// Writes the content `hash` (`size` bytes) of the new file `rel` to its temporary name
    /// and flushes it. False if its directory is not there yet (directories are made by the
    /// usual way, which reports them), there is something at `rel` already, or the store does
    /// not hold the content whole at that size: left to the usual way.
    async fn stage_one(&self, rel: &str, hash: iroh_blobs::Hash, size: u64) -> Result<bool> {
        if !self.fetcher.holds(hash, size, rel).await? {
            return Ok(false);
        }
        let path =
            place::inside(&self.root, rel, false).map_err(|e| Error::write(&self.root, e))?;
        let dir_there = path.parent().is_some_and(|p| p.is_dir());
        if !dir_there || std::fs::symlink_metadata(&path).is_ok() {
            return Ok(false);
        }
        let tmp = super::apply::temp_name(&path);
        match self.content.place(hash, size, &tmp).await {
            Ok(true) => {}
            // Whatever was written of it goes.
            other => {
                std::fs::remove_file(&tmp).ok();
                return other;
            }
        }
        // Off the round's thread: flushes of the whole chunk overlap.
        let flushed = {
            let tmp = tmp.clone();
            tokio::task::spawn_blocking(move || super::apply::flush(&tmp).map(drop)).await
        };
        match flushed {
            Ok(Ok(())) => Ok(true),
            Ok(Err(e)) => {
                std::fs::remove_file(&tmp).ok();
                Err(Error::write(&tmp, e))
            }
            Err(e) => {
                std::fs::remove_file(&tmp).ok();
                Err(Error::Store(e.to_string()))
            }
        }
    }
}

/// How many paths a round stages before writing them (see [`FolderSync::stage`]).
pub(super) const STAGE_CHUNK: usize = 256;

/// How many paths a round fetches content for before writing them: enough to keep many
/// blobs in flight, few enough that a round of a million paths writes as it goes.
pub(super) const APPLY_BATCH: usize = 4096;
