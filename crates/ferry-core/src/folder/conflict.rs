//! Names of conflict copies, in Syncthing's format so people recognise them:
//! `name.sync-conflict-<YYYYMMDD>-<HHMMSS>-<device>.ext`.
//!
//! The name depends only on the losing version (its modification time and device), so every
//! peer that resolves the same conflict picks the same name and the folders converge.
//! [`resolve`] is what a person does after review: keep one version or both.

use std::path::{Path, PathBuf};

use crate::{
    error::Error, export::move_into_place, folder::trash::Trash, history::now_ms,
    names::validate_name,
};

/// The conflict-copy path for `rel` (a `/`-separated relative path) of a version modified at
/// `mtime_ms` (Unix milliseconds, UTC) on `device`.
pub fn conflict_name(rel: &str, mtime_ms: u64, device: &str) -> String {
    let (dir, file) = match rel.rfind('/') {
        Some(i) => (&rel[..=i], &rel[i + 1..]),
        None => ("", rel),
    };
    let (stem, ext) = match file.rfind('.') {
        Some(i) if i > 0 => (&file[..i], &file[i..]),
        _ => (file, ""),
    };
    let device: String = device
        .chars()
        .filter(|c| c.is_alphanumeric() || *c == '-' || *c == '_')
        .take(32)
        .collect();
    let device = if device.is_empty() {
        "device".to_string()
    } else {
        device
    };
    format!(
        "{dir}{stem}.sync-conflict-{}-{device}{ext}",
        timestamp(mtime_ms)
    )
}

/// True if `rel` names a conflict copy.
pub fn is_conflict_copy(rel: &str) -> bool {
    rel.rsplit('/')
        .next()
        .is_some_and(|f| f.contains(".sync-conflict-"))
}

/// The file a conflict copy is a version of: `a/b.sync-conflict-…-dev.txt` → `a/b.txt`.
pub fn original_of(copy: &str) -> Option<String> {
    const MARK: &str = ".sync-conflict-";
    let (dir, file) = match copy.rfind('/') {
        Some(i) => (&copy[..=i], &copy[i + 1..]),
        None => ("", copy),
    };
    let at = file.rfind(MARK)?;
    let rest = &file[at + MARK.len()..];
    let ext = rest.find('.').map(|j| &rest[j..]).unwrap_or("");
    Some(format!("{dir}{}{ext}", &file[..at]))
}

/// Which version of a conflict to keep.
#[cfg_attr(feature = "specta", derive(specta::Type))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Keep {
    /// The file under its own name; the conflict copy goes to the trash.
    Original,
    /// The conflict copy: it takes the original name, the other version goes to the trash.
    Copy,
    /// Both: the copy is renamed `name (n).ext` and is no longer a conflict.
    Both,
}

/// Resolves the conflict copy `copy` (relative to the folder at `root`). Nothing is deleted:
/// the version not kept goes to the folder's trash. The running sync publishes the result.
/// Returns the path of the file kept under the original name (or, for `Both`, of the renamed
/// copy).
pub fn resolve(root: &Path, copy: &str, keep: Keep) -> Result<PathBuf, Error> {
    validate_name(copy)?;
    let original =
        original_of(copy).ok_or_else(|| Error::Config(format!("{copy} is not a conflict copy")))?;
    validate_name(&original)?;
    let copy_path = root.join(copy);
    if !copy_path.is_file() {
        return Err(Error::write(
            &copy_path,
            std::io::Error::new(std::io::ErrorKind::NotFound, "the conflict copy is gone"),
        ));
    }
    let trash = Trash::new(root);
    let now = now_ms();
    let original_path = root.join(&original);
    match keep {
        Keep::Original => {
            trash.put(copy, now)?;
            Ok(original_path)
        }
        Keep::Copy => {
            if original_path.exists() {
                trash.put(&original, now)?;
            }
            std::fs::rename(&copy_path, &original_path)
                .map_err(|e| Error::write(&original_path, e))?;
            Ok(original_path)
        }
        Keep::Both => {
            let dir = original_path.parent().unwrap_or(root);
            let name = original_path
                .file_name()
                .and_then(|n| n.to_str())
                .unwrap_or(copy);
            move_into_place(&copy_path, dir, name)
        }
    }
}

/// `YYYYMMDD-HHMMSS` in UTC.
fn timestamp(ms: u64) -> String {
    let secs = ms / 1000;
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}{m:02}{d:02}-{:02}{:02}{:02}",
        rem / 3600,
        (rem % 3600) / 60,
        rem % 60
    )
}

/// Days since 1970-01-01 to (year, month, day), proleptic Gregorian (H. Hinnant's algorithm).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_like_syncthing() {
        // 2026-11-25 10:30:05 UTC
        let t = 1_795_602_605_000;
        assert_eq!(
            conflict_name("docs/report.pdf", t, "laptop"),
            "docs/report.sync-conflict-20261125-103005-laptop.pdf"
        );
        assert_eq!(timestamp(0), "19700101-000000");
        assert_eq!(timestamp(951_782_400_000), "20000229-000000");
        assert_eq!(
            conflict_name("Makefile", 0, "pc"),
            "Makefile.sync-conflict-19700101-000000-pc"
        );
        assert_eq!(
            conflict_name(".bashrc", 0, "pc"),
            ".bashrc.sync-conflict-19700101-000000-pc"
        );
        assert_eq!(
            conflict_name("a.tar.gz", 0, "my pc/../x"),
            "a.tar.sync-conflict-19700101-000000-mypcx.gz"
        );
        assert!(is_conflict_copy(&conflict_name("x/y.txt", 5, "d")));
        assert!(!is_conflict_copy("x/y.txt"));
    }

    #[test]
    fn the_original_name_comes_back_from_a_copy() {
        let copy = conflict_name("a/report.final.txt", 1_700_000_000_000, "laptop");
        assert_eq!(original_of(&copy).as_deref(), Some("a/report.final.txt"));
        let nested = conflict_name(&copy, 1_700_000_100_000, "phone");
        assert_eq!(original_of(&nested), Some(copy));
        assert_eq!(original_of("plain.txt"), None);
        let no_ext = conflict_name("Makefile", 0, "pc");
        assert_eq!(original_of(&no_ext).as_deref(), Some("Makefile"));
    }

    #[test]
    fn resolving_keeps_the_other_version_in_the_trash() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        let copy = conflict_name("notes.txt", 1_700_000_000_000, "pc");
        let setup = || {
            std::fs::write(root.join("notes.txt"), "mine").unwrap();
            std::fs::write(root.join(&copy), "theirs").unwrap();
        };
        let trashed = || -> Vec<String> {
            let t = Trash::new(root);
            t.list()
                .iter()
                .map(|e| {
                    std::fs::read_to_string(root.join(".ferry/trash").join(&e.id).join(&e.original))
                        .unwrap()
                })
                .collect()
        };
        setup();
        resolve(root, &copy, Keep::Copy).unwrap();
        assert_eq!(
            std::fs::read_to_string(root.join("notes.txt")).unwrap(),
            "theirs"
        );
        assert!(!root.join(&copy).exists());
        assert_eq!(trashed(), ["mine"]);

        setup();
        resolve(root, &copy, Keep::Original).unwrap();
        assert_eq!(
            std::fs::read_to_string(root.join("notes.txt")).unwrap(),
            "mine"
        );
        assert!(trashed().contains(&"theirs".to_string()));

        setup();
        let kept = resolve(root, &copy, Keep::Both).unwrap();
        assert_eq!(kept, root.join("notes (1).txt"));
        assert_eq!(std::fs::read_to_string(kept).unwrap(), "theirs");
        assert_eq!(
            std::fs::read_to_string(root.join("notes.txt")).unwrap(),
            "mine"
        );

        assert!(
            resolve(root, "notes.txt", Keep::Copy).is_err(),
            "not a copy"
        );
        assert!(resolve(root, "../x.sync-conflict-1-2-d.txt", Keep::Copy).is_err());
    }
}
