//! The blob store of one incoming transfer: `<home>/transfers/<collection hash>` for a one-shot
//! receive, `<folder>/.ferry/incoming/<hash>` for a large file coming into a synced folder.
//!
//! A receive downloads into a store of its own rather than the home's, so that finished files
//! can be moved out of it (a rename, not a copy) without leaving any other share, folder or
//! transfer pointing at a moved file; the store is removed once the files are in place, and
//! kept after a failure or cancel so that the next attempt resumes from it. A transfer's store
//! is open at most once at a time in this process: a second receive of the same ticket is
//! refused with a clear error instead of waiting on the first one's lock.

use std::{
    collections::HashSet,
    path::{Path, PathBuf},
    sync::{LazyLock, Mutex},
};

use iroh_blobs::{
    api::Store,
    store::fs::{options::Options, FsStore},
    Hash,
};

use crate::error::{Error, Result};

/// Transfer stores open in this process, by directory.
static OPEN: LazyLock<Mutex<HashSet<PathBuf>>> = LazyLock::new(Default::default);

/// Where the store of the transfer of collection `hash` lives.
pub fn transfer_dir(home: &Path, hash: &Hash) -> PathBuf {
    home.join("transfers").join(hash.to_hex())
}

/// True while a receive of `hash` runs in this process.
pub fn is_open(home: &Path, hash: &Hash) -> bool {
    is_open_dir(&transfer_dir(home, hash))
}

/// True while the transfer store in `dir` is open in this process.
pub fn is_open_dir(dir: &Path) -> bool {
    OPEN.lock().expect("not poisoned").contains(dir)
}

/// An open transfer store. Dropping it without [`TransferStore::close`] (a cancelled or
/// aborted receive) still shuts the store down, in the background.
pub struct TransferStore {
    dir: PathBuf,
    store: Option<FsStore>,
    /// Removed from disk when dropped.
    remove: bool,
}

impl TransferStore {
    /// Opens (or creates) the store of the transfer of `hash`.
    pub async fn open(home: &Path, hash: &Hash) -> Result<TransferStore> {
        Self::open_dir(transfer_dir(home, hash)).await
    }

    /// Opens (or creates) a transfer store in `dir`.
    pub async fn open_dir(dir: PathBuf) -> Result<TransferStore> {
        // A store dropped by an aborted receive closes in the background: give it a moment.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        while !OPEN.lock().expect("not poisoned").insert(dir.clone()) {
            if std::time::Instant::now() > deadline {
                return Err(Error::Transfer(
                    "this transfer is already being received".into(),
                ));
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        // No file content is inlined in the store's database: every file, however small, is a
        // file of its own that the export moves into place. Inlined, 10,000 small files held
        // their whole content in the database's pages (80 of a 94 MiB heap) and were written
        // out again on export. Small outboards (files of 16 KiB to 4 MiB) stay inlined.
        let mut options = Options::new(&dir);
        options.inline.max_data_inlined = 0;
        match FsStore::load_with_opts(dir.join("blobs.db"), options).await {
            Ok(store) => Ok(TransferStore {
                dir,
                store: Some(store),
                remove: false,
            }),
            Err(e) => {
                OPEN.lock().expect("not poisoned").remove(&dir);
                Err(Error::Store(format!("cannot open {}: {e}", dir.display())))
            }
        }
    }

    /// The store, to download into and export from.
    pub fn store(&self) -> &Store {
        self.store.as_ref().expect("open until closed")
    }

    /// Removes the store from disk when it is dropped (it holds nothing worth keeping).
    pub fn remove_when_dropped(&mut self) {
        self.remove = true;
    }

    /// Shuts the store down; removes it too when the transfer is `finished` (its files are in
    /// place), keeps it for a later attempt otherwise.
    pub async fn close(mut self, finished: bool) {
        if let Some(store) = self.store.take() {
            shut_down(store).await;
        }
        if finished {
            std::fs::remove_dir_all(&self.dir).ok();
        }
        OPEN.lock().expect("not poisoned").remove(&self.dir);
    }
}

impl Drop for TransferStore {
    fn drop(&mut self) {
        let Some(store) = self.store.take() else {
            return;
        };
        let dir = self.dir.clone();
        let remove = self.remove;
        let closed = move || {
            if remove {
                std::fs::remove_dir_all(&dir).ok();
            }
            OPEN.lock().expect("not poisoned").remove(&dir);
        };
        match tokio::runtime::Handle::try_current() {
            Ok(rt) => {
                rt.spawn(async move {
                    shut_down(store).await;
                    closed();
                });
            }
            Err(_) => closed(),
        }
    }
}

/// How long a closing store may take to finish what it is doing (less than `open_dir` waits
/// for a store dropped in the background to close).
const IDLE_WAIT: std::time::Duration = std::time::Duration::from_secs(3);

/// Shuts `store` down once what it was doing has finished. A task of the store goes on after
/// the caller stopped waiting for it (a cancelled receive stops waiting for an export that
/// is moving a file out of the store), and a shutdown in between left the database naming a
/// file already moved: the next attempt on that store panicked inside it.
async fn shut_down(store: FsStore) {
    if tokio::time::timeout(IDLE_WAIT, store.wait_idle())
        .await
        .is_err()
    {
        tracing::debug!("a transfer store still busy after {IDLE_WAIT:?} is shut down");
    }
    store.shutdown().await.ok();
}
