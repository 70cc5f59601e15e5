//! What the node is doing right now, summed up for a glance: one state for an icon (the app's
//! tray) and one line per share, receive or busy folder.
//!
//! A front end feeds it the events of the shares and receives it runs, and asks for a
//! [`Summary`] with the folders' statuses. It holds no text for people: the front end words the
//! lines (in the user's language).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::{
    folder::{activity::FolderState, manage::FolderStatus},
    progress::{ReceiveEvent, ShareEvent},
};

/// The one state an icon shows; a later variant wins over an earlier one.
#[cfg_attr(feature = "specta", derive(specta::Type))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Busy {
    /// Nothing moves (shares may be waiting for receivers).
    Idle,
    /// A folder scans or syncs.
    Syncing,
    /// A receiver is downloading a share.
    Sending,
    /// A receive runs.
    Receiving,
    /// A folder failed.
    Error,
}

/// One thing in progress.
#[cfg_attr(feature = "specta", derive(specta::Type))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Line {
    /// A live share.
    Share {
        /// What it is called (its first top-level name; empty while it is being prepared).
        name: String,
        /// Other top-level names it holds.
        #[cfg_attr(feature = "specta", specta(type = specta_typescript::Number))]
        others: usize,
        /// Devices downloading it now.
        #[cfg_attr(feature = "specta", specta(type = specta_typescript::Number))]
        downloading: usize,
        /// Devices that have everything.
        #[cfg_attr(feature = "specta", specta(type = specta_typescript::Number))]
        done: usize,
        /// Of what the downloading devices fetch, the part they have (0–100).
        percent: u8,
    },
    /// A receive.
    Receive {
        /// What it is called (empty until the offer arrived).
        name: String,
        /// Other top-level names it holds.
        #[cfg_attr(feature = "specta", specta(type = specta_typescript::Number))]
        others: usize,
        /// The part of it here (0–100).
        percent: u8,
    },
    /// A folder with files still to sync.
    Syncing {
        /// The folder's name.
        folder: String,
        /// Files waiting (0 while it scans).
        #[cfg_attr(feature = "specta", specta(type = specta_typescript::Number))]
        files: u64,
    },
    /// A folder whose last round failed.
    FolderError {
        /// The folder's name.
        folder: String,
    },
}

/// The state and the lines, most recent operation last.
#[cfg_attr(feature = "specta", derive(specta::Type))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Summary {
    /// What the icon shows.
    pub busy: Busy,
    /// What is in progress.
    pub lines: Vec<Line>,
    /// Folders that sync (not paused).
    #[cfg_attr(feature = "specta", specta(type = specta_typescript::Number))]
    pub folders_running: usize,
    /// Folders paused.
    #[cfg_attr(feature = "specta", specta(type = specta_typescript::Number))]
    pub folders_paused: usize,
}

/// The running operations of a front end.
#[derive(Debug, Default)]
pub struct Overview {
    ops: BTreeMap<u32, Op>,
}

#[derive(Debug)]
enum Op {
    Share {
        names: Vec<String>,
        peers: BTreeMap<String, Peer>,
    },
    Receive {
        names: Vec<String>,
        done: u64,
        total: u64,
    },
}

#[derive(Debug, Default)]
struct Peer {
    name: Option<String>,
    done: u64,
    total: u64,
    connected: bool,
    finished: bool,
}

impl Overview {
    /// Takes in an event of the share `id`.
    pub fn share(&mut self, id: u32, event: &ShareEvent) {
        let op = self.ops.entry(id).or_insert_with(|| Op::Share {
            names: Vec::new(),
            peers: BTreeMap::new(),
        });
        let Op::Share { names, peers } = op else {
            return;
        };
        match event {
            ShareEvent::Importing { .. } => {}
            ShareEvent::Ready(info) => *names = info.offer.top_level(),
            ShareEvent::PeerConnected { peer } => {
                peers.entry(peer.clone()).or_default().connected = true;
            }
            ShareEvent::PeerProgress {
                peer,
                progress,
                name,
            } => {
                let p = peers.entry(peer.clone()).or_default();
                if name.is_some() {
                    p.name = name.clone();
                }
                p.connected = true;
                p.done = progress.done;
                p.total = progress.total;
            }
            ShareEvent::PeerDone { peer } => {
                let p = peers.entry(peer.clone()).or_default();
                p.finished = true;
                p.done = p.total;
            }
            ShareEvent::PeerDisconnected { peer } => {
                peers.entry(peer.clone()).or_default().connected = false;
            }
        }
    }

    /// Takes in an event of the receive `id`.
    pub fn receive(&mut self, id: u32, event: &ReceiveEvent) {
        let op = self.ops.entry(id).or_insert_with(|| Op::Receive {
            names: Vec::new(),
            done: 0,
            total: 0,
        });
        let Op::Receive { names, done, total } = op else {
            return;
        };
        match event {
            ReceiveEvent::Offer { offer, .. } => {
                *names = offer.top_level();
                *total = offer.total_size;
            }
            ReceiveEvent::Progress(p) => {
                *done = p.done;
                *total = p.total;
            }
            ReceiveEvent::Exporting { .. } | ReceiveEvent::Done(_) => *done = *total,
            ReceiveEvent::Connecting => {}
        }
    }

    /// The name of the share `id` and the device name `peer` claims, if it said one.
    pub fn share_peer(&self, id: u32, peer: &str) -> (String, Option<String>) {
        match self.ops.get(&id) {
            Some(Op::Share { names, peers }) => (
                names.first().cloned().unwrap_or_default(),
                peers.get(peer).and_then(|p| p.name.clone()),
            ),
            _ => (String::new(), None),
        }
    }

    /// The operation `id` ended (stopped, failed or done).
    pub fn ended(&mut self, id: u32) {
        self.ops.remove(&id);
    }

    /// True while a share or receive runs: quitting would end it.
    pub fn any_running(&self) -> bool {
        !self.ops.is_empty()
    }

    /// The state and lines, with the folders as `folders` says.
    pub fn summary(&self, folders: &[FolderStatus]) -> Summary {
        let mut busy = Busy::Idle;
        let mut lines = Vec::new();
        for op in self.ops.values() {
            match op {
                Op::Share { names, peers } => {
                    let active: Vec<&Peer> = peers
                        .values()
                        .filter(|p| p.connected && !p.finished)
                        .collect();
                    if !active.is_empty() {
                        busy = busy.max(Busy::Sending);
                    }
                    let (done, total) = active.iter().fold((0u64, 0u64), |(d, t), p| {
                        (d.saturating_add(p.done), t.saturating_add(p.total))
                    });
                    lines.push(Line::Share {
                        name: names.first().cloned().unwrap_or_default(),
                        others: names.len().saturating_sub(1),
                        downloading: active.len(),
                        done: peers.values().filter(|p| p.finished).count(),
                        percent: percent(done, total),
                    });
                }
                Op::Receive { names, done, total } => {
                    busy = busy.max(Busy::Receiving);
                    lines.push(Line::Receive {
                        name: names.first().cloned().unwrap_or_default(),
                        others: names.len().saturating_sub(1),
                        percent: percent(*done, *total),
                    });
                }
            }
        }
        let mut folders_paused = 0;
        for f in folders {
            if f.info.paused {
                folders_paused += 1;
                continue;
            }
            let folder = folder_name(f);
            match f.activity.as_ref().map(|a| (a.state, a.waiting)) {
                Some((FolderState::Scanning, _)) => {
                    busy = busy.max(Busy::Syncing);
                    lines.push(Line::Syncing { folder, files: 0 });
                }
                Some((FolderState::Syncing, files)) => {
                    busy = busy.max(Busy::Syncing);
                    lines.push(Line::Syncing { folder, files });
                }
                Some((FolderState::Error, _)) => {
                    busy = busy.max(Busy::Error);
                    lines.push(Line::FolderError { folder });
                }
                _ => {}
            }
        }
        Summary {
            busy,
            lines,
            folders_running: folders.len() - folders_paused,
            folders_paused,
        }
    }
}

/// Something that happened to a folder between two looks, worth telling the user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum News {
    /// A new conflict copy to review.
    Conflict {
        /// The folder's name.
        folder: String,
        /// The file it is a version of, relative to the folder.
        file: String,
    },
    /// The folder went into its error state.
    FolderError {
        /// The folder's name.
        folder: String,
        /// What went wrong, as the folder says.
        error: String,
    },
}

/// What is new in `now` against `before`: conflict copies not seen before, folders that went
/// into error. A folder not in `before` (just started or joined) tells only of errors.
pub fn news(before: &[FolderStatus], now: &[FolderStatus]) -> Vec<News> {
    let mut out = Vec::new();
    for f in now {
        let Some(a) = &f.activity else { continue };
        let old = before
            .iter()
            .find(|b| b.info.id == f.info.id)
            .and_then(|b| b.activity.as_ref());
        let folder = folder_name(f);
        if a.state == FolderState::Error && old.is_none_or(|o| o.state != FolderState::Error) {
            out.push(News::FolderError {
                folder: folder.clone(),
                error: a.error.clone().unwrap_or_default(),
            });
        }
        if let Some(old) = old {
            for c in &a.conflicts {
                if !old.conflicts.iter().any(|o| o.copy == c.copy) {
                    out.push(News::Conflict {
                        folder: folder.clone(),
                        file: c.original.clone(),
                    });
                }
            }
        }
    }
    out
}

fn folder_name(f: &FolderStatus) -> String {
    f.info
        .path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| f.info.path.display().to_string())
}

fn percent(done: u64, total: u64) -> u8 {
    if total == 0 {
        return 0;
    }
    (u128::from(done.min(total)) * 100 / u128::from(total)) as u8
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::folder::activity::FolderActivity;
    use crate::progress::{Offer, OfferEntry, ShareInfo, TransferProgress};

    fn offer(names: &[&str], size: u64) -> Offer {
        Offer {
            hash: "h".into(),
            entries: names
                .iter()
                .map(|n| OfferEntry {
                    name: n.to_string(),
                    size,
                })
                .collect(),
            total_size: size * names.len() as u64,
        }
    }

    fn progress(done: u64, total: u64) -> TransferProgress {
        TransferProgress {
            done,
            total,
            ..Default::default()
        }
    }

    /// A running folder `Docs` in `state` with these conflict copies; its error, if in error,
    /// is "disk gone".
    fn folder(state: FolderState, conflicts: &[&str]) -> FolderStatus {
        use crate::folder::activity::ConflictCopy;
        FolderStatus {
            info: crate::folder::manage::FolderInfo {
                id: "f".into(),
                path: "/home/u/Docs".into(),
                read_only: false,
                peers: Vec::new(),
                paused: false,
            },
            files: 0,
            bytes: 0,
            trash: Vec::new(),
            activity: Some(FolderActivity {
                state,
                scanned: 0,
                to_scan: 0,
                files: 0,
                bytes: 0,
                waiting: 0,
                waiting_bytes: 0,
                peers: Vec::new(),
                recent: Vec::new(),
                conflicts: conflicts
                    .iter()
                    .map(|c| ConflictCopy {
                        copy: format!("{c}.sync-conflict"),
                        original: c.to_string(),
                    })
                    .collect(),
                not_synced: Vec::new(),
                error: Some("disk gone".into()),
                rate: 0,
                last_synced_ms: None,
            }),
        }
    }

    #[test]
    fn a_share_counts_who_downloads_and_who_is_done() {
        let mut o = Overview::default();
        o.share(
            1,
            &ShareEvent::Ready(ShareInfo {
                id: 1,
                ticket: String::new(),
                link: String::new(),
                offer: offer(&["Project/a", "Project/b", "notes.txt"], 50),
                skipped: Vec::new(),
            }),
        );
        let s = o.summary(&[]);
        assert_eq!(s.busy, Busy::Idle, "a share nobody fetches is idle");
        for (peer, done) in [("p1", 30), ("p2", 90), ("p3", 0)] {
            o.share(
                1,
                &ShareEvent::PeerProgress {
                    peer: peer.into(),
                    name: None,
                    progress: progress(done, 150),
                },
            );
        }
        o.share(1, &ShareEvent::PeerDone { peer: "p3".into() });
        o.share(1, &ShareEvent::PeerDisconnected { peer: "p2".into() });
        let s = o.summary(&[]);
        assert_eq!(s.busy, Busy::Sending);
        assert_eq!(
            s.lines,
            [Line::Share {
                name: "Project".into(),
                others: 1,
                downloading: 1,
                done: 1,
                percent: 20,
            }]
        );
        o.ended(1);
        assert!(!o.any_running());
        assert_eq!(o.summary(&[]).lines, []);
    }

    #[test]
    fn a_receive_outranks_a_send_and_a_failed_folder_outranks_both() {
        let mut o = Overview::default();
        o.receive(7, &ReceiveEvent::Connecting);
        o.receive(
            7,
            &ReceiveEvent::Offer {
                offer: offer(&["Holiday/x.jpg"], 1000),
                local_bytes: 0,
                resumed: false,
            },
        );
        o.receive(7, &ReceiveEvent::Progress(progress(1, 3)));
        let s = o.summary(&[]);
        assert_eq!(s.busy, Busy::Receiving);
        assert_eq!(
            s.lines,
            [Line::Receive {
                name: "Holiday".into(),
                others: 0,
                percent: 33,
            }]
        );
        let failed = folder(FolderState::Error, &[]);
        let mut paused = folder(FolderState::UpToDate, &[]);
        paused.info.paused = true;
        paused.activity = None;
        let s = o.summary(&[failed, paused]);
        assert_eq!(s.busy, Busy::Error);
        assert_eq!(
            s.lines[1],
            Line::FolderError {
                folder: "Docs".into()
            }
        );
        assert_eq!((s.folders_running, s.folders_paused), (1, 1));
    }

    #[test]
    fn news_tells_of_new_conflicts_and_new_errors_once() {
        let a = [folder(FolderState::UpToDate, &["old.txt"])];
        let b = [folder(FolderState::Error, &["old.txt", "report.odt"])];
        assert_eq!(
            news(&a, &b),
            [
                News::FolderError {
                    folder: "Docs".into(),
                    error: "disk gone".into()
                },
                News::Conflict {
                    folder: "Docs".into(),
                    file: "report.odt".into()
                }
            ]
        );
        assert_eq!(news(&b, &b), [], "nothing new the second time");
        assert_eq!(
            news(&[], &a),
            [],
            "a folder seen for the first time brings its old conflicts along silently"
        );
    }

    #[test]
    fn percent_never_overflows_or_divides_by_zero() {
        assert_eq!(percent(5, 0), 0);
        assert_eq!(percent(u64::MAX, u64::MAX), 100);
        assert_eq!(percent(u64::MAX, 10), 100);
    }
}
