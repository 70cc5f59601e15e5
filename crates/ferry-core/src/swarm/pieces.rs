//! Which piece to ask which peer for: the planner of a swarm download, with no network in it.
//!
//! A blob is cut into pieces of [`PIECE_BYTES`]. Each peer's claims (from its observe stream:
//! a bitfield, then updates, like BitTorrent's HAVE) say which pieces it may be asked for.
//! [`Planner::pick`] gives a peer the pieces to ask for next:
//! - the first [`RANDOM_FIRST`] pieces are picked at random (a new downloader has something to
//!   trade as soon as possible, and peers starting together do not all want the same piece);
//! - then the rarest first: the pieces the fewest peers have, so that pieces only the sender
//!   has leave it first and the sender uploads each piece about once. Ties are broken at
//!   random, so that receivers asking together rarely ask for the same piece; but with a single
//!   peer in the transfer (a one-shot receive nobody else joined) there is nobody to differ
//!   from, and ties go to the pieces nearest after a point picked at random for each request:
//!   a request is then one run of neighbouring pieces (one range, one proof, written in
//!   order) rather than 32 scattered ones. (Runs with several peers made receivers ask the
//!   sender for the same pieces: with 8 receivers it sent 1.28 copies of the file, not 1.11;
//!   runs that went on where the last ended, 4 copies.)
//! - a piece is asked of one peer at a time until every missing piece is asked for; then, in
//!   the endgame, a peer with nothing to do asks a second peer for a piece still in flight, so
//!   that one slow peer cannot hold up the end.
//!
//! What a request brought is reported back: [`Planner::arrived`] for a piece now verified
//! here, [`Planner::missed`] for one that did not come (it goes back to the pool). A peer that
//! served wrong data, or claimed what it does not serve, leaves the transfer
//! ([`Planner::drop_peer`]); its pieces go back to the pool for the others.

use std::collections::{BTreeSet, HashMap};

use iroh_blobs::protocol::{ChunkRanges, ChunkRangesExt};

/// The size of a piece: 256 KiB, 16 of iroh-blobs' 16 KiB chunk groups. BitTorrent's usual
/// piece size; small enough that a 256 MiB file has 1,024 pieces to spread rarest-first over
/// a handful of peers and that the endgame is short (a piece is 20 ms at 100 Mbit/s), large
/// enough that a request's overhead (a round trip, a proof per range) stays small.
pub const PIECE_BYTES: u64 = 256 * 1024;

/// Pieces picked at random before the rarest-first order starts.
pub const RANDOM_FIRST: usize = 4;

/// Chunks (1 KiB) per piece.
const PIECE_CHUNKS: u64 = PIECE_BYTES / 1024;

/// How many peers may be asked for one piece at once (in the endgame).
const MAX_ASKED: u8 = 2;

/// The number of pieces of a blob of `size` bytes (at least one: an empty blob has one,
/// empty, piece).
pub fn piece_count(size: u64) -> usize {
    size.div_ceil(PIECE_BYTES).max(1) as usize
}

/// The byte range of piece `i` of a blob of `size` bytes.
pub fn piece_range(i: usize, size: u64) -> std::ops::Range<u64> {
    let start = i as u64 * PIECE_BYTES;
    start.min(size)..(start + PIECE_BYTES).min(size)
}

/// The chunk ranges that hold `pieces` of a blob of `size` bytes (one range per run of
/// neighbouring pieces), for a request.
pub fn ranges_of(pieces: &[usize], size: u64) -> ChunkRanges {
    let mut ranges = ChunkRanges::empty();
    for &i in pieces {
        let r = piece_range(i, size);
        if r.is_empty() {
            // The one piece of an empty blob: its last chunk proves the size.
            ranges |= ChunkRanges::last_chunk();
        } else {
            ranges |= ChunkRanges::bytes(r);
        }
    }
    ranges
}

/// The pieces of a blob of `size` bytes that `ranges` (1 KiB chunks, as in a bitfield) hold
/// whole.
pub fn pieces_in(ranges: &ChunkRanges, size: u64) -> Vec<usize> {
    let chunks = size.div_ceil(1024);
    (0..piece_count(size))
        .filter(|&i| {
            let start = i as u64 * PIECE_CHUNKS;
            let end = (start + PIECE_CHUNKS).min(chunks);
            if start >= end {
                // An empty blob's piece: held once anything is (its size is proven).
                return !ranges.is_empty();
            }
            ranges.is_superset(&ChunkRanges::chunks(start..end))
        })
        .collect()
}

/// The pieces of a blob of `size` bytes of which `ranges` hold at least one chunk.
pub fn pieces_touched(ranges: &ChunkRanges, size: u64) -> Vec<usize> {
    let pieces = piece_count(size);
    let mut out = Vec::new();
    let bounds: Vec<u64> = ranges.boundaries().iter().map(|c| c.0).collect();
    for pair in bounds.chunks(2) {
        // An odd boundary count leaves the last range open to the end.
        let (start, end) = (pair[0], pair.get(1).copied().unwrap_or(u64::MAX));
        let first = (start / PIECE_CHUNKS) as usize;
        let last = ((end.saturating_sub(1)) / PIECE_CHUNKS).min(pieces as u64 - 1) as usize;
        if first < pieces {
            out.extend(first..=last);
        }
    }
    out.sort_unstable();
    out.dedup();
    out
}

/// One peer as the planner sees it.
#[derive(Debug, Default)]
struct Peer {
    /// The pieces it says it has.
    has: Vec<bool>,
    /// The pieces it has part of (being fetched there), not counted in `has`.
    started: Vec<bool>,
    /// The pieces it has been asked for and has not answered yet.
    asked: BTreeSet<usize>,
}

/// See the module docs. `P` names a peer.
#[derive(Debug)]
pub struct Planner<P> {
    have: Vec<bool>,
    have_count: usize,
    /// Requests in flight, per piece.
    asked: Vec<u8>,
    /// How many peers in the transfer have each piece, or part of it (a piece being fetched
    /// elsewhere will be there soon: asking the sender for it instead would send it twice).
    avail: Vec<u16>,
    peers: HashMap<P, Peer>,
    /// Peers dropped from this transfer: their later claims are ignored.
    gone: std::collections::HashSet<P>,
    rng: u64,
}

impl<P: Copy + Eq + std::hash::Hash> Planner<P> {
    /// The planner of a blob of `pieces` pieces, of which `have` are here already (a resume:
    /// whichever peer they came from), with `seed` for its random choices.
    pub fn new(pieces: usize, have: &[usize], seed: u64) -> Planner<P> {
        let mut planner = Planner {
            have: vec![false; pieces],
            have_count: 0,
            asked: vec![0; pieces],
            avail: vec![0; pieces],
            peers: HashMap::new(),
            gone: Default::default(),
            rng: seed | 1,
        };
        for &i in have {
            planner.mark_have(i);
        }
        planner
    }

    fn mark_have(&mut self, i: usize) {
        if let Some(h) = self.have.get_mut(i) {
            if !*h {
                *h = true;
                self.have_count += 1;
            }
        }
    }

    /// True once every piece is here.
    pub fn done(&self) -> bool {
        self.have_count == self.have.len()
    }

    /// How many pieces are here.
    pub fn have_count(&self) -> usize {
        self.have_count
    }

    /// The peers still in the transfer.
    pub fn peer_count(&self) -> usize {
        self.peers.len()
    }

    /// Notes that `peer` says it has `pieces` (indices out of range are ignored: a claim is a
    /// peer's word). A peer not in the transfer yet joins it.
    pub fn peer_has(&mut self, peer: P, pieces: impl IntoIterator<Item = usize>) {
        if self.gone.contains(&peer) {
            return;
        }
        let n = self.have.len();
        let entry = Self::entry(&mut self.peers, peer, n);
        for i in pieces {
            if i < n && !entry.has[i] {
                entry.has[i] = true;
                if entry.started[i] {
                    // Counted already while it was arriving there.
                    entry.started[i] = false;
                } else {
                    self.avail[i] = self.avail[i].saturating_add(1);
                }
            }
        }
    }

    /// Notes that `peer` has part of `pieces`: it is fetching them. They count as available
    /// (so that the rarest-first order leaves them to that peer) but are not asked of it.
    pub fn peer_started(&mut self, peer: P, pieces: impl IntoIterator<Item = usize>) {
        if self.gone.contains(&peer) {
            return;
        }
        let n = self.have.len();
        let entry = Self::entry(&mut self.peers, peer, n);
        for i in pieces {
            if i < n && !entry.has[i] && !entry.started[i] {
                entry.started[i] = true;
                self.avail[i] = self.avail[i].saturating_add(1);
            }
        }
    }

    fn entry(peers: &mut HashMap<P, Peer>, peer: P, n: usize) -> &mut Peer {
        peers.entry(peer).or_insert_with(|| Peer {
            has: vec![false; n],
            started: vec![false; n],
            asked: BTreeSet::new(),
        })
    }

    /// Removes `peer` from the transfer for good (it left, stalled too often, or served what
    /// it should not have); the pieces it was asked for go back to the pool.
    pub fn drop_peer(&mut self, peer: P) {
        self.gone.insert(peer);
        let Some(p) = self.peers.remove(&peer) else {
            return;
        };
        for (i, (has, started)) in p.has.iter().zip(&p.started).enumerate() {
            if *has || *started {
                self.avail[i] = self.avail[i].saturating_sub(1);
            }
        }
        for i in p.asked {
            self.asked[i] = self.asked[i].saturating_sub(1);
        }
    }

    /// Up to `max` pieces to ask `peer` for next; empty if it has nothing this device still
    /// needs (or every such piece is already asked of enough peers).
    pub fn pick(&mut self, peer: P, max: usize) -> Vec<usize> {
        let Some(p) = self.peers.get(&peer) else {
            return Vec::new();
        };
        let wanted = |i: usize| !self.have[i] && p.has[i] && !p.asked.contains(&i);
        let fresh: Vec<usize> = (0..self.have.len())
            .filter(|&i| wanted(i) && self.asked[i] == 0)
            .collect();
        let mut chosen = if !fresh.is_empty() {
            self.choose(fresh, max)
        } else if self.in_endgame() {
            let dup: Vec<usize> = (0..self.have.len())
                .filter(|&i| wanted(i) && self.asked[i] < MAX_ASKED)
                .collect();
            // One at a time: a duplicate is the fallback, not the plan.
            self.choose(dup, max.min(1))
        } else {
            Vec::new()
        };
        chosen.sort_unstable();
        let p = self.peers.get_mut(&peer).expect("checked above");
        for &i in &chosen {
            p.asked.insert(i);
            self.asked[i] += 1;
        }
        chosen
    }

    /// True when every missing piece is asked for.
    fn in_endgame(&self) -> bool {
        (0..self.have.len()).all(|i| self.have[i] || self.asked[i] > 0)
    }

    /// `max` of `candidates`: at random while this device has fewer than [`RANDOM_FIRST`]
    /// pieces, else the rarest, ties at random (or, with one peer, to the nearest after a
    /// point picked at random).
    fn choose(&mut self, candidates: Vec<usize>, max: usize) -> Vec<usize> {
        // A candidate is a piece index, so with one there is at least one piece (`n > 0`).
        if candidates.is_empty() || max == 0 {
            return Vec::new();
        }
        let n = self.have.len();
        let random = self.have_count < RANDOM_FIRST;
        let run = self.peers.len() == 1;
        let start = (self.next_random() % n as u64) as usize;
        let mut keyed: Vec<(u16, u64, usize)> = candidates
            .into_iter()
            .map(|i| {
                if random {
                    (0, self.next_random(), i)
                } else if run {
                    (self.avail[i], ((i + n - start) % n) as u64, i)
                } else {
                    (self.avail[i], self.next_random(), i)
                }
            })
            .collect();
        let max = max.min(keyed.len());
        keyed.select_nth_unstable(max - 1);
        keyed.truncate(max);
        keyed.into_iter().map(|(_, _, i)| i).collect()
    }

    /// xorshift64*: enough to spread choices, no dependency.
    fn next_random(&mut self) -> u64 {
        self.rng ^= self.rng >> 12;
        self.rng ^= self.rng << 25;
        self.rng ^= self.rng >> 27;
        self.rng.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// Piece `i`, asked of `peer`, is here now (verified). True if it was still missing.
    pub fn arrived(&mut self, peer: P, i: usize) -> bool {
        self.answered(peer, i);
        let new = self.have.get(i).is_some_and(|h| !h);
        self.mark_have(i);
        new
    }

    /// Piece `i`, asked of `peer`, did not come; another peer (or this one, later) is asked.
    pub fn missed(&mut self, peer: P, i: usize) {
        self.answered(peer, i);
    }

    fn answered(&mut self, peer: P, i: usize) {
        if let Some(p) = self.peers.get_mut(&peer) {
            if p.asked.remove(&i) {
                self.asked[i] = self.asked[i].saturating_sub(1);
            }
        }
    }

    /// Whether piece `i` is here.
    pub fn has(&self, i: usize) -> bool {
        self.have.get(i).copied().unwrap_or(false)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pieces_and_ranges_agree() {
        let size = 3 * PIECE_BYTES + 100;
        assert_eq!(piece_count(size), 4);
        assert_eq!(piece_count(0), 1);
        assert_eq!(piece_range(3, size), 3 * PIECE_BYTES..size);
        let ranges = ranges_of(&[1, 3], size);
        assert_eq!(pieces_in(&ranges, size), vec![1, 3]);
        assert_eq!(pieces_in(&ChunkRanges::all(), size), vec![0, 1, 2, 3]);
        // Half a piece is not the piece.
        let half = ChunkRanges::bytes(0..PIECE_BYTES / 2);
        assert!(pieces_in(&half, size).is_empty());
        assert_eq!(pieces_in(&ChunkRanges::last_chunk(), 0), vec![0]);
        let part = ChunkRanges::bytes(PIECE_BYTES + 5000..PIECE_BYTES + 9000)
            | ChunkRanges::bytes(3 * PIECE_BYTES..3 * PIECE_BYTES + 1);
        assert_eq!(pieces_touched(&part, size), vec![1, 3]);
        assert_eq!(pieces_touched(&ChunkRanges::all(), size), vec![0, 1, 2, 3]);
    }

    #[test]
    fn the_rarest_pieces_go_first_after_a_few_random_ones() {
        let mut p: Planner<u8> = Planner::new(100, &[0, 1, 2, 3], 7);
        // The sender has everything; a second peer has the first half.
        p.peer_has(0, 0..100);
        p.peer_has(1, 0..50);
        let picked = p.pick(0, 10);
        assert_eq!(picked.len(), 10);
        assert!(
            picked.iter().all(|&i| i >= 50),
            "the sender is asked for what only it has: {picked:?}"
        );
        let from_peer = p.pick(1, 10);
        assert!(from_peer.iter().all(|&i| (4..50).contains(&i)));
    }

    #[test]
    fn a_blob_of_no_pieces_asks_for_nothing() {
        let mut p: Planner<u8> = Planner::new(0, &[], 7);
        p.peer_has(0, 0..0);
        assert!(p.pick(0, 8).is_empty());
    }

    #[test]
    fn with_one_sender_each_request_is_one_run_from_a_random_start() {
        let n = 1000;
        let mut p: Planner<u8> = Planner::new(n, &[], 0x9e37_79b9_7f4a_7c15);
        p.peer_has(0, 0..n);
        for i in p.pick(0, RANDOM_FIRST) {
            p.arrived(0, i);
        }
        let mut starts = BTreeSet::new();
        for _ in 0..20 {
            let asked = p.pick(0, 32);
            assert_eq!(asked.len(), 32);
            // One run, wrapping past the end, over pieces here or asked already.
            let run_start = *asked
                .iter()
                .find(|&&i| {
                    let before = (i + n - 1) % n;
                    !asked.contains(&before) && !p.has(before)
                })
                .unwrap();
            let mut covered = 0;
            let mut i = run_start;
            while covered < asked.len() {
                assert!(asked.contains(&i) || p.has(i), "a gap at {i} in {asked:?}");
                covered += usize::from(asked.contains(&i));
                i = (i + 1) % n;
            }
            starts.insert(run_start);
            for i in asked {
                p.missed(0, i);
            }
        }
        assert!(starts.len() > 10, "requests start in different places");
    }

    #[test]
    fn pieces_arriving_at_a_peer_are_left_to_it() {
        let mut p: Planner<u8> = Planner::new(8, &[0, 1, 2, 3], 11);
        // The sender (0) has everything; peer 1 is fetching pieces 4 and 5.
        p.peer_has(0, 0..8);
        p.peer_started(1, [4, 5]);
        let from_sender = p.pick(0, 2);
        assert_eq!(
            from_sender,
            vec![6, 7],
            "what nobody else is getting comes first"
        );
        assert!(
            p.pick(1, 4).is_empty(),
            "a peer is not asked for what it lacks"
        );
        p.peer_has(1, [4]);
        assert_eq!(p.avail[4], 2, "counted once when it arrives there");
        assert_eq!(p.pick(1, 4), vec![4]);
    }

    #[test]
    fn a_piece_is_asked_of_one_peer_until_the_endgame() {
        let mut p: Planner<u8> = Planner::new(4, &[], 1);
        p.peer_has(0, 0..4);
        p.peer_has(1, 0..4);
        let a = p.pick(0, 3);
        let b = p.pick(1, 3);
        assert_eq!(a.len(), 3);
        assert_eq!(b.len(), 1, "only one piece was left unasked");
        assert!(a.iter().all(|i| !b.contains(i)));
        // Every missing piece is in flight: the endgame asks a second peer, one at a time.
        let dup = p.pick(1, 3);
        assert_eq!(dup.len(), 1);
        assert!(a.contains(&dup[0]));
        assert!(p.arrived(1, dup[0]));
        assert!(!p.arrived(0, dup[0]), "the slower copy brings nothing new");
    }

    #[test]
    fn a_dropped_peers_pieces_go_to_the_others() {
        let mut p: Planner<u8> = Planner::new(8, &[], 3);
        p.peer_has(0, 0..8);
        p.peer_has(1, 0..8);
        let bad = p.pick(0, 8);
        assert_eq!(bad.len(), 8);
        let dup = p.pick(1, 8);
        assert!(dup.len() <= 1, "all asked of peer 0 (endgame only)");
        p.drop_peer(0);
        let mut got: BTreeSet<usize> = BTreeSet::new();
        for i in dup {
            p.arrived(1, i);
            got.insert(i);
        }
        loop {
            let more = p.pick(1, 8);
            if more.is_empty() {
                break;
            }
            for i in more {
                p.arrived(1, i);
                got.insert(i);
            }
        }
        assert!(p.done());
        assert_eq!(got.len(), 8);
        assert_eq!(p.peer_count(), 1);
        // A late claim of the dropped peer (its observe stream still running) changes nothing.
        p.peer_has(0, 0..8);
        assert_eq!(p.peer_count(), 1);
    }

    #[test]
    fn missed_pieces_are_asked_again_and_a_resume_skips_what_is_here() {
        let mut p: Planner<u8> = Planner::new(6, &[0, 5], 9);
        assert_eq!(p.have_count(), 2);
        p.peer_has(0, [0, 1, 2, 3, 4, 5, 99]);
        let first = p.pick(0, 10);
        assert_eq!(first, vec![1, 2, 3, 4]);
        for &i in &first {
            p.missed(0, i);
        }
        assert_eq!(p.pick(0, 10), vec![1, 2, 3, 4]);
    }

    #[test]
    fn nothing_is_asked_of_a_peer_for_what_it_does_not_claim() {
        let mut p: Planner<u8> = Planner::new(4, &[], 5);
        p.peer_has(0, [2]);
        assert_eq!(p.pick(0, 4), vec![2]);
        assert!(p.pick(0, 4).is_empty());
        assert!(p.pick(9, 4).is_empty(), "an unknown peer gets nothing");
    }

    proptest::proptest! {
        /// Whatever the peers claim and however requests end, the planner never asks a peer
        /// for a piece it did not claim, never asks one piece of more than two peers, and
        /// finishes once honest peers cover every piece.
        #[test]
        #[allow(clippy::needless_range_loop)]
        fn plans_finish_and_respect_claims(
            pieces in 1usize..64,
            claims in proptest::collection::vec(proptest::collection::vec(0usize..64, 0..64), 1..5),
            outcomes in proptest::collection::vec(0u8..3, 0..400),
            seed in 1u64..u64::MAX,
        ) {
            let mut p: Planner<usize> = Planner::new(pieces, &[], seed);
            for (peer, c) in claims.iter().enumerate() {
                p.peer_has(peer, c.iter().copied());
            }
            // An honest seed joins last, so that the transfer can finish.
            let seed_peer = claims.len();
            p.peer_has(seed_peer, 0..pieces);
            let mut outcome = outcomes.into_iter().cycle();
            let mut rounds = 0;
            while !p.done() {
                rounds += 1;
                proptest::prop_assert!(rounds < 10_000, "no progress");
                for peer in 0..=seed_peer {
                    let picked = p.pick(peer, 3);
                    for i in picked {
                        proptest::prop_assert!(i < pieces);
                        proptest::prop_assert!(p.asked[i] <= MAX_ASKED);
                        if peer < seed_peer {
                            proptest::prop_assert!(claims[peer].contains(&i));
                        }
                        match (peer == seed_peer, outcome.next().unwrap_or(0)) {
                            (true, _) | (false, 0) => { p.arrived(peer, i); }
                            (false, 1) => p.missed(peer, i),
                            _ => p.drop_peer(peer),
                        }
                    }
                }
            }
            proptest::prop_assert!((0..pieces).all(|i| p.has(i)));
        }
    }
}
