//! Swarming: one blob from many peers at once, piece by piece, every piece verified against
//! the blob's BLAKE3 root whichever peer served it (iroh-blobs' verified range requests).
//!
//! - [`pieces`]: which piece to ask which peer for (rarest first, endgame), no network;
//! - [`download`]: drives that plan over connections to the peers: their observe streams say
//!   what each has, range requests fetch the pieces into a store, and a peer that serves
//!   wrong data or stalls loses its place to the others;
//! - [`members`]: the receivers of one share find each other (peer exchange);
//! - [`serve`]: a receiver serves the pieces it has to the others;
//! - [`session`]: a receive's part in its share's swarm (serving, finding peers).
//!
//! See docs/DESIGN.md, "Swarming".

pub mod download;
pub mod lean;
pub mod members;
pub mod pieces;
pub mod serve;
pub mod session;
