//! The per-folder trash: files deleted or overwritten by a peer's change go here, with their
//! original path and the time, and can be restored. Nothing a sync removes is lost until the
//! trash is pruned (by age and total size).
//!
//! Layout: `<folder>/.ferry/trash/<id>/<original relative path>` plus `<id>.json` describing it.
//! The trash is inside the folder, so moving a file in or out is a rename on one filesystem.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::{
    atomic::write_atomic,
    error::Error,
    export::move_into_place,
    folder::{ignore::STATE_DIR, place},
};

/// One trashed file.
#[cfg_attr(feature = "specta", derive(specta::Type))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TrashEntry {
    /// Identifier (also the directory name).
    pub id: String,
    /// Where the file was, relative to the folder.
    pub original: String,
    /// When it was trashed, Unix milliseconds.
    #[cfg_attr(feature = "specta", specta(type = specta_typescript::Number))]
    pub trashed_at_ms: u64,
    /// Size in bytes.
    #[cfg_attr(feature = "specta", specta(type = specta_typescript::Number))]
    pub size: u64,
}

/// The trash of one synced folder.
#[derive(Debug, Clone)]
pub struct Trash {
    root: PathBuf,
}

impl Trash {
    /// The trash of the folder at `root`.
    pub fn new(root: impl Into<PathBuf>) -> Trash {
        Trash { root: root.into() }
    }

    fn dir(&self) -> PathBuf {
        self.root.join(STATE_DIR).join("trash")
    }

    /// Moves `rel` (a file relative to the folder) into the trash. Never reaches through a link.
    pub fn put(&self, rel: &str, now_ms: u64) -> Result<TrashEntry, Error> {
        self.file(rel, now_ms, false)
    }

    fn file(&self, rel: &str, now_ms: u64, link: bool) -> Result<TrashEntry, Error> {
        place::record_path(rel).map_err(Error::BadData)?;
        let src = place::inside(&self.root, rel, false)
            .map_err(|e| Error::write(self.root.join(rel), e))?;
        let size = std::fs::symlink_metadata(&src)
            .map_err(|e| Error::write(&src, e))?
            .len();
        let id = format!(
            "{now_ms:013}-{}",
            data_encoding::HEXLOWER.encode(&rand::random::<[u8; 4]>())
        );
        let target = self.dir().join(&id).join(rel);
        std::fs::create_dir_all(target.parent().expect("has a parent"))
            .map_err(|e| Error::write(&target, e))?;
        // The description is written first: the moment the file leaves its place it is listed
        // (an entry whose file never arrived is not), and a crash in between loses nothing.
        let entry = TrashEntry {
            id: id.clone(),
            original: rel.to_string(),
            trashed_at_ms: now_ms,
            size,
        };
        let meta = self.dir().join(format!("{id}.json"));
        write_atomic(&meta, &serde_json::to_vec(&entry).expect("serializable"))
            .map_err(|e| Error::write(&meta, e))?;
        let linked = link && std::fs::hard_link(&src, &target).is_ok();
        if !linked {
            if let Err(e) = std::fs::rename(&src, &target) {
                std::fs::remove_file(&meta).ok();
                return Err(Error::write(&src, e));
            }
        }
        Ok(entry)
    }

    /// Keeps a copy of `rel` in the trash without removing it: a second name for the same file
    /// (a hard link), which the caller then replaces at `rel` with one rename. Where the file
    /// system has no hard links, the file is moved as by [`Trash::put`].
    pub fn put_linked(&self, rel: &str, now_ms: u64) -> Result<TrashEntry, Error> {
        self.file(rel, now_ms, true)
    }

    /// Everything in the trash, oldest first. An entry whose description does not match its
    /// file name, or whose id or path could lead anywhere else, is skipped: what is read back
    /// from disk is checked like anything else.
    pub fn list(&self) -> Vec<TrashEntry> {
        self.entries()
            .into_iter()
            .filter_map(|(entry, present)| present.then_some(entry))
            .collect()
    }

    /// Every valid description, oldest first, with whether its file is there.
    fn entries(&self) -> Vec<(TrashEntry, bool)> {
        let mut out: Vec<(TrashEntry, bool)> = std::fs::read_dir(self.dir())
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|e| {
                let name = e.file_name();
                let id = name.to_str()?.strip_suffix(".json")?;
                if !valid_id(id) {
                    return None;
                }
                let entry: TrashEntry =
                    serde_json::from_slice(&std::fs::read(e.path()).ok()?).ok()?;
                if entry.id != id || place::record_path(&entry.original).is_err() {
                    return None;
                }
                let present = std::fs::symlink_metadata(self.dir().join(id).join(&entry.original))
                    .is_ok_and(|m| m.is_file());
                Some((entry, present))
            })
            .collect();
        out.sort_by(|a, b| a.0.id.cmp(&b.0.id));
        out
    }

    /// Puts a trashed file back at its original path, or beside it (`name (1).ext`) if that
    /// path is taken now. Returns where it landed.
    pub fn restore(&self, id: &str) -> Result<PathBuf, Error> {
        let entry = self
            .list()
            .into_iter()
            .find(|e| e.id == id)
            .ok_or_else(|| Error::Config(format!("nothing in the trash with id {id:?}")))?;
        let stored = self.dir().join(&entry.id).join(&entry.original);
        let original = place::inside(&self.root, &entry.original, true)
            .map_err(|e| Error::write(self.root.join(&entry.original), e))?;
        let parent = original.parent().expect("has a parent").to_path_buf();
        let name = Path::new(&entry.original)
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or("restored");
        let landed = move_into_place(&stored, &parent, name)?;
        self.forget(&entry.id);
        Ok(landed)
    }

    /// Deletes entries older than `max_age_ms`, then the oldest until the trash holds at most
    /// `max_bytes`, but never, for size, an entry trashed less than [`KEEP_AT_LEAST_MS`] ago:
    /// a deleted 4 GB video is still recoverable tomorrow, whatever the size cap. Returns how
    /// many were deleted.
    pub fn prune(&self, now_ms: u64, max_age_ms: u64, max_bytes: u64) -> usize {
        let (entries, orphans): (Vec<_>, Vec<_>) = self
            .entries()
            .into_iter()
            .partition(|(_, present)| *present);
        // A description whose file never arrived (a crash between the two) goes once it is
        // clearly not a move in progress.
        for (e, _) in orphans {
            if now_ms.saturating_sub(e.trashed_at_ms) > 60_000 {
                self.forget(&e.id);
            }
        }
        let entries: Vec<TrashEntry> = entries.into_iter().map(|(e, _)| e).collect();
        let mut total: u64 = entries.iter().map(|e| e.size).sum();
        let mut removed = 0;
        for e in entries {
            let age = now_ms.saturating_sub(e.trashed_at_ms);
            let too_old = age > max_age_ms;
            let too_big = total > max_bytes && age >= KEEP_AT_LEAST_MS;
            if too_old || too_big {
                total = total.saturating_sub(e.size);
                self.forget(&e.id);
                removed += 1;
            }
        }
        removed
    }

    fn forget(&self, id: &str) {
        if !valid_id(id) {
            return;
        }
        std::fs::remove_dir_all(self.dir().join(id)).ok();
        std::fs::remove_file(self.dir().join(format!("{id}.json"))).ok();
    }
}

/// How long a trashed file is kept whatever the trash's size limit: a day.
pub const KEEP_AT_LEAST_MS: u64 = 86_400_000;

/// True for ids [`Trash::put`] makes: 13 digits, a dash, 8 lowercase hex digits. Nothing else
/// is ever joined to the trash directory.
fn valid_id(id: &str) -> bool {
    let Some((time, rand)) = id.split_once('-') else {
        return false;
    };
    time.len() == 13
        && time.bytes().all(|b| b.is_ascii_digit())
        && rand.len() == 8
        && rand.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn put_list_restore() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        std::fs::create_dir_all(root.join("docs")).unwrap();
        std::fs::write(root.join("docs/a.txt"), "first").unwrap();
        let t = Trash::new(root);
        let e = t.put("docs/a.txt", 1_000).unwrap();
        assert!(!root.join("docs/a.txt").exists());
        assert_eq!(t.list(), vec![e.clone()]);
        assert_eq!(e.original, "docs/a.txt");
        assert_eq!(e.size, 5);
        // Something new took the name meanwhile: the restored file lands beside it.
        std::fs::write(root.join("docs/a.txt"), "second").unwrap();
        let landed = t.restore(&e.id).unwrap();
        assert_eq!(landed, root.join("docs/a (1).txt"));
        assert_eq!(std::fs::read_to_string(&landed).unwrap(), "first");
        assert_eq!(
            std::fs::read_to_string(root.join("docs/a.txt")).unwrap(),
            "second"
        );
        assert!(t.list().is_empty());
        assert!(t.restore("nope").is_err());
    }

    /// A crash between writing an entry's description and moving its file: the entry is not
    /// listed (nothing to restore), the file is still in its place, and the description goes
    /// with the next prune once it is clearly not a move in progress.
    #[test]
    fn a_description_whose_file_never_arrived_is_not_listed_and_goes() {
        let dir = tempfile::tempdir().unwrap();
        let t = Trash::new(dir.path());
        std::fs::write(dir.path().join("kept.txt"), b"still here").unwrap();
        let entry = t.put("kept.txt", 1_000).unwrap();
        // Undo the move only: what a crash right after the description was written leaves.
        std::fs::rename(
            t.dir().join(&entry.id).join("kept.txt"),
            dir.path().join("kept.txt"),
        )
        .unwrap();
        assert!(t.list().is_empty());
        assert_eq!(t.prune(1_000 + 30_000, u64::MAX, u64::MAX), 0);
        assert!(t.dir().join(format!("{}.json", entry.id)).exists());
        t.prune(1_000 + 120_000, u64::MAX, u64::MAX);
        assert!(!t.dir().join(format!("{}.json", entry.id)).exists());
        assert_eq!(
            std::fs::read(dir.path().join("kept.txt")).unwrap(),
            b"still here"
        );
    }

    #[test]
    fn prune_by_age_and_size() {
        const DAY: u64 = KEEP_AT_LEAST_MS;
        let dir = tempfile::tempdir().unwrap();
        let t = Trash::new(dir.path());
        for (i, size) in [10usize, 20, 30, 40].iter().enumerate() {
            std::fs::write(dir.path().join(format!("f{i}")), vec![0u8; *size]).unwrap();
            t.put(&format!("f{i}"), DAY * (i as u64 + 1)).unwrap();
        }
        let now = 4 * DAY + DAY / 2;
        assert_eq!(
            t.prune(now, 3 * DAY, u64::MAX),
            1,
            "f0 is older than 3 days"
        );
        assert_eq!(t.prune(now, u64::MAX, 75), 1, "f1 goes to fit 75 bytes");
        // f3 was trashed half a day ago: kept, although the trash is over its size.
        assert_eq!(
            t.prune(now, u64::MAX, 0),
            1,
            "only f2 is old enough to go for size"
        );
        let left: Vec<String> = t.list().into_iter().map(|e| e.original).collect();
        assert_eq!(left, ["f3"]);
    }

    /// The trash's descriptions are read back from disk: one that names another id, an id
    /// that climbs out, or a path outside the folder is never acted on.
    #[test]
    fn forged_descriptions_are_ignored() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("folder");
        let outside = dir.path().join("outside");
        std::fs::create_dir_all(root.join(".ferry/trash")).unwrap();
        std::fs::create_dir_all(&outside).unwrap();
        std::fs::write(outside.join("precious.txt"), b"keep me").unwrap();
        let forged = |name: &str, id: &str, original: &str| {
            let e = TrashEntry {
                id: id.into(),
                original: original.into(),
                trashed_at_ms: 0,
                size: 1 << 40,
            };
            std::fs::write(
                root.join(".ferry/trash").join(name),
                serde_json::to_vec(&e).unwrap(),
            )
            .unwrap();
        };
        forged("0000000000001-aaaaaaaa.json", "../../../outside", "x");
        forged(
            "0000000000002-bbbbbbbb.json",
            "0000000000002-bbbbbbbb",
            "../outside",
        );
        forged(
            "0000000000003-cccccccc.json",
            "0000000000003-cccccccc",
            ".ferry/index.json",
        );
        forged("..%2f..%2foutside.json", "..%2f..%2foutside", "x");
        let t = Trash::new(&root);
        assert!(t.list().is_empty(), "{:?}", t.list());
        assert_eq!(t.prune(u64::MAX, 0, 0), 0);
        assert!(t.restore("../../../outside").is_err());
        assert_eq!(
            std::fs::read(outside.join("precious.txt")).unwrap(),
            b"keep me"
        );
    }
}
