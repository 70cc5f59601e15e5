//! The app's place in the system: its version, starting at login, and updates.
//!
//! Updates are off unless the build's configuration names an endpoint and a public key (the
//! release workflow adds them; see `scripts/package.sh --release-config`). When they are on,
//! the app only looks when asked, shows what it found, and installs only when told to.

use ferry_core::ErrorInfo;
use serde::{Deserialize, Serialize};
use tauri::{AppHandle, Manager};
use tauri_plugin_autostart::ManagerExt as _;

use crate::commands::CmdResult;

/// True if this build's configuration turns updates on.
pub fn updates_configured(config: &tauri::Config) -> bool {
    config.plugins.0.contains_key("updater")
}

/// The version and the system integration settings.
#[derive(Debug, Clone, Serialize, Deserialize, specta::Type)]
pub struct About {
    /// The app's version (the workspace version: the same as `ferry --version`).
    pub version: String,
    /// Whether this build can look for updates.
    pub updates: bool,
    /// Whether Ferry starts when the user logs in.
    pub autostart: bool,
}

/// An update that can be installed.
#[derive(Debug, Clone, Serialize, Deserialize, specta::Type)]
pub struct UpdateInfo {
    /// Its version.
    pub version: String,
    /// What changed, as published.
    pub notes: Option<String>,
}

fn failed(code: &str, what: &str, e: impl std::fmt::Display) -> ErrorInfo {
    ErrorInfo::new(code, format!("{what}: {e}")).with("reason", e)
}

/// The version, and whether updates and starting at login are on.
#[tauri::command]
#[specta::specta]
pub fn about(app: AppHandle) -> About {
    About {
        version: app.package_info().version.to_string(),
        updates: updates_configured(app.config()),
        autostart: app.autolaunch().is_enabled().unwrap_or(false),
    }
}

/// Starts Ferry at login (or stops doing so), so synced folders keep syncing.
#[tauri::command]
#[specta::specta]
pub fn set_autostart(app: AppHandle, enabled: bool) -> CmdResult<bool> {
    let launcher = app.autolaunch();
    let done = if enabled {
        launcher.enable()
    } else {
        launcher.disable()
    };
    done.map_err(|e| failed("autostart_failed", "cannot change starting at login", e))?;
    launcher
        .is_enabled()
        .map_err(|e| failed("autostart_failed", "cannot read starting at login", e))
}

fn updates_off() -> ErrorInfo {
    ErrorInfo::new(
        "updates_off",
        "This build does not look for updates; your package manager or the release page has new versions.",
    )
}

/// Looks for an update; `None` if this is the newest version.
#[tauri::command]
#[specta::specta]
pub async fn check_update(app: AppHandle) -> CmdResult<Option<UpdateInfo>> {
    use tauri_plugin_updater::UpdaterExt;
    if !updates_configured(app.config()) {
        return Err(updates_off());
    }
    let updater = app
        .updater()
        .map_err(|e| failed("update_failed", "cannot look for updates", e))?;
    let found = updater
        .check()
        .await
        .map_err(|e| failed("update_failed", "cannot look for updates", e))?;
    Ok(found.map(|u| UpdateInfo {
        version: u.version,
        notes: u.body,
    }))
}

/// Downloads and installs the update found by [`check_update`], then restarts the app.
#[tauri::command]
#[specta::specta]
pub async fn install_update(app: AppHandle) -> CmdResult<()> {
    use tauri_plugin_updater::UpdaterExt;
    if !updates_configured(app.config()) {
        return Err(updates_off());
    }
    let update = app
        .updater()
        .map_err(|e| failed("update_failed", "cannot update", e))?
        .check()
        .await
        .map_err(|e| failed("update_failed", "cannot update", e))?
        .ok_or_else(|| ErrorInfo::new("update_failed", "there is no update to install"))?;
    update
        .download_and_install(|_, _| {}, || {})
        .await
        .map_err(|e| failed("update_failed", "the update could not be installed", e))?;
    // Folders save their state before the new version starts.
    app.state::<crate::state::AppState>().shutdown().await;
    app.restart()
}
