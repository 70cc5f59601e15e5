//! Ferry's engine: one-shot sharing and receiving over iroh, with a local control channel.
//!
//! A [`Node`] owns a home directory: its identity, its blob store and its network endpoint. Only
//! one process runs the node of a home; others talk to it through the [`control`] channel. The
//! front ends (the `ferry` CLI and the desktop app) are thin layers over this crate.
//!
//! - [`share`]: files and folders into a collection and a ticket.
//! - [`receive`]: a ticket into verified files on disk, resumable.
//! - [`names`], [`export`]: the rules that keep a hostile sender from writing anywhere else.
//! - [`access`]: the provider serves only what is shared, to whoever has the ticket.
//! - [`swarm`]: one blob from many peers at once, piece by piece.
#![deny(missing_docs)]

pub mod access;
pub mod atomic;
pub(crate) mod collect;
pub mod config;
pub mod contacts;
pub mod control;
pub mod devices;
pub(crate) mod documents;
pub mod error;
pub mod export;
pub mod folder;
pub mod history;
pub mod identity;
pub mod kept;
pub mod limits;
pub mod names;
pub mod nearby;
pub mod node;
pub mod offers;
pub mod overview;
pub mod peers;
pub mod progress;
pub mod qr;
pub mod receive;
pub mod registry;
pub mod seed;
pub mod session;
pub mod settings;
pub mod share;
pub mod source;
pub mod swarm;
pub mod ticket;
pub mod transfer_store;

pub use config::{default_home, NodeConfig, RelayChoice};
pub use error::{Error, ErrorInfo, Result};
pub use node::Node;
pub use progress::{Offer, OfferEntry, ReceiveEvent, ReceiveSummary, ShareEvent, ShareInfo};
pub use share::Share;
pub use ticket::Ticket;
pub use tokio_util::sync::CancellationToken;

/// The log filter the front ends use when neither `FERRY_LOG` nor `RUST_LOG` is set: Ferry's own
/// news (info and up), and only errors from its dependencies (whose warnings, such as
/// iroh-docs' report of a document sync that lost a race with the peer's own, or a relay that
/// cannot be reached, are not something a person can act on). At the default level a healthy
/// idle node logs nothing.
pub const DEFAULT_LOG_FILTER: &str = "error,ferry=info,ferry_core=info,ferry_app=info";
