//! What is on disk in a synced folder, and the content hash of files that have stopped changing.
//!
//! A file still being written must not be shipped half-written, and a file that changes while
//! it is read must be read again. [`hash_if_stable`] takes the metadata seen by the scan, hashes
//! the file, and checks the metadata again: if size or modification time moved at any point, it
//! reports the file as unstable and the caller tries again later.

use std::{
    path::{Path, PathBuf},
    time::UNIX_EPOCH,
};

use crate::folder::{blocks, ignore::IgnoreRules, version::RecordHash};

/// A file found by a scan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scanned {
    /// Path relative to the folder root, `/`-separated.
    pub rel: String,
    /// Size in bytes.
    pub size: u64,
    /// Modification time, Unix milliseconds.
    pub mtime_ms: u64,
    /// Whether the file is executable; `None` where the file system has no such bit.
    pub exec: Option<bool>,
    /// True for a directory (size and time 0: only its existence syncs).
    pub dir: bool,
}

impl Scanned {
    /// `rel` as its metadata describes it.
    pub fn of(rel: String, meta: &std::fs::Metadata) -> Scanned {
        if meta.is_dir() {
            return Scanned {
                rel,
                size: 0,
                mtime_ms: 0,
                exec: None,
                dir: true,
            };
        }
        Scanned {
            rel,
            size: meta.len(),
            mtime_ms: mtime_ms(meta),
            exec: exec_bit(meta),
            dir: false,
        }
    }
}

impl Scanned {
    /// This view with the executable bit left out unless the file system keeps one (`kept`):
    /// where it does not, the bit a file shows says nothing.
    pub fn trusting_exec(mut self, kept: bool) -> Scanned {
        if !kept {
            self.exec = None;
        }
        self
    }
}

/// Whether the file `meta` describes is executable by its owner; `None` off Unix, where a
/// file has no such bit (a peer there keeps the bit of the version it edits).
pub fn exec_bit(meta: &std::fs::Metadata) -> Option<bool> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        Some(meta.permissions().mode() & 0o100 != 0)
    }
    #[cfg(not(unix))]
    {
        let _ = meta;
        None
    }
}

/// Gives the file at `path` the executable bits `exec` asks for (where the file can be read,
/// it can be executed), leaving its other permissions as they are. Nothing off Unix.
pub fn set_exec(path: &Path, exec: bool) -> std::io::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        // Only the permission bits: setuid, setgid and sticky never come from a peer's file.
        let mode = std::fs::symlink_metadata(path)?.permissions().mode() & 0o777;
        let want = if exec {
            mode | ((mode & 0o444) >> 2)
        } else {
            mode & !0o111
        };
        if want != mode {
            std::fs::set_permissions(path, std::fs::Permissions::from_mode(want))?;
        }
    }
    #[cfg(not(unix))]
    let _ = (path, exec);
    Ok(())
}

/// Gives `to` the permissions of `from` (the file it replaces keeps its permissions).
pub fn copy_permissions(from: &Path, to: &Path) -> std::io::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::symlink_metadata(from)?.permissions().mode() & 0o777;
        std::fs::set_permissions(to, std::fs::Permissions::from_mode(mode))
    }
    #[cfg(not(unix))]
    {
        let perms = std::fs::symlink_metadata(from)?.permissions();
        std::fs::set_permissions(to, perms)
    }
}

/// Lists the files and directories of the folder at `root` that are not ignored, sorted by
/// path (the root itself is not listed). Symbolic links are not followed; directories that are
/// ignored are not entered.
pub fn scan(root: &Path, rules: &IgnoreRules) -> Vec<Scanned> {
    let mut out = Vec::new();
    walk(root, root, rules, &mut out);
    out.sort_by(|a, b| a.rel.cmp(&b.rel));
    out
}

/// Like [`scan`], limited to the given paths (relative to `root`): a file is listed itself, a
/// directory itself and with everything under it, a path that is gone or ignored contributes
/// nothing.
/// This is how a batch of watcher events is looked at without walking the whole folder.
pub fn scan_some<'a>(
    root: &Path,
    rules: &IgnoreRules,
    rels: impl IntoIterator<Item = &'a String>,
) -> Vec<Scanned> {
    let mut out = Vec::new();
    for rel in rels {
        if validate_rel(rel, rules).is_none() {
            continue;
        }
        let path = root.join(rel);
        let Ok(meta) = std::fs::symlink_metadata(&path) else {
            continue;
        };
        if meta.is_file() {
            out.push(Scanned::of(rel.clone(), &meta));
        } else if meta.is_dir() {
            // `walk` lists the directory itself first.
            walk(root, &path, rules, &mut out);
        }
    }
    out.sort_by(|a, b| a.rel.cmp(&b.rel));
    out.dedup_by(|a, b| a.rel == b.rel);
    out
}

/// `Some(())` if neither `rel` nor a directory above it is ignored.
fn validate_rel(rel: &str, rules: &IgnoreRules) -> Option<()> {
    if rel.is_empty() {
        return None;
    }
    let parts: Vec<&str> = rel.split('/').collect();
    for i in 1..=parts.len() {
        let prefix = parts[..i].join("/");
        let is_dir = i < parts.len() || Path::new(rel).is_dir();
        if rules.is_ignored(&prefix, is_dir) {
            return None;
        }
    }
    Some(())
}

fn walk(root: &Path, from: &Path, rules: &IgnoreRules, out: &mut Vec<Scanned>) {
    let walker = walkdir::WalkDir::new(from).follow_links(false).into_iter();
    let it = walker.filter_entry(|e| {
        let Ok(rel) = e.path().strip_prefix(root) else {
            return true;
        };
        if rel.as_os_str().is_empty() {
            return true;
        }
        match rel_string(rel) {
            Some(r) => !rules.is_ignored(&r, e.file_type().is_dir()),
            None => false,
        }
    });
    for entry in it {
        let Ok(entry) = entry else { continue };
        let kind = entry.file_type();
        if !kind.is_file() && !kind.is_dir() || entry.path() == root {
            continue;
        }
        let Ok(meta) = entry.metadata() else { continue };
        let Some(rel) = entry.path().strip_prefix(root).ok().and_then(rel_string) else {
            continue;
        };
        out.push(Scanned::of(rel, &meta));
    }
}

/// A relative path as a `/`-separated string; `None` if it is not valid UTF-8.
pub(crate) fn rel_string(rel: &Path) -> Option<String> {
    let parts: Option<Vec<&str>> = rel.components().map(|c| c.as_os_str().to_str()).collect();
    Some(parts?.join("/"))
}

/// Modification time of `meta` in Unix milliseconds.
pub fn mtime_ms(meta: &std::fs::Metadata) -> u64 {
    meta.modified()
        .ok()
        .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// The BLAKE3 hash of `path`, if its size and modification time are still those the scan
/// saw, before and after reading. `None` means it changed: it is being written; try later.
pub fn hash_if_stable(path: &PathBuf, seen: &Scanned) -> std::io::Result<Option<RecordHash>> {
    Ok(content_if_stable(path, seen)?.map(|(hash, _)| hash))
}

/// Like [`hash_if_stable`], and also the block list of a large file (see [`blocks`]).
pub fn content_if_stable(
    path: &PathBuf,
    seen: &Scanned,
) -> std::io::Result<Option<(RecordHash, Option<Vec<blocks::ChainingValue>>)>> {
    let same = |m: &std::fs::Metadata| m.len() == seen.size && mtime_ms(m) == seen.mtime_ms;
    let file = std::fs::File::open(path)?;
    if !same(&file.metadata()?) {
        return Ok(None);
    }
    let (hash, list) = blocks::hash_reader(file, seen.size)?;
    if !same(&std::fs::metadata(path)?) {
        return Ok(None);
    }
    Ok(Some((RecordHash::from(iroh_blobs::Hash::from(hash)), list)))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Creates each relative path under `root`, holding its own name.
    fn files(root: &Path, rels: &[&str]) {
        for rel in rels {
            let p = root.join(rel);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, rel).unwrap();
        }
    }

    #[test]
    fn scan_skips_ignored_and_links() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        files(
            root,
            &[
                "a.txt",
                "sub/b.txt",
                ".ferry/trash/x",
                "sub/c.swp",
                "node_modules/m.js",
            ],
        );
        std::fs::write(root.join(".ferryignore"), "node_modules/\n").unwrap();
        #[cfg(unix)]
        std::os::unix::fs::symlink("/etc/passwd", root.join("link")).unwrap();
        let rules = IgnoreRules::load(root);
        let rels: Vec<String> = scan(root, &rules).into_iter().map(|s| s.rel).collect();
        // `.ferryignore` is each device's own: not synced. Directories are listed too.
        assert_eq!(rels, ["a.txt", "sub", "sub/b.txt"]);
    }

    #[test]
    fn scan_some_looks_only_at_the_given_paths() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        files(
            root,
            &[
                "a.txt",
                "b.txt",
                "sub/c.txt",
                "sub/deeper/d.txt",
                "skip/e.txt",
                "x.swp",
            ],
        );
        std::fs::write(root.join(".ferryignore"), "skip/\n").unwrap();
        let rules = IgnoreRules::load(root);
        let asked: Vec<String> = [
            "a.txt",
            "sub",
            "gone.txt",
            "skip/e.txt",
            "x.swp",
            "sub/c.txt",
        ]
        .map(String::from)
        .to_vec();
        let rels: Vec<String> = scan_some(root, &rules, &asked)
            .into_iter()
            .map(|s| s.rel)
            .collect();
        assert_eq!(
            rels,
            [
                "a.txt",
                "sub",
                "sub/c.txt",
                "sub/deeper",
                "sub/deeper/d.txt"
            ]
        );
    }

    #[test]
    fn a_file_that_changes_is_not_hashed() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("f");
        std::fs::write(&p, "one").unwrap();
        let rules = IgnoreRules::load(dir.path());
        let seen = scan(dir.path(), &rules).remove(0);
        let h = hash_if_stable(&p, &seen).unwrap().unwrap();
        assert_eq!(h.to_string(), blake3::hash(b"one").to_hex().to_string());
        std::fs::write(&p, "longer now").unwrap();
        assert_eq!(
            hash_if_stable(&p, &seen).unwrap(),
            None,
            "changed since the scan"
        );
    }
}
