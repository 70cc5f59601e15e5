//! The transfer history: what was sent and received, kept across restarts.
//!
//! Records live in `history.json` in the home, rewritten atomically on every change (the file
//! is small: at most [`MAX_RECORDS`] entries). A receive still marked active when the node
//! starts was interrupted (crash, power loss, app closed): it is listed as such, and can be
//! resumed (its partial data is still in the store) or discarded.

use std::{
    path::{Path, PathBuf},
    sync::{Arc, Mutex},
    time::{SystemTime, UNIX_EPOCH},
};

use serde::{Deserialize, Serialize};

use crate::{atomic::write_atomic, error::ErrorInfo};

/// File name of the history inside the home.
pub const HISTORY_FILE: &str = "history.json";
/// Oldest records are dropped beyond this many.
pub const MAX_RECORDS: usize = 500;

/// Which way a transfer went.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "specta", derive(specta::Type))]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    /// This device shared.
    Send,
    /// This device received.
    Receive,
}

/// Where a transfer stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "specta", derive(specta::Type))]
#[serde(rename_all = "snake_case")]
pub enum TransferState {
    /// Running now.
    Active,
    /// Finished: received completely, or a share that was stopped.
    Completed,
    /// Ended with an error.
    Failed,
    /// Cancelled by the user; partial data kept for a later resume.
    Cancelled,
    /// Found active at start-up: the process ended in the middle.
    Interrupted,
}

/// One transfer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "specta", derive(specta::Type))]
pub struct TransferRecord {
    /// Identifier (random, hex).
    pub id: String,
    /// Send or receive.
    pub direction: Direction,
    /// What was transferred, for people: the top-level names.
    pub title: String,
    /// Number of files.
    #[cfg_attr(feature = "specta", specta(type = specta_typescript::Number))]
    pub files: u64,
    /// Total bytes.
    #[cfg_attr(feature = "specta", specta(type = specta_typescript::Number))]
    pub size: u64,
    /// The collection hash (hex).
    pub hash: String,
    /// Current state.
    pub state: TransferState,
    /// The error, when failed.
    #[serde(default, deserialize_with = "ErrorInfo::deserialize_any_version")]
    #[cfg_attr(feature = "specta", specta(type = Option<ErrorInfo>))]
    pub error: Option<ErrorInfo>,
    /// The ticket (to resume a receive, or to show a share again).
    pub ticket: String,
    /// Destination folder of a receive.
    pub dest: Option<PathBuf>,
    /// Where the received top-level entries landed.
    pub saved: Vec<PathBuf>,
    /// Peers that received everything (sends).
    #[cfg_attr(feature = "specta", specta(type = specta_typescript::Number))]
    pub peers_done: u64,
    /// Start, in milliseconds since the Unix epoch.
    #[cfg_attr(feature = "specta", specta(type = specta_typescript::Number))]
    pub started_at: u64,
    /// End, in milliseconds since the Unix epoch.
    #[cfg_attr(feature = "specta", specta(type = Option<specta_typescript::Number>))]
    pub finished_at: Option<u64>,
}

impl TransferRecord {
    /// A new active record.
    pub fn new(direction: Direction, offer: &crate::progress::Offer, ticket: String) -> Self {
        TransferRecord {
            id: data_encoding::HEXLOWER.encode(&rand::random::<[u8; 8]>()),
            direction,
            title: offer.top_level().join(", "),
            files: offer.file_count() as u64,
            size: offer.total_size,
            hash: offer.hash.clone(),
            state: TransferState::Active,
            error: None,
            ticket,
            dest: None,
            saved: Vec::new(),
            peers_done: 0,
            started_at: now_ms(),
            finished_at: None,
        }
    }

    /// Marks the record finished in `state`.
    pub fn finish(&mut self, state: TransferState, error: Option<ErrorInfo>) {
        self.state = state;
        self.error = error;
        self.finished_at = Some(now_ms());
    }
}

/// The current time in Unix milliseconds, as history, folders and the trash record it.
pub(crate) fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or_default()
}

/// The history of one home. Cheap to clone.
#[derive(Debug, Clone)]
pub struct History {
    path: PathBuf,
    records: Arc<Mutex<Vec<TransferRecord>>>,
}

impl History {
    /// Loads the history of `home`; active records from an earlier run become interrupted
    /// receives or completed sends. A corrupt file is kept aside and a new history started.
    pub fn open(home: &Path) -> History {
        let path = home.join(HISTORY_FILE);
        let mut records: Vec<TransferRecord> = match std::fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes).unwrap_or_else(|e| {
                tracing::warn!(
                    "{} is unreadable ({e}); starting a new history",
                    path.display()
                );
                std::fs::rename(&path, path.with_extension("json.corrupt")).ok();
                Vec::new()
            }),
            Err(_) => Vec::new(),
        };
        let mut changed = false;
        for r in records
            .iter_mut()
            .filter(|r| r.state == TransferState::Active)
        {
            r.state = match r.direction {
                Direction::Receive => TransferState::Interrupted,
                Direction::Send => TransferState::Completed,
            };
            changed = true;
        }
        let history = History {
            path,
            records: Arc::new(Mutex::new(records)),
        };
        if changed {
            history.save();
        }
        history
    }

    /// Reads the history of a home that another process owns, without changing it.
    pub fn snapshot(home: &Path) -> Vec<TransferRecord> {
        let mut v: Vec<TransferRecord> = std::fs::read(home.join(HISTORY_FILE))
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or_default();
        v.reverse();
        v
    }

    /// The newest unfinished receive of `hash` into `dest`, which a new attempt continues.
    pub fn unfinished_receive(&self, hash: &str, dest: &Path) -> Option<TransferRecord> {
        self.records
            .lock()
            .expect("history lock")
            .iter()
            .rev()
            .find(|r| {
                r.direction == Direction::Receive
                    && r.hash == hash
                    && r.dest.as_deref() == Some(dest)
                    && matches!(
                        r.state,
                        TransferState::Interrupted
                            | TransferState::Cancelled
                            | TransferState::Failed
                    )
            })
            .cloned()
    }

    /// All records, newest first.
    pub fn list(&self) -> Vec<TransferRecord> {
        let mut v = self.records.lock().expect("history lock").clone();
        v.reverse();
        v
    }

    /// One record.
    pub fn get(&self, id: &str) -> Option<TransferRecord> {
        self.records
            .lock()
            .expect("history lock")
            .iter()
            .find(|r| r.id == id)
            .cloned()
    }

    /// Adds or replaces a record (matched by id) and saves.
    pub fn put(&self, record: TransferRecord) {
        {
            let mut records = self.records.lock().expect("history lock");
            match records.iter_mut().find(|r| r.id == record.id) {
                Some(r) => *r = record,
                None => records.push(record),
            }
            let excess = records.len().saturating_sub(MAX_RECORDS);
            records.drain(..excess);
        }
        self.save();
    }

    /// Changes a record in place and saves.
    pub fn update(&self, id: &str, f: impl FnOnce(&mut TransferRecord)) {
        {
            let mut records = self.records.lock().expect("history lock");
            if let Some(r) = records.iter_mut().find(|r| r.id == id) {
                f(r);
            }
        }
        self.save();
    }

    /// Removes a record and saves.
    pub fn remove(&self, id: &str) -> Option<TransferRecord> {
        let removed = {
            let mut records = self.records.lock().expect("history lock");
            let i = records.iter().position(|r| r.id == id)?;
            Some(records.remove(i))
        };
        self.save();
        removed
    }

    fn save(&self) {
        let bytes = {
            let records = self.records.lock().expect("history lock");
            serde_json::to_vec_pretty(&*records).expect("serializable")
        };
        if let Err(e) = write_atomic(&self.path, &bytes) {
            tracing::warn!("cannot save {}: {e}", self.path.display());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn survives_restart_and_marks_interrupted() {
        let dir = tempfile::tempdir().unwrap();
        let h = History::open(dir.path());
        let offer = |name: &str| crate::progress::Offer {
            hash: format!("h-{name}"),
            entries: vec![crate::progress::OfferEntry {
                name: name.into(),
                size: 5,
            }],
            total_size: 5,
        };
        let mut recv = TransferRecord::new(Direction::Receive, &offer("photos"), "t".into());
        recv.dest = Some(dir.path().join("dl"));
        let send = TransferRecord::new(Direction::Send, &offer("notes"), "t2".into());
        let mut done = TransferRecord::new(Direction::Receive, &offer("done"), "t3".into());
        done.finish(TransferState::Completed, None);
        h.put(recv.clone());
        h.put(send.clone());
        h.put(done.clone());
        let h2 = History::open(dir.path());
        assert_eq!(h2.get(&recv.id).unwrap().state, TransferState::Interrupted);
        assert_eq!(h2.get(&send.id).unwrap().state, TransferState::Completed);
        assert_eq!(h2.get(&done.id).unwrap().state, TransferState::Completed);
        assert_eq!(h2.list()[0].id, done.id, "newest first");
        let again = h2
            .unfinished_receive("h-photos", &dir.path().join("dl"))
            .unwrap();
        assert_eq!(
            again.id, recv.id,
            "a new attempt continues the interrupted record"
        );
        assert!(h2
            .unfinished_receive("h-photos", &dir.path().join("other"))
            .is_none());
        h2.remove(&recv.id);
        assert!(History::open(dir.path()).get(&recv.id).is_none());
    }

    #[test]
    fn a_history_written_before_errors_had_parameters_still_reads() {
        let dir = tempfile::tempdir().unwrap();
        let h = History::open(dir.path());
        let offer = crate::progress::Offer {
            hash: "h".into(),
            entries: Vec::new(),
            total_size: 0,
        };
        let mut failed = TransferRecord::new(Direction::Receive, &offer, "t".into());
        failed.finish(
            TransferState::Failed,
            Some(ErrorInfo::new("connect_failed", "could not connect")),
        );
        h.put(failed.clone());
        // As an earlier version wrote it: the error without `params`.
        let path = dir.path().join(HISTORY_FILE);
        let mut json: serde_json::Value =
            serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
        json[0]["error"].as_object_mut().unwrap().remove("params");
        std::fs::write(&path, serde_json::to_vec(&json).unwrap()).unwrap();
        let again = History::open(dir.path());
        assert_eq!(again.get(&failed.id).unwrap().error, failed.error);
        assert!(!dir.path().join("history.json.corrupt").exists());
    }

    #[test]
    fn corrupt_file_is_set_aside() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(HISTORY_FILE), "{not json").unwrap();
        let h = History::open(dir.path());
        assert!(h.list().is_empty());
        assert!(dir.path().join("history.json.corrupt").exists());
    }
}
