//! Where a synced folder meets the disk: which relative paths are Ferry's own, and how a path
//! named by a peer becomes a place on disk without leaving the folder.
//!
//! Every path a peer names passes [`record_path`] before it is looked at, and every write or
//! removal at a peer's request goes through [`inside`], which refuses to pass through a
//! symbolic link (or a Windows junction) or a file on the way down. Together they keep a
//! read-write member from reaching Ferry's own state (`.ferry/` at any depth, the files Ferry is
//! writing, a one-shot transfer being staged) or anything outside the folder, whatever links
//! the user has inside it. See docs/DESIGN.md, "Threat model".

use std::path::{Path, PathBuf};

use crate::{
    folder::ignore::{STATE_DIR, TEMP_SUFFIX},
    names::validate_name,
};

/// Prefix of the staging directory a one-shot receive writes into (see `export.rs`).
pub const PARTIAL_PREFIX: &str = ".ferry-partial-";

/// True if `rel` names Ferry's own state or a file Ferry is in the middle of writing: a
/// `.ferry` component at any depth, a one-shot staging directory, or a temporary file. Compared
/// without case, since a case-insensitive file system opens `.FERRY` as `.ferry`.
pub fn is_state_path(rel: &str) -> bool {
    let lower = rel.to_lowercase();
    lower
        .split('/')
        .any(|c| c == STATE_DIR || c.starts_with(PARTIAL_PREFIX) || is_short_state_name(c))
        || lower.ends_with(TEMP_SUFFIX)
}

/// True for the 8.3 short names Windows may give `.ferry` (`FERRY~1`) or a staging directory
/// (`FERRY-~1`): on such a volume they open the same directory.
fn is_short_state_name(lower: &str) -> bool {
    ["ferry~", "ferry-~"].iter().any(|p| {
        lower
            .strip_prefix(p)
            .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
    })
}

/// Why a path named by a peer is refused.
pub fn record_path(rel: &str) -> Result<(), String> {
    validate_name(rel).map_err(|e| e.to_string())?;
    if is_state_path(rel) {
        return Err(format!("{rel:?} names Ferry's own state"));
    }
    Ok(())
}

/// The place of `rel` (a checked relative path) inside `root`. Every directory on the way must
/// be a real directory, not a symbolic link or a junction (which could lead out of the folder)
/// nor a file; missing directories are created when `create` is set (else the path is returned
/// as it would be). The last component itself
/// is not followed by the callers: they replace or move it, and a link is replaced as a link.
pub fn inside(root: &Path, rel: &str, create: bool) -> std::io::Result<PathBuf> {
    let mut path = root.to_path_buf();
    let mut parts = rel.split('/').peekable();
    while let Some(part) = parts.next() {
        path.push(part);
        if parts.peek().is_none() {
            break;
        }
        match std::fs::symlink_metadata(&path) {
            Ok(m) if m.is_dir() => {}
            Ok(m) if m.file_type().is_symlink() => {
                return Err(refused(format!(
                    "{} is a link; Ferry never writes through links",
                    path.display()
                )))
            }
            Ok(_) => {
                return Err(refused(format!(
                    "{} is a file where a folder is needed",
                    path.display()
                )))
            }
            // Nothing further down exists, so nothing there can lead elsewhere.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && !create => {
                for rest in parts.by_ref() {
                    path.push(rest);
                }
                break;
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                match std::fs::create_dir(&path) {
                    Ok(()) => {}
                    // Created by someone else meanwhile: fine if it is a real directory.
                    Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                        if !std::fs::symlink_metadata(&path)?.is_dir() {
                            return Err(refused(format!(
                                "{} changed while Ferry created it",
                                path.display()
                            )));
                        }
                    }
                    Err(e) => return Err(e),
                }
            }
            Err(e) => return Err(e),
        }
    }
    Ok(path)
}

/// True if `path` is a regular file itself (not a link to one).
pub fn is_file(path: &Path) -> bool {
    std::fs::symlink_metadata(path).is_ok_and(|m| m.is_file())
}

fn refused(msg: String) -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::PermissionDenied, msg)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn state_paths_at_any_depth_and_case() {
        for state in [
            ".ferry",
            ".ferry/trash/1.json",
            "a/.ferry/index.json",
            "a/.FERRY/x",
            "docs/report.pdf.ferry-tmp",
            "docs/report.pdf.FERRY-TMP",
            ".ferry-partial-0123abcd/x",
            "in/.ferry-partial-0123abcd",
            "FERRY~1/index.json",
            "a/ferry-~12/x",
        ] {
            assert!(is_state_path(state), "{state}");
            assert!(record_path(state).is_err(), "{state}");
        }
        for ok in [
            ".ferryignore",
            "a.ferry",
            "ferry/x",
            ".ferry2/x",
            "x.ferry-tmp.txt",
        ] {
            assert!(!is_state_path(ok), "{ok}");
        }
        assert!(record_path("../x").is_err());
    }

    #[cfg(unix)]
    #[test]
    fn never_through_a_link_or_a_file() {
        let dir = tempfile::tempdir().unwrap();
        let (root, outside) = (dir.path().join("root"), dir.path().join("outside"));
        std::fs::create_dir_all(root.join("real")).unwrap();
        std::fs::create_dir_all(&outside).unwrap();
        std::os::unix::fs::symlink(&outside, root.join("link")).unwrap();
        std::fs::write(root.join("file"), b"x").unwrap();
        assert_eq!(
            inside(&root, "real/a.txt", false).unwrap(),
            root.join("real/a.txt")
        );
        for bad in ["link/a.txt", "link/deeper/a.txt", "file/a.txt"] {
            let e = inside(&root, bad, true).unwrap_err();
            assert_eq!(e.kind(), std::io::ErrorKind::PermissionDenied, "{bad}");
        }
        assert_eq!(std::fs::read_dir(&outside).unwrap().count(), 0);
        // Missing directories are created only when asked.
        assert!(inside(&root, "new/sub/a.txt", false).is_ok());
        assert!(!root.join("new").exists());
        assert!(inside(&root, "new/sub/a.txt", true).is_ok());
        assert!(root.join("new/sub").is_dir());
        // The last component is returned as is (a link there is replaced, not followed).
        assert_eq!(inside(&root, "link", false).unwrap(), root.join("link"));
    }
}
