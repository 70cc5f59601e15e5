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
        self.versions.push(v);
        self.versions.sort_by(|a, b| {
            (a.mtime_ms, &a.device, &a.hash, a.deleted)
                .cmp(&(b.mtime_ms, &b.device, &b.hash, b.deleted))
        });
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
            };
        };
        let mut copies: Vec<(String, FileVersion)> = Vec::new();
        for v in live {
            if v.hash == winner.hash || copies.iter().any(|(_, c)| c.hash == v.hash) {
                continue;
            }
            copies.push((conflict_name(path, v.mtime_ms, &v.device_name), v.clone()));
        }
        copies.sort_by(|a, b| a.0.cmp(&b.0));
        Outcome {
            main: Some(winner.clone()),
            copies,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
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
                String::new()
            } else {
                blake3::hash(content.as_bytes()).to_hex().to_string()
            },
            size: content.len() as u64,
            mtime_ms,
            deleted,
            device: device.into(),
            device_name: format!("{device}-name"),
            version: vv,
            blocks: None,
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
                copies: vec![]
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
}
