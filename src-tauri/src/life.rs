//! Ferry's life in the background: closing the window hides it, opening Ferry again shows it,
//! and quitting asks first while something would stop, then shuts the node down cleanly.
//!
//! Quitting goes through three steps whatever asked for it (the tray, Ctrl/Cmd+Q, the
//! system's Quit menu): ask (only while a share, receive or folder sync is in progress),
//! stop the node (folders save their state, the store flushes), exit.

use std::sync::atomic::{AtomicBool, Ordering};

use serde::{Deserialize, Serialize};
use tauri::{AppHandle, Manager};
use tauri_specta::Event;

use crate::{
    state::AppState,
    texts::{self, Lang},
    tray::notify,
};

/// The argument autostart launches Ferry with: start with the window hidden.
pub const HIDDEN_ARG: &str = "--hidden";
/// How long quitting waits for the node to stop.
const SHUTDOWN_LIMIT: std::time::Duration = std::time::Duration::from_secs(10);

/// Quitting was confirmed (or nothing was in progress).
static CONFIRMED: AtomicBool = AtomicBool::new(false);
/// The node was stopped: the next exit request goes through.
static STOPPED: AtomicBool = AtomicBool::new(false);

/// Quit was asked for while something is in progress (these lines, for people): the UI asks
/// whether to quit anyway.
#[derive(Debug, Clone, Serialize, Deserialize, specta::Type, tauri_specta::Event)]
pub struct QuitRequested(pub Vec<String>);

/// Shows, unminimises and focuses the main window.
pub fn show_window(app: &AppHandle) {
    if let Some(w) = app.get_webview_window("main") {
        w.show().ok();
        w.unminimize().ok();
        w.set_focus().ok();
    }
}

/// Hides the main window; the first time, says that Ferry goes on in the background.
pub fn hide_window(app: &AppHandle) {
    static SAID: AtomicBool = AtomicBool::new(false);
    if let Some(w) = app.get_webview_window("main") {
        w.hide().ok();
    }
    if !SAID.swap(true, Ordering::Relaxed) {
        notify(app, |_| true, texts::still_running);
    }
}

/// What would stop if Ferry quit now, for people; empty if nothing.
pub async fn in_progress(app: &AppHandle) -> Vec<String> {
    let state = app.state::<AppState>();
    let summary = state.summary().await;
    let lang = Lang::of(&state.home);
    summary.lines.iter().map(|l| texts::line(lang, l)).collect()
}

/// Quits at once when nothing is in progress; otherwise shows the window, which asks.
pub async fn request_quit(app: &AppHandle) {
    let lines = in_progress(app).await;
    if lines.is_empty() {
        quit(app);
        return;
    }
    show_window(app);
    if let Err(e) = QuitRequested(lines).emit(app) {
        tracing::warn!("cannot ask whether to quit ({e}); quitting");
        quit(app);
    }
}

/// Quits: the user said so, or nothing is in progress.
pub fn quit(app: &AppHandle) {
    CONFIRMED.store(true, Ordering::SeqCst);
    app.exit(0);
}

/// Every request to exit passes here: unconfirmed ones ask first, confirmed ones stop the node
/// before the process ends.
pub fn on_exit_requested(app: &AppHandle, code: Option<i32>, api: &tauri::ExitRequestApi) {
    // A restart after an update stopped the node itself (`system::install_update`); it
    // cannot be held back anyway.
    if STOPPED.load(Ordering::SeqCst) || code == Some(tauri::RESTART_EXIT_CODE) {
        return;
    }
    api.prevent_exit();
    let app = app.clone();
    if !CONFIRMED.load(Ordering::SeqCst) {
        tauri::async_runtime::spawn(async move { request_quit(&app).await });
        return;
    }
    tauri::async_runtime::spawn(async move {
        let state = app.state::<AppState>();
        if tokio::time::timeout(SHUTDOWN_LIMIT, state.shutdown())
            .await
            .is_err()
        {
            tracing::warn!("the node did not stop within {SHUTDOWN_LIMIT:?}; quitting anyway");
        }
        STOPPED.store(true, Ordering::SeqCst);
        app.exit(0);
    });
}
