//! From the document to the disk: the outcome of each path's versions is written as files.
//! Content is fetched first (many blobs at once), written under a temporary name and renamed
//! into place; a file that is replaced or deleted goes to the trash, and a local edit found in
//! the way is published first instead of being replaced. See docs/DESIGN.md, "From a remote
//! entry to a file".

use std::{
    collections::{BTreeMap, BTreeSet},
    path::PathBuf,
};

use iroh_blobs::{
    api::blobs::{ExportMode, ExportOptions},
    Hash,
};

use crate::{
    error::{Error, Result},
    folder::{
        activity::ChangeKind,
        decide::PathState,
        delta::Patch,
        engine::FolderSync,
        ignore::TEMP_SUFFIX,
        incoming::INTO_PLACE_MIN,
        index::Known,
        scan::{hash_if_stable, mtime_ms, Scanned},
        version::FileVersion,
    },
    history::now_ms,
};

impl FolderSync {
    /// Makes the files at `paths` match `states`. Returns how many files it wrote or removed,
    /// the paths to look at again (content not there yet, or writing failed) and the last
    /// failure, if any.
    pub(super) async fn apply(
        &self,
        states: &BTreeMap<String, PathState>,
        paths: &[String],
    ) -> Result<(usize, BTreeSet<String>, Option<Error>)> {
        let mut index = self.index.lock().await;
        // Fetch every content this round needs at once, then write the files.
        let mut need = BTreeSet::new();
        for rel in paths {
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
                if let Some(h) = v.content_hash() {
                    if !self.store.has(h).await.map_err(Error::store)? {
                        need.insert(h);
                    }
                }
            }
        }
        if !need.is_empty() {
            self.fetch(&need.into_iter().collect::<Vec<_>>()).await;
        }
        let mut changed = 0;
        let mut missing = BTreeSet::new();
        let mut failed = None;
        for rel in paths {
            let Some(state) = states.get(rel) else {
                continue;
            };
            // One path that cannot be written (permissions, a full disk) does not hold up the
            // others; it is tried again with the paths that wait for content.
            match self
                .apply_one(rel, state, states, &mut index, &mut missing)
                .await
            {
                Ok(n) => changed += n,
                Err(e) => {
                    tracing::warn!("{}: {rel:?}: {e}", self.root.display());
                    missing.insert(rel.clone());
                    failed = Some(e);
                }
            }
        }
        Ok((changed, missing, failed))
    }

    /// Makes the files of one path match its state; returns how many it wrote or removed.
    async fn apply_one(
        &self,
        rel: &String,
        state: &PathState,
        states: &BTreeMap<String, PathState>,
        index: &mut BTreeMap<String, Known>,
        missing: &mut BTreeSet<String>,
    ) -> Result<usize> {
        let mut changed = 0;
        for v in state.versions() {
            if let Some(h) = v.content_hash() {
                self.registry.allow_folder(&self.folder_id, h);
            }
        }
        let out = state.outcome(rel);
        match &out.main {
            Some(v) => match self.ensure_file(rel, v, index).await? {
                Written::Yes(replaced) => {
                    let kind = if replaced {
                        ChangeKind::Updated
                    } else {
                        ChangeKind::Added
                    };
                    self.note(rel, kind, v);
                    changed += 1
                }
                Written::Unavailable => {
                    missing.insert(rel.clone());
                }
                Written::AlreadyThere | Written::LocalEdit => {}
            },
            None => {
                let path = self.root.join(rel);
                // Unchanged: same size and time, or (touched) the same content.
                let unchanged_here = index.get(rel).is_some_and(|k| {
                    let Ok(m) = std::fs::metadata(&path) else {
                        return false;
                    };
                    let seen = Scanned::of(rel.clone(), &m);
                    k.describes(&seen)
                        || hash_if_stable(&path, &seen).ok().flatten().as_deref()
                            == Some(k.hash.as_str())
                });
                if index.contains_key(rel) && path.is_file() && !unchanged_here && !self.read_only {
                    // Edited here since: the edit is published and wins over the delete.
                    self.mark(|d| {
                        d.disk.insert(rel.clone());
                    });
                } else if index.contains_key(rel) && path.is_file() {
                    self.trash.put(rel, now_ms())?;
                    index.remove(rel);
                    self.index_touched();
                    if let Some(by) = state.versions().iter().find(|v| v.deleted) {
                        self.note(rel, ChangeKind::Deleted, by);
                    }
                    changed += 1;
                }
            }
        }
        for (copy, v) in &out.copies {
            if states.contains_key(copy) {
                // The copy has been published: its own records decide what is there.
                continue;
            }
            match self.ensure_file(copy, v, index).await? {
                Written::Yes(_) => {
                    self.note(copy, ChangeKind::Conflict, v);
                    changed += 1
                }
                Written::Unavailable => {
                    missing.insert(rel.clone());
                }
                Written::AlreadyThere | Written::LocalEdit => {}
            }
        }
        Ok(changed)
    }

    /// Writes `v`'s content at `rel` unless it is there already.
    async fn ensure_file(
        &self,
        rel: &str,
        v: &FileVersion,
        index: &mut BTreeMap<String, Known>,
    ) -> Result<Written> {
        if index.get(rel).is_some_and(|k| k.hash == v.hash) {
            return Ok(Written::AlreadyThere);
        }
        let path = self.root.join(rel);
        let hash: Hash = v
            .content_hash()
            .ok_or_else(|| Error::BadData(format!("bad content hash for {rel:?}")))?;
        let tmp = PathBuf::from(format!("{}{TEMP_SUFFIX}", path.display()));
        let mut in_tmp = false;
        if !self.store.has(hash).await.map_err(Error::store)? {
            if self.can_patch(rel, v, index.get(rel)) {
                match self.patch(v, &path, &tmp).await? {
                    Patch::Done => in_tmp = true,
                    Patch::NotYet => return Ok(Written::Unavailable),
                    Patch::Impossible => {}
                }
            }
            if !in_tmp && v.size >= INTO_PLACE_MIN {
                if !self.fetch_into_place(v, &tmp).await? {
                    return Ok(Written::Unavailable);
                }
                in_tmp = true;
            }
            if !in_tmp && !self.fetch(&[hash]).await {
                return Ok(Written::Unavailable);
            }
        }
        // Whatever happens next, content written to `tmp` and not moved into place is not left
        // behind.
        let tmp_guard = RemoveOnDrop(in_tmp.then(|| tmp.clone()));
        // A file that is there and is not what this device last knew is a local edit: keep it.
        if path.exists() {
            let seen = std::fs::metadata(&path)
                .ok()
                .map(|m| Scanned::of(rel.into(), &m));
            let on_disk_known = index
                .get(rel)
                .zip(seen.as_ref())
                .is_some_and(|(k, s)| k.describes(s));
            if !on_disk_known {
                if let Some(seen) = seen {
                    if hash_if_stable(&path, &seen).ok().flatten().as_deref()
                        == Some(v.hash.as_str())
                    {
                        index.insert(
                            rel.into(),
                            Known {
                                size: seen.size,
                                mtime_ms: seen.mtime_ms,
                                hash: v.hash.clone(),
                                vector: v.version.clone(),
                            },
                        );
                        self.index_touched();
                        return Ok(Written::AlreadyThere);
                    }
                }
                if !self.read_only {
                    // Changed here and not published yet: publish it first, so it meets the
                    // remote version as a conflict (both kept) instead of being replaced.
                    self.mark(|d| {
                        d.disk.insert(rel.to_string());
                    });
                    return Ok(Written::LocalEdit);
                }
            }
            self.trash.put(rel, now_ms())?;
        }
        let replaced = index.contains_key(rel);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(|e| Error::write(parent, e))?;
        }
        if !in_tmp {
            self.store
                .export_with_opts(ExportOptions {
                    hash,
                    target: tmp.clone(),
                    mode: ExportMode::Copy,
                })
                .finish()
                .await
                .map_err(|e| Error::write(&tmp, std::io::Error::other(e.to_string())))?;
        }
        std::fs::rename(&tmp, &path).map_err(|e| Error::write(&path, e))?;
        std::mem::forget(tmp_guard);
        if in_tmp {
            // Peers may ask this device for the new version too: copy it into the store in the
            // background (the file is in place and verified; this only makes it servable).
            self.import_in_background(path.clone(), hash);
        }
        let m = std::fs::metadata(&path).map_err(|e| Error::write(&path, e))?;
        index.insert(
            rel.into(),
            Known {
                size: m.len(),
                mtime_ms: mtime_ms(&m),
                hash: v.hash.clone(),
                vector: v.version.clone(),
            },
        );
        self.index_touched();
        Ok(Written::Yes(replaced))
    }
}

/// Removes a file when dropped, unless forgotten.
struct RemoveOnDrop(Option<PathBuf>);

impl Drop for RemoveOnDrop {
    fn drop(&mut self) {
        if let Some(p) = &self.0 {
            let _ = std::fs::remove_file(p);
        }
    }
}

/// What [`FolderSync::ensure_file`] did.
enum Written {
    /// Not written: the file there is a local change that is published first.
    LocalEdit,
    /// Written; true if it replaced a file this device had.
    Yes(bool),
    AlreadyThere,
    Unavailable,
}
