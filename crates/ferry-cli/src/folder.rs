//! `ferry folder`: synced folders.

use std::{path::PathBuf, process::ExitCode};

use clap::{Args, Subcommand};
use ferry_core::{session::Session, NodeConfig};

use crate::output::Output;

#[derive(Debug, Args)]
pub struct FolderArgs {
    #[command(subcommand)]
    command: FolderCommand,
}

#[derive(Debug, Subcommand)]
enum FolderCommand {
    /// Share a folder for continuous sync; prints the folder ticket.
    Share {
        /// The folder.
        path: PathBuf,
        /// Joiners only receive; their edits are never sent.
        #[arg(long)]
        read_only: bool,
    },
    /// Join a shared folder into PATH (existing files are merged, never clobbered).
    Join {
        /// The folder ticket.
        ticket: String,
        /// Where to sync it.
        path: PathBuf,
    },
    /// List the synced folders.
    List,
    /// Show a synced folder: state, files, peers, conflicts, trash, recent changes.
    Status {
        /// The folder.
        path: PathBuf,
    },
    /// Look at every file of a folder now (the watcher may miss changes on some file
    /// systems), and stop keeping versions no peer needs any more.
    Rescan {
        /// The folder.
        path: PathBuf,
    },
    /// Stop syncing a folder; its files stay where they are.
    Leave {
        /// The folder.
        path: PathBuf,
    },
}

pub async fn run(config: NodeConfig, args: FolderArgs, out: Output) -> anyhow::Result<ExitCode> {
    let session = Session::open(config).await?;
    let keep_running = match args.command {
        FolderCommand::Share { path, read_only } => {
            let ticket = session.folder_share(path, read_only).await?;
            println!("{ticket}");
            true
        }
        FolderCommand::Join { ticket, path } => {
            let info = session.folder_join(&ticket, path).await?;
            out.note(format!(
                "syncing {}{}",
                info.path.display(),
                if info.read_only {
                    " (receive only)"
                } else {
                    ""
                }
            ));
            true
        }
        FolderCommand::List => {
            for f in session.folder_list().await? {
                println!(
                    "{}\t{}\t{}",
                    f.path.display(),
                    if f.read_only {
                        "receive-only"
                    } else {
                        "read-write"
                    },
                    f.id
                );
            }
            false
        }
        FolderCommand::Status { path } => {
            let path = std::fs::canonicalize(&path)?;
            let folders = session.folder_statuses().await?;
            let Some(f) = folders.into_iter().find(|f| f.info.path == path) else {
                anyhow::bail!(
                    "{} is not a synced folder (see `ferry folder list`)",
                    path.display()
                );
            };
            print_status(&f);
            false
        }
        FolderCommand::Rescan { path } => {
            session.folder_rescan(path.clone()).await?;
            out.note(format!("looking at every file of {}", path.display()));
            // A node started just for this command would stop before the pass ran.
            session.is_local()
        }
        FolderCommand::Leave { path } => {
            let info = session.folder_leave(path).await?;
            out.note(format!(
                "stopped syncing {}; its files stay",
                info.path.display()
            ));
            false
        }
    };
    if keep_running && session.is_local() {
        out.note("syncing while this runs; Ctrl-C stops (or keep `ferry run` running instead)");
        crate::signal::stop_requested().await;
    }
    session.shutdown().await?;
    Ok(ExitCode::SUCCESS)
}

fn print_status(f: &ferry_core::folder::manage::FolderStatus) {
    use ferry_core::folder::activity::FolderState;
    println!("folder\t{}", f.info.path.display());
    println!(
        "mode\t{}",
        if f.info.read_only {
            "receive-only"
        } else {
            "read-write"
        }
    );
    // A folder that has only just started (this command started the node) has not counted
    // its files yet: count them on disk.
    let activity = f
        .activity
        .as_ref()
        .filter(|a| a.state != FolderState::Scanning);
    let (files, bytes) = match activity {
        Some(a) => (a.files, a.bytes),
        None => {
            let on_disk = ferry_core::folder::manage::FolderStatus::of(&f.info);
            (on_disk.files, on_disk.bytes)
        }
    };
    if let Some(a) = &f.activity {
        let state = match a.state {
            FolderState::Scanning => format!("scanning ({} of {} files)", a.scanned, a.to_scan),
            FolderState::Syncing => format!("syncing ({} files waiting)", a.waiting),
            FolderState::UpToDate => "up to date".to_string(),
            FolderState::Incomplete => {
                format!(
                    "not synced ({} files cannot be synced here)",
                    a.not_synced.len()
                )
            }
            FolderState::Error => format!("error: {}", a.error.as_deref().unwrap_or("")),
        };
        println!("state\t{state}");
    }
    println!("files\t{files}");
    println!("bytes\t{bytes}");
    println!("trash\t{}", f.trash.len());
    if let Some(a) = &f.activity {
        for p in &a.peers {
            println!(
                "peer\t{}\t{}",
                p.id,
                if p.connected {
                    "connected"
                } else {
                    "not connected"
                }
            );
        }
        for c in &a.conflicts {
            println!("conflict\t{}\t{}", c.original, c.copy);
        }
        for n in &a.not_synced {
            println!("not-synced\t{}\t{}", n.path, n.reason);
        }
        for c in a.recent.iter().take(10) {
            let by = if c.by.is_empty() {
                "this device"
            } else {
                &c.by
            };
            println!("change\t{:?}\t{}\t{by}", c.kind, c.path);
        }
    }
}
