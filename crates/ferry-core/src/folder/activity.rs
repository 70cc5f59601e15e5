//! What a running synced folder is doing, for people: its state, its peers, what changed
//! recently and which conflicts wait for review. Read from memory (the folder's index and a
//! short log), so asking often is cheap even for very large folders.

use std::collections::VecDeque;

use serde::{Deserialize, Serialize};

/// How many recent changes a folder remembers.
pub const RECENT_CHANGES: usize = 50;

/// The state of a synced folder.
#[cfg_attr(feature = "specta", derive(specta::Type))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FolderState {
    /// Looking at every file and record (at start, and on the periodic rescan).
    Scanning,
    /// Changes are being written or published, or content is still wanted from peers.
    Syncing,
    /// Nothing left to do.
    UpToDate,
    /// Everything that can be synced here is; some files cannot be (see `not_synced`).
    Incomplete,
    /// The last round failed; see `error`.
    Error,
}

/// What happened to a file.
#[cfg_attr(feature = "specta", derive(specta::Type))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ChangeKind {
    /// A new file.
    Added,
    /// New content for an existing file.
    Updated,
    /// The file was deleted (on a peer: it went to this device's trash).
    Deleted,
    /// Two devices changed it at once: a conflict copy keeps the other version.
    Conflict,
}

/// One change to a folder's files.
#[cfg_attr(feature = "specta", derive(specta::Type))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Change {
    /// The file, relative to the folder.
    pub path: String,
    /// What happened.
    pub kind: ChangeKind,
    /// Who made the change: a device name; empty for this device.
    pub by: String,
    /// When this device saw it, Unix milliseconds.
    #[cfg_attr(feature = "specta", specta(type = specta_typescript::Number))]
    pub at_ms: u64,
}

/// A conflict copy next to the file it belongs to.
#[cfg_attr(feature = "specta", derive(specta::Type))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConflictCopy {
    /// The conflict copy, relative to the folder.
    pub copy: String,
    /// The file it is a version of.
    pub original: String,
}

/// A file of the folder that cannot be synced on this device, and why (a link or a folder in
/// its way, a name this file system refuses, no permission). Looked at again when the path
/// changes and at every full pass.
#[cfg_attr(feature = "specta", derive(specta::Type))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NotSynced {
    /// The file, relative to the folder.
    pub path: String,
    /// Why, for people, in English (the CLI prints it).
    pub reason: String,
    /// Why, as a stable code (see [`Why`]), for front ends to word in their language.
    pub code: String,
    /// What the code's wording needs: `name`, `char`, `other`, `why`, `reason`.
    pub params: std::collections::BTreeMap<String, String>,
}

/// Why a path cannot be synced here: a stable code with its parameters, and the English
/// text. Codes: `windows_char` (`name`, `char`), `windows_ending` (`name`), `windows_device`
/// (`name`), `same_spelling` (`other`), `in_the_way`, `no_permission`, `read_only`,
/// `bad_name`, `bad_content` (each with `reason`, what the system said), and
/// `only_here` (this device's file, not published: `why` is the inner code, with its
/// parameters).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Why {
    /// The code.
    pub code: String,
    /// Its parameters.
    pub params: std::collections::BTreeMap<String, String>,
    /// The English text.
    pub text: String,
}

/// Every code a [`Why`] can carry.
pub const WHY_CODES: &[&str] = &[
    "windows_char",
    "windows_ending",
    "windows_device",
    "same_spelling",
    "in_the_way",
    "no_permission",
    "read_only",
    "bad_name",
    "bad_content",
    "only_here",
];

impl Why {
    /// A reason with this code and English text.
    pub fn new(code: &str, text: impl Into<String>) -> Why {
        debug_assert!(WHY_CODES.contains(&code), "unlisted code {code}");
        Why {
            code: code.into(),
            params: Default::default(),
            text: text.into(),
        }
    }

    /// Adds the parameter `key`.
    pub fn with(mut self, key: &str, value: impl ToString) -> Why {
        self.params.insert(key.into(), value.to_string());
        self
    }

    /// Why a write failed, if trying again will not help until something changes on this
    /// device, or until a peer publishes another version (content that does not match its
    /// record); `None` for a failure worth retrying (a full disk, a peer gone).
    pub(crate) fn of_write(e: &crate::error::Error) -> Option<Why> {
        use std::io::ErrorKind;
        let code = match e {
            crate::error::Error::BadData(_) => "bad_content",
            crate::error::Error::Write { source, .. } => match source.kind() {
                ErrorKind::AlreadyExists | ErrorKind::NotADirectory | ErrorKind::IsADirectory => {
                    "in_the_way"
                }
                ErrorKind::PermissionDenied => "no_permission",
                ErrorKind::ReadOnlyFilesystem => "read_only",
                ErrorKind::InvalidInput => "bad_name",
                _ => return None,
            },
            _ => return None,
        };
        let reason = match e {
            crate::error::Error::Write { source, .. } => source.to_string(),
            other => other.to_string(),
        };
        Some(Why::new(code, e.to_string()).with("reason", reason))
    }

    /// This device's file at a path its peers could not hold, for `inner`: kept here only.
    pub(crate) fn only_here(inner: Why) -> Why {
        let mut why = Why::new(
            "only_here",
            format!(
                "{}: kept on this device only, so that every device can hold the folder",
                inner.text
            ),
        )
        .with("why", &inner.code);
        why.params.extend(inner.params);
        why
    }
}

/// A peer of the folder.
#[cfg_attr(feature = "specta", derive(specta::Type))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FolderPeer {
    /// Its node id.
    pub id: String,
    /// True while this device is connected to it for this folder.
    pub connected: bool,
    /// The device name its changes carry (a claim: shown, never trusted), once one was seen.
    pub name: Option<String>,
    /// How it is reached now, while connected: directly or through a relay.
    pub via: Option<crate::progress::Via>,
}

/// A running folder's activity.
#[cfg_attr(feature = "specta", derive(specta::Type))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FolderActivity {
    /// Its state.
    pub state: FolderState,
    /// While scanning: files looked at so far, of `to_scan` (0 of 0 before the walk ends).
    #[cfg_attr(feature = "specta", specta(type = specta_typescript::Number))]
    pub scanned: u64,
    /// While scanning: files found.
    #[cfg_attr(feature = "specta", specta(type = specta_typescript::Number))]
    pub to_scan: u64,
    /// Files this device holds in sync.
    #[cfg_attr(feature = "specta", specta(type = specta_typescript::Number))]
    pub files: u64,
    /// Their total size.
    #[cfg_attr(feature = "specta", specta(type = specta_typescript::Number))]
    pub bytes: u64,
    /// Files waiting for content from peers.
    #[cfg_attr(feature = "specta", specta(type = specta_typescript::Number))]
    pub waiting: u64,
    /// Their total size, as far as known.
    #[cfg_attr(feature = "specta", specta(type = specta_typescript::Number))]
    pub waiting_bytes: u64,
    /// Peers seen in this folder.
    pub peers: Vec<FolderPeer>,
    /// Recent changes, newest first.
    pub recent: Vec<Change>,
    /// Conflict copies waiting for review.
    pub conflicts: Vec<ConflictCopy>,
    /// Files that cannot be synced on this device.
    pub not_synced: Vec<NotSynced>,
    /// What went wrong in the last round, if it failed.
    pub error: Option<String>,
    /// Bytes per second of content arriving now (over the last seconds).
    #[cfg_attr(feature = "specta", specta(type = specta_typescript::Number))]
    pub rate: u64,
    /// When a round last ended with nothing left to do (Unix milliseconds), since the folder
    /// started here.
    #[cfg_attr(feature = "specta", specta(type = Option<specta_typescript::Number>))]
    pub last_synced_ms: Option<u64>,
}

/// The short log of recent changes.
#[derive(Debug, Default)]
pub(crate) struct Recent(VecDeque<Change>);

impl Recent {
    pub(crate) fn push(&mut self, change: Change) {
        if self.0.len() == RECENT_CHANGES {
            self.0.pop_back();
        }
        self.0.push_front(change);
    }

    pub(crate) fn list(&self) -> Vec<Change> {
        self.0.iter().cloned().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_log_keeps_the_newest_changes_first_and_stays_bounded() {
        let mut r = Recent::default();
        for i in 0..(RECENT_CHANGES + 10) {
            r.push(Change {
                path: format!("f{i}"),
                kind: ChangeKind::Added,
                by: String::new(),
                at_ms: i as u64,
            });
        }
        let list = r.list();
        assert_eq!(list.len(), RECENT_CHANGES);
        assert_eq!(list[0].path, format!("f{}", RECENT_CHANGES + 9));
        assert_eq!(list.last().unwrap().path, "f10");
    }
}
