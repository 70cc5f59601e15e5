//! The Ferry desktop app: a Tauri shell over ferry-core.
//!
//! The shell is thin: it opens the node's [`Session`] once at start-up (running the node in
//! this process, or joining a `ferry` daemon already running on the same home) and exposes a
//! few commands that call straight into the core.
#![cfg_attr(not(debug_assertions), windows_subsystem = "windows")]

mod commands;
mod state;

fn main() {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("FERRY_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .init();
    tauri::Builder::default()
        .setup(|app| {
            use tauri::Manager;
            let state = tauri::async_runtime::block_on(state::AppState::open())?;
            app.manage(state);
            Ok(())
        })
        .invoke_handler(tauri::generate_handler![commands::node_status])
        .run(tauri::generate_context!())
        .expect("the Ferry window could not be started");
}
