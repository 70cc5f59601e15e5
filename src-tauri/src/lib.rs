//! The Ferry desktop app: a Tauri shell over ferry-core.
//!
//! The shell is thin. At start-up it opens the node's `Session` (running the node in this
//! process, or joining a `ferry` daemon already running on the same home). Each command in
//! [`commands`] parses its input, calls the core and maps the error to an `ErrorInfo` with a
//! stable code. Progress reaches the UI through typed channels, already throttled by the core.
//! The TypeScript bindings in `ui/src/lib/bindings.ts` are generated from [`specta_builder`];
//! a test fails when they are stale.

pub mod commands;
mod devices;
mod life;
mod links;
pub mod state;
mod system;
mod texts;
mod tray;

use tauri::Manager;

/// Codes of errors only the app's own commands return (the core's are `ferry_core::error::CODES`).
pub const APP_CODES: &[&str] = &[
    "open_failed",
    "autostart_failed",
    "updates_off",
    "update_failed",
];

/// The typed command set, shared by the app and the bindings generator.
pub fn specta_builder() -> tauri_specta::Builder<tauri::Wry> {
    tauri_specta::Builder::<tauri::Wry>::new()
        .commands(tauri_specta::collect_commands![
            commands::node_status,
            commands::share_paths,
            commands::stop_share,
            commands::preview,
            commands::receive,
            commands::cancel_receive,
            commands::transfers,
            commands::discard_transfer,
            commands::get_settings,
            commands::set_settings,
            commands::qr_svg,
            commands::reveal,
            commands::take_pending_link,
            commands::folder_share,
            commands::folder_join,
            commands::folders,
            commands::restore_from_trash,
            commands::folder_leave,
            commands::folder_pause,
            commands::folder_rescan,
            commands::pause_all_sync,
            commands::activity,
            commands::quit_app,
            commands::incoming_offers,
            commands::answer_offer,
            devices::devices,
            devices::ticket_sender,
            devices::offer_to,
            devices::change_contact,
            commands::resolve_conflict,
            commands::open_in_folder,
            system::about,
            system::set_autostart,
            system::check_update,
            system::install_update,
        ])
        .events(tauri_specta::collect_events![
            links::OpenTicket,
            life::QuitRequested,
            commands::OffersChanged,
            devices::DevicesChanged
        ])
        // Why a folder's file is not synced: the UI words each (a test checks).
        .constant("WHY_CODES", ferry_core::folder::activity::WHY_CODES)
        // Every code a command can fail with: the UI has a message for each (a test checks).
        .constant(
            "ERROR_CODES",
            ferry_core::error::CODES
                .iter()
                .chain(APP_CODES)
                .copied()
                .collect::<Vec<_>>(),
        )
}

/// Writes the TypeScript bindings to `path`.
pub fn export_bindings(path: &std::path::Path) -> Result<(), String> {
    specta_builder()
        .export(
            specta_typescript::Typescript::default()
                .header("// Generated from src-tauri by `cargo test -p ferry-app`: do not edit.\n"),
            path,
        )
        .map_err(|e| e.to_string())
}

/// Runs the app.
pub fn run() {
    // FERRY_LOG, else RUST_LOG, else Ferry's default; to stdout, in colour only on a terminal.
    let filter = ["FERRY_LOG", "RUST_LOG"]
        .into_iter()
        .find_map(|var| tracing_subscriber::EnvFilter::try_from_env(var).ok())
        .unwrap_or_else(|| tracing_subscriber::EnvFilter::new(ferry_core::DEFAULT_LOG_FILTER));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stdout()))
        .init();
    let builder = specta_builder();
    let context = tauri::generate_context!();
    let updates = system::updates_configured(context.config());
    let mut app = tauri::Builder::default()
        // A second launch (e.g. a ferry:// link opened from the browser) hands its arguments
        // to the running app instead of starting another one.
        .plugin(tauri_plugin_single_instance::init(|app, argv, _cwd| {
            links::handle_args(app, &argv);
            life::show_window(app);
        }))
        .plugin(tauri_plugin_deep_link::init())
        .plugin(tauri_plugin_dialog::init())
        .plugin(tauri_plugin_clipboard_manager::init())
        .plugin(tauri_plugin_notification::init())
        .plugin(tauri_plugin_opener::init())
        .plugin(tauri_plugin_autostart::init(
            tauri_plugin_autostart::MacosLauncher::LaunchAgent,
            // Started at login: in the background, the window hidden until asked for.
            Some(vec![life::HIDDEN_ARG]),
        ));
    if updates {
        // Only a build configured with an update endpoint and key looks for updates.
        app = app.plugin(tauri_plugin_updater::Builder::new().build());
    }
    app.invoke_handler(builder.invoke_handler())
        // Closing the window hides it: shares, receives and folders go on (quit from the tray
        // or with Ctrl+Q).
        .on_window_event(|window, event| {
            if let tauri::WindowEvent::CloseRequested { api, .. } = event {
                api.prevent_close();
                life::hide_window(window.app_handle());
            }
        })
        .setup(move |app| {
            builder.mount_events(app);
            let state = tauri::async_runtime::block_on(state::AppState::open())?;
            app.manage(state);
            links::setup(app.handle());
            if let Err(e) = tray::setup(app.handle()) {
                // No tray host (a bare X server, some desktops): the app works without it, and
                // opening Ferry again shows the window.
                tracing::warn!("no tray icon: {e}");
            }
            tray::watch(app.handle());
            if !std::env::args().any(|a| a == life::HIDDEN_ARG) {
                life::show_window(app.handle());
            }
            Ok(())
        })
        .build(context)
        .expect("the Ferry window could not be started")
        .run(|app, event| match event {
            tauri::RunEvent::ExitRequested { api, code, .. } => {
                life::on_exit_requested(app, code, &api)
            }
            // macOS: the Dock icon clicked while the window is hidden.
            #[cfg(target_os = "macos")]
            tauri::RunEvent::Reopen { .. } => life::show_window(app),
            _ => {}
        });
}

#[cfg(test)]
mod tests {
    /// The committed bindings must match the commands; `UPDATE_BINDINGS=1` rewrites them.
    #[test]
    fn bindings_are_fresh() {
        let committed =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../ui/src/lib/bindings.ts");
        if std::env::var_os("UPDATE_BINDINGS").is_some() {
            super::export_bindings(&committed).unwrap();
            return;
        }
        let tmp = tempfile::NamedTempFile::new().unwrap();
        super::export_bindings(tmp.path()).unwrap();
        let fresh = std::fs::read_to_string(tmp.path()).unwrap();
        let old = std::fs::read_to_string(&committed).unwrap_or_default();
        assert!(
            fresh == old,
            "ui/src/lib/bindings.ts is stale: run `UPDATE_BINDINGS=1 cargo test -p ferry-app` and commit it"
        );
    }
}
