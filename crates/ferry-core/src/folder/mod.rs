//! Folder sync: Ferry's folder semantics, independent of how entries are replicated.
//!
//! The replication layer (one iroh-docs document per folder, see docs/DESIGN.md, "Folder
//! sync") moves [`version::FileVersion`] records between peers. Everything that decides what
//! those records mean for the files on disk lives here and is tested without a network:
//!
//! - [`ignore`]: which paths are never synced (`.ferryignore` plus built-in rules);
//! - [`place`]: which paths are Ferry's own, and writing a peer's path without leaving the
//!   folder (never through a link);
//! - [`names`]: which names the file system holds apart (case, accents) and which it cannot
//!   hold (Windows);
//! - [`scan`]: what is on disk, hashed only once a file has stopped changing;
//! - [`blocks`]: block lists, so that an edit to a large file sends only what changed;
//! - [`version`]: version vectors and the record stored per path;
//! - [`decide`]: what a peer does with a remote record (apply, ignore, keep both);
//! - [`conflict`]: the name of the copy that keeps the losing side of a conflict, and its review;
//! - [`activity`]: what a running folder is doing, for people;
//! - `content`: the versions peers may fetch from this device, kept without a second copy;
//! - [`trash`]: where deleted and overwritten files go, and how they come back.
//!
//! The running side: [`engine`] (a synced folder: watcher, document events, the loop), its
//! rounds (`round`), writing files (`apply`; new ones staged many at once by `stage`),
//! publishing changes (`publish`), and the parts
//! they drive, each with its own state: the document's records (`records`), fetching from
//! peers (`fetch`), what a local change becomes (`local`), the on-disk index (`index`), the
//! peers (`swarm`), the versions read from the document (`states`), the queued work (`queue`), when to reconcile with peers again (`resync`)
//! and what people are told (`report`); and
//! [`manage`] (share, join, leave, list; the list survives restarts).

pub mod activity;
mod apply;
pub mod blocks;
pub mod conflict;
pub(crate) mod content;
pub mod decide;
mod delta;
pub mod engine;
mod fetch;
pub mod ignore;
pub mod incoming;
mod index;
mod local;
pub mod manage;
pub mod names;
pub mod pause;
pub mod place;
mod publish;
mod queue;
mod record_hash;
mod records;
mod report;
mod resync;
mod round;
pub mod scan;
mod stage;
mod states;
mod swarm;
pub mod trash;
pub mod version;
