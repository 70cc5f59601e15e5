//! Writing received files into the destination without ever overwriting anything.
//!
//! Files are first exported from the verified store into a hidden staging directory inside the
//! destination (`.ferry-partial-<hash>`), which lives on the same filesystem so that moving out
//! of it is a rename. Once every file is written, each top-level entry is moved into place under
//! a name that does not exist yet: `report.pdf`, else `report (1).pdf`, `report (2).pdf`, ...
//! A crash leaves at most the staging directory, which the next attempt finishes (see
//! `receive.rs`, "Export").

use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

/// Checks, before anything is fetched, that files can be saved in `dest`: it is a folder
/// (created if missing) in which this process may create files.
pub fn check_destination(dest: &Path) -> Result<()> {
    if std::fs::metadata(dest).is_ok_and(|m| !m.is_dir()) {
        return Err(Error::Write {
            path: dest.to_path_buf(),
            source: std::io::Error::other("it is a file, not a folder: choose a folder to save in"),
        });
    }
    std::fs::create_dir_all(dest).map_err(|e| Error::write(dest, e))?;
    // Named like Ferry's other temporary files, which synced folders ignore.
    let probe = dest.join(format!(".probe-{:016x}.ferry-tmp", rand::random::<u64>()));
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&probe)
        .map_err(|e| Error::write(dest, e))?;
    if let Err(e) = std::fs::remove_file(&probe) {
        tracing::warn!("cannot remove {}: {e}", probe.display());
    }
    Ok(())
}

/// True if `a` and `b` hold the same content: two files with the same bytes, or two folders
/// with the same files (names and bytes; links and empty folders are not compared). For
/// telling a person that what they received was there already.
pub fn same_content(a: &Path, b: &Path) -> bool {
    fn same_file(a: &Path, b: &Path) -> bool {
        use std::io::Read;
        let (Ok(ma), Ok(mb)) = (std::fs::metadata(a), std::fs::metadata(b)) else {
            return false;
        };
        if ma.len() != mb.len() {
            return false;
        }
        let (Ok(mut fa), Ok(mut fb)) = (std::fs::File::open(a), std::fs::File::open(b)) else {
            return false;
        };
        let (mut ba, mut bb) = (vec![0u8; 1 << 16], vec![0u8; 1 << 16]);
        loop {
            let n = match fa.read(&mut ba) {
                Ok(0) => return fb.read(&mut bb).is_ok_and(|m| m == 0),
                Ok(n) => n,
                Err(_) => return false,
            };
            if fb.read_exact(&mut bb[..n]).is_err() || ba[..n] != bb[..n] {
                return false;
            }
        }
    }
    fn files(root: &Path) -> Vec<PathBuf> {
        let mut out: Vec<PathBuf> = walkdir::WalkDir::new(root)
            .follow_links(false)
            .into_iter()
            .filter_map(|e| e.ok())
            .filter(|e| e.file_type().is_file())
            .filter_map(|e| e.path().strip_prefix(root).ok().map(Path::to_path_buf))
            .collect();
        out.sort();
        out
    }
    match (std::fs::metadata(a), std::fs::metadata(b)) {
        (Ok(ma), Ok(mb)) if ma.is_file() && mb.is_file() => same_file(a, b),
        (Ok(ma), Ok(mb)) if ma.is_dir() && mb.is_dir() => {
            let (fa, fb) = (files(a), files(b));
            fa == fb && fa.iter().all(|rel| same_file(&a.join(rel), &b.join(rel)))
        }
        _ => false,
    }
}

/// Name of the staging directory for a collection.
pub fn staging_dir(dest: &Path, hash_hex: &str) -> PathBuf {
    dest.join(format!(
        ".ferry-partial-{}",
        &hash_hex[..hash_hex.len().min(16)]
    ))
}

/// Creates `rel`'s parent directories below `root`. `rel` must be a validated relative path.
pub fn create_parents(root: &Path, rel: &Path) -> Result<PathBuf> {
    let target = root.join(rel);
    if let Some(parent) = target.parent() {
        std::fs::create_dir_all(parent).map_err(|e| Error::write(parent, e))?;
    }
    Ok(target)
}

/// The first name of the form `stem (n).ext` that does not exist in `dir`.
pub fn free_name(dir: &Path, name: &str) -> PathBuf {
    let first = dir.join(name);
    if !exists(&first) {
        return first;
    }
    let (stem, ext) = split_ext(name);
    for n in 1.. {
        let candidate = dir.join(format!("{stem} ({n}){ext}"));
        if !exists(&candidate) {
            return candidate;
        }
    }
    unreachable!("some name is free")
}

fn exists(p: &Path) -> bool {
    std::fs::symlink_metadata(p).is_ok()
}

fn split_ext(name: &str) -> (&str, &str) {
    match name.rfind('.') {
        Some(i) if i > 0 => (&name[..i], &name[i..]),
        _ => (name, ""),
    }
}

/// Moves `src` into `dir` under `name` or the first free variant of it, never replacing
/// anything. Returns where it landed.
pub fn move_into_place(src: &Path, dir: &Path, name: &str) -> Result<PathBuf> {
    for _ in 0..100 {
        let target = free_name(dir, name);
        let is_dir = std::fs::symlink_metadata(src)
            .map_err(|e| Error::write(src, e))?
            .is_dir();
        if is_dir {
            // Directories cannot be hard-linked; the free-name check and the rename are a
            // narrow window only another local process could race.
            match std::fs::rename(src, &target) {
                Ok(()) => return Ok(target),
                Err(e) if exists(&target) => {
                    tracing::debug!("lost a race for {}: {e}", target.display());
                    continue;
                }
                Err(e) => return Err(Error::write(&target, e)),
            }
        }
        // For files a hard link is an atomic "create only if absent".
        match std::fs::hard_link(src, &target) {
            Ok(()) => {
                std::fs::remove_file(src).ok();
                return Ok(target);
            }
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(_) => {
                // Filesystems without hard links: fall back to check-then-rename.
                if exists(&target) {
                    continue;
                }
                std::fs::rename(src, &target).map_err(|e| Error::write(&target, e))?;
                return Ok(target);
            }
        }
    }
    Err(Error::write(
        dir.join(name),
        std::io::Error::other("no free name found"),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_content_compares_bytes_and_trees() {
        let dir = tempfile::tempdir().unwrap();
        let p = |n: &str| dir.path().join(n);
        for (name, body) in [
            ("a", "x"),
            ("b", "x"),
            ("c", "y"),
            ("t1/f", "1"),
            ("t2/f", "1"),
            ("t3/f", "2"),
        ] {
            std::fs::create_dir_all(p(name).parent().unwrap()).unwrap();
            std::fs::write(p(name), body).unwrap();
        }
        assert!(same_content(&p("a"), &p("b")));
        assert!(!same_content(&p("a"), &p("c")));
        assert!(same_content(&p("t1"), &p("t2")));
        assert!(!same_content(&p("t1"), &p("t3")));
        assert!(!same_content(&p("a"), &p("t1")));
        assert!(!same_content(&p("a"), &p("missing")));
        std::fs::write(p("t2/g"), "extra").unwrap();
        assert!(!same_content(&p("t1"), &p("t2")));
    }

    #[test]
    fn never_overwrites() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        std::fs::write(d.join("a.txt"), "old").unwrap();
        std::fs::write(d.join("a (1).txt"), "old1").unwrap();
        std::fs::write(d.join("new"), "new").unwrap();
        let landed = move_into_place(&d.join("new"), d, "a.txt").unwrap();
        assert_eq!(landed, d.join("a (2).txt"));
        assert_eq!(std::fs::read_to_string(d.join("a.txt")).unwrap(), "old");
        assert_eq!(
            std::fs::read_to_string(d.join("a (1).txt")).unwrap(),
            "old1"
        );
        assert_eq!(std::fs::read_to_string(&landed).unwrap(), "new");
        assert!(!d.join("new").exists());

        std::fs::create_dir(d.join("folder")).unwrap();
        std::fs::create_dir(d.join("incoming")).unwrap();
        let landed = move_into_place(&d.join("incoming"), d, "folder").unwrap();
        assert_eq!(landed, d.join("folder (1)"));
        assert_eq!(free_name(d, ".bashrc"), d.join(".bashrc"));
        std::fs::write(d.join("noext"), "").unwrap();
        assert_eq!(free_name(d, "noext"), d.join("noext (1)"));
    }
}
