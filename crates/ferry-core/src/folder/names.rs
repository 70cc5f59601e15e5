//! Which names this device's file system can hold apart, and which it cannot hold at all.
//!
//! Peers may run different file systems. On one that folds names (macOS, Windows: `Readme.md`
//! and `README.md`, or `é` composed and decomposed, open the same file), two records whose
//! paths differ only that way would be written over each other, and the scan would then find
//! one name where the index expects the other: a deletion published, the file written back, a
//! loop. On Windows some names cannot be created at all (`aux.c`, `a:b`, a trailing dot).
//!
//! [`NameRules`] says, for each path a record names, whether it can be written here. A path
//! whose folded spelling (each component, NFC-normalised and lowercased) is already taken by
//! another path this folder holds is not written: the path that was here first keeps its place,
//! deterministically, and the other is listed as not synced with the reason, as is a name the
//! file system cannot hold. Nothing is renamed, trashed or published for them, so nothing
//! ping-pongs; peers whose file systems can hold both keep both.
//!
//! The rules are probed when the folder starts (a file created in `.ferry/` under one spelling
//! and looked up under another). `.ferry/names.json` (`{"fold": true, "windows": true}`)
//! overrides the probe: for a file system the probe misjudges, and for tests on Linux.

use std::{
    collections::HashMap,
    path::{Path, PathBuf},
};

use serde::Deserialize;
use unicode_normalization::UnicodeNormalization;

use crate::folder::{activity::Why, ignore::STATE_DIR};

/// The file system's rules for names (and its executable bit), as they matter to a synced
/// folder.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct NameRules {
    /// Names that differ only in case or Unicode normalisation are one name.
    pub fold: bool,
    /// Windows' rules: reserved device names, `<>:"|?*\`, control characters, a trailing dot
    /// or space.
    pub windows: bool,
    /// Files keep an executable bit of their own. Not on Windows, nor on file systems that
    /// make every file look executable and ignore chmod (vfat, exFAT, many SMB mounts): there
    /// the bit a file shows says nothing and is neither published nor compared.
    pub exec: bool,
}

/// What `.ferry/names.json` may set; what it leaves out is probed.
#[derive(Default, Deserialize)]
struct Override {
    fold: Option<bool>,
    windows: Option<bool>,
    exec: Option<bool>,
}

impl NameRules {
    /// The rules of the file system the folder at `root` is on.
    pub fn detect(root: &Path) -> NameRules {
        let state = root.join(STATE_DIR);
        let o: Override = std::fs::read(override_path(root))
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or_default();
        NameRules {
            fold: o.fold.unwrap_or_else(|| {
                probe_folds(&state).unwrap_or(cfg!(any(windows, target_os = "macos")))
            }),
            windows: o.windows.unwrap_or(cfg!(windows)),
            // A probe that cannot run says nothing: the bit is then left alone (a file system
            // that shows every file executable must not make every peer's files so).
            exec: o
                .exec
                .unwrap_or_else(|| probe_exec(&state).unwrap_or(false)),
        }
    }

    /// The spelling under which this file system finds `rel`.
    pub fn key(&self, rel: &str) -> String {
        if self.fold {
            // Full Unicode case folding (µ and μ, ſ and s, a final sigma and a sigma are one),
            // on the composed form and composed again.
            caseless::default_case_fold_str(&rel.nfc().collect::<String>())
                .nfc()
                .collect()
        } else {
            rel.to_string()
        }
    }

    /// Why this file system cannot hold a file or directory at `rel`, if it cannot.
    pub fn cannot_hold(&self, rel: &str) -> Option<Why> {
        if !self.windows {
            return None;
        }
        rel.split('/').find_map(windows_refuses)
    }
}

/// Windows' reason to refuse the name component `c`, if any.
fn windows_refuses(c: &str) -> Option<Why> {
    if let Some(bad) = c.chars().find(|ch| {
        matches!(ch, '<' | '>' | ':' | '"' | '|' | '?' | '*' | '\\') || (*ch as u32) < 32
    }) {
        return Some(
            Why::new(
                "windows_char",
                format!("Windows cannot hold {bad:?} in the name {c:?}"),
            )
            .with("name", c)
            .with("char", bad),
        );
    }
    if c.ends_with('.') || c.ends_with(' ') {
        return Some(
            Why::new(
                "windows_ending",
                format!("Windows cannot hold a name ending in a dot or space: {c:?}"),
            )
            .with("name", c),
        );
    }
    let stem = c
        .split('.')
        .next()
        .unwrap_or(c)
        .trim_end()
        .to_ascii_uppercase();
    let reserved = matches!(stem.as_str(), "CON" | "PRN" | "AUX" | "NUL")
        || ((stem.starts_with("COM") || stem.starts_with("LPT"))
            && stem.len() == 4
            && stem.as_bytes()[3].is_ascii_digit()
            && stem.as_bytes()[3] != b'0');
    reserved.then(|| {
        Why::new(
            "windows_device",
            format!("{c:?} is a device name on Windows"),
        )
        .with("name", c)
    })
}

/// True if the directory `dir` (Ferry's state directory) finds a file under another case.
fn probe_folds(dir: &Path) -> Option<bool> {
    std::fs::create_dir_all(dir).ok()?;
    let name = format!(
        "case-probe-{}",
        data_encoding::HEXLOWER.encode(&rand::random::<[u8; 4]>())
    );
    let lower = dir.join(&name);
    std::fs::write(&lower, b"").ok()?;
    let folds = std::fs::symlink_metadata(dir.join(name.to_uppercase())).is_ok();
    std::fs::remove_file(&lower).ok();
    Some(folds)
}

/// Whether paths are on disk under exactly the spelling asked for. Where names fold, a
/// lookup of `Readme.md` finds `README.md`: a file renamed only in case would seem to be still
/// there under its old name. Directory listings tell; each is read once per check.
#[derive(Default)]
pub(super) struct ExactSpelling {
    listed: HashMap<PathBuf, Option<std::collections::HashSet<std::ffi::OsString>>>,
}

impl ExactSpelling {
    /// True if every component of `rel` under `root` is spelt on disk as in `rel`.
    pub(super) fn holds(&mut self, root: &Path, rel: &str) -> bool {
        let mut dir = root.to_path_buf();
        for part in rel.split('/') {
            let names = self.listed.entry(dir.clone()).or_insert_with(|| {
                std::fs::read_dir(&dir)
                    .ok()
                    .map(|entries| entries.flatten().map(|e| e.file_name()).collect())
            });
            // A directory that cannot be listed tells nothing: the lookup by name decides.
            let Some(names) = names else {
                return true;
            };
            if !names.contains(std::ffi::OsStr::new(part)) {
                return false;
            }
            dir.push(part);
        }
        true
    }
}

/// True if a file in `dir` keeps the executable bit it is given (and only that one).
fn probe_exec(dir: &Path) -> Option<bool> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::create_dir_all(dir).ok()?;
        let path = dir.join(format!(
            "exec-probe-{}",
            data_encoding::HEXLOWER.encode(&rand::random::<[u8; 4]>())
        ));
        std::fs::write(&path, b"").ok()?;
        let mode = |p: &Path| std::fs::metadata(p).map(|m| m.permissions().mode());
        let set = |m: u32| std::fs::set_permissions(&path, std::fs::Permissions::from_mode(m));
        let kept = set(0o644).is_ok()
            && mode(&path).is_ok_and(|m| m & 0o111 == 0)
            && set(0o744).is_ok()
            && mode(&path).is_ok_and(|m| m & 0o100 != 0);
        std::fs::remove_file(&path).ok();
        Some(kept)
    }
    #[cfg(not(unix))]
    {
        let _ = dir;
        Some(false)
    }
}

/// Which spelling holds each folded name in a folder: the paths it holds and every directory
/// above them.
#[derive(Debug, Default)]
pub(super) struct Spellings {
    rules: NameRules,
    held: HashMap<String, String>,
}

impl Spellings {
    /// The spellings of `paths` (what the folder holds) under `rules`; empty if the file
    /// system tells every spelling apart.
    pub(super) fn of<'a>(rules: NameRules, paths: impl Iterator<Item = &'a String>) -> Spellings {
        let mut s = Spellings {
            rules,
            held: HashMap::new(),
        };
        if rules.fold {
            for p in paths {
                s.hold(p);
            }
        }
        s
    }

    /// Why `rel` cannot be written here, if it cannot: a name the file system cannot hold,
    /// or a path (or a directory above it) that another spelling holds already.
    pub(super) fn refuse(&self, rel: &str) -> Option<Why> {
        if let Some(reason) = self.rules.cannot_hold(rel) {
            return Some(reason);
        }
        if !self.rules.fold {
            return None;
        }
        let mut end = 0;
        for part in rel.split('/') {
            end += part.len();
            let prefix = &rel[..end];
            if let Some(other) = self.held.get(&self.rules.key(prefix)) {
                if other != prefix {
                    return Some(
                        Why::new(
                            "same_spelling",
                            format!(
                                "{prefix:?} and {other:?} differ only in case or accents, which \
                                 this file system cannot tell apart; {other:?} was here first"
                            ),
                        )
                        .with("name", prefix)
                        .with("other", other),
                    );
                }
            }
            end += 1;
        }
        None
    }

    /// Notes that `rel` is held under this spelling from now on.
    pub(super) fn hold(&mut self, rel: &str) {
        if !self.rules.fold {
            return;
        }
        let mut end = 0;
        for part in rel.split('/') {
            end += part.len();
            let prefix = &rel[..end];
            self.held
                .entry(self.rules.key(prefix))
                .or_insert_with(|| prefix.to_string());
            end += 1;
        }
    }
}

/// Where the override of the probe is read.
pub fn override_path(root: &Path) -> PathBuf {
    root.join(STATE_DIR).join("names.json")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folded_spellings_are_one_name_and_the_first_keeps_it() {
        let rules = NameRules {
            fold: true,
            ..NameRules::default()
        };
        let held = ["Docs/Readme.md".to_string(), "caf\u{e9}.txt".to_string()];
        let s = Spellings::of(rules, held.iter());
        assert!(s.refuse("Docs/Readme.md").is_none());
        assert!(s.refuse("Docs/README.md").is_some());
        assert!(
            s.refuse("docs/other.txt").is_some(),
            "its folder is spelt Docs here"
        );
        assert!(s.refuse("Docs/other.txt").is_none());
        assert!(s.refuse("cafe\u{301}.txt").is_some(), "decomposed é");
        let greek = Spellings::of(rules, ["\u{3c3}\u{3b1}\u{3c2}".to_string()].iter());
        assert!(
            greek.refuse("\u{3c3}\u{3b1}\u{3c3}").is_some(),
            "final sigma"
        );
        let micro = Spellings::of(rules, ["\u{b5}.txt".to_string()].iter());
        assert!(micro.refuse("\u{3bc}.txt").is_some(), "micro sign and mu");
        let plain = Spellings::of(NameRules::default(), held.iter());
        assert!(plain.refuse("Docs/README.md").is_none());
    }

    #[test]
    fn the_exact_spelling_is_told_from_another() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("Docs")).unwrap();
        std::fs::write(dir.path().join("Docs/Readme.md"), b"").unwrap();
        let mut exact = ExactSpelling::default();
        assert!(exact.holds(dir.path(), "Docs/Readme.md"));
        assert!(!exact.holds(dir.path(), "docs/Readme.md"));
        assert!(!exact.holds(dir.path(), "Docs/README.md"));
    }

    #[test]
    fn windows_names() {
        let rules = NameRules {
            windows: true,
            ..NameRules::default()
        };
        for bad in [
            "a:b.txt", "aux.c", "dir/CON", "com1.log", "trail.", "sp ", "q?",
        ] {
            assert!(rules.cannot_hold(bad).is_some(), "{bad}");
        }
        for good in ["auxiliary.txt", "com10", "com0", "a.b.c", "console.log"] {
            assert!(rules.cannot_hold(good).is_none(), "{good}");
        }
        assert!(NameRules::default().cannot_hold("a:b").is_none());
    }

    #[test]
    fn the_probe_finds_this_file_system_tells_case_apart() {
        let dir = tempfile::tempdir().unwrap();
        // The tests run on Linux file systems, which tell case apart.
        #[cfg(target_os = "linux")]
        {
            let rules = NameRules::detect(dir.path());
            assert!(!rules.fold);
            assert!(rules.exec, "this file system keeps the executable bit");
        }
        std::fs::create_dir_all(dir.path().join(STATE_DIR)).unwrap();
        std::fs::write(override_path(dir.path()), br#"{"fold":true}"#).unwrap();
        assert!(NameRules::detect(dir.path()).fold);
    }
}
