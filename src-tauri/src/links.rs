//! `ferry://` links: opened at start-up, or handed over by a second launch.

use std::sync::Mutex;

use serde::{Deserialize, Serialize};
use tauri::{AppHandle, Manager};
use tauri_specta::Event;

/// A link to open in the Receive screen, sent to the UI while the app runs.
#[derive(Debug, Clone, Serialize, Deserialize, specta::Type, tauri_specta::Event)]
pub struct OpenTicket(pub String);

/// The link the app was started with, until the UI takes it.
#[derive(Debug, Default)]
pub struct PendingLink(Mutex<Option<String>>);

impl PendingLink {
    /// Takes the pending link.
    pub fn take(&self) -> Option<String> {
        self.0.lock().expect("link lock").take()
    }
}

fn find_link(args: &[String]) -> Option<String> {
    args.iter()
        .find(|a| a.to_ascii_lowercase().starts_with("ferry://"))
        .cloned()
}

/// Records a link given on the command line and listens for links opened later.
pub fn setup(app: &AppHandle) {
    let args: Vec<String> = std::env::args().collect();
    app.manage(PendingLink(Mutex::new(find_link(&args))));
    use tauri_plugin_deep_link::DeepLinkExt;
    #[cfg(any(target_os = "linux", all(debug_assertions, windows)))]
    if let Err(e) = app.deep_link().register_all() {
        tracing::debug!("cannot register the ferry:// scheme: {e}");
    }
    let handle = app.clone();
    app.deep_link().on_open_url(move |event| {
        let urls: Vec<String> = event.urls().iter().map(|u| u.to_string()).collect();
        handle_args(&handle, &urls);
    });
}

/// Sends the first `ferry://` link among `args` to the UI.
pub fn handle_args(app: &AppHandle, args: &[String]) {
    if let Some(link) = find_link(args) {
        if OpenTicket(link.clone()).emit(app).is_err() {
            *app.state::<PendingLink>().0.lock().expect("link lock") = Some(link);
        }
    }
}
