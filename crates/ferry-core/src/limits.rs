//! Rate limits, global and per peer, for what this node uploads and what it downloads, and
//! the count of bytes each way.
//!
//! Uploads: iroh-blobs' provider asks before it sends each chunk (~16 KiB) when throttling is
//! on (`ThrottleMode::Intercept`); the gatekeeper ([`crate::access`]) answers after the delay a
//! token bucket gives ([`Limiter::delay`]). Downloads: Ferry reads every get's progress itself
//! and waits as long as the bucket says after each item ([`Limiter::pace`]); a get is driven
//! by that reading, so a receiver that waits holds the stream and QUIC's flow control holds
//! the sender. A bucket holds at most a quarter second of its rate (a short burst), and bytes
//! taken beyond it are debt that the next bytes wait for, so the rate holds over any window
//! of a few seconds however many requests run at once.
//!
//! Limits can change while the node runs ([`Limiter::set`]). Throttling uploads costs a
//! message per chunk, so the provider asks only if a limit is set when the node starts, or
//! if the front end says limits may be set later (the app; see `NodeConfig::adjustable_limits`).

use std::{
    collections::HashMap,
    sync::{
        atomic::{AtomicU64, Ordering},
        Arc, Mutex,
    },
    time::{Duration, Instant},
};

use iroh::EndpointId;
use serde::{Deserialize, Serialize};

/// Rate limits in bytes per second for one direction; `None` is unlimited.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "specta", derive(specta::Type))]
#[serde(default)]
pub struct RateLimits {
    /// For everything, all peers together.
    #[cfg_attr(feature = "specta", specta(type = Option<specta_typescript::Number>))]
    pub total: Option<u64>,
    /// For each peer.
    #[cfg_attr(feature = "specta", specta(type = Option<specta_typescript::Number>))]
    pub per_peer: Option<u64>,
}

impl RateLimits {
    /// True if any limit is set.
    pub fn any(&self) -> bool {
        self.total.is_some() || self.per_peer.is_some()
    }

    /// Refuses a limit of zero (which would stop every transfer for good), naming `what`.
    pub fn check(&self, what: &str) -> Result<(), String> {
        if self.total == Some(0) || self.per_peer == Some(0) {
            return Err(format!(
                "{what} limit of 0 would stop every transfer; leave it empty for no limit"
            ));
        }
        Ok(())
    }
}

/// Parses a rate in bytes per second: a number with an optional unit, `K`, `M` or `G`
/// (powers of 1024; `KiB`, `MB/s` and the like are read the same way), e.g. `500K`, `10M`.
pub fn parse_rate(text: &str) -> Result<u64, String> {
    let t = text.trim();
    let lower = t.to_ascii_lowercase();
    let unitless = lower
        .trim_end_matches("/s")
        .trim_end_matches('b')
        .trim_end_matches('i');
    let (number, scale) = match unitless.chars().last() {
        Some('k') => (&unitless[..unitless.len() - 1], 1u64 << 10),
        Some('m') => (&unitless[..unitless.len() - 1], 1 << 20),
        Some('g') => (&unitless[..unitless.len() - 1], 1 << 30),
        _ => (unitless, 1),
    };
    let value: f64 = number
        .trim()
        .parse()
        .map_err(|_| format!("{t:?} is not a rate; write bytes per second, e.g. 500K or 10M"))?;
    if !value.is_finite() || value < 1.0 / scale as f64 {
        return Err(format!(
            "{t:?}: a rate must be at least one byte per second"
        ));
    }
    let bytes = value * scale as f64;
    if bytes > u64::MAX as f64 / 2.0 {
        return Err(format!("{t:?} is too large"));
    }
    Ok(bytes as u64)
}

/// A token bucket.
#[derive(Debug)]
struct Bucket {
    rate: f64,
    burst: f64,
    tokens: f64,
    at: Instant,
}

impl Bucket {
    fn new(rate: u64, now: Instant) -> Bucket {
        let rate = rate.max(1) as f64;
        let burst = (rate / 4.0).max(16.0 * 1024.0);
        Bucket {
            rate,
            burst,
            tokens: burst,
            at: now,
        }
    }

    /// Takes `n` bytes at `now`; how long the sender must wait before sending them.
    fn take(&mut self, n: u64, now: Instant) -> Duration {
        let dt = now.saturating_duration_since(self.at).as_secs_f64();
        self.at = now;
        self.tokens = (self.tokens + dt * self.rate).min(self.burst);
        self.tokens -= n as f64;
        if self.tokens >= 0.0 {
            Duration::ZERO
        } else {
            Duration::from_secs_f64(-self.tokens / self.rate)
        }
    }
}

/// Per-peer buckets kept before idle ones are dropped. A peer's bucket outlives its
/// connections: reconnecting does not clear its debt.
const MAX_BUCKETS: usize = 1024;
/// A bucket idle this long is full again.
const IDLE: Duration = Duration::from_secs(60);

/// Limits for one direction, and the bytes counted.
#[derive(Debug)]
pub struct Limiter {
    limits: Mutex<RateLimits>,
    total: Mutex<Option<Bucket>>,
    peers: Mutex<HashMap<EndpointId, Bucket>>,
    counted: AtomicU64,
    /// Limits that hold over this one's too (a part of the node's traffic counted apart).
    parent: Option<Arc<Limiter>>,
}

impl Default for Limiter {
    /// No limits.
    fn default() -> Self {
        Limiter::new(RateLimits::default())
    }
}

impl Limiter {
    /// Limits as configured.
    pub fn new(limits: RateLimits) -> Limiter {
        let now = Instant::now();
        Limiter {
            limits: Mutex::new(limits),
            total: Mutex::new(limits.total.map(|r| Bucket::new(r, now))),
            peers: Mutex::new(HashMap::new()),
            counted: AtomicU64::new(0),
            parent: None,
        }
    }

    /// A part of `parent`'s traffic, counted apart (a folder's downloads): no limits of its
    /// own, `parent`'s hold and count it too.
    pub fn within(parent: Arc<Limiter>) -> Limiter {
        Limiter {
            parent: Some(parent),
            ..Limiter::default()
        }
    }

    /// The limits in force.
    pub fn limits(&self) -> RateLimits {
        *self.limits.lock().expect("limits lock")
    }

    /// Puts new limits in force at once; buckets start full at their new rate.
    pub fn set(&self, limits: RateLimits) {
        let now = Instant::now();
        *self.limits.lock().expect("limits lock") = limits;
        *self.total.lock().expect("limits lock") = limits.total.map(|r| Bucket::new(r, now));
        self.peers.lock().expect("limits lock").clear();
    }

    /// Counts `n` bytes about to go to (or just come from) `peer` and says how long to wait
    /// before the next.
    pub fn delay(&self, peer: Option<&EndpointId>, n: u64) -> Duration {
        self.delay_at(peer, n, Instant::now())
    }

    /// Counts `n` bytes and waits as long as the limits say.
    pub async fn pace(&self, peer: Option<&EndpointId>, n: u64) {
        let wait = self.delay(peer, n);
        if !wait.is_zero() {
            tokio::time::sleep(wait).await;
        }
    }

    fn delay_at(&self, peer: Option<&EndpointId>, n: u64, now: Instant) -> Duration {
        self.counted.fetch_add(n, Ordering::Relaxed);
        let per_peer = self.limits.lock().expect("limits lock").per_peer;
        let mut wait = Duration::ZERO;
        if let Some(b) = self.total.lock().expect("limits lock").as_mut() {
            wait = wait.max(b.take(n, now));
        }
        if let (Some(rate), Some(peer)) = (per_peer, peer) {
            let mut peers = self.peers.lock().expect("limits lock");
            if peers.len() >= MAX_BUCKETS && !peers.contains_key(peer) {
                // Buckets idle for a while are full again: forgetting them changes nothing.
                peers.retain(|_, b| now.saturating_duration_since(b.at) < IDLE);
            }
            let b = peers.entry(*peer).or_insert_with(|| Bucket::new(rate, now));
            wait = wait.max(b.take(n, now));
        }
        if let Some(parent) = &self.parent {
            wait = wait.max(parent.delay_at(peer, n, now));
        }
        wait
    }

    /// Payload bytes counted so far (uploads: while throttling is on).
    pub fn counted(&self) -> u64 {
        self.counted.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Sends `chunks` of 16 KiB as fast as the limiter allows, in simulated time, and returns
    /// how long it took.
    fn simulate(limits: &Limiter, peer: Option<&EndpointId>, chunks: u64) -> Duration {
        let start = Instant::now();
        let mut now = start;
        for _ in 0..chunks {
            now += limits.delay_at(peer, 16 * 1024, now);
        }
        now - start
    }

    #[test]
    fn the_total_limit_holds_within_ten_percent_over_ten_seconds() {
        let rate = 1_000_000;
        let limits = Limiter::new(RateLimits {
            total: Some(rate),
            per_peer: None,
        });
        // Ten seconds' worth of chunks.
        let chunks = 10 * rate / (16 * 1024);
        let took = simulate(&limits, None, chunks).as_secs_f64();
        let achieved = (chunks * 16 * 1024) as f64 / took;
        assert!(
            (achieved - rate as f64).abs() / (rate as f64) < 0.10,
            "{achieved} B/s for a limit of {rate}"
        );
        assert_eq!(limits.counted(), chunks * 16 * 1024);
    }

    #[test]
    fn a_part_counts_its_own_bytes_under_the_whole_limit() {
        let rate = 1_000_000;
        let node = Arc::new(Limiter::new(RateLimits {
            total: Some(rate),
            per_peer: None,
        }));
        let folder = Limiter::within(node.clone());
        let chunks = 10 * rate / (16 * 1024);
        let took = simulate(&folder, None, chunks).as_secs_f64();
        let achieved = (chunks * 16 * 1024) as f64 / took;
        assert!(
            (achieved - rate as f64).abs() / (rate as f64) < 0.10,
            "the node's limit holds over the part: {achieved} B/s"
        );
        assert_eq!(folder.counted(), chunks * 16 * 1024);
        assert_eq!(
            node.counted(),
            folder.counted(),
            "and the node counts it too"
        );
    }

    #[test]
    fn each_peer_has_its_own_bucket_under_the_total() {
        let limits = Limiter::new(RateLimits {
            total: None,
            per_peer: Some(500_000),
        });
        let a = iroh::SecretKey::from_bytes(&[1; 32]).public();
        let b = iroh::SecretKey::from_bytes(&[2; 32]).public();
        let now = Instant::now();
        // Both peers get their burst at once; neither waits for the other.
        assert_eq!(limits.delay_at(Some(&a), 16 * 1024, now), Duration::ZERO);
        assert_eq!(limits.delay_at(Some(&b), 16 * 1024, now), Duration::ZERO);
        let took = simulate(&limits, Some(&a), 300).as_secs_f64();
        let achieved = (300 * 16 * 1024) as f64 / took;
        assert!(
            (achieved - 500_000.0).abs() / 500_000.0 < 0.10,
            "{achieved}"
        );
    }

    #[test]
    fn rates_parse_with_units_and_refuse_nonsense() {
        assert_eq!(parse_rate("500K"), Ok(500 * 1024));
        assert_eq!(parse_rate("10M"), Ok(10 << 20));
        assert_eq!(parse_rate("1.5MiB/s"), Ok(3 << 19));
        assert_eq!(parse_rate("2 GB"), Ok(2 << 30));
        assert_eq!(parse_rate("4096"), Ok(4096));
        for bad in ["", "fast", "-1M", "0", "NaN", "1e300G"] {
            assert!(parse_rate(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn new_limits_are_in_force_at_once() {
        let limits = Limiter::new(RateLimits {
            total: Some(100_000),
            per_peer: None,
        });
        let slow = simulate(&limits, None, 100);
        limits.set(RateLimits {
            total: Some(1_000_000),
            per_peer: None,
        });
        let fast = simulate(&limits, None, 100);
        assert!(
            fast * 5 < slow,
            "{fast:?} at ten times the rate of {slow:?}"
        );
        limits.set(RateLimits::default());
        assert_eq!(simulate(&limits, None, 1000), Duration::ZERO);
        assert!(RateLimits {
            total: Some(0),
            per_peer: None
        }
        .check("an upload")
        .is_err());
    }

    #[test]
    fn no_limit_never_waits() {
        let limits = Limiter::new(RateLimits::default());
        assert_eq!(simulate(&limits, None, 1000), Duration::ZERO);
    }
}
