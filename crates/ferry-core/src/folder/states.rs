//! The versions of the folder's paths a running folder works with: the paths of the document
//! it has read, and for those that are not settled their versions in memory.
//!
//! The document is the truth; this is what a round has read of it. A path whose versions are
//! settled (one version of a file, nothing waiting for it) keeps only its name here, its
//! versions being read from the document again when the path changes (`FolderSync::read_paths`).
//! That is most paths of a synced folder, and what they held was a third of a daemon's memory
//! per path (docs/DESIGN.md, "Folders of a million files").
//!
//! Every version added here is in the document already (a peer's record arrived through it;
//! this device's own is published before it is added), so a path read again holds at least
//! what it held.

use std::collections::{BTreeMap, BTreeSet};

use crate::folder::{decide::PathState, version::FileVersion};

/// See the module docs.
#[derive(Debug, Default)]
pub(super) struct States {
    /// Each path read from the document, with its versions, or `None` where they are left to
    /// it (settled, or some of its records not arrived yet).
    map: BTreeMap<String, Option<PathState>>,
    /// How many times a path left to the document was read back.
    read_back: u64,
}

impl States {
    /// Every path of `all`, with its versions.
    pub(super) fn read(all: BTreeMap<String, PathState>) -> States {
        States {
            map: all.into_iter().map(|(rel, s)| (rel, Some(s))).collect(),
            read_back: 0,
        }
    }

    /// The versions of `rel`: `None` if no version of it was read from the document, or if
    /// they are not in memory (see [`States::unread`]). What acts on a path reads it first.
    pub(super) fn get(&self, rel: &str) -> Option<&PathState> {
        self.map.get(rel)?.as_ref()
    }

    /// Whether the document names `rel`, as far as it was read (its versions in memory or
    /// not).
    pub(super) fn contains_key(&self, rel: &str) -> bool {
        self.map.contains_key(rel)
    }

    /// Whether the document names `rel` and its versions are not in memory.
    pub(super) fn is_unread(&self, rel: &str) -> bool {
        matches!(self.map.get(rel), Some(None))
    }

    /// Those of `rels` whose versions must be read from the document before they are acted
    /// on, each once.
    pub(super) fn unread<'a>(&self, rels: impl IntoIterator<Item = &'a String>) -> Vec<String> {
        let mut out: Vec<String> = rels
            .into_iter()
            .filter(|rel| self.is_unread(rel))
            .cloned()
            .collect();
        out.sort_unstable();
        out.dedup();
        out
    }

    /// Adds a version of `rel` (one the document holds). A path whose versions are left to
    /// the document stays so: reading it again finds this version there.
    pub(super) fn add(&mut self, rel: &str, v: FileVersion) {
        match self.map.get_mut(rel) {
            Some(Some(state)) => {
                state.add(v);
            }
            Some(None) => {}
            None => {
                let mut state = PathState::default();
                state.add(v);
                self.map.insert(rel.to_string(), Some(state));
            }
        }
    }

    /// Sets the versions of `rel` as just read from the document.
    pub(super) fn insert(&mut self, rel: String, state: PathState) {
        if let Some(None) = self.map.insert(rel, Some(state)) {
            self.read_back += 1;
        }
    }

    /// How many times a path left to the document was read back: what leaving them costs.
    pub(super) fn read_back(&self) -> u64 {
        self.read_back
    }

    /// Leaves `rel`'s versions to the document, to be read again before it is acted on (some
    /// of its records have not arrived: what was read of them would be less than it has).
    pub(super) fn set_unread(&mut self, rel: String) {
        self.map.insert(rel, None);
    }

    /// Forgets `rel`: the document names no version of it.
    pub(super) fn remove(&mut self, rel: &str) {
        self.map.remove(rel);
    }

    /// The paths the document names, in order.
    pub(super) fn keys(&self) -> impl Iterator<Item = &String> {
        self.map.keys()
    }

    /// The versions in memory, path by path. (A full pass reads every path first: what
    /// needs every version uses it then.)
    pub(super) fn read_versions(&self) -> impl Iterator<Item = &FileVersion> {
        self.map.values().flatten().flat_map(|s| s.versions())
    }

    /// Leaves to the document the versions of those of `rels` that are settled: exactly one
    /// version, of a file that is there, which `on_disk` says this device's file is (or
    /// follows). Conflicts, deletions and directories stay in memory (they are few, and what
    /// removes a directory looks at its state without reading it). So a path left to the
    /// document whose file has not changed since needs no reading to be known unchanged.
    /// Returns how many were let go.
    pub(super) fn let_go<'a>(
        &mut self,
        rels: impl IntoIterator<Item = &'a String>,
        on_disk: impl Fn(&str, &FileVersion) -> bool,
    ) -> usize {
        let mut n = 0;
        for rel in rels {
            if let Some(slot) = self.map.get_mut(rel) {
                n += usize::from(let_go_of(rel, slot, &on_disk));
            }
        }
        n
    }

    /// [`States::let_go`] of every path but those in `keep`.
    pub(super) fn let_go_all(
        &mut self,
        keep: &BTreeSet<String>,
        on_disk: impl Fn(&str, &FileVersion) -> bool,
    ) -> usize {
        let mut n = 0;
        for (rel, slot) in &mut self.map {
            if !keep.contains(rel) {
                n += usize::from(let_go_of(rel, slot, &on_disk));
            }
        }
        n
    }

    /// How many paths hold their versions in memory (for tests).
    #[cfg(test)]
    pub(super) fn in_memory(&self) -> usize {
        self.map.values().filter(|s| s.is_some()).count()
    }
}

/// Leaves `slot`'s versions to the document if they are settled (see [`States::let_go`]).
fn let_go_of(
    rel: &str,
    slot: &mut Option<PathState>,
    on_disk: impl Fn(&str, &FileVersion) -> bool,
) -> bool {
    let settled = slot.as_ref().is_some_and(|s| match s.versions() {
        [v] => !v.deleted && !v.dir && on_disk(rel, v),
        _ => false,
    });
    if settled {
        *slot = None;
    }
    settled
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::folder::version::RecordHash;

    #[test]
    fn only_a_single_version_of_a_file_is_let_go() {
        let mut s = States::default();
        let one = FileVersion::first_of("a", "one");
        s.add("file", one.clone());
        // Two concurrent versions: a conflict stays in memory.
        s.add("both", one.clone());
        s.add("both", FileVersion::first_of("b", "two"));
        let mut gone = one.clone();
        gone.deleted = true;
        gone.hash = RecordHash::NONE;
        s.add("deleted", gone);
        let mut dir = one.clone();
        dir.dir = true;
        dir.hash = RecordHash::NONE;
        s.add("dir", dir);
        s.add("elsewhere", FileVersion::first_of("b", "new"));
        let all: Vec<String> = s.keys().cloned().collect();
        // "elsewhere" is not what this device's file is: kept, to be compared with it.
        assert_eq!(s.let_go(&all, |rel, _| rel != "elsewhere"), 1);
        assert!(s.is_unread("file"));
        assert!(s.contains_key("file"), "the path is still named");
        assert!(s.get("file").is_none());
        for rel in ["both", "deleted", "dir", "elsewhere"] {
            assert!(s.get(rel).is_some(), "{rel}");
        }
        assert_eq!(s.unread(&all), ["file"]);
        assert_eq!(s.in_memory(), 4);
        assert_eq!(s.let_go_all(&BTreeSet::new(), |_, _| true), 1, "elsewhere");
    }

    #[test]
    fn a_version_added_to_a_path_left_to_the_document_waits_for_it_to_be_read() {
        let mut s = States::default();
        let one = FileVersion::first_of("a", "one");
        s.add("file", one.clone());
        s.let_go(&["file".to_string()], |_, _| true);
        // Not a state of the new version alone, which would forget the one before.
        s.add("file", FileVersion::first_of("b", "two"));
        assert!(s.is_unread("file"));
        let mut read = PathState::default();
        read.add(one);
        s.insert("file".into(), read.clone());
        assert_eq!(s.get("file"), Some(&read));
        assert_eq!(s.read_back(), 1);
        // Read with a record missing: left to the document rather than kept short of it.
        s.set_unread("file".into());
        assert!(s.is_unread("file"));
        s.remove("file");
        assert!(!s.contains_key("file"));
    }
}
