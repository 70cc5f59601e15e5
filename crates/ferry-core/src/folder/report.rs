//! What a running folder tells people: the counts a round leaves, the recent changes, and the
//! paths that are not synced here and why. Written by the loop's steps, read by
//! [`FolderSync::activity`](super::engine::FolderSync::activity) from memory (cheap: the app
//! asks often). The state shown follows from it ([`Report::activity`]): a folder with paths
//! not synced is never "up to date".

use std::collections::BTreeMap;

use crate::folder::activity::{
    Change, ConflictCopy, FolderActivity, FolderPeer, FolderState, NotSynced, Recent, Why,
};

/// Device names remembered at most.
const MAX_NAMES: usize = 1024;

/// What a round leaves for people.
#[derive(Debug, Default, Clone)]
pub(super) struct Summary {
    pub(super) files: u64,
    pub(super) bytes: u64,
    /// Paths still waiting for a record or content, and their size as far as known.
    pub(super) waiting: u64,
    pub(super) waiting_bytes: u64,
    pub(super) conflicts: Vec<ConflictCopy>,
    pub(super) error: Option<String>,
}

/// See the module docs. Each lock is a leaf: held for a few statements, never across an
/// await, never while taking another.
#[derive(Default)]
pub(super) struct Report {
    summary: std::sync::Mutex<Summary>,
    /// Files looked at so far in the current full pass, and how many it has.
    scan: std::sync::Mutex<(u64, u64)>,
    /// 0: idle, 1: a round runs, 2: a full pass runs (a new folder starts with one).
    busy: std::sync::atomic::AtomicU8,
    recent: std::sync::Mutex<Recent>,
    /// Paths that cannot be synced here, and why: reported, and not retried until the path
    /// changes or the next full pass.
    refused: std::sync::Mutex<BTreeMap<String, Why>>,
    /// The rate at which content arrives, from the bytes fetched.
    meter: std::sync::Mutex<crate::progress::RateMeter>,
    /// When a round last ended with nothing left to do (Unix ms; 0: not yet).
    last_synced_ms: std::sync::atomic::AtomicU64,
    /// The device names peers' changes carried, by device id (bounded: one per peer met).
    names: std::sync::Mutex<std::collections::HashMap<String, String>>,
}

impl Report {
    /// The report of a folder about to make its first full pass.
    pub(super) fn starting() -> Report {
        let r = Report::default();
        r.busy(true);
        r
    }

    /// A round starts: a full pass if `full`.
    pub(super) fn busy(&self, full: bool) {
        use std::sync::atomic::Ordering;
        self.busy.store(if full { 2 } else { 1 }, Ordering::Relaxed);
    }

    /// How far the current full pass is.
    pub(super) fn scan_progress(&self, done: u64, total: u64) {
        *self.scan.lock().expect("scan lock") = (done, total);
    }

    /// A round ended, leaving `summary`.
    pub(super) fn finished(&self, summary: Summary) {
        if summary.error.is_none() && summary.waiting == 0 {
            self.last_synced_ms.store(
                crate::history::now_ms(),
                std::sync::atomic::Ordering::Relaxed,
            );
        }
        *self.summary.lock().expect("summary lock") = summary;
        *self.scan.lock().expect("scan lock") = (0, 0);
        self.busy.store(0, std::sync::atomic::Ordering::Relaxed);
    }

    /// A round failed before it could count anything.
    pub(super) fn failed(&self, error: String) {
        self.summary.lock().expect("summary lock").error = Some(error);
        self.busy.store(0, std::sync::atomic::Ordering::Relaxed);
    }

    /// Remembers the name `device` gave its last change here.
    pub(super) fn named(&self, device: &str, name: &str) {
        let mut names = self.names.lock().expect("names lock");
        // Names of peers met only: a member cannot grow this with made-up device ids beyond
        // what it can publish, and each is a short claim.
        if names.len() < MAX_NAMES || names.contains_key(device) {
            names.insert(device.to_string(), name.chars().take(64).collect());
        }
    }

    /// Notes a change, newest first in a short log.
    pub(super) fn note(&self, change: Change) {
        self.recent.lock().expect("recent lock").push(change);
    }

    /// Lists `rel` as not synced here, for `reason`; true if that is news (a new path or a
    /// new reason).
    pub(super) fn not_synced(&self, rel: &str, why: Why) -> bool {
        let mut refused = self.refused.lock().expect("refused lock");
        if refused.get(rel) == Some(&why) {
            return false;
        }
        refused.insert(rel.to_string(), why);
        true
    }

    /// `rel` is synced (or gone): no longer listed.
    pub(super) fn synced(&self, rel: &str) {
        self.refused.lock().expect("refused lock").remove(rel);
    }

    /// Whether `rel` is listed as not synced.
    pub(super) fn is_not_synced(&self, rel: &str) -> bool {
        self.refused.lock().expect("refused lock").contains_key(rel)
    }

    /// The paths listed as not synced that `f` picks.
    pub(super) fn not_synced_where(&self, f: impl Fn(&str) -> bool) -> Vec<String> {
        let refused = self.refused.lock().expect("refused lock");
        refused.keys().filter(|r| f(r)).cloned().collect()
    }

    /// Keeps listed only the paths `keep` picks.
    pub(super) fn retain_not_synced(&self, keep: impl Fn(&str) -> bool) {
        self.refused
            .lock()
            .expect("refused lock")
            .retain(|rel, _| keep(rel));
    }

    /// What the folder is doing, with its `peers`, having fetched `fetched` bytes so far.
    pub(super) fn activity(&self, mut peers: Vec<FolderPeer>, fetched: u64) -> FolderActivity {
        {
            let names = self.names.lock().expect("names lock");
            for p in &mut peers {
                p.name = names.get(&p.id).cloned();
            }
        }
        let rate = self.meter.lock().expect("meter lock").update(fetched);
        let last_synced = self
            .last_synced_ms
            .load(std::sync::atomic::Ordering::Relaxed);
        let summary = self.summary.lock().expect("summary lock").clone();
        let scan = *self.scan.lock().expect("scan lock");
        let busy = self.busy.load(std::sync::atomic::Ordering::Relaxed);
        let not_synced: Vec<NotSynced> = self
            .refused
            .lock()
            .expect("refused lock")
            .iter()
            .map(|(path, why)| NotSynced {
                path: path.clone(),
                reason: why.text.clone(),
                code: why.code.clone(),
                params: why.params.clone(),
            })
            .collect();
        let state = match (busy, &summary.error) {
            (2, _) => FolderState::Scanning,
            (_, Some(_)) => FolderState::Error,
            (1, _) => FolderState::Syncing,
            _ if summary.waiting > 0 => FolderState::Syncing,
            _ if !not_synced.is_empty() => FolderState::Incomplete,
            _ => FolderState::UpToDate,
        };
        FolderActivity {
            state,
            scanned: scan.0,
            to_scan: scan.1,
            files: summary.files,
            bytes: summary.bytes,
            waiting: summary.waiting,
            waiting_bytes: summary.waiting_bytes,
            peers,
            recent: self.recent.lock().expect("recent lock").list(),
            conflicts: summary.conflicts,
            not_synced,
            error: summary.error,
            rate: rate as u64,
            last_synced_ms: (last_synced > 0).then_some(last_synced),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state(r: &Report) -> FolderState {
        r.activity(Vec::new(), 0).state
    }

    #[test]
    fn a_folder_with_files_not_synced_is_never_up_to_date() {
        let r = Report::starting();
        assert_eq!(state(&r), FolderState::Scanning);
        assert_eq!(r.activity(Vec::new(), 0).last_synced_ms, None);
        r.finished(Summary::default());
        assert_eq!(state(&r), FolderState::UpToDate);
        assert!(r.activity(Vec::new(), 0).last_synced_ms.is_some());
        let why = || Why::new("windows_device", "a name Windows cannot hold").with("name", "aux.c");
        assert!(r.not_synced("aux.c", why()));
        assert!(!r.not_synced("aux.c", why()), "no news");
        r.finished(Summary::default());
        assert_eq!(state(&r), FolderState::Incomplete);
        let a = r.activity(Vec::new(), 0);
        assert_eq!(a.not_synced[0].path, "aux.c");
        assert_eq!(a.not_synced[0].reason, "a name Windows cannot hold");
        assert_eq!(a.not_synced[0].code, "windows_device");
        assert_eq!(a.not_synced[0].params["name"], "aux.c");
        r.synced("aux.c");
        assert_eq!(state(&r), FolderState::UpToDate);
    }

    #[test]
    fn waiting_content_and_errors_show_over_the_rest() {
        let r = Report::starting();
        r.not_synced("x", Why::new("bad_name", "why"));
        r.finished(Summary {
            waiting: 2,
            ..Default::default()
        });
        assert_eq!(state(&r), FolderState::Syncing);
        r.failed("the document cannot be read".into());
        assert_eq!(state(&r), FolderState::Error);
        r.busy(true);
        r.scan_progress(5, 10);
        let a = r.activity(Vec::new(), 0);
        assert_eq!(
            (a.state, a.scanned, a.to_scan),
            (FolderState::Scanning, 5, 10)
        );
        r.finished(Summary::default());
        let a = r.activity(Vec::new(), 0);
        assert_eq!(
            (a.state, a.scanned, a.error),
            (FolderState::Incomplete, 0, None)
        );
    }

    #[test]
    fn the_not_synced_list_is_filtered_and_pruned() {
        let r = Report::default();
        for p in ["a/x", "a/y", "b"] {
            r.not_synced(p, Why::new("bad_name", "why"));
        }
        assert_eq!(r.not_synced_where(|p| p.starts_with("a/")), ["a/x", "a/y"]);
        r.retain_not_synced(|p| p != "a/x");
        assert!(!r.is_not_synced("a/x") && r.is_not_synced("a/y"));
    }
}
