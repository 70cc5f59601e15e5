//! The plain download of a receive: what the swarm did not bring, from the sender in one
//! request, with progress and the first commit of a partial blob at once.

use std::{path::PathBuf, time::Duration};

use iroh::endpoint::Connection;
use iroh_blobs::{
    api::{blobs::BlobStatus, remote::GetProgressItem, Store},
    Hash,
};
use n0_future::StreamExt;
use tokio::sync::mpsc;

use super::Checked;
use crate::{
    error::{Error, Result},
    progress::{RateMeter, ReceiveEvent, Throttle, TransferProgress, Via},
};

/// Fetches the missing ranges; returns the payload bytes that crossed the network.
pub(super) async fn download(
    store: &Store,
    conn: Connection,
    local: &iroh_blobs::api::remote::LocalInfo,
    checked: &Checked,
    already: u64,
    events: &mpsc::UnboundedSender<ReceiveEvent>,
    pace: &crate::limits::Limiter,
) -> Result<u64> {
    let total = checked.offer.total_size;
    // Files still to fetch, in request order, for naming the current file.
    let pending: Vec<(u64, &str, Hash)> = checked
        .files
        .iter()
        .zip(&checked.offer.entries)
        .filter(|(f, _)| !f.3)
        .map(|(f, e)| (f.2, e.name.as_str(), f.1))
        .collect();
    let mut throttle = Throttle::new();
    // The store commits its index every 500 ms on its own. A partial blob gets its index
    // entry when its first bytes arrive (a transfer store inlines no file content). As soon
    // as the first such entry exists it is committed, and from then on twice a second, so a
    // receiver killed with SIGKILL finds its partial data again (the store rebuilds the
    // bitfield from the data and outboard files it left).
    let mut first_commit = false;
    let mut commit = Throttle::with_interval(Duration::from_millis(500));
    let mut rate = RateMeter::new();
    let path_of = conn.clone();
    let sender = conn.remote_id();
    let mut read = 0;
    let mut stream = store.remote().execute_get(conn, local.missing()).stream();
    while let Some(item) = stream.next().await {
        match item {
            GetProgressItem::Progress(offset) => {
                // The get goes on only as fast as this reads: waiting holds the sender.
                pace.pace(Some(&sender), offset.saturating_sub(read)).await;
                read = read.max(offset);
                if !first_commit {
                    if let Some(hash) = current(&pending, offset).map(|c| c.2) {
                        let status = store.blobs().status(hash).await;
                        if matches!(status, Ok(BlobStatus::Partial { .. })) {
                            store.sync_db().await.ok();
                            first_commit = true;
                            commit.ready();
                        }
                    }
                } else if commit.ready() {
                    store.sync_db().await.ok();
                }
                if throttle.ready() {
                    let done = (already + offset).min(total);
                    events
                        .send(ReceiveEvent::Progress(TransferProgress {
                            done,
                            total,
                            rate: rate.update(done),
                            current: current(&pending, offset).map(|c| c.1.to_string()),
                            via: Via::of(&path_of),
                            ..Default::default()
                        }))
                        .ok();
                }
            }
            GetProgressItem::Done(stats) => {
                events
                    .send(ReceiveEvent::Progress(TransferProgress {
                        done: total,
                        total,
                        rate: rate.update(total),
                        current: None,
                        via: Via::of(&path_of),
                        ..Default::default()
                    }))
                    .ok();
                return Ok(stats.payload_bytes_read);
            }
            GetProgressItem::Error(e) => return Err(describe_get_error(e)),
        }
    }
    Err(Error::Transfer(
        "the download ended without a result".into(),
    ))
}

/// The pending file that the byte `offset` of the download falls into.
fn current<'a>(
    pending: &'a [(u64, &'a str, Hash)],
    offset: u64,
) -> Option<&'a (u64, &'a str, Hash)> {
    let mut acc = 0;
    for entry in pending {
        acc += entry.0;
        if offset < acc {
            return Some(entry);
        }
    }
    pending.last()
}

pub(super) fn describe_get_error(e: iroh_blobs::get::GetError) -> Error {
    if let Some(code) = e.iroh_error_code() {
        if code == iroh_blobs::protocol::ERR_PERMISSION {
            return Error::Transfer("the sender no longer shares this (or never did)".into());
        }
        if code == iroh_blobs::protocol::ERR_INTERNAL {
            // The provider verifies what it reads against the hash it announced and stops
            // when they differ: a shared file was edited or removed after sharing.
            return Error::BadData(
                "the sender's copy no longer matches what it offered (a file was changed or \
                 removed after sharing); ask for a new ticket"
                    .into(),
            );
        }
    }
    let text = e.to_string();
    if let Some(io) = e.local_write() {
        if crate::error::is_disk_full(io) {
            return Error::DiskFull {
                path: PathBuf::from("the data directory"),
                needed: 0,
                available: 0,
            };
        }
        return Error::Store(text);
    }
    if text.contains("hash mismatch") || text.contains("decode") || text.contains("Decode") {
        return Error::BadData(text);
    }
    Error::Transfer(format!("{text}; run again to resume"))
}
