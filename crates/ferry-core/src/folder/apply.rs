//! From the document to the disk: the outcome of each path's versions is written as files.
//! Content is fetched first (many blobs at once), written under a temporary name and renamed
//! into place; a file that is replaced or deleted goes to the trash, and a local edit found in
//! the way is published first instead of being replaced. See docs/DESIGN.md, "From a remote
//! entry to a file".

use std::{
    collections::{BTreeSet, HashSet},
    path::{Path, PathBuf},
};

use iroh_blobs::Hash;

use crate::{
    error::{Error, Result},
    folder::{
        activity::{ChangeKind, Why},
        decide::{PathState, MAX_COPIES},
        delta::Patch,
        engine::FolderSync,
        ignore::{IgnoreRules, TEMP_SUFFIX},
        incoming::INTO_PLACE_MIN,
        index::{Index, Known, Source},
        names::Spellings,
        place,
        scan::{copy_permissions, hash_if_stable, mtime_ms, set_exec},
        stage::{APPLY_BATCH, STAGE_CHUNK},
        states::States,
        version::FileVersion,
    },
    history::now_ms,
};

impl FolderSync {
    /// Makes the files at `paths` match `states`. Returns how many files it wrote or removed,
    /// the paths to look at again (content not there yet, or writing failed) and the last
    /// failure, if any. Paths this device ignores are left alone, whatever peers did to them:
    /// ignoring stops syncing, it never deletes or overwrites.
    pub(super) async fn apply(
        &self,
        rules: &IgnoreRules,
        states: &States,
        paths: &[String],
    ) -> Result<(usize, BTreeSet<String>, Option<Error>)> {
        let mut index = self.index.lock().await;
        let mut missing = BTreeSet::new();
        // Removals first (a name freed here may be taken by another spelling of it in the
        // same batch), files before directories, the deepest directories first (a directory
        // is removed once what was in it is gone); then what is written.
        let (mut removals, mut writes): (Vec<&String>, Vec<&String>) = (Vec::new(), Vec::new());
        for rel in paths {
            // A path whose versions were left to the document is read before it is acted on
            // (see `round`); one that was not is looked at again rather than taken for absent.
            if states.is_unread(rel) {
                tracing::debug!("{rel:?} was not read before it was applied");
                missing.insert(rel.clone());
                continue;
            }
            let main = states.get(rel).and_then(|st| st.outcome(rel).main);
            let dir = main.as_ref().is_some_and(|v| v.dir) || index.get(rel).is_some_and(|k| k.dir);
            if rules.is_ignored(rel, dir) {
                continue;
            }
            if main.is_some() {
                writes.push(rel);
            } else {
                removals.push(rel);
            }
        }
        let is_dir = |rel: &String| index.get(rel).is_some_and(|k| k.dir);
        removals.sort_by(|a, b| match (is_dir(a), is_dir(b)) {
            (true, true) => b.cmp(a),
            (da, db) => da.cmp(&db),
        });
        // Which spelling of a name holds it, on a file system that folds names (see `names`).
        let removed: std::collections::HashSet<&String> = removals.iter().copied().collect();
        let mut spellings =
            Spellings::of(self.names, index.keys().filter(|k| !removed.contains(k)));
        // Each path with whether it is written (else removed).
        let paths: Vec<(&String, bool)> = removals
            .into_iter()
            .map(|rel| (rel, false))
            .chain(writes.into_iter().map(|rel| (rel, true)))
            .collect();
        let mut changed = 0;
        let mut failed = None;
        // A chunk at a time: what is staged takes its name soon after, and a crash leaves at
        // most a chunk of temporary files. In each, removals and directories first, so that
        // the files in a directory made in this chunk can be staged.
        let file_write = |rel: &String, written: bool| {
            written
                && states
                    .get(rel)
                    .and_then(|st| st.outcome(rel).main)
                    .is_some_and(|v| !v.dir)
        };
        // A batch at a time: its content fetched at once, then its files written. A round of a
        // million paths neither asks for everything before writing anything nor holds it all.
        for (i, batch) in paths.chunks(APPLY_BATCH).enumerate() {
            // The store failing: what is left is looked at again, and what was written so far
            // is flushed below.
            if let Err(e) = self.fetch_needed(batch, states, &index).await {
                missing.extend(
                    paths[i * APPLY_BATCH..]
                        .iter()
                        .map(|(rel, _)| (*rel).clone()),
                );
                failed = Some(e);
                break;
            }
            for chunk in batch.chunks(STAGE_CHUNK) {
                let (first, files): (Vec<_>, Vec<_>) = chunk
                    .iter()
                    .copied()
                    .partition(|&(rel, written)| !file_write(rel, written));
                let mut staged = HashSet::new();
                for (pass, part) in [first, files].iter().enumerate() {
                    if pass == 1 {
                        staged = self.stage(part, states, &index).await;
                    }
                    for &(rel, written) in part {
                        let Some(state) = states.get(rel) else {
                            continue;
                        };
                        // A name this file system cannot hold, or holds under another spelling already.
                        if written && !index.contains_key(rel) {
                            if let Some(reason) = spellings.refuse(rel) {
                                self.not_synced(rel, reason);
                                continue;
                            }
                        }
                        // One path that cannot be written (permissions, a full disk) does not hold up the
                        // others; it is tried again with the paths that wait for content.
                        let applied = self
                            .apply_one(
                                rules,
                                rel,
                                state,
                                states,
                                &mut index,
                                &mut missing,
                                &mut spellings,
                                &mut staged,
                            )
                            .await;
                        // Whatever happened, a name still held here stays taken (a removal that failed
                        // keeps it from another spelling).
                        if index.contains_key(rel) {
                            spellings.hold(rel);
                        }
                        match applied {
                            Ok(n) => {
                                changed += n;
                                if !index.contains_key(rel) && self.names.fold {
                                    // A name freed: another spelling of it waiting may take it now.
                                    let key = self.names.key(rel);
                                    let waiting = self.report.not_synced_where(|r| {
                                        let k = self.names.key(r);
                                        k == key || k.starts_with(&format!("{key}/"))
                                    });
                                    if !waiting.is_empty() {
                                        self.mark(|d| d.keys.extend(waiting));
                                    }
                                }
                                self.report.synced(rel);
                            }
                            // Not writable here (a link or a folder in the way, a name or a permission the
                            // file system refuses): reported, and left until the path changes.
                            Err(e) => match Why::of_write(&e) {
                                Some(why) => self.not_synced(rel, why),
                                None => {
                                    tracing::warn!("{}: {rel:?}: {e}", self.root.display());
                                    missing.insert(rel.clone());
                                    failed = Some(e);
                                }
                            },
                        }
                    }
                }
                // Content staged for a path that was never written (never through a link that took
                // a directory's place since).
                for rel in staged {
                    if let Ok(path) = place::inside(&self.root, &rel, false) {
                        std::fs::remove_file(temp_name(&path)).ok();
                    }
                }
            }
            // A batch cut short by the store writes nothing: every batch that wrote is flushed.
            self.flush_batch(&mut index);
        }
        Ok((changed, missing, failed))
    }

    /// The renames of a batch reach the disk together: one flush per directory, after the
    /// index entries that announce them.
    fn flush_batch(&self, index: &mut Index) {
        index.flush();
        let dirs = std::mem::take(&mut *self.synced_dirs.lock().expect("dirs lock"));
        for dir in dirs {
            if let Err(e) = crate::atomic::sync_dir(&dir) {
                tracing::debug!("flushing {}: {e}", dir.display());
            }
        }
    }

    /// Lists `rel` as not synced here, for `reason`; it is looked at again when it changes or
    /// at the next full pass.
    pub(super) fn not_synced(&self, rel: &str, why: Why) {
        let text = why.text.clone();
        if self.report.not_synced(rel, why) {
            tracing::info!("{}: not synced: {text}", self.root.display());
        }
    }

    /// Makes the files of one path match its state; returns how many it wrote or removed.
    #[allow(clippy::too_many_arguments)]
    async fn apply_one(
        &self,
        rules: &IgnoreRules,
        rel: &String,
        state: &PathState,
        states: &States,
        index: &mut Index,
        missing: &mut BTreeSet<String>,
        spellings: &mut Spellings,
        staged: &mut HashSet<String>,
    ) -> Result<usize> {
        let mut changed = 0;
        let out = state.outcome(rel);
        match &out.main {
            Some(v) if v.dir => {
                if self.ensure_dir(rel, v, index)? {
                    self.note(rel, ChangeKind::Added, v);
                    changed += 1;
                }
            }
            None if index.get(rel).is_some_and(|k| k.dir) => {
                if self.remove_dir(rel, index)? {
                    if let Some(by) = state.versions().iter().find(|v| v.deleted) {
                        self.note(rel, ChangeKind::Deleted, by);
                    }
                    changed += 1;
                }
            }
            Some(v) => match self
                .ensure_file(rel, v, Source::Record, index, staged.remove(rel))
                .await?
            {
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
                let path = place::inside(&self.root, rel, false)
                    .map_err(|e| Error::write(self.root.join(rel), e))?;
                // Unchanged: same size and time, or (touched) the same content.
                let unchanged_here = index.get(rel).is_some_and(|k| {
                    let Ok(m) = std::fs::metadata(&path) else {
                        return false;
                    };
                    let seen = self.seen(rel.clone(), &m);
                    k.describes(&seen)
                        || hash_if_stable(&path, &seen).ok().flatten() == Some(k.hash)
                });
                if index.contains_key(rel)
                    && place::is_file(&path)
                    && !unchanged_here
                    && !self.read_only
                {
                    // Edited here since: the edit is published and wins over the delete.
                    self.mark(|d| {
                        d.disk.insert(rel.clone());
                    });
                } else if index.contains_key(rel) && place::is_file(&path) {
                    // Entered before the file moves: a crash in between keeps the entry (the
                    // file is still there when the journal is replayed).
                    let before = index.remove(rel);
                    if let Err(e) = self.trash.put(rel, now_ms()) {
                        index.restore(rel, before);
                        return Err(e);
                    }
                    // Directories peers deleted that waited for this file to go.
                    let mut at = rel.as_str();
                    while let Some((parent, _)) = at.rsplit_once('/') {
                        let deleted = index.get(parent).is_some_and(|k| k.dir)
                            && states
                                .get(parent)
                                .is_some_and(|st| st.outcome(parent).main.is_none());
                        if !deleted || !self.remove_dir(parent, index)? {
                            break;
                        }
                        at = parent;
                    }
                    if let Some(by) = state.versions().iter().find(|v| v.deleted) {
                        self.note(rel, ChangeKind::Deleted, by);
                    }
                    changed += 1;
                }
            }
        }
        for (copy, v) in &out.copies {
            if states.contains_key(copy)
                || rules.is_ignored(copy, false)
                || place::record_path(copy).is_err()
            {
                // The copy has been published: its own records decide what is there.
                continue;
            }
            if !index.contains_key(copy) {
                if let Some(reason) = spellings.refuse(copy) {
                    self.not_synced(copy, reason);
                    continue;
                }
                spellings.hold(copy);
            }
            match self
                .ensure_file(copy, v, Source::Copy, index, false)
                .await?
            {
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
        if out.dropped > 0 {
            // Reported with the path (not synced), not retried: the versions kept are written.
            return Err(Error::BadData(format!(
                "{} more versions of {rel:?} were made at the same time than Ferry keeps as \
                 conflict copies ({MAX_COPIES}); the latest ones are kept",
                out.dropped
            )));
        }
        Ok(changed)
    }

    /// Makes the directory `rel` of version `v` exist; true if it was created. A file or a
    /// link in its place is never replaced: the path is not synced here.
    fn ensure_dir(&self, rel: &str, v: &FileVersion, index: &mut Index) -> Result<bool> {
        if index.get(rel).is_some_and(|k| k.dir) {
            return Ok(false);
        }
        let path = place::inside(&self.root, rel, true)
            .map_err(|e| Error::write(self.root.join(rel), e))?;
        let created = match std::fs::symlink_metadata(&path) {
            Ok(m) if m.is_dir() => false,
            Ok(m) => {
                let what = if m.is_file() { "a file" } else { "a link" };
                return Err(Error::write(
                    &path,
                    std::io::Error::new(
                        std::io::ErrorKind::AlreadyExists,
                        format!("{what} is in the way of a synced folder"),
                    ),
                ));
            }
            Err(_) => {
                std::fs::create_dir(&path).map_err(|e| Error::write(&path, e))?;
                if let Some(parent) = path.parent() {
                    self.synced_dirs
                        .lock()
                        .expect("dirs lock")
                        .insert(parent.to_path_buf());
                }
                true
            }
        };
        index.insert(rel, Known::dir(v.version.clone(), Source::Record));
        Ok(created)
    }

    /// Removes the directory `rel`, which peers deleted, if it is empty; true if it went. One
    /// that still holds something (a file not synced, or ignored here) stays, and stays known:
    /// it is not published again as a new directory, and is looked at again on later passes.
    fn remove_dir(&self, rel: &str, index: &mut Index) -> Result<bool> {
        let path = place::inside(&self.root, rel, false)
            .map_err(|e| Error::write(self.root.join(rel), e))?;
        match std::fs::symlink_metadata(&path) {
            Ok(m) if m.is_dir() => match std::fs::remove_dir(&path) {
                Ok(()) => {
                    index.remove(rel);
                    Ok(true)
                }
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                    index.remove(rel);
                    Ok(false)
                }
                Err(e) => {
                    tracing::debug!("{}: keeping {rel:?}: {e}", self.root.display());
                    Ok(false)
                }
            },
            // Gone, or something else took its place (published by the scan as a change).
            _ => {
                index.remove(rel);
                Ok(false)
            }
        }
    }

    /// Writes `v`'s content at `rel` unless it is there already: `rel`'s own version, or
    /// (`source` [`Source::Copy`]) a conflict copy of a version of another path.
    async fn ensure_file(
        &self,
        rel: &str,
        v: &FileVersion,
        source: Source,
        index: &mut Index,
        staged: bool,
    ) -> Result<Written> {
        let path = place::inside(&self.root, rel, false)
            .map_err(|e| Error::write(self.root.join(rel), e))?;
        // Content staged for this path (see `stage`) does not stay behind if it is not used.
        let staged_guard = RemoveOnDrop(staged.then(|| temp_name(&path)));
        if let Some(k) = index.get(rel).filter(|k| k.hash == v.hash) {
            if k.exec == v.exec {
                return Ok(Written::AlreadyThere);
            }
            let known = Known {
                vector: v.version.clone(),
                source,
                exec: v.exec,
                ..k.clone()
            };
            // Nothing to set where the file system keeps no bit: the version is this one.
            if !self.names.exec {
                index.insert(rel, known);
                return Ok(Written::AlreadyThere);
            }
            // Only the executable bit changed: set on the file as it is, unless the file was
            // edited here since (then it is a local edit, below).
            let unchanged = std::fs::symlink_metadata(&path)
                .is_ok_and(|m| m.is_file() && k.describes(&self.seen(rel.into(), &m)));
            if unchanged {
                set_exec(&path, v.exec).map_err(|e| Error::write(&path, e))?;
                index.insert(rel, known);
                return Ok(Written::Yes(true));
            }
        }
        let hash: Hash = v
            .content_hash()
            .ok_or_else(|| Error::BadData(format!("bad content hash for {rel:?}")))?;
        let tmp = temp_name(&path);
        let mut in_tmp = staged;
        // Content is taken from the store only if it reached this folder as its own. A hash the
        // store holds for another share or folder is fetched again from this folder's peers
        // (into a store of its own): a member who merely names it gets nothing copied into the
        // folder (the confused deputy), and cannot tell whether this node holds it. (Staged
        // content was checked so when it was staged.)
        if !staged {
            let held = self.registry.folder_holds(&self.folder_id, &hash);
            let in_store = self.store.has(hash).await.map_err(Error::store)?;
            if !(held && in_store) {
                if self.can_patch(rel, v, index.get(rel)) {
                    match self.patch(v, &path, &tmp).await? {
                        Patch::Done => in_tmp = true,
                        Patch::NotYet => return Ok(Written::Unavailable),
                        Patch::Impossible => {}
                    }
                }
                if !in_tmp && (v.size >= INTO_PLACE_MIN || in_store) {
                    if !self.fetch_into_place(v, &tmp).await? {
                        return Ok(Written::Unavailable);
                    }
                    in_tmp = true;
                }
                if !in_tmp {
                    if !self.fetch(&[(hash, v.size)]).await {
                        return Ok(Written::Unavailable);
                    }
                    self.check_size(rel, hash, v.size).await?;
                    self.content.keep(hash).await?;
                }
            } else {
                self.check_size(rel, hash, v.size).await?;
            }
        }
        // Whatever happens next, content written to `tmp` and not moved into place is not left
        // behind.
        let early_guard = RemoveOnDrop(in_tmp.then(|| tmp.clone()));
        staged_guard.disarm();
        let mut replacing = false;
        // A file that is there and is not what this device last knew is a local edit: keep it.
        // A folder or a link in the file's place is never replaced: the path is not synced here.
        let mut there = std::fs::symlink_metadata(&path).ok();
        // A directory this device holds as synced, which peers turned into a file: it makes way
        // if it is empty (what is in it has records of its own).
        if there.as_ref().is_some_and(|m| m.is_dir())
            && index.get(rel).is_some_and(|k| k.dir)
            && std::fs::remove_dir(&path).is_ok()
        {
            index.remove(rel);
            there = None;
        }
        if let Some(m) = there {
            if !m.is_file() {
                let what = if m.is_dir() { "a folder" } else { "a link" };
                return Err(Error::write(
                    &path,
                    std::io::Error::new(
                        std::io::ErrorKind::AlreadyExists,
                        format!("{what} is in the way of a synced file"),
                    ),
                ));
            }
            let seen = Some(self.seen(rel.into(), &m));
            let on_disk_known = index
                .get(rel)
                .zip(seen.as_ref())
                .is_some_and(|(k, s)| k.describes(s));
            if !on_disk_known {
                if let Some(seen) = seen {
                    if hash_if_stable(&path, &seen).ok().flatten() == Some(v.hash) {
                        if self.names.exec {
                            set_exec(&path, v.exec).map_err(|e| Error::write(&path, e))?;
                        }
                        index.insert(
                            rel,
                            Known {
                                size: seen.size,
                                mtime_ms: seen.mtime_ms,
                                hash: v.hash,
                                vector: v.version.clone(),
                                source,
                                exec: v.exec,
                                dir: false,
                            },
                        );
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
            replacing = true;
        }
        early_guard.disarm();
        let tmp_guard = RemoveOnDrop(Some(tmp.clone()));
        let replaced = index.contains_key(rel);
        // The new content is complete and on the disk beside the old file before the old one
        // moves: a full disk or a crash until then leaves the old file where it was.
        place::inside(&self.root, rel, true).map_err(|e| Error::write(&path, e))?;
        // From the store: no copy where the file system allows (see `content`). What this
        // device kept may have been edited in place since; then it is fetched again.
        if !in_tmp
            && !self.content.place(hash, v.size, &tmp).await?
            && !self.fetch_into_place(v, &tmp).await?
        {
            return Ok(Written::Unavailable);
        }
        let m = if staged {
            // Flushed when it was staged.
            std::fs::metadata(&tmp)
        } else {
            flush(&tmp)
        }
        .map_err(|e| Error::write(&tmp, e))?;
        if staged && m.len() != v.size {
            // Not what was staged (nothing should touch a temporary file): written again later.
            return Ok(Written::Unavailable);
        }
        // A replaced file keeps its permissions (set after the flush: they may make the file
        // read-only); the executable bit is the version's.
        if replacing {
            copy_permissions(&path, &tmp).map_err(|e| Error::write(&tmp, e))?;
        }
        if self.names.exec {
            set_exec(&tmp, v.exec).map_err(|e| Error::write(&tmp, e))?;
        }
        // The index learns the file before it takes its name (the rename keeps its size and
        // time): after a crash right behind the rename, the file is known as this version
        // rather than taken for a local edit.
        let before = index.insert(
            rel,
            Known {
                size: m.len(),
                mtime_ms: mtime_ms(&m),
                hash: v.hash,
                vector: v.version.clone(),
                source,
                exec: v.exec,
                dir: false,
            },
        );
        // The old file gets a second name in the trash, then the new one takes its name in one
        // rename: at no moment is the path empty.
        let moved = if replacing {
            self.trash.put_linked(rel, now_ms()).map(drop)
        } else {
            Ok(())
        }
        .and_then(|()| std::fs::rename(&tmp, &path).map_err(|e| Error::write(&path, e)));
        if let Err(e) = moved {
            index.restore(rel, before);
            return Err(e);
        }
        tmp_guard.disarm();
        if let Some(parent) = path.parent() {
            self.synced_dirs
                .lock()
                .expect("dirs lock")
                .insert(parent.to_path_buf());
        }
        // Peers may ask this device for the new version too (the file is in place and
        // verified; this only makes it servable).
        let (content, at, size) = (self.content.clone(), path.clone(), v.size);
        tokio::spawn(async move {
            if let Err(e) = content.keep_file(&at, hash, size).await {
                tracing::debug!("keeping {}: {e}", at.display());
            }
        });
        Ok(Written::Yes(replaced))
    }
}

impl FolderSync {
    /// Fails unless the home's store holds `hash` whole with the size its record claims.
    async fn check_size(&self, rel: &str, hash: Hash, size: u64) -> Result<()> {
        let what = format!("the content of {rel:?}");
        if self.fetcher.holds(hash, size, &what).await? {
            Ok(())
        } else {
            Err(Error::Store(format!("{what} is not complete")))
        }
    }
}

/// The temporary name a file is written under before it takes its own.
pub(super) fn temp_name(path: &Path) -> PathBuf {
    PathBuf::from(format!("{}{TEMP_SUFFIX}", path.display()))
}

/// Flushes the file at `path` to the disk; its metadata then.
pub(super) fn flush(path: &Path) -> std::io::Result<std::fs::Metadata> {
    // Opened for writing: Windows refuses to flush a read-only handle.
    let f = std::fs::OpenOptions::new().write(true).open(path)?;
    f.sync_all()?;
    f.metadata()
}

/// Removes a file when dropped, unless disarmed.
struct RemoveOnDrop(Option<PathBuf>);

impl RemoveOnDrop {
    /// The file stays.
    fn disarm(mut self) {
        self.0 = None;
    }
}

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
