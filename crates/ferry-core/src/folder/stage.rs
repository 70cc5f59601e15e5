//! Staging: before a round writes its files one by one, the content of the new ones (a path
//! this device holds nothing at, of content that reached the store for this folder) is written
//! to their temporary names and flushed, many at once. Writing one file is several questions to
//! the store and a flush of the disk; one after the other they left both cores mostly idle
//! while a folder of many small files arrived (docs/BENCHMARKS.md). What makes a file take its
//! name (the checks against what is on disk now, the index, the rename) stays one by one in
//! [`apply`](super::apply), which uses what was staged or, for anything else, writes as before.

use std::collections::{BTreeMap, HashSet};

use n0_future::{BufferedStreamExt, StreamExt};

use crate::{
    error::{Error, Result},
    folder::{
        decide::PathState, engine::FolderSync, engine::STORE_PARALLEL, incoming::INTO_PLACE_MIN,
        index::Index, place,
    },
};

impl FolderSync {
    /// Stages the new files among `paths` (each with whether it is written); returns the paths
    /// whose temporary name now holds their main version's content, whole and flushed.
    pub(super) async fn stage(
        &self,
        paths: &[(&String, bool)],
        states: &BTreeMap<String, PathState>,
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
            let Some(v) = states.get(*rel).and_then(|s| s.outcome(rel).main) else {
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
