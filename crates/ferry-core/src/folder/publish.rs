//! From the disk to the document: a changed file becomes a record. The content is kept for the
//! folder's peers (see [`content`](super::content)), then the record (with a version vector
//! built on the version the file was) is inserted; many files at once. See docs/DESIGN.md, "From a local change to an entry".

use std::collections::{BTreeMap, BTreeSet};

use n0_future::{BufferedStreamExt, StreamExt};

use crate::{
    error::{Error, Result},
    folder::{
        activity::{ChangeKind, Why},
        blocks,
        engine::{FolderSync, PUBLISH_BATCH, PUBLISH_PARALLEL},
        ignore::IgnoreRules,
        index::{Index, Known, Source},
        local::{FileChange, Publisher},
        names::{ExactSpelling, NameRules},
        place,
        scan::{content_if_stable, scan, scan_some, Scanned},
        states::States,
        version::FileVersion,
    },
};

impl FolderSync {
    /// Publishes local changes on top of the versions in `states`: of the whole folder, or only
    /// at and under the paths in `only`. A path whose versions cannot be read from the
    /// document now (their records have not arrived) is not published yet: it is added to
    /// `unavailable`, and looked at again once they can be (see `round`). The paths whose
    /// versions were read back from the document are added to `read`.
    pub(super) async fn publish(
        &self,
        rules: &IgnoreRules,
        states: &mut States,
        only: Option<&BTreeSet<String>>,
        unavailable: &mut BTreeSet<String>,
        read: &mut Vec<String>,
    ) -> Result<Vec<String>> {
        if self.read_only {
            return Ok(Vec::new());
        }
        let root = self.root.clone();
        let mut scanned: Vec<Scanned> = match only {
            None => scan(&root, rules),
            Some(rels) => scan_some(&root, rules, rels),
        }
        .into_iter()
        .map(|s| s.trusting_exec(self.names.exec))
        .collect();
        // Where names fold, a path looked up by name may be found under another spelling (a
        // file renamed only in case): only the spelling on disk counts.
        let mut exact = ExactSpelling::default();
        if self.names.fold && only.is_some() {
            scanned.retain(|s| exact.holds(&root, &s.rel));
        }
        // A file of this device listed as not published that is gone (renamed, deleted) is no
        // longer listed. (What peers have and this device cannot write is in `states`.)
        if let Some(rels) = only {
            for rel in rels {
                if self.report.is_not_synced(rel)
                    && !states.contains_key(rel)
                    && std::fs::symlink_metadata(root.join(rel)).is_err()
                {
                    self.report.synced(rel);
                }
            }
        }
        // Versions left to the document are read before a change is made on top of them: of
        // the files that changed, and of those that may be gone. (A full pass has read every
        // path; a file left to the document that has not changed needs none, see below.)
        let mut unreadable = BTreeSet::new();
        if let Some(rels) = only {
            let unread = {
                let index = self.index.lock().await;
                let on_disk: BTreeSet<&String> = scanned.iter().map(|s| &s.rel).collect();
                let changed = scanned
                    .iter()
                    .filter(|s| !index.get(&s.rel).is_some_and(|k| k.describes(s)))
                    .map(|s| &s.rel);
                let gone = at_or_under(&index, rels)
                    .map(|(k, _)| k)
                    .filter(|k| !on_disk.contains(k));
                states.unread(changed.chain(gone))
            };
            unreadable = self.read_paths(states, unread.clone()).await;
            unavailable.extend(unreadable.iter().cloned());
            read.extend(unread.into_iter().filter(|rel| !unreadable.contains(rel)));
        }
        let mut index = self.index.lock().await;
        let mut published = Vec::new();
        let mut present = BTreeSet::new();
        // What to publish (each changed file hashed once it is stable), a batch at a time.
        let mut to_publish: Vec<(String, FileVersion, Known, ChangeKind)> = Vec::new();
        // Block lists of the large files among them, by path.
        let mut lists: BTreeMap<String, Vec<u8>> = BTreeMap::new();
        let total = scanned.len() as u64;
        for (i, s) in scanned.iter().enumerate() {
            if only.is_none() && i % 256 == 0 {
                self.scan_progress(i as u64, total);
            }
            // A name that peers refuse (one Windows cannot hold, say): not published, and
            // listed here so that its owner knows.
            if let Err(why) = place::record_path(&s.rel) {
                let windows = NameRules {
                    windows: true,
                    ..NameRules::default()
                };
                let reason = windows
                    .cannot_hold(&s.rel)
                    .unwrap_or_else(|| Why::new("bad_name", why.clone()).with("reason", why));
                self.not_synced(&s.rel, Why::only_here(reason));
                continue;
            }
            present.insert(s.rel.clone());
            if unreadable.contains(&s.rel) {
                continue;
            }
            // A path is left to the document only while its one version is what the index
            // says this file is (`States::let_go`): unchanged on disk, it needs no more.
            let unchanged = index.get(&s.rel).is_some_and(|k| {
                if states.is_unread(&s.rel) {
                    k.describes(s)
                } else {
                    Publisher::unchanged(k, s, states.get(&s.rel))
                }
            });
            if unchanged {
                continue;
            }
            if s.dir {
                let state = states.get(&s.rel).cloned().unwrap_or_default();
                if let Some((v, known)) = self.publisher.dir(s, index.get(&s.rel), &state) {
                    to_publish.push((s.rel.clone(), v, known, ChangeKind::Added));
                } else if let Some(main) = states.get(&s.rel).and_then(|st| st.outcome(&s.rel).main)
                {
                    // A directory peers have too: known from now on.
                    index.insert(&s.rel, Known::dir(main.version, Source::Record));
                }
                continue;
            }
            let path = root.join(&s.rel);
            let settled =
                || std::fs::metadata(&path).is_ok_and(|m| self.seen(s.rel.clone(), &m) == *s);
            let content = if s.size >= blocks::MIN_FILE && !settled() {
                Ok(None)
            } else {
                content_if_stable(&path, s)
            };
            let Some((hash, list)) = content.map_err(|e| Error::write(&path, e))? else {
                // Still being written: look again shortly.
                self.mark(|d| {
                    d.disk.insert(s.rel.clone());
                });
                continue;
            };
            let state = states.get(&s.rel).cloned().unwrap_or_default();
            let list = list.map(|l| blocks::encode(&l));
            let list_hash = list.as_ref().map(|l| blake3::hash(l).to_hex().to_string());
            match self
                .publisher
                .file(s, hash, list_hash, index.get(&s.rel), &state)
            {
                FileChange::Agrees(known) => {
                    index.insert(&s.rel, known);
                }
                FileChange::Publish {
                    version,
                    known,
                    kind,
                } => {
                    if let Some(list) = list {
                        lists.insert(s.rel.clone(), list);
                    }
                    to_publish.push((s.rel.clone(), version, known, kind));
                }
            }
            // Published as it goes: a first pass over a million files holds a batch, not a
            // million pending publications.
            if to_publish.len() >= PUBLISH_BATCH {
                let batch = std::mem::take(&mut to_publish);
                self.publish_batch(batch, &mut lists, &mut index, states, &mut published)
                    .await;
            }
        }
        self.publish_batch(to_publish, &mut lists, &mut index, states, &mut published)
            .await;
        // Files this device knew that are no longer there. A file that is still there but is
        // ignored now merely stops syncing: it leaves the index, and no deletion is published
        // (ignoring is not deleting).
        // In a pass over some paths, only the entries at and under them: a folder of a million
        // files is not walked whole for every few changed paths.
        let looked: Box<dyn Iterator<Item = (&String, &Known)> + Send + '_> = match only {
            None => Box::new(index.iter()),
            Some(rels) => Box::new(at_or_under(&index, rels)),
        };
        let ignored: BTreeSet<String> = looked
            .filter(|(k, known)| !present.contains(*k) && rules.is_ignored(k, known.dir))
            .map(|(k, _)| k.clone())
            .collect();
        for rel in ignored {
            index.remove(&rel);
        }
        let gone: Vec<String> = match only {
            None => index
                .keys()
                .filter(|k| !present.contains(*k))
                .cloned()
                .collect(),
            Some(rels) => {
                let mut gone = BTreeSet::new();
                for (k, known) in at_or_under(&index, rels) {
                    let there = std::fs::symlink_metadata(root.join(k)).is_ok_and(|m| {
                        if known.dir {
                            m.is_dir()
                        } else {
                            m.is_file()
                        }
                    }) && (!self.names.fold || exact.holds(&root, k));
                    if !present.contains(k) && !there && !unreadable.contains(k) {
                        gone.insert(k.clone());
                    }
                }
                gone.into_iter().collect()
            }
        };
        for rel in gone {
            let state = states.get(&rel).cloned().unwrap_or_default();
            let Some(v) = self.publisher.deletion(&rel, index.get(&rel), &state) else {
                index.remove(&rel);
                continue;
            };
            // The entry goes once the deletion is in the document: a crash or a failure before
            // leaves it, and the deletion is found (and published) again.
            self.put(&rel, &v).await?;
            index.remove(&rel);
            self.note(&rel, ChangeKind::Deleted, &v);
            states.add(&rel, v);
            published.push(rel);
        }
        Ok(published)
    }

    /// Copies the contents of `batch` (path, version, index entry, kind of change) into the
    /// store and inserts their records, several at once: a folder of many small files is
    /// otherwise a long line of round trips. What was published is entered in `index` and
    /// `states` and listed in `published`; a file gone or changed meanwhile is looked at again.
    async fn publish_batch(
        &self,
        batch: Vec<(String, FileVersion, Known, ChangeKind)>,
        lists: &mut BTreeMap<String, Vec<u8>>,
        index: &mut Index,
        states: &mut States,
        published: &mut Vec<String>,
    ) {
        let jobs: Vec<_> = batch
            .iter()
            .map(|(rel, v, _, _)| {
                let list = lists.remove(rel);
                async move {
                    if v.dir {
                        return self.put(rel, v).await;
                    }
                    let hash = v.content_hash().expect("a hash this device computed");
                    if !self
                        .content
                        .keep_file(&self.root.join(rel), hash, v.size)
                        .await?
                    {
                        return Err(Error::Store(format!("{rel:?} changed while read")));
                    }
                    if let Some(list) = list {
                        self.content.keep_bytes(list).await?;
                    }
                    self.put(rel, v).await
                }
            })
            .collect();
        let done: Vec<Result<()>> = n0_future::stream::iter(jobs)
            .buffered_ordered(PUBLISH_PARALLEL)
            .collect()
            .await;
        for ((rel, v, known, kind), res) in batch.into_iter().zip(done) {
            if let Err(e) = res {
                // Gone or changed while being copied: the next look sees what is there now.
                tracing::debug!("publishing {rel:?}: {e}");
                self.mark(|d| {
                    d.disk.insert(rel.clone());
                });
                continue;
            }
            self.note(&rel, kind, &v);
            states.add(&rel, v);
            index.insert(&rel, known);
            published.push(rel);
        }
    }

    /// Publishes `v` as this device's record of `rel`.
    pub(super) async fn put(&self, rel: &str, v: &FileVersion) -> Result<()> {
        tracing::debug!(
            "{}: publishing {rel:?} {:?}{}",
            self.root.display(),
            v.version,
            if v.deleted { " (deleted)" } else { "" }
        );
        self.records.put(rel, v).await
    }
}

/// The entries of `index` at and under each of `rels` (an entry under two of them comes twice).
fn at_or_under<'a>(
    index: &'a Index,
    rels: &'a BTreeSet<String>,
) -> impl Iterator<Item = (&'a String, &'a Known)> + Send + 'a {
    rels.iter().flat_map(move |rel| {
        let under = format!("{rel}/");
        index.get_key_value(rel).into_iter().chain(
            index
                .range(under.clone()..)
                .take_while(move |(k, _)| k.starts_with(&under)),
        )
    })
}
