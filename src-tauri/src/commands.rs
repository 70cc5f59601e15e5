//! Tauri commands: each parses, calls the core, maps the error.

use ferry_core::{control::Status, ErrorInfo};

use crate::state::AppState;

/// The node's id, addresses and live shares.
#[tauri::command]
pub async fn node_status(state: tauri::State<'_, AppState>) -> Result<Status, ErrorInfo> {
    state
        .session
        .status()
        .await
        .map_err(|e| ErrorInfo::from(&e))
}
