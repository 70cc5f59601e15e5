//! A session: the node of a home, whether it runs in this process or in another one.
//!
//! [`Session::open`] takes the home's lock and starts the node (and its control server) when
//! no other process runs it, or connects to the running node over the control channel. Both
//! kinds offer the same operations and the same event streams, so front ends never care which
//! one they have.

use std::{path::PathBuf, time::Duration};

use serde::{de::DeserializeOwned, Serialize};
use tokio::sync::{mpsc, oneshot};

use crate::{
    config::NodeConfig,
    control::{ControlClient, ControlServer, Status},
    error::{Error, ErrorInfo, Result},
    folder::manage::{FolderInfo, FolderStatus},
    history::{Direction, TransferRecord, TransferState},
    node::{Acquire, HomeLock, Node},
    progress::{Offer, ReceiveEvent, ShareEvent, StreamItem},
    settings::Settings,
    ticket::Ticket,
    CancellationToken,
};

/// How long to wait for a starting node of the same home to open its control channel.
const CONNECT_DEADLINE: Duration = Duration::from_secs(15);

/// A stream of events from a running operation. Dropping it stops the operation: a share stops
/// being served, a receive is cancelled.
#[derive(Debug)]
pub struct EventStream<E> {
    rx: mpsc::UnboundedReceiver<StreamItem<E>>,
    _stop: oneshot::Sender<()>,
}

impl<E> EventStream<E> {
    /// A stream fed by `rx`; the operation watches `stop` and ends when it fires or is dropped.
    pub fn new(rx: mpsc::UnboundedReceiver<StreamItem<E>>, stop: oneshot::Sender<()>) -> Self {
        EventStream { rx, _stop: stop }
    }

    /// The next event; `None` when the operation has ended.
    pub async fn next(&mut self) -> Option<std::result::Result<E, ErrorInfo>> {
        match self.rx.recv().await? {
            StreamItem::Event(e) => Some(Ok(e)),
            StreamItem::Error(e) => Some(Err(e)),
        }
    }

    /// The raw next item (for forwarding).
    pub async fn next_item(&mut self) -> Option<StreamItem<E>> {
        self.rx.recv().await
    }
}

/// The node of a home, local or remote.
#[derive(Debug)]
pub enum Session {
    /// This process runs the node.
    Local {
        /// The node.
        node: Node,
        /// The control server through which other processes reach it.
        server: ControlServer,
    },
    /// Another process runs the node.
    Remote(ControlClient),
}

impl Session {
    /// Runs the home's node here, or connects to the process that does.
    pub async fn open(config: NodeConfig) -> Result<Session> {
        let deadline = tokio::time::Instant::now() + CONNECT_DEADLINE;
        loop {
            match HomeLock::acquire(&config.home)? {
                Acquire::Owned(lock) => {
                    let node = Node::spawn_locked(config, lock).await?;
                    let server = ControlServer::start(node.clone()).await?;
                    return Ok(Session::Local { node, server });
                }
                Acquire::Busy => match ControlClient::connect(&config.home).await {
                    Ok(client) => return Ok(Session::Remote(client)),
                    Err(e) if tokio::time::Instant::now() >= deadline => {
                        return Err(Error::NodeUnreachable {
                            path: config.home.clone(),
                            reason: e.to_string(),
                        })
                    }
                    // The owner is still starting: its control file appears shortly.
                    Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
                },
            }
        }
    }

    /// Connects to the process that runs the home's node; [`Error::NotRunning`] if none does
    /// (no node is started: for commands that only ask a running node).
    pub async fn attach(home: &std::path::Path) -> Result<Session> {
        let deadline = tokio::time::Instant::now() + CONNECT_DEADLINE;
        loop {
            match HomeLock::acquire(home)? {
                Acquire::Owned(_) => {
                    return Err(Error::NotRunning {
                        path: home.to_path_buf(),
                    })
                }
                Acquire::Busy => match ControlClient::connect(home).await {
                    Ok(client) => return Ok(Session::Remote(client)),
                    Err(e) if tokio::time::Instant::now() >= deadline => {
                        return Err(Error::NodeUnreachable {
                            path: home.to_path_buf(),
                            reason: e.to_string(),
                        })
                    }
                    Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
                },
            }
        }
    }

    /// True when this process runs the node.
    pub fn is_local(&self) -> bool {
        matches!(self, Session::Local { .. })
    }

    /// The node, when this process runs it.
    pub fn local_node(&self) -> Option<&Node> {
        match self {
            Session::Local { node, .. } => Some(node),
            Session::Remote(_) => None,
        }
    }

    /// Shares paths; the stream yields import progress, `Ready`, then peer events.
    pub async fn share(&self, paths: Vec<PathBuf>) -> Result<EventStream<ShareEvent>> {
        match self {
            Session::Local { node, .. } => Ok(local_share(node.clone(), paths)),
            Session::Remote(c) => c.share(paths).await,
        }
    }

    /// Receives a ticket into `dest`; then serves it to the share's other receivers if
    /// `keep_serving` says so (`None`: as the node does).
    pub async fn receive(
        &self,
        ticket: &Ticket,
        dest: PathBuf,
        keep_serving: Option<bool>,
    ) -> Result<EventStream<ReceiveEvent>> {
        match self {
            Session::Local { node, .. } => Ok(local_receive(
                node.clone(),
                ticket.clone(),
                dest,
                keep_serving,
            )),
            Session::Remote(c) => c.receive(ticket, dest, keep_serving).await,
        }
    }

    /// Fetches what a ticket offers.
    pub async fn preview(&self, ticket: &Ticket) -> Result<Offer> {
        match self {
            Session::Local { node, .. } => node.preview(ticket).await,
            Session::Remote(c) => c.preview(ticket).await,
        }
    }

    /// The node's status.
    pub async fn status(&self) -> Result<Status> {
        match self {
            Session::Local { node, .. } => Ok(Status::of(node)),
            Session::Remote(c) => c.status().await,
        }
    }

    /// Shares a folder; returns its ticket.
    pub async fn folder_share(&self, path: PathBuf, read_only: bool) -> Result<String> {
        match self {
            Session::Local { node, .. } => node.folder_share(path, read_only).await,
            Session::Remote(c) => c.folder_share(path, read_only).await,
        }
    }

    /// Joins a folder by ticket into `path`.
    pub async fn folder_join(&self, ticket: &str, path: PathBuf) -> Result<FolderInfo> {
        match self {
            Session::Local { node, .. } => node.folder_join(ticket, path).await,
            Session::Remote(c) => c.folder_join(ticket, path).await,
        }
    }

    /// The synced folders.
    pub async fn folder_list(&self) -> Result<Vec<FolderInfo>> {
        match self {
            Session::Local { node, .. } => Ok(node.folder_list()),
            Session::Remote(c) => c.folder_list().await,
        }
    }

    /// The synced folders with what each is doing.
    pub async fn folder_statuses(&self) -> Result<Vec<FolderStatus>> {
        match self {
            Session::Local { node, .. } => Ok(node.folder_statuses_now().await),
            Session::Remote(c) => c.folder_statuses().await,
        }
    }

    /// Puts the settings that apply while the node runs in force (limits, serving received
    /// shares).
    pub async fn apply_settings(&self, settings: &Settings) -> Result<()> {
        match self {
            Session::Local { node, .. } => node.apply_settings(settings),
            Session::Remote(c) => c.apply_settings(settings.clone()).await,
        }
    }

    /// Looks at every file and record of the folder at `path` now.
    pub async fn folder_rescan(&self, path: PathBuf) -> Result<()> {
        match self {
            Session::Local { node, .. } => node.folder_rescan(path),
            Session::Remote(c) => c.folder_rescan(path).await,
        }
    }

    /// Pauses (`paused`) or resumes the folder at `path`.
    pub async fn folder_pause(&self, path: PathBuf, paused: bool) -> Result<FolderInfo> {
        match self {
            Session::Local { node, .. } => node.folder_pause(path, paused).await,
            Session::Remote(c) => c.folder_pause(path, paused).await,
        }
    }

    /// Pauses (`paused`) or resumes every synced folder; each is tried.
    pub async fn folder_pause_all(&self, paused: bool) -> Result<()> {
        match self {
            Session::Local { node, .. } => node.folder_pause_all(paused).await,
            Session::Remote(c) => c.folder_pause_all(paused).await,
        }
    }

    /// The offers of files waiting for an answer.
    pub async fn incoming_offers(&self) -> Result<Vec<crate::offers::IncomingOffer>> {
        match self {
            Session::Local { node, .. } => Ok(node.incoming_offers()),
            Session::Remote(c) => c.incoming_offers().await,
        }
    }

    /// Accepts (then receive its ticket) or declines the offer `id`.
    pub async fn answer_offer(
        &self,
        id: u32,
        accept: bool,
    ) -> Result<crate::offers::IncomingOffer> {
        match self {
            Session::Local { node, .. } => node.answer_offer(id, accept),
            Session::Remote(c) => c.answer_offer(id, accept).await,
        }
    }

    /// Offers `ticket` to the device `to` (a contact's name or a node id); waits for its
    /// user's answer.
    pub async fn offer_to(
        &self,
        to: &str,
        ticket: &Ticket,
        title: String,
        files: u64,
        size: u64,
    ) -> Result<crate::offers::Answer> {
        match self {
            Session::Local { node, .. } => {
                node.offer_to(node.device(to)?, ticket, title, files, size)
                    .await
            }
            Session::Remote(c) => {
                let msg = crate::offers::OfferMsg {
                    name: String::new(),
                    ticket: ticket.to_string(),
                    title,
                    files,
                    size,
                };
                c.offer_to(to, &msg).await
            }
        }
    }

    /// Changes a contact (by its id, or a name only one contact has).
    pub async fn change_contact(
        &self,
        device: &str,
        change: crate::contacts::ContactChange,
    ) -> Result<crate::contacts::Contact> {
        match self {
            Session::Local { node, .. } => node.contacts().apply(device, change),
            Session::Remote(c) => c.change_contact(device, change).await,
        }
    }

    /// The contacts.
    pub async fn contacts(&self) -> Result<Vec<crate::contacts::Contact>> {
        match self {
            Session::Local { node, .. } => Ok(node.contacts().list()),
            Session::Remote(c) => c.contacts().await,
        }
    }

    /// The device at `addr` as this node knows it, or as it names itself (see
    /// [`crate::node::Node::who`]).
    pub async fn who(&self, addr: iroh::EndpointAddr) -> Result<crate::devices::Device> {
        match self {
            Session::Local { node, .. } => Ok(node.who(addr).await),
            Session::Remote(c) => c.who(addr).await,
        }
    }

    /// The contacts and nearby devices (see [`crate::node::Node::devices`]).
    pub async fn devices(&self, probe: bool) -> Result<Vec<crate::devices::Device>> {
        match self {
            Session::Local { node, .. } => Ok(node.devices(probe).await),
            Session::Remote(c) => c.devices(probe).await,
        }
    }

    /// Stops syncing the folder at `path` (its files stay).
    pub async fn folder_leave(&self, path: PathBuf) -> Result<FolderInfo> {
        match self {
            Session::Local { node, .. } => node.folder_leave(path).await,
            Session::Remote(c) => c.folder_leave(path).await,
        }
    }

    /// Stops the node if it runs here.
    pub async fn shutdown(self) -> Result<()> {
        match self {
            Session::Local { node, server } => {
                drop(server);
                node.shutdown().await
            }
            Session::Remote(_) => Ok(()),
        }
    }
}

/// Runs a share on a local node as an event stream, recording it in the history.
pub fn local_share(node: Node, paths: Vec<PathBuf>) -> EventStream<ShareEvent> {
    let (out, rx) = mpsc::unbounded_channel();
    let (stop_tx, mut stop) = oneshot::channel::<()>();
    tokio::spawn(async move {
        let (etx, mut erx) = mpsc::unbounded_channel();
        let history = node.history().clone();
        let fwd_out = out.clone();
        let fwd = tokio::spawn(async move {
            let mut record: Option<String> = None;
            while let Some(e) = erx.recv().await {
                match &e {
                    ShareEvent::Ready(info) => {
                        let r =
                            TransferRecord::new(Direction::Send, &info.offer, info.ticket.clone());
                        record = Some(r.id.clone());
                        history.put(r);
                    }
                    ShareEvent::PeerDone { .. } => {
                        if let Some(id) = &record {
                            history.update(id, |r| r.peers_done += 1);
                        }
                    }
                    _ => {}
                }
                if fwd_out.send(StreamItem::Event(e)).is_err() {
                    break;
                }
            }
            record
        });
        let share = tokio::select! {
            res = node.share(&paths, etx) => res,
            _ = &mut stop => return,
        };
        match share {
            Ok(share) => {
                // Serve until the stream's owner goes away.
                let _ = stop.await;
                drop(share);
                if let Ok(Some(id)) = fwd.await {
                    node.history()
                        .update(&id, |r| r.finish(TransferState::Completed, None));
                }
            }
            Err(e) => {
                fwd.await.ok();
                out.send(StreamItem::Error(ErrorInfo::from(&e))).ok();
            }
        }
    });
    EventStream::new(rx, stop_tx)
}

/// Runs a receive on a local node as an event stream, recording it in the history. A new
/// attempt at an unfinished receive (same offer, same folder) continues its record.
pub fn local_receive(
    node: Node,
    ticket: Ticket,
    dest: PathBuf,
    keep_serving: Option<bool>,
) -> EventStream<ReceiveEvent> {
    let (out, rx) = mpsc::unbounded_channel();
    let (stop_tx, stop) = oneshot::channel::<()>();
    let dest = std::path::absolute(&dest).unwrap_or(dest);
    tokio::spawn(async move {
        let cancel = CancellationToken::new();
        let guard = cancel.clone();
        tokio::spawn(async move {
            let _ = stop.await;
            guard.cancel();
        });
        let (etx, mut erx) = mpsc::unbounded_channel();
        let history = node.history().clone();
        let fwd_out = out.clone();
        let (ticket_text, fwd_dest) = (ticket.to_string(), dest.clone());
        let fwd = tokio::spawn(async move {
            let mut record: Option<String> = None;
            while let Some(e) = erx.recv().await {
                match &e {
                    ReceiveEvent::Offer { offer, .. } => {
                        let mut r = history
                            .unfinished_receive(&offer.hash, &fwd_dest)
                            .unwrap_or_else(|| {
                                TransferRecord::new(Direction::Receive, offer, ticket_text.clone())
                            });
                        r.state = TransferState::Active;
                        r.error = None;
                        r.finished_at = None;
                        r.ticket = ticket_text.clone();
                        r.dest = Some(fwd_dest.clone());
                        record = Some(r.id.clone());
                        history.put(r);
                    }
                    ReceiveEvent::Done(summary) => {
                        if let Some(id) = &record {
                            history.update(id, |r| {
                                r.saved = summary.saved.clone();
                                r.finish(TransferState::Completed, None);
                            });
                        }
                    }
                    _ => {}
                }
                if fwd_out.send(StreamItem::Event(e)).is_err() {
                    break;
                }
            }
            record
        });
        let res = node
            .receive_with(&ticket, &dest, keep_serving, etx, cancel)
            .await;
        let record = fwd.await.ok().flatten();
        if let Err(e) = res {
            if let Some(id) = record {
                let state = if matches!(e, Error::Cancelled) {
                    TransferState::Cancelled
                } else {
                    TransferState::Failed
                };
                node.history()
                    .update(&id, |r| r.finish(state, Some(ErrorInfo::from(&e))));
            }
            out.send(StreamItem::Error(ErrorInfo::from(&e))).ok();
        }
    });
    EventStream::new(rx, stop_tx)
}

/// Encodes one stream item as a JSON line.
pub(crate) fn encode<T: Serialize>(item: &T) -> Vec<u8> {
    let mut line = serde_json::to_vec(item).unwrap_or_else(|_| b"{}".to_vec());
    line.push(b'\n');
    line
}

/// Decodes one JSON line.
pub(crate) fn decode<T: DeserializeOwned>(line: &str) -> Result<T> {
    serde_json::from_str(line).map_err(|e| Error::Control(format!("bad message: {e}")))
}
