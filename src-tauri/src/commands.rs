//! Tauri commands: each parses, calls the core, maps the error.

use std::path::PathBuf;

use ferry_core::{
    control::Status,
    folder::{
        conflict::Keep,
        manage::{FolderInfo, FolderStatus},
    },
    history::{History, TransferRecord},
    offers::IncomingOffer,
    overview::Summary,
    progress::StreamItem,
    session::{EventStream, Session},
    settings::Settings,
    ErrorInfo, Offer, ReceiveEvent, ShareEvent, Ticket,
};
use serde::{Deserialize, Serialize};
use tauri::{ipc::Channel, AppHandle, Manager, State};

use crate::{links::PendingLink, state::AppState, texts};

pub(crate) type CmdResult<T> = Result<T, ErrorInfo>;

pub(crate) fn err(e: ferry_core::Error) -> ErrorInfo {
    ErrorInfo::from(&e)
}

pub(crate) fn parse_ticket(text: &str) -> CmdResult<Ticket> {
    text.parse::<Ticket>().map_err(|e| err(e.into()))
}

/// The node's id, addresses and number of live shares.
#[tauri::command]
#[specta::specta]
pub async fn node_status(state: State<'_, AppState>) -> CmdResult<Status> {
    state.session.status().await.map_err(err)
}

/// Shares files and folders (the drop zone and the pickers call this). Events arrive on
/// `on_event` until the share is stopped; returns the id to stop it with.
#[tauri::command]
#[specta::specta]
pub async fn share_paths(
    app: AppHandle,
    state: State<'_, AppState>,
    paths: Vec<String>,
    on_event: Channel<StreamItem<ShareEvent>>,
) -> CmdResult<u32> {
    if paths.is_empty() {
        return Err(err(ferry_core::Error::EmptyShare("the selection".into())));
    }
    let stream = state
        .session
        .share(paths.into_iter().map(PathBuf::from).collect())
        .await
        .map_err(err)?;
    let (id, stop) = state.start();
    tauri::async_runtime::spawn(forward(app, id, stream, stop, on_event, |app, id, e| {
        let state = app.state::<AppState>();
        let mut overview = state.overview.lock().expect("overview lock");
        overview.share(id, e);
        if let ShareEvent::PeerDone { peer } = e {
            let (share, device) = overview.share_peer(id, peer);
            drop(overview);
            crate::tray::notify(
                app,
                |n| n.peer_done,
                |lang| texts::peer_done(lang, &share, device.as_deref()),
            );
        }
    }));
    Ok(id)
}

/// Stops a share: it is refused from the next request on.
#[tauri::command]
#[specta::specta]
pub async fn stop_share(state: State<'_, AppState>, id: u32) -> CmdResult<bool> {
    Ok(state.stop(id))
}

/// What a ticket offers: names and sizes, before accepting.
#[tauri::command]
#[specta::specta]
pub async fn preview(state: State<'_, AppState>, ticket: String) -> CmdResult<Offer> {
    let ticket = parse_ticket(&ticket)?;
    state.session.preview(&ticket).await.map_err(err)
}

/// Receives a ticket into `dest` (default: the download folder of the settings). Progress
/// arrives on `on_event`; returns the id to cancel with.
#[tauri::command]
#[specta::specta]
pub async fn receive(
    app: AppHandle,
    state: State<'_, AppState>,
    ticket: String,
    dest: Option<String>,
    on_event: Channel<StreamItem<ReceiveEvent>>,
) -> CmdResult<u32> {
    let ticket = parse_ticket(&ticket)?;
    let dest = match dest.filter(|d| !d.trim().is_empty()) {
        Some(d) => PathBuf::from(d),
        None => Settings::load(&state.home).effective_download_dir(),
    };
    let stream = state
        .session
        .receive(&ticket, dest, None)
        .await
        .map_err(err)?;
    let (id, stop) = state.start();
    tauri::async_runtime::spawn(forward(app, id, stream, stop, on_event, |app, id, e| {
        let state = app.state::<AppState>();
        state.overview.lock().expect("overview lock").receive(id, e);
        notify_done(app, e);
    }));
    Ok(id)
}

/// Cancels a running receive; what was fetched is kept for a later resume.
#[tauri::command]
#[specta::specta]
pub async fn cancel_receive(state: State<'_, AppState>, id: u32) -> CmdResult<bool> {
    Ok(state.stop(id))
}

/// The transfer history, newest first.
#[tauri::command]
#[specta::specta]
pub async fn transfers(state: State<'_, AppState>) -> CmdResult<Vec<TransferRecord>> {
    Ok(match &state.session {
        Session::Local { node, .. } => node.history().list(),
        Session::Remote(_) => History::snapshot(&state.home),
    })
}

/// Forgets an unfinished receive and its partial data.
#[tauri::command]
#[specta::specta]
pub async fn discard_transfer(state: State<'_, AppState>, id: String) -> CmdResult<()> {
    match &state.session {
        Session::Local { node, .. } => node.discard_receive(&id).await.map_err(err),
        Session::Remote(_) => Err(err(ferry_core::Error::Config(
            "another Ferry process runs this node; discard the transfer there".into(),
        ))),
    }
}

/// Settings, with the download folder actually in use.
#[derive(Debug, Clone, Serialize, Deserialize, specta::Type)]
pub struct SettingsView {
    /// What is stored.
    pub settings: Settings,
    /// Where received files go now.
    pub download_dir: String,
}

/// Reads the settings.
#[tauri::command]
#[specta::specta]
pub async fn get_settings(state: State<'_, AppState>) -> CmdResult<SettingsView> {
    let settings = Settings::load(&state.home);
    let download_dir = settings.effective_download_dir().display().to_string();
    Ok(SettingsView {
        settings,
        download_dir,
    })
}

/// Saves the settings (a relay change applies at the next start, the rest at once).
#[tauri::command]
#[specta::specta]
pub async fn set_settings(
    state: State<'_, AppState>,
    settings: Settings,
) -> CmdResult<SettingsView> {
    settings.save(&state.home).map_err(err)?;
    state.session.apply_settings(&settings).await.map_err(err)?;
    get_settings(state).await
}

/// A QR code of `text`, as SVG.
#[tauri::command]
#[specta::specta]
pub fn qr_svg(text: String) -> CmdResult<String> {
    ferry_core::qr::qr_svg(&text).map_err(err)
}

/// Shows a received file or folder in the file manager.
#[tauri::command]
#[specta::specta]
pub fn reveal(app: AppHandle, path: String) -> CmdResult<()> {
    use tauri_plugin_opener::OpenerExt;
    app.opener().reveal_item_in_dir(&path).map_err(|e| {
        ErrorInfo::new("open_failed", format!("cannot show {path}: {e}"))
            .with("path", &path)
            .with("reason", e)
    })
}

/// The `ferry://` link the app was opened with, if any (once).
#[tauri::command]
#[specta::specta]
pub fn take_pending_link(app: AppHandle) -> Option<String> {
    app.state::<PendingLink>().take()
}

/// Forwards an operation's events to the UI until it ends, the UI goes away or it is stopped.
async fn forward<E: Clone + Serialize + Send + 'static>(
    app: AppHandle,
    id: u32,
    mut stream: EventStream<E>,
    mut stop: tokio::sync::oneshot::Receiver<()>,
    channel: Channel<StreamItem<E>>,
    on_event: impl Fn(&AppHandle, u32, &E) + Send + 'static,
) {
    loop {
        tokio::select! {
            item = stream.next_item() => match item {
                Some(item) => {
                    if let StreamItem::Event(e) = &item {
                        on_event(&app, id, e);
                    }
                    if channel.send(item).is_err() {
                        break;
                    }
                }
                None => break,
            },
            _ = &mut stop => break,
        }
    }
    app.state::<AppState>().finished(id);
}

fn notify_done(app: &AppHandle, event: &ReceiveEvent) {
    if let ReceiveEvent::Done(summary) = event {
        let names: Vec<String> = summary
            .saved
            .iter()
            .filter_map(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
            .collect();
        crate::tray::notify(
            app,
            |n| n.received,
            |lang| texts::received(lang, &names.join(", "), summary.files),
        );
    }
}

/// Shares a folder for continuous sync; returns its ticket.
#[tauri::command]
#[specta::specta]
pub async fn folder_share(
    state: State<'_, AppState>,
    path: String,
    read_only: bool,
) -> CmdResult<String> {
    state
        .session
        .folder_share(PathBuf::from(path), read_only)
        .await
        .map_err(err)
}

/// Joins a folder by ticket into `path`.
#[tauri::command]
#[specta::specta]
pub async fn folder_join(
    state: State<'_, AppState>,
    ticket: String,
    path: String,
) -> CmdResult<FolderStatus> {
    let info = state
        .session
        .folder_join(&ticket, PathBuf::from(path))
        .await
        .map_err(err)?;
    Ok(FolderStatus::of(&info))
}

/// The synced folders with their state, peers, conflicts, trash and recent changes.
#[tauri::command]
#[specta::specta]
pub async fn folders(state: State<'_, AppState>) -> CmdResult<Vec<FolderStatus>> {
    state.session.folder_statuses().await.map_err(err)
}

/// Pauses (`paused`) or resumes a folder.
#[tauri::command]
#[specta::specta]
pub async fn folder_pause(
    state: State<'_, AppState>,
    path: String,
    paused: bool,
) -> CmdResult<FolderInfo> {
    state
        .session
        .folder_pause(PathBuf::from(path), paused)
        .await
        .map_err(err)
}

/// Looks at every file and record of a folder now.
#[tauri::command]
#[specta::specta]
pub async fn folder_rescan(state: State<'_, AppState>, path: String) -> CmdResult<()> {
    state
        .session
        .folder_rescan(PathBuf::from(path))
        .await
        .map_err(err)
}

/// Pauses (`paused`) or resumes every synced folder.
#[tauri::command]
#[specta::specta]
pub async fn pause_all_sync(state: State<'_, AppState>, paused: bool) -> CmdResult<()> {
    state.session.folder_pause_all(paused).await.map_err(err)
}

/// What is in progress: shares, receives, folders that sync.
#[tauri::command]
#[specta::specta]
pub async fn activity(state: State<'_, AppState>) -> CmdResult<Summary> {
    Ok(state.summary().await)
}

/// Quits Ferry, ending its shares, receives and folder sync; unless `force`, only when nothing
/// is in progress: otherwise nothing happens and what is in progress comes back, one line each
/// (the UI asks).
#[tauri::command]
#[specta::specta]
pub async fn quit_app(app: AppHandle, force: bool) -> CmdResult<Vec<String>> {
    let lines = if force {
        Vec::new()
    } else {
        crate::life::in_progress(&app).await
    };
    if lines.is_empty() {
        crate::life::quit(&app);
    }
    Ok(lines)
}

/// The offers of files from other devices changed (the list as it is now).
#[derive(Debug, Clone, Serialize, Deserialize, specta::Type, tauri_specta::Event)]
pub struct OffersChanged(pub Vec<IncomingOffer>);

/// Offers of files from other devices, waiting for an answer.
#[tauri::command]
#[specta::specta]
pub async fn incoming_offers(state: State<'_, AppState>) -> CmdResult<Vec<IncomingOffer>> {
    state.session.incoming_offers().await.map_err(err)
}

/// Accepts (the UI then previews and receives its ticket) or declines an offer.
#[tauri::command]
#[specta::specta]
pub async fn answer_offer(
    state: State<'_, AppState>,
    id: u32,
    accept: bool,
) -> CmdResult<IncomingOffer> {
    state.session.answer_offer(id, accept).await.map_err(err)
}

/// Stops syncing a folder; its files stay.
#[tauri::command]
#[specta::specta]
pub async fn folder_leave(state: State<'_, AppState>, path: String) -> CmdResult<()> {
    state
        .session
        .folder_leave(PathBuf::from(path))
        .await
        .map(|_| ())
        .map_err(err)
}

/// Keeps one or both versions of a conflict; the other goes to the folder's trash.
#[tauri::command]
#[specta::specta]
pub fn resolve_conflict(folder: String, copy: String, keep: Keep) -> CmdResult<String> {
    ferry_core::folder::conflict::resolve(std::path::Path::new(&folder), &copy, keep)
        .map(|p| p.display().to_string())
        .map_err(err)
}

/// Opens a file of a synced folder with its default application.
#[tauri::command]
#[specta::specta]
pub fn open_in_folder(app: AppHandle, folder: String, rel: String) -> CmdResult<()> {
    use tauri_plugin_opener::OpenerExt;
    ferry_core::names::validate_name(&rel).map_err(|e| err(e.into()))?;
    let path = std::path::Path::new(&folder).join(&rel);
    app.opener()
        .open_path(path.display().to_string(), None::<&str>)
        .map_err(|e| {
            ErrorInfo::new(
                "open_failed",
                format!("cannot open {}: {e}", path.display()),
            )
            .with("path", path.display())
            .with("reason", e)
        })
}

/// Puts a file from a folder's trash back.
#[tauri::command]
#[specta::specta]
pub fn restore_from_trash(folder: String, id: String) -> CmdResult<String> {
    ferry_core::folder::trash::Trash::new(folder)
        .restore(&id)
        .map(|p| p.display().to_string())
        .map_err(err)
}
