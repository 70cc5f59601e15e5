//! One round of a running folder: bring the cached versions of the marked paths up to date
//! (from the records that arrived, or from the document), write what peers changed, publish
//! what changed on disk, and leave a summary for people.

use std::collections::{BTreeMap, BTreeSet, HashSet};

use iroh_blobs::Hash;
use n0_future::{BufferedStreamExt, StreamExt};

use crate::folder::{
    activity::ConflictCopy,
    conflict::original_of,
    decide::PathState,
    engine::{FolderSync, STORE_PARALLEL},
    ignore::IgnoreRules,
    index::Known,
    queue::Dirty,
    records::{Record, Records},
    report::Summary,
    version::MAX_RECORD_SIZE,
};

impl FolderSync {
    /// One round: brings the cached versions of the marked paths up to date, writes what
    /// peers changed, then publishes what changed on disk. Returns how long it took if it was
    /// a full pass.
    pub(super) async fn round(&self) -> Option<std::time::Duration> {
        let started = std::time::Instant::now();
        let work = self.queue.take();
        if work.is_empty() {
            return None;
        }
        tracing::debug!(
            "round on {}: full {}, {} keys, {} records, {} paths",
            self.root.display(),
            work.full,
            work.keys.len(),
            work.records.len(),
            work.disk.len()
        );
        self.report.busy(work.full);
        let mut error = None;
        // Reloaded each round: `.ferryignore` may have changed.
        let rules = IgnoreRules::load(&self.root);
        let mut states = self.states.lock().await;
        let mut unavailable = BTreeSet::new();
        let full = work.full;
        let work = Dirty {
            // A full pass reads every record anyway.
            records: if full { Vec::new() } else { work.records },
            ..work
        };
        if work.full {
            // The trash is kept within its age and size limits (settings).
            let (max_age_ms, max_bytes) = self.trash_keep;
            let pruned = self
                .trash
                .prune(crate::history::now_ms(), max_age_ms, max_bytes);
            if pruned > 0 {
                tracing::debug!("{}: {pruned} files left the trash", self.root.display());
            }
        }
        let paths: Vec<String> = if full {
            match self.gather(Records::all()).await {
                Ok((all, missing)) => {
                    *states = all;
                    self.forget_stale_incoming(&states);
                    // Paths no longer in the document, or ignored now, are not reported.
                    self.report.retain_not_synced(|rel| {
                        states.contains_key(rel) && !rules.is_ignored(rel, false)
                    });
                    unavailable = missing;
                    states.keys().cloned().collect()
                }
                Err(e) => {
                    tracing::warn!("reading the folder document {}: {e}", self.root.display());
                    self.report.failed(e.to_string());
                    self.mark(|d| d.full = true);
                    return None;
                }
            }
        } else {
            let mut paths = Vec::new();
            // New records named by document events: added to the cached versions directly,
            // without asking the document again.
            // Many at once: each is a question to the store. (The futures are made first: a
            // stream borrowing as it goes would not be `Send`.)
            let asks: Vec<_> = work
                .records
                .iter()
                .map(|(_, hash)| {
                    let hash = *hash;
                    async move { (!self.store.has(hash).await.unwrap_or(false)).then_some(hash) }
                })
                .collect();
            let missing: HashSet<Hash> = n0_future::stream::iter(asks)
                .buffered_unordered(STORE_PARALLEL)
                .collect::<Vec<Option<Hash>>>()
                .await
                .into_iter()
                .flatten()
                .collect();
            if !missing.is_empty() {
                let wants: Vec<(Hash, u64)> = missing
                    .iter()
                    .map(|h| (*h, MAX_RECORD_SIZE as u64))
                    .collect();
                self.fetch(&wants).await;
            }
            // Their paths were checked when the events arrived (`key_path`).
            let reads: Vec<_> = work
                .records
                .iter()
                .map(|(rel, hash)| self.records.record(rel, *hash, missing.contains(hash)))
                .collect();
            let read: Vec<Record> = n0_future::stream::iter(reads)
                .buffered_ordered(STORE_PARALLEL)
                .collect()
                .await;
            for ((rel, _), record) in work.records.iter().zip(read) {
                match record {
                    Record::Ready(v) => {
                        states.entry(rel.clone()).or_default().add(v);
                        paths.push(rel.clone());
                    }
                    // Looked at again, from the document, with the wanted paths.
                    Record::Missing => {
                        unavailable.insert(rel.clone());
                    }
                    Record::Refused => {}
                }
            }
            // Paths whose records were missing before, asked for together (the fetch of what
            // is still missing is one for all of them).
            if !work.keys.is_empty() {
                match self
                    .gather(Records::of_paths(work.keys.iter().cloned()))
                    .await
                {
                    Ok((mut found, missing)) => {
                        for rel in &work.keys {
                            match found.remove(rel) {
                                Some(state) => states.insert(rel.clone(), state),
                                None => states.remove(rel),
                            };
                            if !missing.contains(rel) {
                                paths.push(rel.clone());
                            }
                        }
                        unavailable.extend(missing);
                    }
                    Err(e) => {
                        tracing::warn!("reading waiting paths of {}: {e}", self.root.display());
                        unavailable.extend(work.keys.iter().cloned());
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
        match self.apply(&rules, &states, &paths).await {
            Ok((_, missing, failed)) => {
                unavailable.extend(missing);
                if let Some(e) = failed {
                    error = Some(e.to_string());
                }
            }
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
                    match self.apply(&rules, &states, &conflicted).await {
                        Ok((_, missing, failed)) => {
                            unavailable.extend(missing);
                            if let Some(e) = failed {
                                error = Some(e.to_string());
                            }
                        }
                        Err(e) => error = Some(e.to_string()),
                    }
                }
            }
            Err(e) => {
                tracing::warn!("publish {}: {e}", self.root.display());
                error = Some(e.to_string());
            }
        }
        let wanted = self
            .queue
            .settle(work.keys.iter().chain(&paths), unavailable);
        let index = self.index.lock().await;
        if full {
            self.prune_content(&states, &index).await;
        }
        let (files, bytes) = index.totals();
        let summary = Summary {
            files,
            bytes,
            waiting: wanted.len() as u64,
            waiting_bytes: wanted
                .iter()
                .filter_map(|rel| states.get(rel)?.outcome(rel).main.map(|v| v.size))
                .sum(),
            conflicts: index
                .conflict_copies()
                .filter_map(|copy| {
                    Some(ConflictCopy {
                        original: original_of(copy)?,
                        copy: copy.clone(),
                    })
                })
                .collect(),
            error,
        };
        self.report.finished(summary);
        work.full.then(|| started.elapsed())
    }

    /// Stops keeping content that no record of the folder names any more, nor this device's
    /// index (see [`content`](super::content)).
    async fn prune_content(
        &self,
        states: &BTreeMap<String, PathState>,
        index: &BTreeMap<String, Known>,
    ) {
        let mut live = HashSet::new();
        for v in states.values().flat_map(|s| s.versions()) {
            live.extend(v.content_hash());
            live.extend(v.blocks_hash());
        }
        live.extend(index.values().filter_map(|k| k.hash.get()));
        match self.content.prune(&live).await {
            Ok(0) => {}
            Ok(n) => {
                tracing::debug!("{}: {n} versions no longer kept", self.root.display());
                self.collection.wanted();
            }
            Err(e) => tracing::debug!("{}: pruning content: {e}", self.root.display()),
        }
    }

    /// Keeps, under this folder's own tags, what the legacy tags `legacy` kept of the files in
    /// its index (see `content::legacy_tags`).
    pub(crate) async fn adopt_legacy(&self, legacy: &HashSet<Hash>) -> crate::error::Result<()> {
        let hashes: Vec<Hash> = self
            .index
            .lock()
            .await
            .values()
            .filter_map(|k| k.hash.get())
            .collect();
        self.content.adopt_legacy(legacy, hashes).await
    }
}
