//! Ferry in the background: the window hides on close, the tray icon shows what is in progress
//! and offers open, pause / resume all sync and quit. Optional: without a tray host the app
//! runs anyway, and opening Ferry again brings the window back (single instance).

use std::sync::atomic::{AtomicBool, Ordering};

use ferry_core::overview::{Busy, Line, Summary};
use serde::{Deserialize, Serialize};
use tauri::{
    image::Image,
    menu::{IsMenuItem, Menu, MenuItem, PredefinedMenuItem},
    tray::TrayIconBuilder,
    AppHandle, Manager, Wry,
};
use tauri_specta::Event;

use crate::state::AppState;

/// The argument autostart launches Ferry with: start with the window hidden.
pub const HIDDEN_ARG: &str = "--hidden";

const TRAY_ID: &str = "ferry";
/// How often the tray looks at what is in progress.
const REFRESH: std::time::Duration = std::time::Duration::from_secs(2);
/// Lines shown in the menu at most (the window lists everything).
const MAX_LINES: usize = 6;

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
        use tauri_plugin_notification::NotificationExt;
        let shown = app
            .notification()
            .builder()
            .title("Ferry is still running")
            .body("Shares and synced folders go on. Quit from the tray icon, or with Ctrl+Q in the window.")
            .show();
        if let Err(e) = shown {
            tracing::debug!("no notification: {e}");
        }
    }
}

/// Quits at once when nothing is in progress; otherwise shows the window, which asks.
pub async fn request_quit(app: &AppHandle) {
    let summary = app.state::<AppState>().summary().await;
    if summary.lines.is_empty() {
        app.exit(0);
        return;
    }
    show_window(app);
    let lines = summary.lines.iter().map(words).collect();
    if let Err(e) = QuitRequested(lines).emit(app) {
        tracing::warn!("cannot ask whether to quit ({e}); quitting");
        app.exit(0);
    }
}

/// Pauses (`paused`) or resumes every synced folder.
pub async fn pause_all(state: &AppState, paused: bool) -> ferry_core::Result<()> {
    for folder in state.session.folder_list().await? {
        if folder.paused != paused {
            state.session.folder_pause(folder.path, paused).await?;
        }
    }
    Ok(())
}

/// Creates the tray icon and keeps it up to date.
pub fn setup(app: &AppHandle) -> tauri::Result<()> {
    let idle = Summary {
        busy: Busy::Idle,
        lines: Vec::new(),
        folders_running: 0,
        folders_paused: 0,
    };
    TrayIconBuilder::with_id(TRAY_ID)
        .icon(icon(Busy::Idle)?)
        .tooltip(tooltip(&idle))
        .menu(&menu(app, &idle)?)
        .on_menu_event(|app, event| {
            let app = app.clone();
            match event.id.as_ref() {
                "show" => show_window(&app),
                "pause_all" | "resume_all" => {
                    let paused = event.id.as_ref() == "pause_all";
                    tauri::async_runtime::spawn(async move {
                        if let Err(e) = pause_all(&app.state::<AppState>(), paused).await {
                            tracing::warn!("pause / resume all sync: {e}");
                        }
                    });
                }
                "quit" => {
                    tauri::async_runtime::spawn(async move { request_quit(&app).await });
                }
                _ => {}
            }
        })
        .build(app)?;
    let app = app.clone();
    tauri::async_runtime::spawn(async move {
        let mut shown = idle;
        loop {
            tokio::time::sleep(REFRESH).await;
            let now = app.state::<AppState>().summary().await;
            if now != shown {
                if let Err(e) = update(&app, &now) {
                    tracing::debug!("tray update: {e}");
                }
                shown = now;
            }
        }
    });
    Ok(())
}

fn update(app: &AppHandle, summary: &Summary) -> tauri::Result<()> {
    if let Some(tray) = app.tray_by_id(TRAY_ID) {
        tray.set_icon(Some(icon(summary.busy)?))?;
        tray.set_tooltip(Some(tooltip(summary)))?;
        tray.set_menu(Some(menu(app, summary)?))?;
    }
    Ok(())
}

fn icon(busy: Busy) -> tauri::Result<Image<'static>> {
    let bytes: &'static [u8] = match busy {
        Busy::Idle => include_bytes!("../../icons/tray/idle.png"),
        Busy::Syncing => include_bytes!("../../icons/tray/syncing.png"),
        Busy::Sending => include_bytes!("../../icons/tray/sending.png"),
        Busy::Receiving => include_bytes!("../../icons/tray/receiving.png"),
        Busy::Error => include_bytes!("../../icons/tray/error.png"),
    };
    Image::from_bytes(bytes)
}

fn tooltip(summary: &Summary) -> String {
    let state = match summary.busy {
        Busy::Idle if summary.lines.is_empty() => "ready",
        Busy::Idle => "sharing",
        Busy::Syncing => "syncing",
        Busy::Sending => "sending",
        Busy::Receiving => "receiving",
        Busy::Error => "a folder needs attention",
    };
    format!("Ferry: {state}")
}

fn menu(app: &AppHandle, summary: &Summary) -> tauri::Result<Menu<Wry>> {
    let mut items: Vec<Box<dyn IsMenuItem<Wry>>> = Vec::new();
    items.push(Box::new(MenuItem::with_id(
        app,
        "show",
        "Open Ferry",
        true,
        None::<&str>,
    )?));
    if !summary.lines.is_empty() {
        items.push(Box::new(PredefinedMenuItem::separator(app)?));
    }
    for (i, line) in summary.lines.iter().take(MAX_LINES).enumerate() {
        let id = format!("line-{i}");
        items.push(Box::new(MenuItem::with_id(
            app,
            id,
            words(line),
            false,
            None::<&str>,
        )?));
    }
    if summary.lines.len() > MAX_LINES {
        let more = format!("and {} more", summary.lines.len() - MAX_LINES);
        items.push(Box::new(MenuItem::with_id(
            app,
            "more",
            more,
            false,
            None::<&str>,
        )?));
    }
    if summary.folders_running + summary.folders_paused > 0 {
        items.push(Box::new(PredefinedMenuItem::separator(app)?));
        let (id, text) = if summary.folders_running > 0 {
            ("pause_all", "Pause all sync")
        } else {
            ("resume_all", "Resume all sync")
        };
        items.push(Box::new(MenuItem::with_id(
            app,
            id,
            text,
            true,
            None::<&str>,
        )?));
    }
    items.push(Box::new(PredefinedMenuItem::separator(app)?));
    items.push(Box::new(MenuItem::with_id(
        app,
        "quit",
        "Quit Ferry",
        true,
        None::<&str>,
    )?));
    let refs: Vec<&dyn IsMenuItem<Wry>> = items.iter().map(|i| i.as_ref()).collect();
    Menu::with_items(app, &refs)
}

/// One line of the menu, for people.
pub fn words(line: &Line) -> String {
    let named = |name: &str, others: usize| match (name.is_empty(), others) {
        (true, _) => "files".to_string(),
        (false, 0) => name.to_string(),
        (false, n) => format!("{name} and {n} more"),
    };
    let devices = |n: usize| {
        if n == 1 {
            "1 device".to_string()
        } else {
            format!("{n} devices")
        }
    };
    match line {
        Line::Share {
            name,
            others,
            downloading: 0,
            done: 0,
            ..
        } => format!("Sharing {} · waiting for receivers", named(name, *others)),
        Line::Share {
            name,
            others,
            downloading: 0,
            done,
            ..
        } => format!(
            "Sharing {} · {} {} everything",
            named(name, *others),
            devices(*done),
            if *done == 1 { "has" } else { "have" }
        ),
        Line::Share {
            name,
            others,
            downloading,
            percent,
            ..
        } => format!(
            "Sending {} to {} · {percent}%",
            named(name, *others),
            devices(*downloading)
        ),
        Line::Receive {
            name,
            others,
            percent,
        } => format!("Receiving {} · {percent}%", named(name, *others)),
        Line::Syncing { folder, files: 0 } => format!("Syncing {folder}"),
        Line::Syncing { folder, files: 1 } => format!("Syncing 1 file in {folder}"),
        Line::Syncing { folder, files } => format!("Syncing {files} files in {folder}"),
        Line::FolderError { folder } => format!("{folder}: sync stopped, open Ferry to see why"),
    }
}
