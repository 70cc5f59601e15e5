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
    /// Pause a folder: nothing is sent, received or written until it is resumed (also after a
    /// restart).
    #[command(after_help = "Example:\n  ferry folder pause ~/Shared")]
    Pause {
        /// The folder.
        path: PathBuf,
    },
    /// Resume a paused folder; what changed meanwhile, here and on its peers, then syncs.
    #[command(after_help = "Example:\n  ferry folder resume ~/Shared")]
    Resume {
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
    // Listing and looking at folders start no node: without one they read the home's list and
    // the files on disk, and say that nothing syncs.
    if matches!(
        args.command,
        FolderCommand::List | FolderCommand::Status { .. }
    ) {
        match Session::attach(&config.home).await {
            Ok(session) => return look(&session, args.command, &out).await,
            Err(ferry_core::Error::NotRunning { path }) => {
                out.note(format!(
                    "no Ferry node is running for {}: these folders are not syncing now (start one with `ferry run`)",
                    path.display()
                ));
                return look_on_disk(&config.home, args.command, &out);
            }
            Err(e) => return Err(e.into()),
        }
    }
    // Pausing and resuming start no node either: a node started for it would run the folder
    // (and take in its peers' changes) before pausing it. Without one, the list on disk
    // changes, and the next start holds or runs the folder.
    if let FolderCommand::Pause { path } | FolderCommand::Resume { path } = &args.command {
        let paused = matches!(args.command, FolderCommand::Pause { .. });
        let info = match Session::attach(&config.home).await {
            Ok(session) => session.folder_pause(path.clone(), paused).await?,
            Err(ferry_core::Error::NotRunning { .. }) => {
                ferry_core::folder::pause::set_paused_on_disk(&config.home, path.clone(), paused)?
            }
            Err(e) => return Err(e.into()),
        };
        if out.is_json() {
            println!("{}", serde_json::to_string(&info)?);
        }
        out.note(format!(
            "{} {}",
            if paused { "paused" } else { "resumed" },
            info.path.display()
        ));
        return Ok(ExitCode::SUCCESS);
    }
    let session = Session::open(config).await?;
    let keep_running = match args.command {
        FolderCommand::Share { path, read_only } => {
            let ticket = session.folder_share(path, read_only).await?;
            // The ticket alone on stdout (as with --json: scripts take the line as it is).
            println!("{ticket}");
            true
        }
        FolderCommand::Join { ticket, path } => {
            let info = session.folder_join(&ticket, path).await?;
            if out.is_json() {
                println!("{}", serde_json::to_string(&info)?);
            }
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
        FolderCommand::List | FolderCommand::Status { .. } => unreachable!("handled above"),
        FolderCommand::Rescan { path } => {
            session.folder_rescan(path.clone()).await?;
            out.note(format!("looking at every file of {}", path.display()));
            // A node started just for this command would stop before the pass ran.
            session.is_local()
        }
        FolderCommand::Pause { .. } | FolderCommand::Resume { .. } => {
            unreachable!("handled above")
        }
        FolderCommand::Leave { path } => {
            let info = session.folder_leave(path).await?;
            if out.is_json() {
                println!("{}", serde_json::to_string(&info)?);
            }
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

/// `folder list` and `folder status` through the running node.
async fn look(session: &Session, command: FolderCommand, out: &Output) -> anyhow::Result<ExitCode> {
    match command {
        FolderCommand::List => print_list(&session.folder_list().await?, out),
        FolderCommand::Status { path } => {
            let path = std::fs::canonicalize(&path)?;
            let folders = session.folder_statuses().await?;
            let Some(f) = folders.into_iter().find(|f| f.info.path == path) else {
                anyhow::bail!(
                    "{} is not a synced folder (see `ferry folder list`)",
                    path.display()
                );
            };
            print_one(&f, out);
        }
        _ => unreachable!("only list and status"),
    }
    Ok(ExitCode::SUCCESS)
}

/// `folder list` and `folder status` with no node: the home's list, the files on disk.
fn look_on_disk(
    home: &std::path::Path,
    command: FolderCommand,
    out: &Output,
) -> anyhow::Result<ExitCode> {
    let folders = ferry_core::folder::manage::folders_of(home);
    match command {
        FolderCommand::List => print_list(&folders, out),
        FolderCommand::Status { path } => {
            let path = std::fs::canonicalize(&path)?;
            let Some(info) = folders.iter().find(|f| f.path == path) else {
                anyhow::bail!(
                    "{} is not a synced folder (see `ferry folder list`)",
                    path.display()
                );
            };
            print_one(&ferry_core::folder::manage::FolderStatus::of(info), out);
        }
        _ => unreachable!("only list and status"),
    }
    Ok(ExitCode::SUCCESS)
}

fn print_list(folders: &[ferry_core::folder::manage::FolderInfo], out: &Output) {
    for f in folders {
        if out.is_json() {
            println!("{}", serde_json::to_string(f).expect("serializable"));
        } else {
            println!(
                "{}\t{}\t{}{}",
                f.path.display(),
                if f.read_only {
                    "receive-only"
                } else {
                    "read-write"
                },
                f.id,
                if f.paused { "\tpaused" } else { "" }
            );
        }
    }
}

fn print_one(f: &ferry_core::folder::manage::FolderStatus, out: &Output) {
    if out.is_json() {
        println!("{}", serde_json::to_string(f).expect("serializable"));
    } else {
        print_status(f);
    }
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
    // Without a node the status was read from disk; a folder still scanning has not counted
    // its files yet: count them on disk.
    let (files, bytes) = match &f.activity {
        None => (f.files, f.bytes),
        Some(a) if a.state != FolderState::Scanning => (a.files, a.bytes),
        Some(_) => {
            let on_disk = ferry_core::folder::manage::FolderStatus::of(&f.info);
            (on_disk.files, on_disk.bytes)
        }
    };
    if f.info.paused {
        println!("state\tpaused");
    } else if let Some(a) = &f.activity {
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
