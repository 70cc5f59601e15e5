//! `ferry seed`: keep a share available from an always-on machine.

use std::process::ExitCode;

use clap::Args;
use ferry_core::{session::Session, NodeConfig, ReceiveEvent, Ticket};
use tokio::sync::mpsc;

use crate::output::{human, plural, Output};

#[derive(Debug, Args)]
#[command(after_help = "Example, on a machine that stays on:\n  \
    ferry seed <ticket> --upload-limit 5M\n\
Give out the ticket it prints: it works after the sender has stopped sharing.")]
pub struct SeedArgs {
    /// The ticket (or a ferry:// link) of the share to keep available.
    ticket: String,
}

pub async fn run(config: NodeConfig, args: SeedArgs, out: Output) -> anyhow::Result<ExitCode> {
    let ticket: Ticket = args.ticket.parse().map_err(ferry_core::Error::from)?;
    let home = config.home.clone();
    let session = Session::open(config).await?;
    let node = match &session {
        Session::Local { node, .. } => node.clone(),
        Session::Remote(_) => anyhow::bail!(
            "a Ferry node is already running for {}; stop it, or seed with another --home",
            home.display()
        ),
    };
    let (events, mut rx) = mpsc::unbounded_channel();
    let (share_events, mut share_rx) = mpsc::unbounded_channel();
    let fetch = node.seed(&ticket, &events, share_events);
    tokio::pin!(fetch);
    let stop = crate::signal::stop_requested();
    tokio::pin!(stop);
    let mut bar: Option<indicatif::ProgressBar> = None;
    let seed = loop {
        tokio::select! {
            res = &mut fetch => break res?,
            _ = &mut stop => return crate::interrupted(&out, bar, session).await,
            Some(event) = rx.recv() => {
                out.event(&event);
                match event {
                    ReceiveEvent::Offer { offer, local_bytes, .. } => {
                        out.note(format!(
                            "fetching {} ({}, {})",
                            offer.top_level().join(", "),
                            plural(offer.file_count(), "file"),
                            human(offer.total_size)
                        ));
                        let b = out.bar(offer.total_size, "fetching");
                        b.set_position(local_bytes);
                        bar = Some(b);
                    }
                    ReceiveEvent::Progress(p) => {
                        if let Some(b) = &bar {
                            b.set_position(p.done);
                        }
                    }
                    _ => {}
                }
            }
        }
    };
    if let Some(b) = bar.take() {
        b.finish_and_clear();
    }
    out.note("seeding; this ticket works while this machine runs, with or without the sender:");
    println!("{}", seed.ticket());
    loop {
        tokio::select! {
            _ = &mut stop => break,
            Some(event) = share_rx.recv() => out.event(&event),
        }
    }
    drop(seed);
    session.shutdown().await?;
    Ok(ExitCode::SUCCESS)
}
