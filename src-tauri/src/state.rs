//! What the app holds for its whole life: the node session and the running operations.

use std::{
    collections::HashMap,
    path::PathBuf,
    sync::{
        atomic::{AtomicU32, Ordering},
        Mutex,
    },
};

use ferry_core::{
    overview::{Overview, Summary},
    session::Session,
    settings::Settings,
    NodeConfig,
};
use tokio::sync::oneshot;

/// Shared app state, managed by Tauri.
pub struct AppState {
    /// The node (local or in another process).
    pub session: Session,
    /// The home directory.
    pub home: PathBuf,
    next_id: AtomicU32,
    /// Running operations; dropping the sender stops one.
    running: Mutex<HashMap<u32, oneshot::Sender<()>>>,
    /// What the running operations are doing, for the tray and the quit question.
    pub overview: Mutex<Overview>,
}

impl AppState {
    /// Opens the session of the configured home.
    ///
    /// `FERRY_HOME`, `FERRY_RELAY` and `FERRY_BIND` override the defaults, as for the CLI; the
    /// end-to-end tests use them to run the app offline on loopback. Otherwise the relay comes
    /// from the settings.
    pub async fn open() -> Result<AppState, ferry_core::Error> {
        let home: PathBuf = match std::env::var_os("FERRY_HOME") {
            Some(h) => h.into(),
            None => ferry_core::default_home()?,
        };
        let settings = Settings::load(&home);
        let mut config = NodeConfig::new(home.clone());
        config.relay = settings.relay;
        config.upload = settings.upload;
        config.download = settings.download;
        // Settings may change the limits while the app runs.
        config.adjustable_limits = true;
        config.keep_serving = settings.keep_serving;
        // Devices on the same network find each other (never while bound to loopback).
        config.nearby = true;
        config.visible = settings.visible_nearby;
        if let Ok(relay) = std::env::var("FERRY_RELAY") {
            config.relay = relay.parse()?;
        }
        if let Ok(bind) = std::env::var("FERRY_BIND") {
            config.bind = Some(
                bind.parse()
                    .map_err(|e| ferry_core::Error::Config(format!("FERRY_BIND {bind:?}: {e}")))?,
            );
        }
        Ok(AppState {
            session: Session::open(config).await?,
            home,
            next_id: AtomicU32::new(1),
            running: Mutex::new(HashMap::new()),
            overview: Mutex::new(Overview::default()),
        })
    }

    /// Registers a running operation; returns its id and the signal that stops it.
    pub fn start(&self) -> (u32, oneshot::Receiver<()>) {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = oneshot::channel();
        self.running.lock().expect("state lock").insert(id, tx);
        (id, rx)
    }

    /// Stops a running operation. Returns false if it was not running.
    pub fn stop(&self, id: u32) -> bool {
        self.running
            .lock()
            .expect("state lock")
            .remove(&id)
            .is_some()
    }

    /// Forgets an operation that ended (by itself or stopped).
    pub fn finished(&self, id: u32) {
        self.running.lock().expect("state lock").remove(&id);
        self.overview.lock().expect("overview lock").ended(id);
    }

    /// Stops the node if it runs in this process (folders save their state, the store
    /// flushes); a daemon's node goes on.
    pub async fn shutdown(&self) {
        if let Session::Local { node, .. } = &self.session {
            if let Err(e) = node.shutdown().await {
                tracing::warn!("stopping the node: {e}");
            }
        }
    }

    /// What is in progress now: the running operations and the folders.
    pub async fn summary(&self) -> Summary {
        let folders = self.session.folder_statuses().await.unwrap_or_default();
        self.overview
            .lock()
            .expect("overview lock")
            .summary(&folders)
    }
}
