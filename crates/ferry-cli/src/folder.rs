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
    /// Show a synced folder: files and trash.
    Status {
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
            let folders = session.folder_list().await?;
            let Some(f) = folders.iter().find(|f| f.path == path) else {
                anyhow::bail!(
                    "{} is not a synced folder (see `ferry folder list`)",
                    path.display()
                );
            };
            let rules = ferry_core::folder::ignore::IgnoreRules::load(&f.path);
            let files = ferry_core::folder::scan::scan(&f.path, &rules);
            let trash = ferry_core::folder::trash::Trash::new(&f.path).list();
            println!("folder\t{}", f.path.display());
            println!(
                "mode\t{}",
                if f.read_only {
                    "receive-only"
                } else {
                    "read-write"
                }
            );
            println!("files\t{}", files.len());
            println!("bytes\t{}", files.iter().map(|f| f.size).sum::<u64>());
            println!("trash\t{}", trash.len());
            false
        }
    };
    if keep_running && session.is_local() {
        out.note("syncing while this runs; Ctrl-C stops (or keep `ferry run` running instead)");
        tokio::signal::ctrl_c().await?;
    }
    session.shutdown().await?;
    Ok(ExitCode::SUCCESS)
}
