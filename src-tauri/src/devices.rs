//! Tauri commands for devices: the contacts and nearby devices, offers to them, and changes
//! to a contact.

use ferry_core::{
    contacts::{Contact, ContactChange},
    devices::Device,
    offers::Answer,
};
use serde::{Deserialize, Serialize};
use tauri::State;

use crate::{
    commands::{err, parse_ticket, CmdResult},
    state::AppState,
};

/// The devices changed: one came nearby or left, told its name, connected, or a contact
/// changed (the list as it is now).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, specta::Type, tauri_specta::Event)]
pub struct DevicesChanged(pub Vec<Device>);

/// The contacts and the nearby devices; with `probe`, contacts that are not nearby are asked
/// whether they are online (a few seconds).
#[tauri::command]
#[specta::specta]
pub async fn devices(state: State<'_, AppState>, probe: bool) -> CmdResult<Vec<Device>> {
    state.session.devices(probe).await.map_err(err)
}

/// Who shares a ticket: the device as this one knows it, or as it names itself.
#[tauri::command]
#[specta::specta]
pub async fn ticket_sender(state: State<'_, AppState>, ticket: String) -> CmdResult<Device> {
    let ticket = parse_ticket(ticket.trim())?;
    let addr = ticket.blob_ticket().addr().clone();
    state.session.who(addr).await.map_err(err)
}

/// Offers a share (its ticket) to the device with node id `device`; comes back with the
/// answer once that device's user decided (up to ten minutes).
#[tauri::command]
#[specta::specta]
pub async fn offer_to(
    state: State<'_, AppState>,
    device: String,
    ticket: String,
    title: String,
    files: f64,
    size: f64,
) -> CmdResult<Answer> {
    let ticket = parse_ticket(&ticket)?;
    state
        .session
        .offer_to(
            &device,
            &ticket,
            title,
            files.max(0.0) as u64,
            size.max(0.0) as u64,
        )
        .await
        .map_err(err)
}

/// Renames, forgets or sets the auto-accept folder of the contact `device` (its node id).
#[tauri::command]
#[specta::specta]
pub async fn change_contact(
    state: State<'_, AppState>,
    device: String,
    change: ContactChange,
) -> CmdResult<Contact> {
    state
        .session
        .change_contact(&device, change)
        .await
        .map_err(err)
}
