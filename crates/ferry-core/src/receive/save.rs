//! Saving a receive: its files out of the transfer's store into a staging folder in the
//! destination, then into place without overwriting anything, resumable at every step; and
//! what serving the share on afterwards needs (see [`crate::kept`]).

use std::path::{Path, PathBuf};

use iroh_blobs::{
    api::{
        blobs::{ExportMode, ExportOptions},
        Store,
    },
    Hash,
};
use tokio::sync::mpsc;

use super::Checked;
use crate::{
    error::{Error, Result},
    export,
    kept::Received,
    names,
    progress::{ReceiveEvent, Throttle},
    ticket::Ticket,
};

/// Exports every file into a staging dir, then moves the top-level entries into place.
///
/// An attempt cancelled or failed in the middle resumes from where it stopped: exporting out
/// of the transfer's store moves a file (on one file system), so the staging directory may
/// hold the only copy of a file, and the top-level entries already moved into place are noted
/// in `moved` (in the transfer's directory). The staging directory is therefore kept until
/// everything is in place; a file found in it is kept if it has its verified content.
pub(super) async fn export_all(
    store: &Store,
    mode: ExportMode,
    checked: &Checked,
    dest: &Path,
    moved: &Path,
    events: &mpsc::UnboundedSender<ReceiveEvent>,
) -> Result<Vec<PathBuf>> {
    let staging = export::staging_dir(dest, &checked.offer.hash);
    std::fs::create_dir_all(&staging).map_err(|e| Error::write(&staging, e))?;
    let saved = export_into(store, mode, checked, &staging, dest, moved, events).await?;
    std::fs::remove_dir_all(&staging).ok();
    Ok(saved)
}

/// What `moved.json` holds: the destination, and for each top-level entry the name it is
/// (or is being) moved to there.
#[derive(serde::Serialize, serde::Deserialize, Default)]
struct Moved {
    dest: PathBuf,
    names: std::collections::BTreeMap<String, String>,
}

/// Top-level entries an earlier attempt into `dest` moved (or was moving) into place, and the
/// name each has there. Another destination's record is not used.
fn moved_so_far(moved: &Path, dest: &Path) -> std::collections::BTreeMap<String, String> {
    std::fs::read(moved)
        .ok()
        .and_then(|b| serde_json::from_slice::<Moved>(&b).ok())
        .filter(|m| m.dest == dest)
        .unwrap_or_default()
        .names
        .into_iter()
        // Only names directly in the destination: the file is read back from disk.
        .filter(|(_, name)| names::validate_name(name).is_ok() && !name.contains('/'))
        .collect()
}

/// True if `a` and `b` are two names of one file.
fn same_file(a: &Path, b: &Path) -> bool {
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        match (std::fs::symlink_metadata(a), std::fs::symlink_metadata(b)) {
            (Ok(a), Ok(b)) => a.is_file() && a.dev() == b.dev() && a.ino() == b.ino(),
            _ => false,
        }
    }
    #[cfg(not(unix))]
    {
        let _ = (a, b);
        false
    }
}

/// Notes in `moved` the names the top-level entries have (or are getting) in `dest`.
fn note_moved(
    moved: &Path,
    dest: &Path,
    names: &std::collections::BTreeMap<String, String>,
) -> Result<()> {
    let record = Moved {
        dest: dest.to_path_buf(),
        names: names.clone(),
    };
    crate::atomic::write_atomic(moved, &serde_json::to_vec(&record).expect("serializable"))
        .map_err(|e| Error::write(moved, e))
}

/// True if `path` is a file whose content is `hash`.
async fn holds(path: &Path, hash: Hash) -> bool {
    let path = path.to_path_buf();
    tokio::task::spawn_blocking(move || {
        crate::folder::content::hash_of(&path).is_ok_and(|h| h == hash)
    })
    .await
    .unwrap_or(false)
}

async fn export_into(
    store: &Store,
    mode: ExportMode,
    checked: &Checked,
    staging: &Path,
    dest: &Path,
    moved: &Path,
    events: &mpsc::UnboundedSender<ReceiveEvent>,
) -> Result<Vec<PathBuf>> {
    let files_total = checked.files.len();
    let mut throttle = Throttle::new();
    let mut done = moved_so_far(moved, dest);
    for (i, (rel, hash, _, _)) in checked.files.iter().enumerate() {
        let top = rel
            .components()
            .next()
            .map(|c| c.as_os_str().to_string_lossy().into_owned())
            .unwrap_or_default();
        // Moved into place by an earlier attempt (its staged copy is gone).
        if done.contains_key(&top) && !staging.join(&top).exists() {
            continue;
        }
        let target = export::create_parents(staging, rel)?;
        if std::fs::symlink_metadata(&target).is_ok() {
            if holds(&target, *hash).await {
                continue;
            }
            std::fs::remove_file(&target).map_err(|e| Error::write(&target, e))?;
        }
        store
            .export_with_opts(ExportOptions {
                hash: *hash,
                target: target.clone(),
                mode,
            })
            .finish()
            .await
            .map_err(|e| {
                // The store's error carries the original I/O error, so a full disk is
                // recognised by `Error::write` like everywhere else.
                let iroh_blobs::api::Error::Io(io) = iroh_blobs::api::Error::from(e);
                Error::write(&target, io)
            })?;
        if throttle.ready() || i + 1 == files_total {
            events
                .send(ReceiveEvent::Exporting {
                    files_done: i + 1,
                    files_total,
                })
                .ok();
        }
    }
    let mut saved = Vec::new();
    for top in checked.offer.top_level() {
        let staged = staging.join(&top);
        if let Some(name) = done.get(&top) {
            // Moved (a file is linked under its name, then its staged name removed): the staged
            // name is gone, or is a second name of the very file in place.
            let placed = dest.join(name);
            if !staged.exists() || same_file(&staged, &placed) {
                std::fs::remove_file(&staged).ok();
                saved.push(placed);
                continue;
            }
        }
        // The name is noted before the move: a crash right after it finds the entry there
        // (and its staged copy gone) instead of saving it a second time.
        let name = done.get(&top).cloned().unwrap_or_else(|| {
            export::free_name(dest, &top)
                .file_name()
                .unwrap_or_default()
                .to_string_lossy()
                .into_owned()
        });
        done.insert(top.clone(), name.clone());
        note_moved(moved, dest, &done)?;
        let at = export::move_into_place(&staged, dest, &name)?;
        let landed = at
            .file_name()
            .unwrap_or_default()
            .to_string_lossy()
            .into_owned();
        if landed != name {
            done.insert(top, landed);
            note_moved(moved, dest, &done)?;
        }
        saved.push(at);
    }
    Ok(saved)
}

/// What serving a received share on needs: the blobs that are not files (taken from the
/// transfer's store before it goes), and where each file was saved (`saved`: the top-level
/// entries in the offer's order).
pub(super) async fn received_share(
    store: &Store,
    ticket: &Ticket,
    checked: &Checked,
    saved: &[PathBuf],
) -> Result<Received> {
    let root = ticket.blob_ticket().hash();
    // The blobs that are not files: the root (the hash seq) and the names.
    let files: std::collections::HashSet<Hash> = checked.files.iter().map(|f| f.1).collect();
    let mut meta = Vec::new();
    for h in crate::share::share_hashes(store, root).await? {
        if !files.contains(&h) {
            meta.push(store.get_bytes(h).await.map_err(Error::store)?);
        }
    }
    let placed: std::collections::HashMap<String, &PathBuf> =
        checked.offer.top_level().into_iter().zip(saved).collect();
    let mut located = Vec::with_capacity(checked.files.len());
    for (rel, hash, _, _) in &checked.files {
        let mut parts = rel.components();
        let top = parts
            .next()
            .map(|c| c.as_os_str().to_string_lossy().into_owned())
            .unwrap_or_default();
        let Some(at) = placed.get(&top) else {
            return Err(Error::Transfer(format!("{} was not saved", rel.display())));
        };
        let rest = parts.as_path();
        let path = if rest.as_os_str().is_empty() {
            at.to_path_buf()
        } else {
            at.join(rest)
        };
        located.push((path, *hash));
    }
    Ok(Received {
        ticket: ticket.clone(),
        meta,
        files: located,
        sizes: checked.files.iter().map(|f| f.2).collect(),
    })
}
