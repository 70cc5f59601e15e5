//! What Ferry shows outside its window: the tray icon (what is in progress; open, pause /
//! resume all sync, quit) and notifications. The tray is optional: without a tray host the
//! app runs anyway (see [`crate::life`]).

use tauri_specta::Event;

use crate::{
    life::{request_quit, show_window},
    state::AppState,
    texts::{self, Lang, Note},
};
use ferry_core::{
    overview::{Busy, Summary},
    settings::{Notify, Settings},
};
use tauri::{
    image::Image,
    menu::{IsMenuItem, Menu, MenuItem, PredefinedMenuItem},
    tray::TrayIconBuilder,
    AppHandle, Manager, Wry,
};

const TRAY_ID: &str = "ferry";
/// How often the tray looks at what is in progress.
const REFRESH: std::time::Duration = std::time::Duration::from_secs(2);
/// Lines shown in the menu at most (the window lists everything).
const MAX_LINES: usize = 6;

/// Shows a notification, unless the user turned its kind off.
pub fn notify(app: &AppHandle, kind: fn(&Notify) -> bool, note: impl FnOnce(Lang) -> Note) {
    use tauri_plugin_notification::NotificationExt;
    let settings = Settings::load(&app.state::<AppState>().home);
    if !kind(&settings.notify) {
        return;
    }
    let note = note(Lang::of_settings(&settings));
    let shown = app
        .notification()
        .builder()
        .title(note.title)
        .body(texts::body_text(&note.body))
        .show();
    if let Err(e) = shown {
        tracing::debug!("no notification: {e}");
    }
}

/// Creates the tray icon and keeps it up to date.
pub fn setup(app: &AppHandle) -> tauri::Result<()> {
    let idle = Summary {
        busy: Busy::Idle,
        lines: Vec::new(),
        folders_running: 0,
        folders_paused: 0,
    };
    let lang = Lang::of(&app.state::<AppState>().home);
    TrayIconBuilder::with_id(TRAY_ID)
        .icon(icon(Busy::Idle)?)
        .tooltip(texts::tooltip(lang, &idle))
        .menu(&menu(app, lang, &idle)?)
        .on_menu_event(|app, event| {
            let app = app.clone();
            match event.id.as_ref() {
                "show" => show_window(&app),
                "pause_all" | "resume_all" => {
                    let paused = event.id.as_ref() == "pause_all";
                    tauri::async_runtime::spawn(async move {
                        let state = app.state::<AppState>();
                        if let Err(e) = state.session.folder_pause_all(paused).await {
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
    Ok(())
}

/// Keeps the tray up to date and tells of the folders' news (conflicts, errors), whether or
/// not there is a tray host.
pub fn watch(app: &AppHandle) {
    let app = app.clone();
    tauri::async_runtime::spawn(async move {
        let mut shown: Option<(Lang, Summary)> = None;
        let mut folders: Option<Vec<ferry_core::folder::manage::FolderStatus>> = None;
        let mut offers: Vec<u32> = Vec::new();
        let mut devices: Option<Vec<ferry_core::devices::Device>> = None;
        loop {
            let state = app.state::<AppState>();
            // The devices, for the Send screen and Settings: the window told when they change.
            if let Ok(now) = state.session.devices(false).await {
                if devices.as_ref() != Some(&now) {
                    if let Err(e) = crate::devices::DevicesChanged(now.clone()).emit(&app) {
                        tracing::debug!("devices to the window: {e}");
                    }
                    devices = Some(now);
                }
            }
            // Offers from other devices: each new one announced, the window told of the list.
            if let Ok(now) = state.session.incoming_offers().await {
                let ids: Vec<u32> = now.iter().map(|o| o.id).collect();
                if ids != offers {
                    for o in now.iter().filter(|o| !offers.contains(&o.id)) {
                        notify(
                            &app,
                            |n| n.offer,
                            |lang| texts::offer(lang, &o.name, &o.title, o.contact),
                        );
                    }
                    if let Err(e) = crate::commands::OffersChanged(now).emit(&app) {
                        tracing::debug!("offers to the window: {e}");
                    }
                    offers = ids;
                }
            }
            // A failed look (a daemon busy or gone) changes nothing: no news from a gap.
            let Ok(now) = state.session.folder_statuses().await else {
                tokio::time::sleep(REFRESH).await;
                continue;
            };
            if let Some(before) = &folders {
                for news in ferry_core::overview::news(before, &now) {
                    let kind: fn(&Notify) -> bool = match news {
                        ferry_core::overview::News::Conflict { .. } => |n| n.conflict,
                        ferry_core::overview::News::FolderError { .. } => |n| n.folder_error,
                    };
                    notify(&app, kind, |lang| texts::news(lang, &news));
                }
            }
            let summary = state.overview.lock().expect("overview lock").summary(&now);
            folders = Some(now);
            let current = (Lang::of(&state.home), summary);
            if shown.as_ref() != Some(&current) {
                if let Err(e) = update(&app, current.0, &current.1) {
                    tracing::debug!("tray update: {e}");
                }
                shown = Some(current);
            }
            tokio::time::sleep(REFRESH).await;
        }
    });
}

fn update(app: &AppHandle, lang: Lang, summary: &Summary) -> tauri::Result<()> {
    if let Some(tray) = app.tray_by_id(TRAY_ID) {
        tray.set_icon(Some(icon(summary.busy)?))?;
        tray.set_tooltip(Some(texts::tooltip(lang, summary)))?;
        tray.set_menu(Some(menu(app, lang, summary)?))?;
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

fn menu(app: &AppHandle, lang: Lang, summary: &Summary) -> tauri::Result<Menu<Wry>> {
    type Item = Box<dyn IsMenuItem<Wry>>;
    let item = |id: &str, text: String, enabled: bool| -> tauri::Result<Item> {
        Ok(Box::new(MenuItem::with_id(
            app,
            id,
            text,
            enabled,
            None::<&str>,
        )?))
    };
    let separator = || -> tauri::Result<Item> { Ok(Box::new(PredefinedMenuItem::separator(app)?)) };
    let mut items = vec![item("show", texts::menu_item(lang, "show").into(), true)?];
    if !summary.lines.is_empty() {
        items.push(separator()?);
    }
    for (i, line) in summary.lines.iter().take(MAX_LINES).enumerate() {
        let text = texts::menu_text(&texts::line(lang, line));
        items.push(item(&format!("line-{i}"), text, false)?);
    }
    if summary.lines.len() > MAX_LINES {
        let more = texts::more(lang, summary.lines.len() - MAX_LINES);
        items.push(item("more", more, false)?);
    }
    if summary.folders_running + summary.folders_paused > 0 {
        items.push(separator()?);
        let id = if summary.folders_running > 0 {
            "pause_all"
        } else {
            "resume_all"
        };
        items.push(item(id, texts::menu_item(lang, id).into(), true)?);
    }
    items.push(separator()?);
    items.push(item("quit", texts::menu_item(lang, "quit").into(), true)?);
    let refs: Vec<&dyn IsMenuItem<Wry>> = items.iter().map(|i| i.as_ref()).collect();
    Menu::with_items(app, &refs)
}
