//! `ferry receive`.

use std::{path::PathBuf, process::ExitCode};

use clap::Args;
use ferry_core::{session::Session, NodeConfig, ReceiveEvent, Ticket};
use indicatif::ProgressBar;

use crate::output::{human, plural, Output};

#[derive(Debug, Args)]
pub struct ReceiveArgs {
    /// The ticket (or a ferry:// link).
    ticket: String,
    /// Folder to save into. Default: the current directory.
    #[arg(long, short)]
    out: Option<PathBuf>,
    /// Then keep serving what was received to the share's other receivers, while the sender
    /// shares it (until then, or Ctrl-C). Through a running node (`ferry run`, the app), that
    /// node serves it.
    #[arg(long)]
    seed: bool,
}

pub async fn run(config: NodeConfig, args: ReceiveArgs, out: Output) -> anyhow::Result<ExitCode> {
    fetch(config, args.ticket, args.out, args.seed, out).await
}

/// Receives `ticket` into `dest` (default: the current folder), as `ferry receive` does.
pub async fn fetch(
    config: NodeConfig,
    ticket: String,
    dest: Option<PathBuf>,
    seed: bool,
    out: Output,
) -> anyhow::Result<ExitCode> {
    let args = ReceiveArgs {
        ticket,
        out: dest,
        seed,
    };
    let ticket: Ticket = args.ticket.parse().map_err(ferry_core::Error::from)?;
    let dest = match args.out {
        Some(d) => d,
        None => std::env::current_dir()?,
    };
    let session = Session::open(config).await?;
    // Without --seed, a process of its own has no use for serving afterwards; a running node
    // does as its settings say.
    let keep_serving = match (args.seed, session.is_local()) {
        (true, _) => Some(true),
        (false, true) => Some(false),
        (false, false) => None,
    };
    let mut stream = session.receive(&ticket, dest, keep_serving).await?;
    let mut bar: Option<ProgressBar> = None;
    // One listener for the whole transfer: a signal between two events is not missed.
    let stop = crate::signal::stop_requested();
    tokio::pin!(stop);
    let mut interrupted = false;
    // The offer's top-level names, in the order the saved paths come.
    let mut tops: Vec<String> = Vec::new();
    let result = loop {
        let item = tokio::select! {
            item = stream.next() => item,
            _ = &mut stop => {
                interrupted = true;
                break Ok(());
            }
        };
        let event = match item {
            Some(Ok(e)) => e,
            Some(Err(e)) => break Err(ferry_core::Error::Remote(e).into()),
            None => break Err(anyhow::anyhow!("the transfer ended unexpectedly")),
        };
        out.event(&event);
        match event {
            ReceiveEvent::Connecting => out.note("connecting..."),
            ReceiveEvent::Offer {
                offer,
                local_bytes,
                resumed,
            } => {
                tops = offer.top_level();
                out.note(format!(
                    "receiving {} ({}, {}{})",
                    offer.top_level().join(", "),
                    plural(offer.file_count(), "file"),
                    human(offer.total_size),
                    if resumed {
                        format!(", resuming with {} already here", human(local_bytes))
                    } else {
                        String::new()
                    }
                ));
                let b = out.bar(offer.total_size, "receiving");
                b.set_position(local_bytes);
                bar = Some(b);
            }
            ReceiveEvent::Progress(p) => {
                if let Some(b) = &bar {
                    b.set_position(p.done);
                    let current = p.current.unwrap_or_default();
                    b.set_message(match p.peers.len() {
                        0 | 1 => current,
                        n => format!("{current} · from {n} peers"),
                    });
                }
            }
            ReceiveEvent::Exporting { .. } => {
                if let Some(b) = &bar {
                    b.set_message("writing files");
                }
            }
            ReceiveEvent::Done(summary) => {
                if let Some(b) = bar.take() {
                    b.finish_and_clear();
                }
                // Names taken in the destination are never overwritten: say where it went.
                for (path, top) in summary.saved.iter().zip(&tops) {
                    let name = path.file_name().unwrap_or_default().to_string_lossy();
                    if name != top.as_str() {
                        let there = path.with_file_name(top);
                        if ferry_core::export::same_content(&there, path) {
                            out.note(format!(
                                "{top} was already there with the same content; this copy is {} (delete it if you do not need it)",
                                path.display()
                            ));
                        } else {
                            out.note(format!(
                                "{top} was already there (kept as it was): saved as {}",
                                path.display()
                            ));
                        }
                    } else {
                        out.note(format!("saved {}", path.display()));
                    }
                }
                break Ok(());
            }
        }
    };
    drop(stream);
    if interrupted {
        return crate::interrupted(&out, bar, session).await;
    }
    if result.is_ok() && args.seed {
        match session.local_node() {
            Some(node) => {
                let root = ticket.blob_ticket().hash();
                out.note("serving it to the share's other receivers while the sender shares it; Ctrl-C stops");
                out.event(&serde_json::json!({"event": "serving"}));
                tokio::select! {
                    _ = node.received_served(&root) => {
                        out.note("no longer serving it (the sender stopped sharing it, or a file changed)");
                    }
                    _ = crate::signal::stop_requested() => {}
                }
            }
            None => out.note("the running node serves it to the share's other receivers while the sender shares it"),
        }
    }
    session.shutdown().await?;
    result?;
    Ok(ExitCode::SUCCESS)
}
