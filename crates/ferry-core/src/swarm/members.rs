//! Peer exchange: the receivers of one share find each other through the sender (and through
//! each other), so that each can fetch pieces from the others.
//!
//! One request per stream on [`ALPN`]: the asker sends a [`Hello`] naming the share's root
//! (knowing the root is holding the ticket) and how to reach it; the answer lists up to
//! [`MAX_ANSWER`] other members of that share seen recently. A node answers only for a root it
//! shares or receives right now; for any other root it says [`Answer::Unknown`], which tells
//! nothing about what else it holds. Saying hello also opens the share's root to the asker
//! (as asking for the root over the blobs protocol does), so that it may fetch the pieces.
//! A member is passed on only while a connection it said hello on is open: one that has left
//! is not dialled by the receivers that come after it.
//!
//! Everything in a hello is the asker's claim: sizes are bounded before parsing, at most
//! [`MAX_ADDRS`] addresses per member and [`MAX_MEMBERS`] members per share are kept (the
//! least recently seen leave first), and a member is only ever dialled by its id, which the
//! connection's handshake verifies.

use std::{
    collections::HashMap,
    net::SocketAddr,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use iroh::{
    endpoint::Connection,
    protocol::{AcceptError, ProtocolHandler},
    EndpointAddr, EndpointId, RelayUrl, TransportAddr,
};
use iroh_blobs::Hash;
use serde::{Deserialize, Serialize};

use crate::{
    error::{Error, Result},
    registry::Registry,
};

/// The protocol's ALPN.
pub const ALPN: &[u8] = b"ferry/swarm/0";

/// Largest hello read.
const MAX_HELLO: usize = 4096;
/// Largest answer read.
const MAX_ANSWER_BYTES: usize = 64 * 1024;
/// Members listed in one answer.
pub const MAX_ANSWER: usize = 32;
/// Members kept per share.
pub const MAX_MEMBERS: usize = 256;
/// Addresses kept per member.
pub const MAX_ADDRS: usize = 8;
/// A member not heard from for this long is not passed on.
const FORGET_AFTER: Duration = Duration::from_secs(600);
/// How long one exchange may take.
const EXCHANGE_TIMEOUT: Duration = Duration::from_secs(10);

/// How to reach a member.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Contact {
    /// Its endpoint id.
    pub id: [u8; 32],
    /// Its direct addresses.
    pub addrs: Vec<SocketAddr>,
    /// Its home relay, if any.
    pub relay: Option<String>,
}

impl Contact {
    /// The contact of `addr`, within the bounds.
    pub fn of(addr: &EndpointAddr) -> Contact {
        Contact {
            id: *addr.id.as_bytes(),
            addrs: addr.ip_addrs().take(MAX_ADDRS).copied().collect(),
            relay: addr.relay_urls().next().map(|u| u.to_string()),
        }
    }

    /// The address to dial, if the id is a valid key. Addresses beyond the bound and a relay
    /// URL that does not parse are dropped.
    pub fn addr(&self) -> Option<EndpointAddr> {
        let id = EndpointId::from_bytes(&self.id).ok()?;
        let mut addrs: Vec<TransportAddr> = self
            .addrs
            .iter()
            .take(MAX_ADDRS)
            .map(|a| TransportAddr::Ip(*a))
            .collect();
        if let Some(url) = self
            .relay
            .as_deref()
            .filter(|u| u.len() <= 256)
            .and_then(|u| u.parse::<RelayUrl>().ok())
        {
            addrs.push(TransportAddr::Relay(url));
        }
        Some(EndpointAddr::from_parts(id, addrs))
    }
}

/// What an asker sends.
#[derive(Debug, Serialize, Deserialize)]
pub struct Hello {
    /// The share's root.
    pub root: [u8; 32],
    /// How to reach the asker.
    pub me: Contact,
    /// How much of the share the asker has, of how much (told to the sender when a receive
    /// ends: the sender's view of who has everything). A claim, shown to people only.
    #[serde(default)]
    pub progress: Option<(u64, u64)>,
    /// How much of `progress` came from the node greeted (a claim, shown to people only).
    #[serde(default)]
    pub from_you: Option<u64>,
    /// The asker's device name (a claim, shown to people only; at most [`MAX_NAME`] chars
    /// are kept, without control characters).
    #[serde(default)]
    pub name: Option<String>,
}

/// Characters of a member's device name kept.
pub const MAX_NAME: usize = 64;

/// What an asker says of itself besides how to reach it (see [`Hello`]).
#[derive(Debug, Clone, Default)]
pub struct About {
    /// Its device name.
    pub name: Option<String>,
    /// How much of the share it has, of how much.
    pub progress: Option<(u64, u64)>,
    /// How much of that came from the node greeted.
    pub from_you: Option<u64>,
}

/// Unicode's invisible formatting characters (category Cf, the ones that matter in a name).
fn is_format(c: char) -> bool {
    matches!(c,
        '\u{00AD}' | '\u{061C}' | '\u{180E}' | '\u{200B}'..='\u{200F}' | '\u{202A}'..='\u{202E}'
        | '\u{2060}'..='\u{206F}' | '\u{FEFF}' | '\u{FFF9}'..='\u{FFFB}')
}

/// A device name a peer sent, fit to show: control and formatting characters (direction
/// overrides, zero-width marks) dropped, at most [`MAX_NAME`] characters, `None` if nothing
/// is left.
fn shown_name(name: Option<String>) -> Option<String> {
    let name: String = name?
        .chars()
        .filter(|c| !c.is_control() && !is_format(*c))
        .take(MAX_NAME)
        .collect();
    let name = name.trim();
    (!name.is_empty()).then(|| name.to_string())
}

/// What it gets back.
#[derive(Debug, Serialize, Deserialize)]
pub enum Answer {
    /// Other members of the share.
    Members(Vec<Contact>),
    /// This node does not share or receive that root now.
    Unknown,
}

/// A share's members: who, how to reach them, when last heard from.
type MemberList = HashMap<EndpointId, (Contact, Instant)>;

#[derive(Debug, Default)]
struct Inner {
    /// Per root: how many guards keep it (a node may send and receive one root), and its
    /// members.
    shares: HashMap<Hash, (usize, MemberList)>,
    /// Member connections open, per peer. A member keeps the connection it said hello on for
    /// as long as it takes part; once a peer has none left it has gone (its receive ended, it
    /// stopped, or it vanished and the connection timed out) and is not passed on: the next
    /// receivers would dial a peer that does not answer.
    open: HashMap<EndpointId, usize>,
}

/// One member connection open (see [`Inner::open`]).
struct Open {
    members: Members,
    peer: EndpointId,
}

impl Open {
    fn new(members: &Members, peer: EndpointId) -> Open {
        *members
            .inner
            .lock()
            .expect("members lock")
            .open
            .entry(peer)
            .or_default() += 1;
        Open {
            members: members.clone(),
            peer,
        }
    }
}

impl Drop for Open {
    fn drop(&mut self) {
        let mut inner = self.members.inner.lock().expect("members lock");
        let Some(count) = inner.open.get_mut(&self.peer) else {
            return;
        };
        *count -= 1;
        if *count == 0 {
            inner.open.remove(&self.peer);
            for (_, members) in inner.shares.values_mut() {
                members.remove(&self.peer);
            }
        }
    }
}

/// The members of the shares this node sends or receives, and the protocol handler that
/// answers for them.
#[derive(Debug, Clone)]
pub struct Members {
    inner: Arc<Mutex<Inner>>,
    registry: Registry,
}

/// Keeps a root answered for; dropping it forgets the root and its members.
#[derive(Debug)]
pub struct MembersGuard {
    members: Members,
    root: Hash,
}

impl Drop for MembersGuard {
    fn drop(&mut self) {
        let mut inner = self.members.inner.lock().expect("members lock");
        if let Some((count, _)) = inner.shares.get_mut(&self.root) {
            *count -= 1;
            if *count == 0 {
                inner.shares.remove(&self.root);
            }
        }
    }
}

impl Members {
    /// Members known through `registry` (which says what is shared, and opens roots).
    pub fn new(registry: Registry) -> Members {
        Members {
            inner: Default::default(),
            registry,
        }
    }

    /// Answers for `root` (a share sent or received here) until the guard is dropped.
    pub fn join(&self, root: Hash) -> MembersGuard {
        self.inner
            .lock()
            .expect("members lock")
            .shares
            .entry(root)
            .or_default()
            .0 += 1;
        MembersGuard {
            members: self.clone(),
            root,
        }
    }

    /// Notes `contact` as a member of `root` (if this node takes part in it), and returns up
    /// to [`MAX_ANSWER`] other members, most recently seen first.
    pub fn meet(&self, root: Hash, contact: Contact) -> Option<Vec<Contact>> {
        let id = EndpointId::from_bytes(&contact.id).ok()?;
        let mut inner = self.inner.lock().expect("members lock");
        let members = &mut inner.shares.get_mut(&root)?.1;
        let now = Instant::now();
        members.retain(|_, (_, seen)| now.duration_since(*seen) < FORGET_AFTER);
        members.insert(id, (contact, now));
        if members.len() > MAX_MEMBERS {
            if let Some(oldest) = members
                .iter()
                .filter(|(k, _)| **k != id)
                .min_by_key(|(_, (_, seen))| *seen)
                .map(|(k, _)| *k)
            {
                members.remove(&oldest);
            }
        }
        let mut others: Vec<&(Contact, Instant)> = members
            .iter()
            .filter(|(k, _)| **k != id)
            .map(|(_, v)| v)
            .collect();
        others.sort_by_key(|(_, seen)| std::cmp::Reverse(*seen));
        Some(
            others
                .into_iter()
                .take(MAX_ANSWER)
                .map(|(c, _)| c.clone())
                .collect(),
        )
    }

    /// The members of `root` seen recently.
    pub fn list(&self, root: Hash) -> Vec<Contact> {
        let inner = self.inner.lock().expect("members lock");
        let now = Instant::now();
        inner
            .shares
            .get(&root)
            .map(|(_, m)| {
                m.values()
                    .filter(|(_, seen)| now.duration_since(*seen) < FORGET_AFTER)
                    .map(|(c, _)| c.clone())
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Answers one hello from `peer`.
    fn answer(&self, peer: EndpointId, hello: Hello) -> Answer {
        let root = Hash::from_bytes(hello.root);
        // The member is who the connection says it is, whatever the hello claims; what it
        // says of its addresses is kept within bounds (a relay URL that parses, at most 256
        // bytes), so that the answers passed on stay small.
        let mut me = hello.me;
        me.id = *peer.as_bytes();
        me.addrs.truncate(MAX_ADDRS);
        me.relay = me
            .relay
            .filter(|u| u.len() <= 256 && u.parse::<RelayUrl>().is_ok());
        match self.meet(root, me) {
            Some(others) => {
                // Asking is holding the ticket: the share's pieces are open to the asker.
                self.registry.open_root(&root, Some(&peer));
                if let (Some((done, total)), Some(view)) =
                    (hello.progress, self.registry.view(&root))
                {
                    let peer = peer.to_string();
                    let done = done.min(total);
                    let progress = crate::progress::TransferProgress {
                        done,
                        total,
                        from_here: hello.from_you.map(|n| n.min(done)),
                        rate: 0.0,
                        current: None,
                        via: None,
                        ..Default::default()
                    };
                    view.events
                        .send(crate::progress::ShareEvent::PeerProgress {
                            peer: peer.clone(),
                            name: shown_name(hello.name),
                            progress,
                        })
                        .ok();
                    if done >= total {
                        view.events
                            .send(crate::progress::ShareEvent::PeerDone { peer })
                            .ok();
                    }
                }
                Answer::Members(others)
            }
            None => Answer::Unknown,
        }
    }
}

impl ProtocolHandler for Members {
    async fn accept(&self, conn: Connection) -> std::result::Result<(), AcceptError> {
        let peer = conn.remote_id();
        let _open = Open::new(self, peer);
        while let Ok((mut send, mut recv)) = conn.accept_bi().await {
            let read = tokio::time::timeout(EXCHANGE_TIMEOUT, recv.read_to_end(MAX_HELLO));
            let Ok(Ok(bytes)) = read.await else {
                break;
            };
            let answer = match serde_json::from_slice::<Hello>(&bytes) {
                Ok(hello) => self.answer(peer, hello),
                Err(e) => {
                    tracing::debug!("malformed hello from {}: {e}", peer.fmt_short());
                    break;
                }
            };
            let out = serde_json::to_vec(&answer).expect("serializable");
            if send.write_all(&out).await.is_err() || send.finish().is_err() {
                break;
            }
        }
        Ok(())
    }
}

/// Says hello to the member at `conn` for `root` as `me`, telling it `about`; returns the
/// members it knows, or `None` if it does not share or receive `root` (now).
pub async fn exchange(
    conn: &Connection,
    root: Hash,
    me: Contact,
    about: About,
) -> Result<Option<Vec<Contact>>> {
    let run = async {
        let (mut send, mut recv) = conn.open_bi().await.map_err(Error::network)?;
        let hello = Hello {
            root: *root.as_bytes(),
            me,
            progress: about.progress,
            from_you: about.from_you,
            name: about.name,
        };
        send.write_all(&serde_json::to_vec(&hello).expect("serializable"))
            .await
            .map_err(Error::network)?;
        send.finish().map_err(Error::network)?;
        let bytes = recv
            .read_to_end(MAX_ANSWER_BYTES)
            .await
            .map_err(Error::network)?;
        match serde_json::from_slice::<Answer>(&bytes)
            .map_err(|e| Error::BadData(format!("a peer's member list: {e}")))?
        {
            Answer::Members(mut list) => {
                list.truncate(MAX_ANSWER);
                Ok(Some(list))
            }
            Answer::Unknown => Ok(None),
        }
    };
    tokio::time::timeout(EXCHANGE_TIMEOUT, run)
        .await
        .map_err(|_| Error::Network("a peer did not answer a member exchange in time".into()))?
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_claimed_name_is_cut_and_cleaned_before_it_is_shown() {
        assert_eq!(
            shown_name(Some(" Office laptop ".into())).as_deref(),
            Some("Office laptop")
        );
        // Direction overrides and zero-width marks could make a name pass for another.
        assert_eq!(
            shown_name(Some("Bob\u{202E}kcab\u{200B}\u{7}".into())).as_deref(),
            Some("Bobkcab")
        );
        assert_eq!(shown_name(Some("\u{200B}\n ".into())), None);
        assert_eq!(shown_name(None), None);
        let long = "é".repeat(1000);
        assert_eq!(shown_name(Some(long)).unwrap().chars().count(), MAX_NAME);
    }

    fn contact(n: u8) -> Contact {
        let key = iroh::SecretKey::from_bytes(&[n; 32]).public();
        Contact {
            id: *key.as_bytes(),
            addrs: vec![format!("127.0.0.1:{}", 1000 + n as u16).parse().unwrap()],
            relay: None,
        }
    }

    #[test]
    fn members_are_listed_for_the_roots_this_node_takes_part_in_only() {
        let m = Members::new(Registry::default());
        let root = Hash::new(b"share");
        assert!(
            m.meet(root, contact(1)).is_none(),
            "not a share of this node"
        );
        let _g = m.join(root);
        assert_eq!(m.meet(root, contact(1)).unwrap(), vec![]);
        assert_eq!(m.meet(root, contact(2)).unwrap(), vec![contact(1)]);
        let to_three = m.meet(root, contact(3)).unwrap();
        assert_eq!(to_three, vec![contact(2), contact(1)], "newest first");
        drop(_g);
        assert!(
            m.meet(root, contact(4)).is_none(),
            "forgotten with its guard"
        );
    }

    #[test]
    fn a_flood_of_members_stays_bounded() {
        let m = Members::new(Registry::default());
        let root = Hash::new(b"share");
        let _g = m.join(root);
        for i in 0..(MAX_MEMBERS + 40) {
            let mut c = contact(1);
            let key = iroh::SecretKey::from_bytes(&blake3::hash(&i.to_le_bytes()).into()).public();
            c.id = *key.as_bytes();
            let answer = m.meet(root, c).unwrap();
            assert!(answer.len() <= MAX_ANSWER);
        }
        let inner = m.inner.lock().unwrap();
        assert_eq!(inner.shares[&root].1.len(), MAX_MEMBERS);
    }

    #[test]
    fn a_contacts_claims_are_bounded_when_dialled() {
        let mut c = contact(1);
        c.addrs = (0..50)
            .map(|i| format!("10.0.0.{i}:1").parse().unwrap())
            .collect();
        c.relay = Some("not a url".into());
        let addr = c.addr().unwrap();
        assert_eq!(addr.ip_addrs().count(), MAX_ADDRS);
        assert_eq!(addr.relay_urls().count(), 0);
        c.id = [0xff; 32];
        // Not every 32 bytes are a valid key; such a contact is never dialled.
        let _ = c.addr();
    }
}
