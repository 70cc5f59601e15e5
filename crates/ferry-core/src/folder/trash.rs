//! The per-folder trash: files deleted or overwritten by a peer's change go here, with their
//! original path and the time, and can be restored. Nothing a sync removes is lost until the
//! trash is pruned (by age and total size).
//!
//! Layout: `<folder>/.ferry/trash/<id>/<original relative path>` plus `<id>.json` describing it.
//! The trash is inside the folder, so moving a file in or out is a rename on one filesystem.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::{error::Error, export::move_into_place, folder::ignore::STATE_DIR};

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

    /// Moves `rel` (a file relative to the folder) into the trash.
    pub fn put(&self, rel: &str, now_ms: u64) -> Result<TrashEntry, Error> {
        let src = self.root.join(rel);
        let size = std::fs::metadata(&src)
            .map_err(|e| Error::write(&src, e))?
            .len();
        let id = format!(
            "{now_ms:013}-{}",
            data_encoding::HEXLOWER.encode(&rand::random::<[u8; 4]>())
        );
        let target = self.dir().join(&id).join(rel);
        std::fs::create_dir_all(target.parent().expect("has a parent"))
            .map_err(|e| Error::write(&target, e))?;
        std::fs::rename(&src, &target).map_err(|e| Error::write(&src, e))?;
        let entry = TrashEntry {
            id: id.clone(),
            original: rel.to_string(),
            trashed_at_ms: now_ms,
            size,
        };
        let meta = self.dir().join(format!("{id}.json"));
        std::fs::write(&meta, serde_json::to_vec(&entry).expect("serializable"))
            .map_err(|e| Error::write(&meta, e))?;
        Ok(entry)
    }

    /// Everything in the trash, oldest first.
    pub fn list(&self) -> Vec<TrashEntry> {
        let mut out: Vec<TrashEntry> = std::fs::read_dir(self.dir())
            .into_iter()
            .flatten()
            .flatten()
            .filter(|e| e.path().extension().is_some_and(|x| x == "json"))
            .filter_map(|e| std::fs::read(e.path()).ok())
            .filter_map(|b| serde_json::from_slice(&b).ok())
            .collect();
        out.sort_by(|a, b| a.id.cmp(&b.id));
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
        let original = self.root.join(&entry.original);
        let parent = original.parent().expect("has a parent").to_path_buf();
        std::fs::create_dir_all(&parent).map_err(|e| Error::write(&parent, e))?;
        let name = Path::new(&entry.original)
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or("restored");
        let landed = move_into_place(&stored, &parent, name)?;
        self.forget(&entry.id);
        Ok(landed)
    }

    /// Deletes entries older than `max_age_ms`, then the oldest until the trash holds at most
    /// `max_bytes`. Returns how many were deleted.
    pub fn prune(&self, now_ms: u64, max_age_ms: u64, max_bytes: u64) -> usize {
        let entries = self.list();
        let mut total: u64 = entries.iter().map(|e| e.size).sum();
        let mut removed = 0;
        for e in entries {
            let too_old = now_ms.saturating_sub(e.trashed_at_ms) > max_age_ms;
            if too_old || total > max_bytes {
                total = total.saturating_sub(e.size);
                self.forget(&e.id);
                removed += 1;
            }
        }
        removed
    }

    fn forget(&self, id: &str) {
        std::fs::remove_dir_all(self.dir().join(id)).ok();
        std::fs::remove_file(self.dir().join(format!("{id}.json"))).ok();
    }
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

    #[test]
    fn prune_by_age_and_size() {
        let dir = tempfile::tempdir().unwrap();
        let t = Trash::new(dir.path());
        for (i, size) in [10usize, 20, 30].iter().enumerate() {
            std::fs::write(dir.path().join(format!("f{i}")), vec![0u8; *size]).unwrap();
            t.put(&format!("f{i}"), 1_000 * (i as u64 + 1)).unwrap();
        }
        assert_eq!(t.prune(3_500, 2_000, u64::MAX), 1, "f0 is older than 2 s");
        assert_eq!(t.prune(3_500, u64::MAX, 35), 1, "f1 goes to fit 35 bytes");
        let left: Vec<String> = t.list().into_iter().map(|e| e.original).collect();
        assert_eq!(left, ["f2"]);
    }
}
