//! What a path should look like given every version of it a peer has seen.
//!
//! A peer keeps, per path, the *maximal* versions: those no other known version dominates.
//! Usually that is one version; after concurrent edits it is several. The files on disk are a
//! pure function of that set ([`PathState::outcome`]), so peers that have seen the same versions
//! agree on the result whatever order the versions arrived in:
//!
//! - no version, or only deletions: the path is absent;
//! - a modification concurrent with a deletion wins (nothing is lost);
//! - among concurrent modifications the deterministic winner ([`FileVersion::wins_over`]) keeps
//!   the path, and every other distinct content is kept as a conflict copy named after its own
//!   modification time and device ([`conflict_name`]).
//!
//! A local change is made on top of everything known ([`PathState::next_vector`]), so it
//! dominates every maximal version and the state collapses to it again.

use crate::folder::{
    conflict::conflict_name,
    version::{FileVersion, Relation, VersionVector},
};

/// Most concurrent versions kept for one path. Honest devices make a handful; a member with
/// many authors could publish thousands, making every round quadratic. Beyond the bound the
/// versions that would lose anyway (oldest modification first) are dropped from the state: no
/// file is touched for them, and the path is still written from the versions kept.
pub const MAX_VERSIONS: usize = 32;

/// Most conflict copies written beside one path. Beyond it, the copies of the versions that
/// lose to the others are not written (see `Outcome::dropped`); their files stay wherever they
/// already are, the trash included.
pub const MAX_COPIES: usize = 8;

/// The maximal versions of one path.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PathState {
    versions: Vec<FileVersion>,
}

/// What should be on disk for a path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    /// The version at the path itself; `None` if the path should not exist.
    pub main: Option<FileVersion>,
    /// Conflict copies to keep beside it: (relative path, version whose content goes there).
    pub copies: Vec<(String, FileVersion)>,
    /// Concurrent contents beyond [`MAX_COPIES`], not written as copies.
    pub dropped: usize,
}

impl PathState {
    /// Adds a version; returns true if it changed the state (it was not already known or
    /// dominated).
    pub fn add(&mut self, v: FileVersion) -> bool {
        for known in &self.versions {
            match v.version.relation(&known.version) {
                Relation::DominatedBy => return false,
                Relation::Equal => return false,
                _ => {}
            }
        }
        self.versions
            .retain(|known| v.version.relation(&known.version) != Relation::Dominates);
        // Most paths have one version: room for exactly that (a first push would make room
        // for four).
        self.versions.reserve_exact(1);
        self.versions.push(v);
        self.versions.sort_by(|a, b| {
            (a.mtime_ms, &a.device, &a.hash, a.deleted)
                .cmp(&(b.mtime_ms, &b.device, &b.hash, b.deleted))
        });
        if self.versions.len() > MAX_VERSIONS {
            // Sorted oldest first: the first ones lose to all the others.
            let extra = self.versions.len() - MAX_VERSIONS;
            self.versions.drain(..extra);
        }
        true
    }

    /// The maximal versions.
    pub fn versions(&self) -> &[FileVersion] {
        &self.versions
    }

    /// The vector for a new local change: it dominates everything known.
    pub fn next_vector(&self, device: &str) -> VersionVector {
        self.versions
            .iter()
            .fold(VersionVector::default(), |acc, v| acc.merge(&v.version))
            .bump(device)
    }

    /// What should be on disk for `path`.
    pub fn outcome(&self, path: &str) -> Outcome {
        let live: Vec<&FileVersion> = self.versions.iter().filter(|v| !v.deleted).collect();
        let Some(winner) = live
            .iter()
            .copied()
            .reduce(|a, b| if b.wins_over(a) { b } else { a })
        else {
            return Outcome {
                main: None,
                copies: Vec::new(),
                dropped: 0,
            };
        };
        // Distinct contents other than the winner's, the ones that would win first.
        let mut others: Vec<&FileVersion> = Vec::new();
        for v in live.iter().rev() {
            // A directory has no content to keep: one that loses to a file is not copied
            // (what is in it has records of its own).
            if v.dir {
                continue;
            }
            if v.hash != winner.hash && !others.iter().any(|c| c.hash == v.hash) {
                others.push(v);
            }
        }
        let dropped = others.len().saturating_sub(MAX_COPIES);
        others.truncate(MAX_COPIES);
        // Names come from the losing version's time and device name, which two versions can
        // share (two devices called "laptop", edits in the same second): those are told apart
        // by their content, so every peer picks the same distinct names.
        let mut copies: Vec<(String, FileVersion)> = others
            .iter()
            .map(|v| {
                (
                    conflict_name(path, v.mtime_ms, &v.device_name),
                    (*v).clone(),
                )
            })
            .collect();
        let names: Vec<String> = copies.iter().map(|(n, _)| n.clone()).collect();
        for (name, v) in &mut copies {
            if names.iter().filter(|n| *n == name).count() > 1 || name == path {
                // The content's first digits go right before the extension, after the device
                // name (which `conflict_name` shortens), so they are never cut off.
                let ext = path
                    .rsplit('/')
                    .next()
                    .and_then(|f| f.rfind('.').filter(|i| *i > 0).map(|i| &f[i..]))
                    .unwrap_or("");
                let base = &name[..name.len() - ext.len()];
                *name = format!("{base}-{}{ext}", v.hash.short());
            }
        }
        copies.sort_by(|a, b| a.0.cmp(&b.0));
        Outcome {
            main: Some(winner.clone()),
            copies,
            dropped,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::folder::version::RecordHash;
    use proptest::prelude::*;

    fn version(
        device: &str,
        vv: VersionVector,
        content: &str,
        mtime_ms: u64,
        deleted: bool,
    ) -> FileVersion {
        FileVersion {
            hash: if deleted {
                RecordHash::NONE
            } else {
                RecordHash::of(content)
            },
            size: content.len() as u64,
            mtime_ms,
            deleted,
            device: device.into(),
            device_name: format!("{device}-name").into(),
            version: vv,
            blocks: None,
            exec: false,
            dir: false,
        }
    }

    #[test]
    fn newer_version_replaces_older() {
        let mut s = PathState::default();
        let v1 = version("a", VersionVector::default().bump("a"), "one", 1, false);
        let v2 = version("b", v1.version.bump("b"), "two", 2, false);
        assert!(s.add(v1.clone()));
        assert!(s.add(v2.clone()));
        assert!(!s.add(v1), "an older version changes nothing");
        assert_eq!(s.outcome("f.txt").main, Some(v2));
        assert!(s.outcome("f.txt").copies.is_empty());
    }

    #[test]
    fn concurrent_edits_keep_both() {
        let base = VersionVector::default().bump("a");
        let from_a = version("a", base.bump("a"), "a's edit", 10, false);
        let from_b = version("b", base.bump("b"), "b's edit", 20, false);
        let mut s = PathState::default();
        s.add(from_a.clone());
        s.add(from_b.clone());
        let out = s.outcome("docs/plan.txt");
        assert_eq!(out.main, Some(from_b), "the later edit keeps the name");
        assert_eq!(out.copies.len(), 1);
        assert_eq!(out.copies[0].1, from_a);
        assert!(out.copies[0]
            .0
            .starts_with("docs/plan.sync-conflict-19700101-000000-a-name"));
        // A later local change on top of both resolves the conflict.
        let merged = version("a", s.next_vector("a"), "merged", 30, false);
        s.add(merged.clone());
        assert_eq!(
            s.outcome("docs/plan.txt"),
            Outcome {
                main: Some(merged),
                copies: vec![],
                dropped: 0,
            }
        );
    }

    #[test]
    fn edit_concurrent_with_delete_survives() {
        let base = VersionVector::default().bump("a");
        let del = version("a", base.bump("a"), "", 50, true);
        let edit = version("b", base.bump("b"), "kept", 10, false);
        for order in [[del.clone(), edit.clone()], [edit.clone(), del.clone()]] {
            let mut s = PathState::default();
            for v in order {
                s.add(v);
            }
            assert_eq!(s.outcome("x").main, Some(edit.clone()));
        }
        let mut s = PathState::default();
        s.add(del);
        assert_eq!(
            s.outcome("x").main,
            None,
            "a deletion alone removes the path"
        );
    }

    proptest! {
        /// Peers that saw the same versions in any order agree on the files, and no content
        /// among the maximal versions is lost.
        #[test]
        fn converges_whatever_the_order(
            ops in prop::collection::vec((0usize..3, 0u8..4, any::<bool>(), 0u64..5), 1..12),
            seed in any::<u64>(),
        ) {
            // Build a history: each op is a device editing on top of what it has seen so far.
            let devices = ["a", "b", "c"];
            let mut seen: Vec<PathState> = vec![PathState::default(); 3];
            let mut all = Vec::new();
            for (i, (dev, content, delete, mtime)) in ops.into_iter().enumerate() {
                let d = devices[dev];
                let v = version(d, seen[dev].next_vector(d), &format!("c{content}"), mtime * 10 + i as u64 % 3, delete);
                seen[dev].add(v.clone());
                all.push(v);
                // Sometimes a device syncs with another before the next edit.
                let other = (dev + 1 + (seed as usize + i) % 2) % 3;
                let versions: Vec<FileVersion> = seen[dev].versions().to_vec();
                for v in versions { seen[other].add(v); }
            }
            let mut forward = PathState::default();
            for v in &all { forward.add(v.clone()); }
            let mut backward = PathState::default();
            for v in all.iter().rev() { backward.add(v.clone()); }
            let mut shuffled = PathState::default();
            let mut order: Vec<usize> = (0..all.len()).collect();
            let mut x = seed | 1;
            for i in (1..order.len()).rev() {
                x ^= x << 13; x ^= x >> 7; x ^= x << 17;
                order.swap(i, (x % (i as u64 + 1)) as usize);
            }
            for i in order { shuffled.add(all[i].clone()); }
            let out = forward.outcome("f.txt");
            prop_assert_eq!(&out, &backward.outcome("f.txt"));
            prop_assert_eq!(&out, &shuffled.outcome("f.txt"));
            // Every live maximal content is on disk somewhere.
            for v in forward.versions().iter().filter(|v| !v.deleted) {
                let kept = out.main.as_ref().is_some_and(|m| m.hash == v.hash)
                    || out.copies.iter().any(|(_, c)| c.hash == v.hash);
                prop_assert!(kept, "content {} lost", v.hash);
            }
        }
    }

    /// Two devices with the same name editing in the same second get two copies, not one name
    /// for two contents.
    #[test]
    fn conflict_copy_names_never_collide() {
        let base = VersionVector::default().bump("a");
        let winner = version("c", base.bump("c"), "winner", 9_000, false);
        let mut one = version("a", base.bump("a"), "one", 1_000, false);
        let mut two = version("b", base.bump("b"), "two", 1_400, false);
        one.device_name = "a-very-long-device-name-that-is-cut-short".into();
        two.device_name = "a-very-long-device-name-that-is-cut-short".into();
        let mut s = PathState::default();
        for v in [one, two, winner] {
            s.add(v);
        }
        let out = s.outcome("notes.txt");
        assert_eq!(out.copies.len(), 2);
        assert_ne!(out.copies[0].0, out.copies[1].0, "{:?}", out.copies);
        for (name, _) in &out.copies {
            assert!(crate::folder::place::record_path(name).is_ok(), "{name}");
        }
    }

    /// A member with many authors writing one path cannot make rounds quadratic or fill the
    /// disk with conflict copies.
    #[test]
    fn many_concurrent_versions_are_bounded() {
        let base = VersionVector::default().bump("a");
        let mut s = PathState::default();
        for i in 0..1000u64 {
            let d = format!("author{i}");
            s.add(version(&d, base.bump(&d), &format!("c{i}"), i, false));
        }
        assert_eq!(s.versions().len(), MAX_VERSIONS);
        let out = s.outcome("x.txt");
        assert_eq!(out.copies.len(), MAX_COPIES);
        assert_eq!(out.dropped, MAX_VERSIONS - 1 - MAX_COPIES);
        assert_eq!(out.main.unwrap().mtime_ms, 999, "the latest still wins");
    }
}
