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
}

pub async fn run(config: NodeConfig, args: ReceiveArgs, out: Output) -> anyhow::Result<ExitCode> {
    let ticket: Ticket = args.ticket.parse().map_err(ferry_core::Error::from)?;
    let dest = match args.out {
        Some(d) => d,
        None => std::env::current_dir()?,
    };
    let session = Session::open(config).await?;
    let mut stream = session.receive(&ticket, dest).await?;
    let mut bar: Option<ProgressBar> = None;
    // One listener for the whole transfer: a signal between two events is not missed.
    let stop = crate::signal::stop_requested();
    tokio::pin!(stop);
    let result = loop {
        let item = tokio::select! {
            item = stream.next() => item,
            _ = &mut stop => break Err(anyhow::anyhow!("cancelled; run the same command again to resume")),
        };
        let event = match item {
            Some(Ok(e)) => e,
            Some(Err(e)) => break Err(anyhow::anyhow!("{} [{}]", e.message, e.code)),
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
                    b.set_message(p.current.unwrap_or_default());
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
                for path in &summary.saved {
                    out.note(format!("saved {}", path.display()));
                }
                break Ok(());
            }
        }
    };
    drop(stream);
    session.shutdown().await?;
    result?;
    Ok(ExitCode::SUCCESS)
}
