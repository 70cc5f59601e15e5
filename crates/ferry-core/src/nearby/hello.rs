//! Hello: what a device calls itself, asked over [`ALPN`].
//!
//! The asking side connects; the answering side opens one stream, writes a [`HelloMsg`] and
//! finishes it. A node tells its name to anyone while it is visible to nearby devices (its
//! settings say so and it is not hidden), and only to its contacts while it is not (an id
//! alone, learnt from an old ticket, then gets an empty name). The answer is a claim like
//! every name: cleaned and cut before it is kept, and
//! never what a decision rests on. A successful hello also says the device is online and by
//! which path.

use std::{path::PathBuf, sync::Arc, time::Duration};

use iroh::{
    endpoint::Connection,
    protocol::{AcceptError, ProtocolHandler},
    Endpoint, EndpointAddr,
};
use serde::{Deserialize, Serialize};

use crate::{
    contacts::{clean_name, Contacts},
    error::{Error, Result},
    progress::Via,
};

/// The protocol's ALPN.
pub const ALPN: &[u8] = b"ferry/hello/0";
/// Largest hello read.
const MAX_HELLO: usize = 1024;
/// How long asking may take, connecting included.
pub const ASK_FOR: Duration = Duration::from_secs(5);
/// Hello connections answered at once; more are closed at once.
const MAX_OPEN: usize = 16;

/// What a device says about itself.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HelloMsg {
    /// Its device name; empty if it would not say.
    pub name: String,
}

/// What asking a device brought.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    /// Its name (cleaned; empty if it would not say).
    pub name: String,
    /// The path the connection took.
    pub via: Option<Via>,
}

/// The answering side. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Hello {
    nearby: super::Nearby,
    contacts: Contacts,
    /// The node's home: its device name is in the settings there.
    home: PathBuf,
    open: Arc<tokio::sync::Semaphore>,
}

impl Hello {
    /// Answers for a node with these nearby devices, contacts and home.
    pub fn new(nearby: super::Nearby, contacts: Contacts, home: PathBuf) -> Hello {
        Hello {
            nearby,
            contacts,
            home,
            open: Arc::new(tokio::sync::Semaphore::new(MAX_OPEN)),
        }
    }
}

impl ProtocolHandler for Hello {
    async fn accept(&self, conn: Connection) -> std::result::Result<(), AcceptError> {
        let Ok(slot) = self.open.clone().try_acquire_owned() else {
            conn.close(1u32.into(), b"busy");
            return Ok(());
        };
        let peer = conn.remote_id().to_string();
        // The settings decide, not only the running service: a one-shot command has none.
        let settings = crate::settings::Settings::load(&self.home);
        let visible = settings.visible_nearby && self.nearby.visible();
        let tell = visible || self.contacts.get(&peer).is_some();
        let msg = HelloMsg {
            name: if tell {
                settings.device_name
            } else {
                String::new()
            },
        };
        let answer = async {
            let mut send = conn.open_uni().await.ok()?;
            send.write_all(&serde_json::to_vec(&msg).expect("serializable"))
                .await
                .ok()?;
            send.finish().ok()
        };
        let sent = tokio::time::timeout(ASK_FOR, answer).await.is_ok();
        // Waiting for the asker to read holds no slot: idle askers cannot keep others out.
        drop(slot);
        if sent {
            tokio::time::timeout(ASK_FOR, conn.closed()).await.ok();
        }
        Ok(())
    }
}

/// Asks the device at `addr` what it calls itself.
pub async fn ask(endpoint: &Endpoint, addr: EndpointAddr) -> Result<Answer> {
    let id = addr.id;
    let run = async {
        let conn = endpoint
            .connect(addr, ALPN)
            .await
            .map_err(|e| Error::Unreachable(format!("{}: {e}", id.fmt_short())))?;
        let mut recv = conn.accept_uni().await.map_err(Error::network)?;
        let bytes = recv
            .read_to_end(MAX_HELLO)
            .await
            .map_err(|e| Error::BadData(format!("a hello from {}: {e}", id.fmt_short())))?;
        let via = Via::of(&conn);
        conn.close(0u32.into(), b"thanks");
        let msg: HelloMsg = serde_json::from_slice(&bytes)
            .map_err(|e| Error::BadData(format!("a hello from {}: {e}", id.fmt_short())))?;
        Ok(Answer {
            name: clean_name(&msg.name),
            via,
        })
    };
    tokio::time::timeout(ASK_FOR, run).await.map_err(|_| {
        Error::Unreachable(format!("{}: no answer within {ASK_FOR:?}", id.fmt_short()))
    })?
}
