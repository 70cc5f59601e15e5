//! Which paths of a synced folder are never synced.
//!
//! `.ferryignore` at the folder root uses gitignore syntax (via the `ignore` crate, the same
//! matcher ripgrep uses). Built-in rules always apply: Ferry's own state directory, files
//! Ferry is writing, and the temporary and partial files editors, browsers and office suites
//! leave behind while they work.

use std::path::Path;

use ignore::gitignore::{Gitignore, GitignoreBuilder};

/// The per-folder state directory (trash, temporary files): never synced.
pub const STATE_DIR: &str = ".ferry";
/// The file holding the user's ignore patterns.
pub const IGNORE_FILE: &str = ".ferryignore";
/// Suffix of files Ferry is writing; they are renamed into place when complete.
pub const TEMP_SUFFIX: &str = ".ferry-tmp";

const BUILT_IN: &[&str] = &[
    // Ferry's own state at any depth, its temporary files and one-shot staging directories
    // (see `place::is_state_path`).
    ".ferry/",
    "*.ferry-tmp",
    ".ferry-partial-*/",
    // Each device's own choice of what it syncs (see docs/DESIGN.md, "Trash, ignores").
    "/.ferryignore",
    // Partial downloads and editor scratch files.
    "*.part",
    "*.partial",
    "*.crdownload",
    "*.download",
    "*.tmp",
    "*.swp",
    "*.swx",
    "*~",
    ".#*",
    "~$*",
    ".~lock.*#",
    // Operating system clutter.
    ".DS_Store",
    "Thumbs.db",
    "desktop.ini",
];

/// The ignore rules of one folder.
#[derive(Debug)]
pub struct IgnoreRules {
    built_in: Gitignore,
    user: Gitignore,
}

impl IgnoreRules {
    /// Loads `.ferryignore` from `root` (if any) on top of the built-in rules. Lines that are not
    /// valid patterns are skipped; the rest still apply.
    pub fn load(root: &Path) -> IgnoreRules {
        let mut b = GitignoreBuilder::new(root);
        b.case_insensitive(true).expect("a setting, not a pattern");
        for rule in BUILT_IN {
            b.add_line(None, rule).expect("built-in rules are valid");
        }
        let built_in = b.build().expect("built-in rules build");
        let mut u = GitignoreBuilder::new(root);
        if let Some(e) = u.add(root.join(IGNORE_FILE)) {
            tracing::debug!("{}: {e}", root.join(IGNORE_FILE).display());
        }
        let user = u.build().unwrap_or_else(|_| Gitignore::empty());
        IgnoreRules { built_in, user }
    }

    /// True if `rel` (relative to the folder root, `/`-separated) must not be synced.
    /// A path inside an ignored directory is ignored too.
    pub fn is_ignored(&self, rel: &str, is_dir: bool) -> bool {
        let path = Path::new(rel);
        let hit = |g: &Gitignore| g.matched_path_or_any_parents(path, is_dir).is_ignore();
        hit(&self.built_in) || hit(&self.user)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn built_in_and_user_rules() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join(IGNORE_FILE),
            "build/\n*.log\n!keep.log\n# comment\n",
        )
        .unwrap();
        let r = IgnoreRules::load(dir.path());
        for ignored in [
            ".ferry/trash/x",
            "sub/.ferry/index.json",
            ".FERRY/x",
            ".ferry-partial-0123abcd/a.txt",
            ".ferryignore",
            "a/report.docx.ferry-tmp",
            "movie.mkv.part",
            "notes.txt.swp",
            "~$budget.xlsx",
            ".DS_Store",
            "sub/.DS_Store",
            "build/out.o",
            "deep/build/out.o",
            "debug.log",
        ] {
            assert!(r.is_ignored(ignored, false), "{ignored} should be ignored");
        }
        for kept in [
            "notes.txt",
            "keep.log",
            "building.txt",
            "src/main.rs",
            "sub/.ferryignore",
            "a.ferry",
        ] {
            assert!(!r.is_ignored(kept, false), "{kept} should be synced");
        }
        assert!(r.is_ignored("build", true));
    }

    #[test]
    fn no_ignore_file_means_built_ins_only() {
        let dir = tempfile::tempdir().unwrap();
        let r = IgnoreRules::load(dir.path());
        assert!(!r.is_ignored("a.log", false));
        assert!(r.is_ignored("a.tmp", false));
    }
}
