//! Typed progress events, and the throttle that keeps them few.
//!
//! iroh-blobs reports progress for every ~16 KiB: tens of thousands of events per GiB. Front ends
//! want a handful per second. Every stream of events that leaves the core goes through a
//! [`Throttle`]: at most one update per [`Throttle::INTERVAL`], and the final state always.

use std::{
    collections::VecDeque,
    time::{Duration, Instant},
};

use serde::{Deserialize, Serialize};

use crate::error::ErrorInfo;

/// One file of an offer, as shown in a preview.
#[cfg_attr(feature = "specta", derive(specta::Type))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OfferEntry {
    /// Relative path, `/`-separated, as the sender named it.
    pub name: String,
    /// Size in bytes.
    #[cfg_attr(feature = "specta", specta(type = specta_typescript::Number))]
    pub size: u64,
}

/// What a ticket offers: the preview a receiver sees before accepting.
#[cfg_attr(feature = "specta", derive(specta::Type))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Offer {
    /// The collection hash (hex).
    pub hash: String,
    /// The files, in collection order.
    pub entries: Vec<OfferEntry>,
    /// Sum of all sizes.
    #[cfg_attr(feature = "specta", specta(type = specta_typescript::Number))]
    pub total_size: u64,
}

impl Offer {
    /// Number of files.
    pub fn file_count(&self) -> usize {
        self.entries.len()
    }

    /// The distinct top-level names (what appears in the destination folder).
    pub fn top_level(&self) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        for e in &self.entries {
            let top = e.name.split('/').next().unwrap_or(&e.name).to_string();
            if !out.contains(&top) {
                out.push(top);
            }
        }
        out
    }
}

/// A snapshot of a running transfer.
#[cfg_attr(feature = "specta", derive(specta::Type))]
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct TransferProgress {
    /// Payload bytes present (already on disk before this run included).
    #[cfg_attr(feature = "specta", specta(type = specta_typescript::Number))]
    pub done: u64,
    /// Payload bytes in total.
    #[cfg_attr(feature = "specta", specta(type = specta_typescript::Number))]
    pub total: u64,
    /// Current rate in bytes per second, over the last few seconds.
    #[cfg_attr(feature = "specta", specta(type = specta_typescript::Number))]
    pub rate: f64,
    /// The file being transferred now, if known.
    pub current: Option<String>,
    /// How the peer is reached, when known: a direct path or through a relay.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub via: Option<Via>,
    /// A receive fetching a large file from the share's swarm: every peer it fetches from.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub peers: Vec<PeerRate>,
    /// A peer's progress as its sender sees it: how much of `done` came from this device (the
    /// peer's claim; the rest came from the share's other peers).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "specta", specta(type = Option<specta_typescript::Number>))]
    pub from_here: Option<u64>,
}

/// One peer a receive fetches from, and what it brought.
#[cfg_attr(feature = "specta", derive(specta::Type))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PeerRate {
    /// Its node id.
    pub peer: String,
    /// It is the share's sender (the others are its other receivers and helpers).
    pub sender: bool,
    /// Verified bytes it brought in this receive.
    #[cfg_attr(feature = "specta", specta(type = specta_typescript::Number))]
    pub bytes: u64,
    /// Its current rate, in bytes per second.
    #[cfg_attr(feature = "specta", specta(type = specta_typescript::Number))]
    pub rate: f64,
}

/// The network path a transfer uses.
#[cfg_attr(feature = "specta", derive(specta::Type))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Via {
    /// A direct UDP path (same network, or hole punching succeeded).
    Direct,
    /// Through a relay server.
    Relay,
}

impl Via {
    /// The path this endpoint uses to `id` right now, if it uses one.
    pub async fn of_remote(endpoint: &iroh::Endpoint, id: iroh::EndpointId) -> Option<Via> {
        let info = endpoint.remote_info(id).await?;
        let active: Vec<_> = info
            .addrs()
            .filter(|a| matches!(a.usage(), iroh::endpoint::TransportAddrUsage::Active))
            .collect();
        if active.iter().any(|a| a.addr().is_ip()) {
            Some(Via::Direct)
        } else if active.iter().any(|a| a.addr().is_relay()) {
            Some(Via::Relay)
        } else {
            None
        }
    }

    /// The path a connection uses right now.
    pub fn of(conn: &iroh::endpoint::Connection) -> Option<Via> {
        let paths = conn.paths();
        let selected = paths.iter().find(|p| p.is_selected())?;
        Some(if selected.is_relay() {
            Via::Relay
        } else {
            Via::Direct
        })
    }
}

impl TransferProgress {
    /// Estimated seconds left at the current rate.
    pub fn eta_secs(&self) -> Option<f64> {
        (self.rate > 0.0).then(|| self.total.saturating_sub(self.done) as f64 / self.rate)
    }
}

/// Events of a receive, in order: `Connecting`, `Offer`, `Progress`*, `Exporting`, `Done`.
#[cfg_attr(feature = "specta", derive(specta::Type))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum ReceiveEvent {
    /// Dialling the sender.
    Connecting,
    /// The offer was fetched and every name checked.
    Offer {
        /// What is offered.
        offer: Offer,
        /// Bytes of it already present locally.
        #[cfg_attr(feature = "specta", specta(type = specta_typescript::Number))]
        local_bytes: u64,
        /// True when an earlier, interrupted attempt left data that is being reused.
        resumed: bool,
    },
    /// Download progress (throttled).
    Progress(TransferProgress),
    /// All data is verified; files are being written to the destination.
    Exporting {
        /// Files written so far.
        #[cfg_attr(feature = "specta", specta(type = specta_typescript::Number))]
        files_done: usize,
        /// Files in total.
        #[cfg_attr(feature = "specta", specta(type = specta_typescript::Number))]
        files_total: usize,
    },
    /// Finished.
    Done(ReceiveSummary),
}

/// The result of a completed receive.
#[cfg_attr(feature = "specta", derive(specta::Type))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReceiveSummary {
    /// Where the top-level entries ended up (after renaming around existing files).
    pub saved: Vec<std::path::PathBuf>,
    /// Files written.
    #[cfg_attr(feature = "specta", specta(type = specta_typescript::Number))]
    pub files: usize,
    /// Payload bytes in total.
    #[cfg_attr(feature = "specta", specta(type = specta_typescript::Number))]
    pub total_size: u64,
    /// Payload bytes that crossed the network in this run (less than `total_size` on resume).
    #[cfg_attr(feature = "specta", specta(type = specta_typescript::Number))]
    pub bytes_fetched: u64,
    /// Seconds the whole receive took.
    #[cfg_attr(feature = "specta", specta(type = specta_typescript::Number))]
    pub elapsed_secs: f64,
}

/// Events of a share.
#[cfg_attr(feature = "specta", derive(specta::Type))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum ShareEvent {
    /// Hashing the files (throttled).
    Importing {
        /// Files hashed.
        #[cfg_attr(feature = "specta", specta(type = specta_typescript::Number))]
        files_done: usize,
        /// Files to hash.
        #[cfg_attr(feature = "specta", specta(type = specta_typescript::Number))]
        files_total: usize,
        /// Bytes hashed.
        #[cfg_attr(feature = "specta", specta(type = specta_typescript::Number))]
        bytes_done: u64,
        /// Bytes to hash.
        #[cfg_attr(feature = "specta", specta(type = specta_typescript::Number))]
        bytes_total: u64,
    },
    /// The share is live.
    Ready(ShareInfo),
    /// A peer connected.
    PeerConnected {
        /// Its node id.
        peer: String,
    },
    /// A peer's download progress (throttled per peer).
    PeerProgress {
        /// Its node id.
        peer: String,
        /// Its device name, as it says (a claim: shown, never trusted).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        name: Option<String>,
        /// Progress of that peer.
        progress: TransferProgress,
    },
    /// A peer fetched everything.
    PeerDone {
        /// Its node id.
        peer: String,
    },
    /// A peer's connection closed.
    PeerDisconnected {
        /// Its node id.
        peer: String,
    },
}

/// A live share, as shown to the user.
#[cfg_attr(feature = "specta", derive(specta::Type))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShareInfo {
    /// Identifier of the share within its node.
    #[cfg_attr(feature = "specta", specta(type = specta_typescript::Number))]
    pub id: u64,
    /// The ticket text (an iroh-blobs `BlobTicket`).
    pub ticket: String,
    /// The `ferry://` link form of the ticket.
    pub link: String,
    /// What is offered.
    pub offer: Offer,
    /// Paths that were left out, with the reason (unsafe names, links out of the tree, ...).
    pub skipped: Vec<String>,
}

/// A message on the control channel's event stream: an event, or the end of the stream.
#[cfg_attr(feature = "specta", derive(specta::Type))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", content = "body", rename_all = "snake_case")]
pub enum StreamItem<E> {
    /// An event.
    Event(E),
    /// The operation failed.
    Error(ErrorInfo),
}

/// Lets an event through at most once per interval.
#[derive(Debug)]
pub struct Throttle {
    last: Option<Instant>,
    interval: Duration,
}

impl Throttle {
    /// Default interval between two updates.
    pub const INTERVAL: Duration = Duration::from_millis(100);

    /// A throttle with the default interval.
    pub fn new() -> Self {
        Self::with_interval(Self::INTERVAL)
    }

    /// A throttle with a given interval.
    pub fn with_interval(interval: Duration) -> Self {
        Throttle {
            last: None,
            interval,
        }
    }

    /// True if an update may go out now (and records that it did).
    pub fn ready(&mut self) -> bool {
        let now = Instant::now();
        match self.last {
            Some(t) if now.duration_since(t) < self.interval => false,
            _ => {
                self.last = Some(now);
                true
            }
        }
    }
}

impl Default for Throttle {
    fn default() -> Self {
        Self::new()
    }
}

/// Measures a transfer rate over a sliding window.
#[derive(Debug)]
pub struct RateMeter {
    samples: VecDeque<(Instant, u64)>,
    window: Duration,
}

impl RateMeter {
    /// A meter averaging over the last three seconds.
    pub fn new() -> Self {
        RateMeter {
            samples: VecDeque::new(),
            window: Duration::from_secs(3),
        }
    }

    /// Records the cumulative byte count now and returns the rate in bytes per second.
    pub fn update(&mut self, total: u64) -> f64 {
        let now = Instant::now();
        self.samples.push_back((now, total));
        while let Some(&(t, _)) = self.samples.front() {
            if now.duration_since(t) > self.window && self.samples.len() > 2 {
                self.samples.pop_front();
            } else {
                break;
            }
        }
        let (t0, b0) = self.samples.front().copied().unwrap_or((now, total));
        let dt = now.duration_since(t0).as_secs_f64();
        if dt < 0.05 {
            return 0.0;
        }
        total.saturating_sub(b0) as f64 / dt
    }
}

impl Default for RateMeter {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn throttle_limits_updates() {
        let mut t = Throttle::with_interval(Duration::from_secs(3600));
        assert!(t.ready());
        let passed = (0..10_000).filter(|_| t.ready()).count();
        assert_eq!(passed, 0);
    }

    #[test]
    fn events_roundtrip_as_json() {
        let e = ReceiveEvent::Progress(TransferProgress {
            done: 5,
            total: 10,
            rate: 2.5,
            current: Some("a/b".into()),
            via: Some(Via::Direct),
            ..Default::default()
        });
        let s = serde_json::to_string(&e).unwrap();
        assert!(s.contains("\"event\":\"progress\""));
        assert_eq!(serde_json::from_str::<ReceiveEvent>(&s).unwrap(), e);
        let p = TransferProgress {
            done: 5,
            total: 10,
            rate: 2.5,
            current: None,
            via: None,
            ..Default::default()
        };
        assert_eq!(p.eta_secs(), Some(2.0));
    }
}
