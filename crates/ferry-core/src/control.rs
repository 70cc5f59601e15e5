//! The local control channel: how a second process reaches the node of a home.
//!
//! The process that runs a node listens on a loopback TCP port and writes the port and a fresh
//! random token to `control.json` in the home (mode 0600, like the secret key). A client reads
//! that file, connects, and sends the token first; anyone who cannot read the home cannot talk
//! to the node. TCP on loopback works the same on every platform Ferry targets.
//!
//! The protocol is JSON lines: `Hello`, one [`Request`], then the server streams
//! [`StreamItem`]s. The operation lives as long as the connection: when the client goes away
//! (Ctrl-C, crash), the server stops the share or cancels the receive it started.

use std::{
    net::{Ipv4Addr, SocketAddr},
    path::{Path, PathBuf},
    time::Duration,
};

use serde::{de::DeserializeOwned, Deserialize, Serialize};
use tokio::{
    io::{AsyncBufReadExt, AsyncWriteExt, BufReader},
    net::{tcp::OwnedReadHalf, TcpListener, TcpStream},
    sync::{mpsc, oneshot},
};

use crate::{
    atomic::write_atomic,
    error::{Error, ErrorInfo, Result},
    folder::manage::{FolderInfo, FolderStatus},
    node::Node,
    progress::{Offer, ReceiveEvent, ShareEvent, StreamItem},
    session::{decode, encode, local_receive, local_share, EventStream},
    settings::Settings,
    ticket::Ticket,
};

/// File in the home that tells clients where the node listens.
pub const CONTROL_FILE: &str = "control.json";
/// Version of the control protocol.
pub const PROTOCOL_VERSION: u32 = 2;

#[derive(Debug, Clone, Serialize, Deserialize)]
struct ControlFile {
    port: u16,
    token: String,
    pid: u32,
}

#[derive(Debug, Serialize, Deserialize)]
struct Hello {
    version: u32,
    token: String,
}

/// A request on the control channel.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Request {
    /// Share paths; the stream is [`ShareEvent`]s; closing the connection stops the share.
    Share {
        /// Paths to share (absolute: the server's working directory is not the client's).
        paths: Vec<PathBuf>,
    },
    /// Receive a ticket; the stream is [`ReceiveEvent`]s; closing the connection cancels.
    Receive {
        /// The ticket text.
        ticket: String,
        /// Destination directory (absolute).
        dest: PathBuf,
        /// Serve what was received to the share's other receivers afterwards (while the
        /// node runs and the sender shares it); `None`: as the node's settings say.
        #[serde(default)]
        keep_serving: Option<bool>,
    },
    /// Fetch an offer; one [`Offer`] comes back.
    Preview {
        /// The ticket text.
        ticket: String,
    },
    /// The node's status; one [`Status`] comes back.
    Status,
    /// Share a folder; its ticket (a string) comes back.
    FolderShare {
        /// The folder (absolute).
        path: PathBuf,
        /// Joiners only receive.
        read_only: bool,
    },
    /// Join a folder; its [`FolderInfo`] comes back.
    FolderJoin {
        /// The folder ticket.
        ticket: String,
        /// Where to sync it (absolute).
        path: PathBuf,
    },
    /// The synced folders; a list of [`FolderInfo`] comes back.
    FolderList,
    /// The synced folders with their activity; a list of [`FolderStatus`] comes back.
    FolderStatus,
    /// Look at every file and record of a folder now; `true` comes back.
    FolderRescan {
        /// The folder (absolute).
        path: PathBuf,
    },
    /// Stop syncing a folder; its [`FolderInfo`] comes back.
    FolderLeave {
        /// The folder (absolute).
        path: PathBuf,
    },
    /// Pause or resume a folder; its [`FolderInfo`] comes back.
    FolderPause {
        /// The folder (absolute).
        path: PathBuf,
        /// Pause (`true`) or resume (`false`).
        paused: bool,
    },
    /// The offers of files waiting for an answer; a list of [`IncomingOffer`] comes back.
    Offers,
    /// Accept or decline an offer; the [`IncomingOffer`] comes back.
    AnswerOffer {
        /// Its number.
        id: u32,
        /// Accept (`true`) or decline.
        accept: bool,
    },
    /// Offer a ticket to a device (a contact's name or a node id); the [`Answer`] comes back
    /// once the device's user answered.
    OfferTo {
        /// The device.
        to: String,
        /// The one-shot ticket.
        ticket: String,
        /// What it is called.
        title: String,
        /// Files in it.
        files: u64,
        /// Bytes in it.
        size: u64,
    },
    /// The contacts; a list of [`Contact`] comes back.
    Contacts,
    /// One device as this node knows it, or as it names itself; a [`crate::devices::Device`]
    /// comes back.
    Who {
        /// Its node id and where it may be reached (a ticket's address).
        addr: iroh::EndpointAddr,
    },
    /// The contacts and nearby devices; a list of [`crate::devices::Device`] comes back.
    Devices {
        /// Ask each contact that is not nearby whether it is online (a few seconds).
        probe: bool,
    },
    /// Change a contact; the [`Contact`] comes back.
    ChangeContact {
        /// Its id, or a name only one contact has.
        device: String,
        /// The change.
        change: crate::contacts::ContactChange,
    },
    /// Pause or resume every folder; `true` comes back.
    FolderPauseAll {
        /// Pause (`true`) or resume (`false`).
        paused: bool,
    },
    /// Put the settings that apply while the node runs in force; `true` comes back.
    ApplySettings {
        /// The settings.
        settings: Settings,
    },
}

/// What a node reports about itself.
#[cfg_attr(feature = "specta", derive(specta::Type))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Status {
    /// The node id.
    pub node_id: String,
    /// Current direct addresses.
    pub addrs: Vec<String>,
    /// Live shares.
    #[cfg_attr(feature = "specta", specta(type = specta_typescript::Number))]
    pub shares: usize,
    /// Process id of the node.
    pub pid: u32,
}

impl Status {
    /// The status of a local node.
    pub fn of(node: &Node) -> Status {
        Status {
            node_id: node.id().to_string(),
            addrs: node.addr().ip_addrs().map(|a| a.to_string()).collect(),
            shares: node.share_count(),
            pid: std::process::id(),
        }
    }
}

/// The listening side, run by the process that owns the node. Dropping it stops listening and
/// removes the control file.
#[derive(Debug)]
pub struct ControlServer {
    task: tokio::task::JoinHandle<()>,
    file: PathBuf,
}

impl ControlServer {
    /// Starts listening for the node's home.
    pub async fn start(node: Node) -> Result<ControlServer> {
        let listener = TcpListener::bind(SocketAddr::from((Ipv4Addr::LOCALHOST, 0)))
            .await
            .map_err(|e| Error::Control(format!("cannot listen on loopback: {e}")))?;
        let port = listener
            .local_addr()
            .map_err(|e| Error::Control(e.to_string()))?
            .port();
        let token = data_encoding::HEXLOWER.encode(&rand::random::<[u8; 32]>());
        let file = node.home().join(CONTROL_FILE);
        let content = ControlFile {
            port,
            token: token.clone(),
            pid: std::process::id(),
        };
        write_atomic(&file, &serde_json::to_vec(&content).expect("serializable"))
            .map_err(|e| Error::Control(format!("cannot write {}: {e}", file.display())))?;
        let task = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                let node = node.clone();
                let token = token.clone();
                tokio::spawn(async move {
                    if let Err(e) = serve(node, stream, &token).await {
                        tracing::debug!("control connection ended: {e}");
                    }
                });
            }
        });
        Ok(ControlServer { task, file })
    }
}

impl Drop for ControlServer {
    fn drop(&mut self) {
        self.task.abort();
        std::fs::remove_file(&self.file).ok();
    }
}

async fn serve(node: Node, stream: TcpStream, token: &str) -> Result<()> {
    stream.set_nodelay(true).ok();
    let (read, mut write) = stream.into_split();
    let mut lines = BufReader::new(read).lines();
    let hello: Hello = read_line(&mut lines).await?;
    if hello.token != token || hello.version != PROTOCOL_VERSION {
        let err = ErrorInfo::new(
            "control",
            "control channel: wrong token or protocol version",
        );
        write_item::<()>(&mut write, &StreamItem::Error(err))
            .await
            .ok();
        return Err(Error::Control("client failed the handshake".into()));
    }
    let request: Request = read_line(&mut lines).await?;
    let parse = |t: &str| t.parse::<Ticket>().map_err(Error::from);
    match request {
        Request::Share { paths } => {
            pump(local_share(node, paths), lines, write).await;
        }
        Request::Receive {
            ticket,
            dest,
            keep_serving,
        } => match parse(&ticket) {
            Ok(t) => pump(local_receive(node, t, dest, keep_serving), lines, write).await,
            Err(e) => write_item::<()>(&mut write, &StreamItem::Error((&e).into())).await?,
        },
        Request::Preview { ticket } => {
            let res = match parse(&ticket) {
                Ok(t) => node.preview(&t).await,
                Err(e) => Err(e),
            };
            let item = match res {
                Ok(offer) => StreamItem::Event(offer),
                Err(e) => StreamItem::Error((&e).into()),
            };
            write_item(&mut write, &item).await?;
        }
        Request::Status => {
            write_item(&mut write, &StreamItem::Event(Status::of(&node))).await?;
        }
        Request::FolderShare { path, read_only } => {
            let item = match node.folder_share(path, read_only).await {
                Ok(ticket) => StreamItem::Event(ticket),
                Err(e) => StreamItem::Error((&e).into()),
            };
            write_item(&mut write, &item).await?;
        }
        Request::FolderJoin { ticket, path } => {
            let item = match node.folder_join(&ticket, path).await {
                Ok(info) => StreamItem::Event(info),
                Err(e) => StreamItem::Error((&e).into()),
            };
            write_item(&mut write, &item).await?;
        }
        Request::FolderList => {
            write_item(&mut write, &StreamItem::Event(node.folder_list())).await?;
        }
        Request::FolderStatus => {
            let statuses = node.folder_statuses_now().await;
            write_item(&mut write, &StreamItem::Event(statuses)).await?;
        }
        Request::FolderRescan { path } => {
            let item = match node.folder_rescan(path) {
                Ok(()) => StreamItem::Event(true),
                Err(e) => StreamItem::Error((&e).into()),
            };
            write_item(&mut write, &item).await?;
        }
        Request::FolderLeave { path } => {
            let item = match node.folder_leave(path).await {
                Ok(info) => StreamItem::Event(info),
                Err(e) => StreamItem::Error((&e).into()),
            };
            write_item(&mut write, &item).await?;
        }
        Request::FolderPause { path, paused } => {
            let item = match node.folder_pause(path, paused).await {
                Ok(info) => StreamItem::Event(info),
                Err(e) => StreamItem::Error((&e).into()),
            };
            write_item(&mut write, &item).await?;
        }
        Request::Offers => {
            write_item(&mut write, &StreamItem::Event(node.incoming_offers())).await?;
        }
        Request::AnswerOffer { id, accept } => {
            let item = match node.answer_offer(id, accept) {
                Ok(offer) => StreamItem::Event(offer),
                Err(e) => StreamItem::Error((&e).into()),
            };
            write_item(&mut write, &item).await?;
        }
        Request::OfferTo {
            to,
            ticket,
            title,
            files,
            size,
        } => {
            let offered = async {
                let ticket: crate::ticket::Ticket = ticket.parse()?;
                let to = node.device(&to)?;
                node.offer_to(to, &ticket, title, files, size).await
            };
            let item = match offered.await {
                Ok(answer) => StreamItem::Event(answer),
                Err(e) => StreamItem::Error((&e).into()),
            };
            write_item(&mut write, &item).await?;
        }
        Request::Contacts => {
            write_item(&mut write, &StreamItem::Event(node.contacts().list())).await?;
        }
        Request::Who { addr } => {
            write_item(&mut write, &StreamItem::Event(node.who(addr).await)).await?;
        }
        Request::Devices { probe } => {
            write_item(&mut write, &StreamItem::Event(node.devices(probe).await)).await?;
        }
        Request::ChangeContact { device, change } => {
            let item = match node.contacts().apply(&device, change) {
                Ok(contact) => StreamItem::Event(contact),
                Err(e) => StreamItem::Error((&e).into()),
            };
            write_item(&mut write, &item).await?;
        }
        Request::FolderPauseAll { paused } => {
            let item = match node.folder_pause_all(paused).await {
                Ok(()) => StreamItem::Event(true),
                Err(e) => StreamItem::Error((&e).into()),
            };
            write_item(&mut write, &item).await?;
        }
        Request::ApplySettings { settings } => {
            let item = match node.apply_settings(&settings) {
                Ok(()) => StreamItem::Event(true),
                Err(e) => StreamItem::Error((&e).into()),
            };
            write_item(&mut write, &item).await?;
        }
    }
    Ok(())
}

/// Forwards a local event stream to the socket until it ends or the client goes away.
async fn pump<E: Serialize>(
    mut stream: EventStream<E>,
    mut lines: tokio::io::Lines<BufReader<OwnedReadHalf>>,
    mut write: tokio::net::tcp::OwnedWriteHalf,
) {
    loop {
        tokio::select! {
            item = stream.next_item() => match item {
                Some(item) => {
                    if write_item(&mut write, &item).await.is_err() {
                        break;
                    }
                }
                None => break,
            },
            // The client sends nothing more; end of input means it went away.
            line = lines.next_line() => match line {
                Ok(Some(_)) => continue,
                _ => break,
            },
        }
    }
    write.shutdown().await.ok();
}

async fn write_item<E: Serialize>(
    write: &mut tokio::net::tcp::OwnedWriteHalf,
    item: &StreamItem<E>,
) -> Result<()> {
    write
        .write_all(&encode(item))
        .await
        .map_err(|e| Error::Control(e.to_string()))
}

async fn read_line<T: DeserializeOwned, R: tokio::io::AsyncBufRead + Unpin>(
    lines: &mut tokio::io::Lines<R>,
) -> Result<T> {
    read_line_within(lines, Duration::from_secs(10)).await
}

async fn read_line_within<T: DeserializeOwned, R: tokio::io::AsyncBufRead + Unpin>(
    lines: &mut tokio::io::Lines<R>,
    limit: Duration,
) -> Result<T> {
    match tokio::time::timeout(limit, lines.next_line()).await {
        Ok(Ok(Some(line))) => decode(&line),
        Ok(Ok(None)) => Err(Error::Control("the other side closed the channel".into())),
        Ok(Err(e)) => Err(Error::Control(e.to_string())),
        Err(_) => Err(Error::Control("timed out waiting for a message".into())),
    }
}

/// How long a call that waits on a folder's round may take.
const SLOW_CALL: Duration = Duration::from_secs(300);

/// The client side, used by a process that does not own the node.
#[derive(Debug, Clone)]
pub struct ControlClient {
    home: PathBuf,
    port: u16,
    token: String,
    pid: u32,
}

impl ControlClient {
    /// Reads the home's control file and checks the node answers.
    pub async fn connect(home: &Path) -> Result<ControlClient> {
        let path = home.join(CONTROL_FILE);
        let text = std::fs::read_to_string(&path)
            .map_err(|e| Error::Control(format!("cannot read {}: {e}", path.display())))?;
        let file: ControlFile = serde_json::from_str(&text)
            .map_err(|e| Error::Control(format!("{} is malformed: {e}", path.display())))?;
        let client = ControlClient {
            home: home.to_path_buf(),
            port: file.port,
            token: file.token,
            pid: file.pid,
        };
        client.status().await?;
        Ok(client)
    }

    /// The process id of the node.
    pub fn pid(&self) -> u32 {
        self.pid
    }

    async fn open(&self, request: &Request) -> Result<TcpStream> {
        let mut stream = TcpStream::connect((Ipv4Addr::LOCALHOST, self.port))
            .await
            .map_err(|e| {
                Error::Control(format!(
                    "the node of {} does not answer: {e}",
                    self.home.display()
                ))
            })?;
        stream.set_nodelay(true).ok();
        let hello = Hello {
            version: PROTOCOL_VERSION,
            token: self.token.clone(),
        };
        let mut msg = encode(&hello);
        msg.extend(encode(request));
        stream
            .write_all(&msg)
            .await
            .map_err(|e| Error::Control(e.to_string()))?;
        Ok(stream)
    }

    async fn call<T: DeserializeOwned>(&self, request: &Request) -> Result<T> {
        self.call_within(request, Duration::from_secs(10)).await
    }

    /// A call whose answer may take up to `limit` (a folder's round ending, a person
    /// deciding on an offer).
    async fn call_within<T: DeserializeOwned>(
        &self,
        request: &Request,
        limit: Duration,
    ) -> Result<T> {
        let stream = self.open(request).await?;
        let mut lines = BufReader::new(stream).lines();
        match read_line_within::<StreamItem<T>, _>(&mut lines, limit).await? {
            StreamItem::Event(v) => Ok(v),
            StreamItem::Error(e) => Err(remote_error(e)),
        }
    }

    async fn stream<E: DeserializeOwned + Send + 'static>(
        &self,
        request: &Request,
    ) -> Result<EventStream<E>> {
        let stream = self.open(request).await?;
        let (read, write) = stream.into_split();
        let (out, rx) = mpsc::unbounded_channel();
        let (stop_tx, mut stop) = oneshot::channel::<()>();
        tokio::spawn(async move {
            // Holding the write half keeps the operation alive on the server.
            let _write = write;
            let mut lines = BufReader::new(read).lines();
            loop {
                tokio::select! {
                    line = lines.next_line() => match line {
                        Ok(Some(line)) => match decode::<StreamItem<E>>(&line) {
                            Ok(item) => { if out.send(item).is_err() { break; } }
                            Err(e) => { out.send(StreamItem::Error((&e).into())).ok(); break; }
                        },
                        Ok(None) => break,
                        Err(e) => {
                            let e = Error::Control(format!("the node went away: {e}"));
                            out.send(StreamItem::Error((&e).into())).ok();
                            break;
                        }
                    },
                    _ = &mut stop => break,
                }
            }
        });
        Ok(EventStream::new(rx, stop_tx))
    }

    /// Shares paths through the remote node.
    pub async fn share(&self, paths: Vec<PathBuf>) -> Result<EventStream<ShareEvent>> {
        let paths = paths
            .into_iter()
            .map(absolute)
            .collect::<Result<Vec<_>>>()?;
        self.stream(&Request::Share { paths }).await
    }

    /// Receives through the remote node.
    pub async fn receive(
        &self,
        ticket: &Ticket,
        dest: PathBuf,
        keep_serving: Option<bool>,
    ) -> Result<EventStream<ReceiveEvent>> {
        let dest = absolute(dest)?;
        self.stream(&Request::Receive {
            ticket: ticket.to_string(),
            dest,
            keep_serving,
        })
        .await
    }

    /// Fetches an offer through the remote node.
    pub async fn preview(&self, ticket: &Ticket) -> Result<Offer> {
        self.call(&Request::Preview {
            ticket: ticket.to_string(),
        })
        .await
    }

    /// The remote node's status.
    pub async fn status(&self) -> Result<Status> {
        self.call(&Request::Status).await
    }

    /// Shares a folder through the remote node.
    pub async fn folder_share(&self, path: PathBuf, read_only: bool) -> Result<String> {
        let path = absolute(path)?;
        self.call(&Request::FolderShare { path, read_only }).await
    }

    /// Joins a folder through the remote node.
    pub async fn folder_join(&self, ticket: &str, path: PathBuf) -> Result<FolderInfo> {
        let path = absolute(path)?;
        self.call(&Request::FolderJoin {
            ticket: ticket.to_string(),
            path,
        })
        .await
    }

    /// The remote node's synced folders.
    pub async fn folder_list(&self) -> Result<Vec<FolderInfo>> {
        self.call(&Request::FolderList).await
    }

    /// The remote node's synced folders with their activity.
    pub async fn folder_statuses(&self) -> Result<Vec<FolderStatus>> {
        self.call(&Request::FolderStatus).await
    }

    /// Makes the remote node look at every file and record of a folder now.
    pub async fn folder_rescan(&self, path: PathBuf) -> Result<()> {
        let path = absolute(path)?;
        let _: bool = self.call(&Request::FolderRescan { path }).await?;
        Ok(())
    }

    /// Stops syncing a folder on the remote node.
    pub async fn folder_leave(&self, path: PathBuf) -> Result<FolderInfo> {
        let path = absolute(path)?;
        self.call(&Request::FolderLeave { path }).await
    }

    /// Pauses or resumes a folder on the remote node.
    pub async fn folder_pause(&self, path: PathBuf, paused: bool) -> Result<FolderInfo> {
        let path = absolute(path)?;
        // Pausing waits for the folder's current round to end.
        self.call_within(&Request::FolderPause { path, paused }, SLOW_CALL)
            .await
    }

    /// The offers waiting on the remote node.
    pub async fn incoming_offers(&self) -> Result<Vec<crate::offers::IncomingOffer>> {
        self.call(&Request::Offers).await
    }

    /// Accepts or declines an offer on the remote node.
    pub async fn answer_offer(
        &self,
        id: u32,
        accept: bool,
    ) -> Result<crate::offers::IncomingOffer> {
        self.call(&Request::AnswerOffer { id, accept }).await
    }

    /// Offers a ticket to a device from the remote node; waits for the answer.
    pub async fn offer_to(
        &self,
        to: &str,
        offer: &crate::offers::OfferMsg,
    ) -> Result<crate::offers::Answer> {
        let request = Request::OfferTo {
            to: to.into(),
            ticket: offer.ticket.clone(),
            title: offer.title.clone(),
            files: offer.files,
            size: offer.size,
        };
        self.call_within(
            &request,
            crate::offers::PENDING_FOR + Duration::from_secs(60),
        )
        .await
    }

    /// Changes a contact of the remote node.
    pub async fn change_contact(
        &self,
        device: &str,
        change: crate::contacts::ContactChange,
    ) -> Result<crate::contacts::Contact> {
        let device = device.to_string();
        self.call(&Request::ChangeContact { device, change }).await
    }

    /// The remote node's contacts.
    pub async fn contacts(&self) -> Result<Vec<crate::contacts::Contact>> {
        self.call(&Request::Contacts).await
    }

    /// One device as the remote node knows it, or as it names itself.
    pub async fn who(&self, addr: iroh::EndpointAddr) -> Result<crate::devices::Device> {
        self.call_within(&Request::Who { addr }, SLOW_CALL).await
    }

    /// The remote node's contacts and nearby devices.
    pub async fn devices(&self, probe: bool) -> Result<Vec<crate::devices::Device>> {
        self.call_within(&Request::Devices { probe }, SLOW_CALL)
            .await
    }

    /// Pauses or resumes every folder on the remote node.
    pub async fn folder_pause_all(&self, paused: bool) -> Result<()> {
        let _: bool = self
            .call_within(&Request::FolderPauseAll { paused }, SLOW_CALL)
            .await?;
        Ok(())
    }

    /// Puts the settings that apply while a node runs in force on the remote node.
    pub async fn apply_settings(&self, settings: Settings) -> Result<()> {
        let _: bool = self.call(&Request::ApplySettings { settings }).await?;
        Ok(())
    }
}

fn absolute(p: PathBuf) -> Result<PathBuf> {
    std::path::absolute(&p).map_err(|e| Error::Config(format!("{}: {e}", p.display())))
}

/// An error reported by the remote node, kept with its code.
fn remote_error(e: ErrorInfo) -> Error {
    Error::Remote(e)
}
