//! The folder's index: for each file this device holds, its size, modification time, content
//! hash and the version it is. After a restart it tells files this device wrote from files
//! changed or deleted while the node was not running.
//!
//! It is kept in two files of `<folder>/.ferry/`: `index.json`, a whole snapshot written
//! atomically, and `index.journal`, one line per change since the snapshot. A snapshot is
//! written when the folder stops, and once the journal has grown to half the index (at least
//! `SNAPSHOT_AFTER` lines): so a million files arriving are saved a few dozen times rather
//! than every few seconds, and a single change to a large folder costs one journal line, not
//! a rewrite of every path (which, a few seconds after each change, was a third of what a
//! folder of 100,000 files cost while idle). Loading replays at most half the index's worth
//! of lines. A file the applier writes is entered in the journal *before* it
//! is renamed into place, so a crash of the process right after the rename cannot leave a file
//! on disk that the index does not know: that file would otherwise look like a local edit and
//! meet the next remote version as a conflict. (The journal reaches the disk itself with the
//! batch's directory flush, so after a power cut a rename can have outlived its line: then the
//! file meets the next version as a conflict, both kept.) Loading replays the journal over the snapshot
//! and keeps an entry only if the disk agrees with it (the file it names has its size and time,
//! or a removal's file is gone), so an entry whose rename never happened is simply dropped.

use std::{
    collections::BTreeMap,
    io::{BufRead, Read, Seek, Write},
    path::{Path, PathBuf},
};

use serde::{Deserialize, Serialize};

use crate::{
    atomic::AtomicFile,
    folder::{
        conflict::is_conflict_copy,
        engine::FolderSync,
        ignore::STATE_DIR,
        place,
        scan::Scanned,
        version::{RecordHash, VersionVector},
    },
};

/// What this device last saw of a file it manages.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(super) struct Known {
    pub(super) size: u64,
    pub(super) mtime_ms: u64,
    /// Read leniently: an entry naming something that is not a hash (a damaged file) names no
    /// content, and the file is hashed again, rather than the whole index being refused.
    #[serde(deserialize_with = "RecordHash::read_lenient")]
    pub(super) hash: RecordHash,
    /// The version the file on disk is: a local change builds on it, so a change made while
    /// a newer remote version was on its way (or while offline) is a conflict, not a silent
    /// overwrite.
    #[serde(default)]
    pub(super) vector: VersionVector,
    /// Where this version came from, which says what to do when the document does not hold
    /// it (see [`Source`]).
    #[serde(default)]
    pub(super) source: Source,
    /// Whether the file is executable.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub(super) exec: bool,
    /// True for a directory (size and time 0, no hash).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub(super) dir: bool,
}

/// Where the version of a file this device holds came from.
///
/// The document store commits its writes in batches (iroh-docs: within half a second), so a
/// crash can take the newest records out of the document while the files they wrote or that
/// were published stay on disk. What then happens depends on where the version came from.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub(super) enum Source {
    /// Written from a record of this path. Its record comes back from the peer that made it:
    /// until then the file is left alone (taking it for a new local file would make it meet
    /// the newer versions of that peer as a conflict with itself).
    #[default]
    Record,
    /// Published by this device. A document that lost the record gets it again (the same
    /// content, as a newer version).
    Published,
    /// Written as a conflict copy: no record names this path yet, so it is published.
    Copy,
}

impl Known {
    /// The entry of a directory of version `vector`.
    pub(super) fn dir(vector: VersionVector, source: Source) -> Known {
        Known {
            size: 0,
            mtime_ms: 0,
            hash: RecordHash::NONE,
            vector,
            source,
            exec: false,
            dir: true,
        }
    }

    /// True if the file the scan saw has the size, modification time and (where the file
    /// system has one) executable bit this entry records. A change of the bit alone does not
    /// move the modification time.
    pub(super) fn describes(&self, seen: &Scanned) -> bool {
        self.dir == seen.dir
            && self.size == seen.size
            && self.mtime_ms == seen.mtime_ms
            && seen.exec.is_none_or(|x| x == self.exec)
    }
}

/// The index as saved in `index.json` (read; written as [`SavedIndexRef`]).
#[derive(Deserialize)]
struct SavedIndex {
    doc: String,
    files: BTreeMap<String, Known>,
}

/// [`SavedIndex`] as written, borrowing the index.
#[derive(Serialize)]
struct SavedIndexRef<'a> {
    doc: &'a str,
    files: &'a BTreeMap<String, Known>,
}

/// One line of the journal: the entry a path has from now on (`None`: none).
#[derive(Serialize, Deserialize)]
struct Change {
    #[serde(rename = "p")]
    path: String,
    #[serde(rename = "k")]
    known: Option<Known>,
}

/// The first line of a journal: the document it belongs to.
#[derive(Serialize, Deserialize)]
struct Header {
    doc: String,
}

/// The files this device wrote or published, by path, kept on disk as described above.
///
/// Reading goes through `Deref` to the map; every change goes through [`Index::insert`] or
/// [`Index::remove`], which enter it in the journal.
pub(super) struct Index {
    files: BTreeMap<String, Known>,
    /// `<folder>/.ferry`.
    dir: PathBuf,
    doc: String,
    /// The journal open for appending, once something was entered since the last rotation.
    journal: Option<std::fs::File>,
    /// True when the map changed since the last snapshot.
    changed: bool,
    /// Lines entered in the journal since the last snapshot.
    journaled: usize,
    /// True when a change could not be entered in the journal: only a snapshot keeps it.
    unjournaled: bool,
    /// What a folder's summary says of the index, kept up to date with every change: a round
    /// in a folder of a million files does not count them again.
    totals: Totals,
}

/// Counts over the index's entries.
#[derive(Debug, Default)]
struct Totals {
    files: u64,
    bytes: u64,
    conflict_copies: std::collections::BTreeSet<String>,
}

impl Totals {
    fn of(files: &BTreeMap<String, Known>) -> Totals {
        let mut t = Totals::default();
        for (rel, known) in files {
            t.add(rel, known);
        }
        t
    }

    fn add(&mut self, rel: &str, known: &Known) {
        if !known.dir {
            self.files += 1;
            self.bytes = self.bytes.saturating_add(known.size);
        }
        if is_conflict_copy(rel) {
            self.conflict_copies.insert(rel.to_string());
        }
    }

    fn take(&mut self, rel: &str, known: &Known) {
        if !known.dir {
            self.files = self.files.saturating_sub(1);
            self.bytes = self.bytes.saturating_sub(known.size);
        }
        self.conflict_copies.remove(rel);
    }
}

/// Fewest journal lines after which a snapshot is due, however recent the last one.
const SNAPSHOT_AFTER: usize = 4096;

impl std::ops::Deref for Index {
    type Target = BTreeMap<String, Known>;

    fn deref(&self) -> &Self::Target {
        &self.files
    }
}

/// The index encoded into its temporary file (under the index lock), flushed to the disk and
/// renamed into place by [`Snapshot::write`] without it.
pub(super) struct Snapshot {
    file: AtomicFile,
    prev: PathBuf,
}

impl Snapshot {
    /// Writes the snapshot; the journal it replaces is then no longer needed.
    pub(super) fn write(self) -> std::io::Result<()> {
        self.file.commit()?;
        match std::fs::remove_file(&self.prev) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        }
    }
}

impl Index {
    /// The index of the folder at `root` for document `doc`: its snapshot (empty if none or
    /// another document's) with the journals replayed over it. Paths are checked again as they
    /// are read: the index names files Ferry may later move to the trash.
    pub(super) fn load(root: &Path, doc: &str, exec: bool) -> Index {
        let dir = root.join(STATE_DIR);
        remove_unfinished_snapshots(&dir);
        let mut files = std::fs::read(dir.join("index.json"))
            .ok()
            .and_then(|b| serde_json::from_slice::<SavedIndex>(&b).ok())
            .filter(|saved| saved.doc == doc)
            .map(|saved| saved.files)
            .unwrap_or_default();
        // The journal set aside by a snapshot that may not have been written, then the current.
        let mut replayed = 0;
        for name in ["index.journal.prev", "index.journal"] {
            replayed += replay(root, &dir.join(name), doc, exec, &mut files);
        }
        files.retain(|rel, _| place::record_path(rel).is_ok());
        Index {
            totals: Totals::of(&files),
            files,
            dir,
            doc: doc.to_string(),
            journal: None,
            changed: replayed > 0,
            journaled: replayed,
            unjournaled: false,
        }
    }

    /// Records that the file at `rel` is now (or is about to be) `known`; returns what the
    /// entry was. Entered in the journal before it returns: call it before renaming a file
    /// into place.
    pub(super) fn insert(&mut self, rel: &str, known: Known) -> Option<Known> {
        self.enter(rel, Some(&known));
        if let Some(before) = self.files.get(rel) {
            self.totals.take(rel, before);
        }
        self.totals.add(rel, &known);
        self.files.insert(rel.to_string(), known)
    }

    /// How many files (not directories) the index holds, and their bytes.
    pub(super) fn totals(&self) -> (u64, u64) {
        (self.totals.files, self.totals.bytes)
    }

    /// The conflict copies among the index's paths, in order.
    pub(super) fn conflict_copies(&self) -> impl Iterator<Item = &String> {
        self.totals.conflict_copies.iter()
    }

    /// Records that this device no longer has a file at `rel`; returns what the entry was.
    pub(super) fn remove(&mut self, rel: &str) -> Option<Known> {
        if !self.files.contains_key(rel) {
            return None;
        }
        self.enter(rel, None);
        let before = self.files.remove(rel);
        if let Some(b) = &before {
            self.totals.take(rel, b);
        }
        before
    }

    /// Puts back the entry [`insert`](Self::insert) or [`remove`](Self::remove) returned, after
    /// the change on disk it announced did not happen.
    pub(super) fn restore(&mut self, rel: &str, before: Option<Known>) {
        match before {
            Some(k) => {
                self.insert(rel, k);
            }
            None => {
                self.remove(rel);
            }
        }
    }

    /// Flushes the journal to the disk (once per batch of writes rather than per file).
    pub(super) fn flush(&mut self) {
        if let Some(f) = &self.journal {
            if let Err(e) = f.sync_data() {
                tracing::debug!("flushing the index journal: {e}");
            }
        }
    }

    /// A snapshot to write if the index changed since the last one and one is due (see the
    /// module docs: or a change is in no journal), or whenever it changed if `now`. The
    /// journal is set aside with it (and removed once the snapshot is written); changes from
    /// now on go to a new one. The snapshot is encoded straight into its temporary file: a
    /// million paths held once more as text would cost hundreds of MiB at once. What is left
    /// to [`Snapshot::write`], without the lock, is flushing it to the disk and renaming it.
    pub(super) fn snapshot(&mut self, now: bool) -> Option<std::io::Result<Snapshot>> {
        if !self.changed || self.dir.as_os_str().is_empty() {
            return None;
        }
        if !now && !self.unjournaled && self.journaled < SNAPSHOT_AFTER.max(self.files.len() / 2) {
            return None;
        }
        (self.changed, self.journaled, self.unjournaled) = (false, 0, false);
        let (journal, prev) = (
            self.dir.join("index.journal"),
            self.dir.join("index.journal.prev"),
        );
        // A journal set aside earlier whose snapshot was not written stays; the current one
        // then goes on, and is replayed too (replaying what a snapshot holds changes nothing).
        if !prev.exists() {
            self.journal = None;
            if let Err(e) = std::fs::rename(&journal, &prev) {
                if e.kind() != std::io::ErrorKind::NotFound {
                    tracing::debug!("setting the index journal aside: {e}");
                }
            }
        }
        let saved = SavedIndexRef {
            doc: &self.doc,
            files: &self.files,
        };
        let encoded = std::fs::create_dir_all(&self.dir)
            .and_then(|()| AtomicFile::create(&self.dir.join("index.json")))
            .and_then(|mut file| {
                serde_json::to_writer(&mut file, &saved)?;
                Ok(file)
            });
        Some(match encoded {
            Ok(file) => Ok(Snapshot { file, prev }),
            Err(e) => {
                self.unsaved();
                Err(e)
            }
        })
    }

    /// Notes that a snapshot was not written: the next call to `snapshot` tries again.
    pub(super) fn unsaved(&mut self) {
        self.changed = true;
        self.unjournaled = true;
    }

    /// Appends one change to the journal. A journal that cannot be written leaves the change
    /// to the next snapshot (the state before this journal existed).
    fn enter(&mut self, rel: &str, known: Option<&Known>) {
        self.changed = true;
        if self.dir.as_os_str().is_empty() {
            return;
        }
        let line = serde_json::to_vec(&Change {
            path: rel.to_string(),
            known: known.cloned(),
        })
        .expect("serializable");
        match self.append(&line) {
            Ok(()) => self.journaled += 1,
            Err(e) => {
                tracing::debug!("writing the index journal: {e}");
                self.journal = None;
                self.unjournaled = true;
            }
        }
    }

    fn append(&mut self, line: &[u8]) -> std::io::Result<()> {
        if self.journal.is_none() {
            std::fs::create_dir_all(&self.dir)?;
            let mut options = std::fs::OpenOptions::new();
            options.read(true).append(true).create(true);
            #[cfg(unix)]
            {
                use std::os::unix::fs::OpenOptionsExt;
                options.mode(0o600);
            }
            let path = self.dir.join("index.journal");
            let mut file = options.open(&path)?;
            // A journal of another document (a folder left and joined again) starts over; one
            // whose last line a crash tore gets that line ended, so the next one stands alone.
            let mut first = String::new();
            std::io::BufReader::new(&file).read_line(&mut first)?;
            let ours =
                serde_json::from_str::<Header>(first.trim_end()).is_ok_and(|h| h.doc == self.doc);
            if !ours {
                // Rewritten through a handle of its own: an appending handle cannot truncate
                // everywhere (Windows).
                drop(file);
                let header = serde_json::to_vec(&Header {
                    doc: self.doc.clone(),
                })
                .expect("serializable");
                crate::atomic::write_private(&path, &[header.as_slice(), b"\n"].concat())?;
                file = options.open(&path)?;
            } else {
                let mut last = [0u8; 1];
                file.seek(std::io::SeekFrom::End(-1))?;
                file.read_exact(&mut last)?;
                if last[0] != b'\n' {
                    file.write_all(b"\n")?;
                }
            }
            self.journal = Some(file);
        }
        let file = self.journal.as_mut().expect("opened above");
        // One write per line: a crash leaves at most the last line torn, which loading skips.
        file.write_all(&[line, b"\n"].concat())
    }
}

/// Replays the journal at `path` (if it is `doc`'s) over `files`; returns how many changes
/// it applied. A change is taken only where the disk agrees with it.
fn replay(
    root: &Path,
    path: &Path,
    doc: &str,
    exec: bool,
    files: &mut BTreeMap<String, Known>,
) -> usize {
    let Ok(file) = std::fs::File::open(path) else {
        return 0;
    };
    // Lines as bytes: a line torn inside a character is skipped, not the end of the journal.
    let mut lines = std::io::BufReader::new(file).split(b'\n');
    let ours = lines
        .next()
        .and_then(|l| l.ok())
        .and_then(|l| serde_json::from_slice::<Header>(&l).ok())
        .is_some_and(|h| h.doc == doc);
    if !ours {
        return 0;
    }
    let mut applied = 0;
    for line in lines {
        let Ok(line) = line else { break };
        let Ok(change) = serde_json::from_slice::<Change>(&line) else {
            continue;
        };
        if place::record_path(&change.path).is_err() {
            continue;
        }
        let on_disk = std::fs::symlink_metadata(root.join(&change.path)).ok();
        match change.known {
            Some(k) => {
                let there = on_disk.is_some_and(|m| {
                    let seen = Scanned::of(change.path.clone(), &m).trusting_exec(exec);
                    (m.is_file() || m.is_dir()) && k.describes(&seen)
                });
                if there {
                    files.insert(change.path, k);
                    applied += 1;
                }
            }
            None => {
                if on_disk.is_none() && files.remove(&change.path).is_some() {
                    applied += 1;
                }
            }
        }
    }
    applied
}

/// Removes the temporary files of snapshots a crash cut short: as large as the index, and
/// nothing else would ever remove them.
fn remove_unfinished_snapshots(dir: &Path) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        if name
            .to_str()
            .is_some_and(|n| crate::atomic::is_temporary_of(n, "index.json"))
        {
            std::fs::remove_file(entry.path()).ok();
        }
    }
}

impl FolderSync {
    /// Saves the index if it changed since it was last saved and a snapshot is due, or
    /// whenever it changed if `now` (see [`Index::snapshot`]). False if a snapshot was due
    /// and could not be written (it is due again).
    pub(super) async fn save_index(&self, now: bool) -> bool {
        let Some(snapshot) = self.index.lock().await.snapshot(now) else {
            return true;
        };
        if let Err(e) = snapshot.and_then(Snapshot::write) {
            tracing::warn!(
                "cannot save the index of {}: {e}",
                self.root.join(STATE_DIR).display()
            );
            self.index.lock().await.unsaved();
            return false;
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::folder::scan::mtime_ms;

    fn known(root: &Path, rel: &str, hash: &str) -> Known {
        let m = std::fs::metadata(root.join(rel)).unwrap();
        Known {
            size: m.len(),
            mtime_ms: mtime_ms(&m),
            hash: RecordHash::of(hash),
            vector: VersionVector::default(),
            source: Source::Record,
            exec: false,
            dir: false,
        }
    }

    #[test]
    fn a_change_after_the_last_snapshot_survives_a_crash() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        std::fs::write(root.join("a.txt"), b"one").unwrap();
        let mut index = Index::load(root, "doc", true);
        index.insert("a.txt", known(root, "a.txt", "h1"));
        index.snapshot(true).unwrap().unwrap().write().unwrap();
        // Written after the snapshot, then the process dies without saving again.
        std::fs::write(root.join("b.txt"), b"two").unwrap();
        index.insert("b.txt", known(root, "b.txt", "h2"));
        index.remove("a.txt");
        std::fs::remove_file(root.join("a.txt")).unwrap();
        drop(index);
        let loaded = Index::load(root, "doc", true);
        assert_eq!(loaded.keys().collect::<Vec<_>>(), ["b.txt"]);
        assert_eq!(loaded["b.txt"].hash, RecordHash::of("h2"));
    }

    #[test]
    fn an_entry_whose_rename_never_happened_is_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        std::fs::write(root.join("a.txt"), b"old").unwrap();
        let mut index = Index::load(root, "doc", true);
        index.insert("a.txt", known(root, "a.txt", "old"));
        // The new version is entered, then the crash comes before its rename: the old file
        // stays, and so does its entry.
        let mut next = known(root, "a.txt", "new");
        next.size = 5;
        index.insert("a.txt", next);
        // A removal entered before the file was moved away: the file is still there.
        std::fs::write(root.join("c.txt"), b"kept").unwrap();
        index.insert("c.txt", known(root, "c.txt", "c"));
        index.remove("c.txt");
        drop(index);
        let loaded = Index::load(root, "doc", true);
        assert_eq!(loaded["a.txt"].hash, RecordHash::of("old"));
        assert_eq!(loaded["c.txt"].hash, RecordHash::of("c"));
    }

    #[test]
    fn a_journal_of_another_document_or_a_torn_line_is_not_taken() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        std::fs::write(root.join("a.txt"), b"one").unwrap();
        let mut index = Index::load(root, "other", true);
        index.insert("a.txt", known(root, "a.txt", "h"));
        drop(index);
        assert!(Index::load(root, "doc", true).is_empty());
        let journal = root.join(STATE_DIR).join("index.journal");
        let mut text = std::fs::read(&journal).unwrap();
        text.extend_from_slice(b"{\"p\":\"../escape\",\"k\":null}\n{\"p\":\"a.t");
        std::fs::write(&journal, text).unwrap();
        let loaded = Index::load(root, "other", true);
        assert_eq!(loaded.keys().collect::<Vec<_>>(), ["a.txt"]);
    }

    #[test]
    fn a_line_after_a_torn_one_or_in_another_documents_journal_is_kept() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        std::fs::write(root.join("a.txt"), b"one").unwrap();
        std::fs::write(root.join("b.txt"), b"two").unwrap();
        let mut index = Index::load(root, "doc", true);
        index.insert("a.txt", known(root, "a.txt", "h1"));
        drop(index);
        let journal = root.join(STATE_DIR).join("index.journal");
        let mut text = std::fs::read(&journal).unwrap();
        // Torn inside a character: not even UTF-8.
        text.extend_from_slice(b"{\"p\":\"caf\xc3");
        std::fs::write(&journal, text).unwrap();
        let mut index = Index::load(root, "doc", true);
        index.insert("b.txt", known(root, "b.txt", "h2"));
        drop(index);
        assert_eq!(Index::load(root, "doc", true).len(), 2);
        // Another document's journal at the same place: started over, not appended to.
        let mut other = Index::load(root, "other", true);
        other.insert("b.txt", known(root, "b.txt", "h3"));
        drop(other);
        assert_eq!(
            Index::load(root, "other", true)["b.txt"].hash,
            RecordHash::of("h3")
        );
    }

    /// The counts a folder's summary shows follow every change, across a restart too.
    #[test]
    fn totals_follow_every_change() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        let copy = crate::folder::conflict::conflict_name("a.txt", 5, "laptop");
        for (rel, body) in [("a.txt", "one"), ("b.txt", "three"), (copy.as_str(), "1")] {
            std::fs::write(root.join(rel), body).unwrap();
        }
        let mut index = Index::load(root, "doc", true);
        let check = |index: &Index| {
            let files: Vec<&Known> = index.values().filter(|k| !k.dir).collect();
            let totals = (
                files.len() as u64,
                files.iter().map(|k| k.size).sum::<u64>(),
            );
            let copies: Vec<&String> = index
                .keys()
                .filter(|k| crate::folder::conflict::is_conflict_copy(k))
                .collect();
            assert_eq!(index.totals(), totals);
            assert_eq!(index.conflict_copies().collect::<Vec<_>>(), copies);
        };
        index.insert("a.txt", known(root, "a.txt", "h1"));
        index.insert("d", Known::dir(VersionVector::default(), Source::Record));
        index.insert(&copy, known(root, &copy, "h2"));
        check(&index);
        assert_eq!(index.totals(), (2, 4));
        assert_eq!(index.conflict_copies().count(), 1);
        // Replaced, by itself and by something else; removed; removed again.
        index.insert(&copy, known(root, &copy, "h2"));
        index.insert("a.txt", known(root, "b.txt", "h3"));
        check(&index);
        assert_eq!(index.totals(), (2, 6));
        index.remove(&copy);
        index.remove(&copy);
        index.remove("d");
        check(&index);
        assert_eq!(index.totals(), (1, 5));
        assert_eq!(index.conflict_copies().count(), 0);
        index.insert(&copy, known(root, &copy, "h2"));
        drop(index);
        let loaded = Index::load(root, "doc", true);
        check(&loaded);
        assert_eq!(loaded.conflict_copies().count(), 1);
    }

    /// The whole index is rewritten once its journal has grown to half of it, not at every
    /// change: a million files arriving would otherwise be rewritten every few seconds, and a
    /// large folder rewritten whole after each small change.
    #[test]
    fn a_snapshot_is_due_once_the_journal_is_half_the_index() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        let mut index = Index::load(root, "doc", true);
        let entry = || Known::dir(VersionVector::default(), Source::Record);
        index.insert("d0", entry());
        assert!(
            index.snapshot(false).is_none(),
            "one change is in the journal"
        );
        index.snapshot(true).unwrap().unwrap().write().unwrap();
        assert!(index.snapshot(true).is_none(), "nothing changed since");
        for i in 1..SNAPSHOT_AFTER {
            index.insert(&format!("d{i}"), entry());
        }
        assert!(index.snapshot(false).is_none());
        index.insert("one more", entry());
        index
            .snapshot(false)
            .expect("due")
            .unwrap()
            .write()
            .unwrap();
        // In a larger index, half of it is the measure.
        for i in 0..3 * SNAPSHOT_AFTER {
            index.insert(&format!("e{i}"), entry());
        }
        index.snapshot(true).unwrap().unwrap().write().unwrap();
        let n = index.len();
        for i in 0..n / 2 - 1 {
            index.insert(&format!("e{i}"), entry());
        }
        assert!(index.snapshot(false).is_none(), "{n} entries");
        index.insert("e0", entry());
        assert!(index.snapshot(false).is_some());
        assert!(index.snapshot(false).is_none(), "nothing changed since");
        // One change, however long ago the last snapshot: a line in the journal, no more.
        index.insert("e1", entry());
        assert!(index.snapshot(false).is_none());
        // A change that is in no journal is saved by the next snapshot asked for.
        index.unsaved();
        assert!(index.snapshot(false).is_some());
    }

    #[test]
    fn a_snapshot_that_was_not_written_keeps_its_journal() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        std::fs::write(root.join("a.txt"), b"one").unwrap();
        let mut index = Index::load(root, "doc", true);
        index.insert("a.txt", known(root, "a.txt", "h1"));
        // Taken (the journal is set aside) but the process dies before writing it.
        let lost = index.snapshot(true).unwrap();
        drop(lost);
        std::fs::write(root.join("b.txt"), b"two").unwrap();
        index.insert("b.txt", known(root, "b.txt", "h2"));
        drop(index);
        let mut loaded = Index::load(root, "doc", true);
        assert_eq!(loaded.len(), 2);
        // The next snapshot holds both; the set-aside journal goes once it is written.
        loaded.snapshot(true).unwrap().unwrap().write().unwrap();
        assert!(!root.join(STATE_DIR).join("index.journal.prev").exists());
        assert_eq!(Index::load(root, "doc", true).len(), 2);
    }

    /// A snapshot a crash cut short leaves its temporary file: the next load removes it. An
    /// entry whose hash was damaged costs that entry's hash, not the index.
    #[test]
    fn a_damaged_or_unfinished_snapshot_costs_no_more_than_it_must() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        std::fs::write(root.join("a.txt"), b"one").unwrap();
        std::fs::write(root.join("b.txt"), b"two").unwrap();
        let mut index = Index::load(root, "doc", true);
        index.insert("a.txt", known(root, "a.txt", "h1"));
        index.insert("b.txt", known(root, "b.txt", "h2"));
        index.snapshot(true).unwrap().unwrap().write().unwrap();
        drop(index);
        let state = root.join(STATE_DIR);
        let saved = std::fs::read_to_string(state.join("index.json")).unwrap();
        let damaged = saved.replace(&RecordHash::of("h1").to_string(), "not a hash");
        std::fs::write(state.join("index.json"), damaged).unwrap();
        let left = state.join(".index.json.0123456789ab.tmp");
        std::fs::write(&left, b"half a snapshot").unwrap();
        let loaded = Index::load(root, "doc", true);
        assert!(!left.exists());
        assert_eq!(loaded.len(), 2);
        assert_eq!(loaded["a.txt"].hash, RecordHash::NONE);
        assert_eq!(loaded["b.txt"].hash, RecordHash::of("h2"));
    }

    /// A snapshot that cannot be written (here its name is taken by a directory; a full disk
    /// alike) leaves the saved index and its journals as they were, and no temporary file.
    #[test]
    fn a_snapshot_that_cannot_be_written_loses_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        std::fs::write(root.join("a.txt"), b"one").unwrap();
        let mut index = Index::load(root, "doc", true);
        index.insert("a.txt", known(root, "a.txt", "h1"));
        let blocked = root.join(STATE_DIR).join("index.json");
        std::fs::create_dir_all(blocked.join("inside")).unwrap();
        let failed = index.snapshot(true).unwrap().and_then(Snapshot::write);
        assert!(failed.is_err());
        index.unsaved(); // as `save_index` does
        let state: Vec<_> = std::fs::read_dir(root.join(STATE_DIR))
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        assert!(state.iter().all(|n| !n.ends_with(".tmp")), "{state:?}");
        assert_eq!(Index::load(root, "doc", true).len(), 1, "the journal stays");
        std::fs::remove_dir_all(&blocked).unwrap();
        index
            .snapshot(false)
            .expect("due")
            .unwrap()
            .write()
            .unwrap();
        assert!(blocked.is_file());
        assert_eq!(Index::load(root, "doc", true).len(), 1);
    }
}
