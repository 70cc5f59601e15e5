//! One round of a running folder: bring the cached versions of the marked paths up to date
//! (from the records that arrived, or from the document), write what peers changed, publish
//! what changed on disk, and leave a summary for people.

use std::collections::{BTreeSet, HashSet};

use iroh_blobs::Hash;
use n0_future::{BufferedStreamExt, StreamExt};

use crate::folder::{
    activity::ConflictCopy,
    conflict::original_of,
    engine::{FolderSync, STORE_PARALLEL},
    ignore::IgnoreRules,
    index::Known,
    queue::Dirty,
    records::{Record, Records},
    report::Summary,
    states::States,
    version::{FileVersion, Relation, MAX_RECORD_SIZE},
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
                    *states = States::read(all);
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
            // without asking the document again (a path whose versions were left to it is
            // read first, below).
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
            // Paths whose versions were left to the document are read from it first (the
            // records that arrived are in it): a version added to nothing would forget the
            // ones it does not replace.
            let unread = states.unread(work.records.iter().map(|(rel, _)| rel));
            let unreadable = self.read_paths(&mut states, unread).await;
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
                if unreadable.contains(rel) {
                    unavailable.insert(rel.clone());
                    continue;
                }
                match record {
                    Record::Ready(v) => {
                        states.add(rel, v);
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
                let keys: Vec<String> = work.keys.iter().cloned().collect();
                let missing = self.read_paths(&mut states, keys).await;
                paths.extend(work.keys.iter().filter(|k| !missing.contains(*k)).cloned());
                unavailable.extend(missing);
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
        // The paths read again from the document are looked at on disk too: a change made
        // there while their records could not be read waited for them (see `publish`).
        let only: Option<BTreeSet<String>> = (!work.full).then(|| {
            let mut only = work.disk.clone();
            only.extend(
                work.keys
                    .iter()
                    .filter(|k| !unavailable.contains(*k))
                    .cloned(),
            );
            only
        });
        let mut touched: Vec<String> = Vec::new();
        match self
            .publish(
                &rules,
                &mut states,
                only.as_ref(),
                &mut unavailable,
                &mut touched,
            )
            .await
        {
            Ok(published) => {
                // (A full pass lets go of every settled path: no list needed.)
                if !full {
                    touched.extend(published.iter().cloned());
                }
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
        // What this round settled is left to the document (what waits stays: it is read
        // again anyway, and its size is reported below): a file whose one version is what
        // this device's file is, or follows.
        let on_disk = |rel: &str, v: &FileVersion| {
            index.get(rel).is_some_and(|k| {
                k.hash == v.hash
                    && matches!(
                        v.version.relation(&k.vector),
                        Relation::Equal | Relation::Dominates
                    )
            })
        };
        let let_go = if full {
            states.let_go_all(&wanted, on_disk)
        } else {
            let seen = work.records.iter().map(|(rel, _)| rel);
            let seen = seen.chain(&work.keys).chain(&work.disk).chain(&paths);
            states.let_go(
                seen.chain(&touched).filter(|rel| !wanted.contains(*rel)),
                on_disk,
            )
        };
        if let_go > 0 {
            tracing::trace!(
                "{}: {let_go} paths left to the document ({} read back so far)",
                self.root.display(),
                states.read_back()
            );
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
        states: &States,
        index: &std::collections::BTreeMap<String, Known>,
    ) {
        let mut live = HashSet::new();
        // Every path was read by the full pass this runs after.
        for v in states.read_versions() {
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

#[cfg(test)]
mod tests {
    use std::{sync::Arc, time::Duration};

    use super::*;
    use crate::{Node, NodeConfig};

    /// The folder `root` running on `node`.
    fn running(node: &Node, root: &std::path::Path) -> Arc<FolderSync> {
        let folders = node.inner.folders.lock().unwrap();
        let running = folders.iter().find(|r| r.folder.root == root);
        running.expect("the folder runs").folder.clone()
    }

    /// The one version the document holds of `rel`, once it is the one with `content`.
    async fn published(folder: &FolderSync, rel: &str, content: &[u8]) -> FileVersion {
        let hash = crate::folder::version::RecordHash::of(content);
        one_version(folder, rel, |v| !v.deleted && v.hash == hash).await
    }

    /// The one version the document holds of `rel`, once it is one that `wanted` accepts.
    async fn one_version(
        folder: &FolderSync,
        rel: &str,
        wanted: impl Fn(&FileVersion) -> bool,
    ) -> FileVersion {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        loop {
            let keys = Records::of_paths([rel.to_string()]);
            let (mut found, _) = folder.records.read(&keys, &HashSet::new()).await.unwrap();
            if let Some(state) = found.remove(rel) {
                if let [v] = state.versions() {
                    if wanted(v) {
                        return v.clone();
                    }
                }
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "{rel} never had the version wanted"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Polls `states` (which a round holds while it runs) until `done` says yes.
    async fn until_states(folder: &FolderSync, what: &str, done: impl Fn(&States) -> bool) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        loop {
            if folder.states.try_lock().is_ok_and(|s| done(&s)) {
                return;
            }
            assert!(tokio::time::Instant::now() < deadline, "timed out: {what}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// A synced folder keeps the name of every path, but the versions of settled files only
    /// in its document; a file changed later is published on top of the version read back
    /// from it (no conflict with itself), and is let go again; one deleted is published as
    /// deleted (read back, not taken for a path peers never had). A file that did not change
    /// is not read back when its directory is looked at again.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn settled_paths_are_left_to_the_document_and_read_again_when_they_change() {
        let dir = tempfile::tempdir().unwrap();
        let node = Node::spawn(NodeConfig::local(dir.path().join("home")))
            .await
            .unwrap();
        let root = dir.path().join("folder");
        std::fs::create_dir_all(root.join("sub")).unwrap();
        for (rel, content) in [("a.txt", "one"), ("b.txt", "two"), ("sub/c.txt", "three")] {
            std::fs::write(root.join(rel), content).unwrap();
        }
        node.folder_share(root.clone(), false).await.unwrap();
        let folder = running(&node, &root);
        let first = published(&folder, "a.txt", b"one").await;
        published(&folder, "sub/c.txt", b"three").await;
        until_states(&folder, "the files' versions left to the document", |s| {
            s.keys().count() == 4 && s.in_memory() == 1 && s.get("sub").is_some()
        })
        .await;

        std::fs::write(root.join("a.txt"), "one, edited").unwrap();
        let edited = published(&folder, "a.txt", b"one, edited").await;
        assert_eq!(
            edited.version.relation(&first.version),
            Relation::Dominates,
            "{edited:?} follows {first:?}"
        );
        until_states(&folder, "the edited file let go again", |s| {
            s.is_unread("a.txt") && s.in_memory() == 1
        })
        .await;
        // A new file in `sub`, and `sub` looked at again (as after a copy into it): its
        // unchanged file needs no reading; once changed, it does.
        let before = folder.states.lock().await.read_back();
        std::fs::write(root.join("sub/d.txt"), "four").unwrap();
        folder.mark(|d| {
            d.disk.insert("sub".into());
        });
        published(&folder, "sub/d.txt", b"four").await;
        until_states(&folder, "the new file let go", |s| s.is_unread("sub/d.txt")).await;
        assert_eq!(folder.states.lock().await.read_back(), before);
        std::fs::write(root.join("sub/c.txt"), "three, edited").unwrap();
        folder.mark(|d| {
            d.disk.insert("sub".into());
        });
        published(&folder, "sub/c.txt", b"three, edited").await;
        until_states(&folder, "the edited file read back", |s| {
            s.read_back() == before + 1
        })
        .await;
        // A deletion of a file left to the document: without its versions read back, it
        // would look like a file peers never had, and no deletion would be published.
        let b = published(&folder, "b.txt", b"two").await;
        std::fs::remove_file(root.join("b.txt")).unwrap();
        let deleted = one_version(&folder, "b.txt", |v| v.deleted).await;
        assert_eq!(deleted.version.relation(&b.version), Relation::Dominates);
        let names: Vec<_> = std::fs::read_dir(&root)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .filter(|n| !n.starts_with('.'))
            .collect();
        assert_eq!(names.len(), 2, "a.txt and sub, no conflict copy: {names:?}");
    }
}
