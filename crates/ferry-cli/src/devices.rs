//! `ferry name`, `ferry devices`, `ferry incoming`, `ferry accept`, `ferry decline`: this
//! device's name, the devices it knows, and the offers of files waiting for an answer.

use std::{path::PathBuf, process::ExitCode};

use ferry_core::{session::Session, settings::Settings, NodeConfig};

use crate::output::{human, plural, Output};

/// Saves `settings` in the home, making a home not used yet for it.
fn save(config: &NodeConfig, settings: &Settings) -> anyhow::Result<()> {
    std::fs::create_dir_all(&config.home).map_err(|e| ferry_core::Error::Home {
        path: config.home.clone(),
        reason: e.to_string(),
    })?;
    settings.save(&config.home)?;
    Ok(())
}

/// `ferry name [NEW]`: shows or sets this device's name (no node needed).
pub fn name(config: &NodeConfig, new: Option<String>, out: &Output) -> anyhow::Result<ExitCode> {
    let mut settings = Settings::load(&config.home);
    if let Some(new) = new {
        settings.device_name = new.trim().to_string();
        save(config, &settings)?;
        out.note("other devices see the new name from their next exchange with this one");
    }
    if out.is_json() {
        println!("{}", serde_json::json!({ "name": settings.device_name }));
    } else {
        println!("{}", settings.device_name);
    }
    Ok(ExitCode::SUCCESS)
}

/// Changes to a contact (`ferry devices rename|forget|auto-accept`), and this device's
/// visibility (`ferry devices visible`).
#[derive(Debug, clap::Subcommand)]
pub enum Change {
    /// Show or set whether devices on this network see this one (on by default).
    #[command(after_help = "Examples:\n  ferry devices visible\n  ferry devices visible off")]
    Visible {
        /// on or off; leave it out to see the setting.
        state: Option<Switch>,
    },
    /// Call a device by a name of yours (shown instead of its own).
    #[command(after_help = "Example:\n  ferry devices rename 3f2a9c01d2 \"Anna's phone\"")]
    Rename {
        /// The device: its name or node id (see `ferry devices`).
        device: String,
        /// The name; leave it out to show the device's own name again.
        name: Option<String>,
    },
    /// Forget a device: it is a stranger again (its offers wait for you).
    Forget {
        /// The device: its name or node id.
        device: String,
    },
    /// Accept this device's offers without asking, into FOLDER; `--off` asks again.
    #[command(
        after_help = "Examples:\n  ferry devices auto-accept \"Office laptop\" ~/Inbox\n  ferry devices auto-accept \"Office laptop\" --off"
    )]
    AutoAccept {
        /// The device: its name or node id.
        device: String,
        /// Where its files go.
        #[arg(required_unless_present = "off")]
        folder: Option<PathBuf>,
        /// Ask again for its offers.
        #[arg(long, conflicts_with = "folder")]
        off: bool,
    },
}

/// `ferry devices rename|forget|auto-accept`: through the running node, else on the home.
pub async fn change(config: &NodeConfig, change: Change, out: &Output) -> anyhow::Result<ExitCode> {
    use ferry_core::contacts::ContactChange;
    let (device, change) = match change {
        Change::Visible { state } => return visible(config, state, out).await,
        Change::Rename { device, name } => (device, ContactChange::Rename(name)),
        Change::Forget { device } => (device, ContactChange::Forget),
        Change::AutoAccept {
            device,
            folder,
            off,
        } => {
            let dir = match (folder, off) {
                (Some(d), false) => Some(std::path::absolute(d)?),
                _ => None,
            };
            (device, ContactChange::AutoAccept(dir))
        }
    };
    let changed = match Session::attach(&config.home).await {
        Ok(session) => session.change_contact(&device, change).await?,
        Err(ferry_core::Error::NotRunning { .. }) => {
            ferry_core::contacts::Contacts::load(&config.home).apply(&device, change)?
        }
        Err(e) => return Err(e.into()),
    };
    if out.is_json() {
        println!("{}", serde_json::to_string(&changed)?);
    } else {
        out.note(format!("{} ({})", changed.shown_name(), changed.id));
    }
    Ok(ExitCode::SUCCESS)
}

/// `ferry devices`: the contacts and the nearby devices, through the running node (which asks
/// each contact whether it is online), else the contacts from the home.
pub async fn devices(config: &NodeConfig, out: &Output) -> anyhow::Result<ExitCode> {
    let (devices, running) = match Session::attach(&config.home).await {
        Ok(session) => (session.devices(true).await?, true),
        Err(ferry_core::Error::NotRunning { .. }) => {
            let contacts = ferry_core::contacts::Contacts::load(&config.home).list();
            let devices = contacts
                .into_iter()
                .map(ferry_core::devices::Device::of_contact)
                .collect();
            (devices, false)
        }
        Err(e) => return Err(e.into()),
    };
    if devices.is_empty() {
        out.note(
            "no devices yet: devices on this network appear while `ferry run` (or the app) \
             runs; a device you send to or receive from with `ferry send --to` is kept",
        );
    } else if !running {
        out.note("Ferry is not running here: who is online or nearby is not known");
    }
    for d in devices {
        if out.is_json() {
            println!("{}", serde_json::to_string(&d)?);
            continue;
        }
        let name = if d.name.is_empty() {
            "(no name)"
        } else {
            d.name.as_str()
        };
        let mut state = Vec::new();
        if running {
            state.push(if d.online { "online" } else { "offline" });
        }
        match d.via {
            Some(ferry_core::progress::Via::Direct) => state.push("direct"),
            Some(ferry_core::progress::Via::Relay) => state.push("relay"),
            None => {}
        }
        if d.nearby {
            state.push("nearby");
        }
        if !d.contact {
            state.push("not a contact");
        }
        println!(
            "{name}\t{}\t{}{}",
            d.short_id(),
            state.join(", "),
            d.auto_accept
                .as_ref()
                .map(|dir| format!("\taccepts into {}", dir.display()))
                .unwrap_or_default()
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// `ferry devices visible [on|off]`: shows or sets whether devices on this network see this
/// one; a running node follows at once.
pub async fn visible(
    config: &NodeConfig,
    on: Option<Switch>,
    out: &Output,
) -> anyhow::Result<ExitCode> {
    let mut settings = Settings::load(&config.home);
    if let Some(on) = on {
        settings.visible_nearby = on == Switch::On;
        save(config, &settings)?;
        match Session::attach(&config.home).await {
            Ok(session) => session.apply_settings(&settings).await?,
            Err(ferry_core::Error::NotRunning { .. }) => {}
            Err(e) => return Err(e.into()),
        }
    }
    if out.is_json() {
        println!(
            "{}",
            serde_json::json!({ "visible": settings.visible_nearby })
        );
    } else if settings.visible_nearby {
        println!("on: devices on this network see this one while Ferry runs");
    } else {
        println!("off: devices on this network do not see this one (contacts still can)");
    }
    Ok(ExitCode::SUCCESS)
}

/// On or off.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Switch {
    /// On.
    On,
    /// Off.
    Off,
}

/// Offers arrive only at a running node.
async fn running(config: &NodeConfig) -> anyhow::Result<Session> {
    Ok(Session::attach(&config.home).await?)
}

/// `ferry incoming`: the offers waiting for an answer.
pub async fn incoming(config: &NodeConfig, out: &Output) -> anyhow::Result<ExitCode> {
    let session = running(config).await?;
    let offers = session.incoming_offers().await?;
    if offers.is_empty() {
        out.note("no offers are waiting");
    }
    for o in offers {
        if out.is_json() {
            println!("{}", serde_json::to_string(&o)?);
        } else {
            println!(
                "{}\t{} ({})\t{}\t{}, {}{}",
                o.id,
                o.name,
                &o.from[..o.from.len().min(10)],
                o.title,
                plural(o.files as usize, "file"),
                human(o.size),
                if o.contact { "" } else { "\tnot a contact" }
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// `ferry decline ID`.
pub async fn decline(config: &NodeConfig, id: u32, out: &Output) -> anyhow::Result<ExitCode> {
    let session = running(config).await?;
    let offer = session.answer_offer(id, false).await?;
    out.note(format!("declined {:?} from {}", offer.title, offer.name));
    Ok(ExitCode::SUCCESS)
}

/// `ferry accept ID [--out DIR]`: accepts, then receives it as `ferry receive` does.
pub async fn accept(
    config: NodeConfig,
    id: u32,
    dest: Option<PathBuf>,
    out: Output,
) -> anyhow::Result<ExitCode> {
    let session = running(&config).await?;
    let Some(waiting) = session
        .incoming_offers()
        .await?
        .into_iter()
        .find(|o| o.id == id)
    else {
        anyhow::bail!("no offer {id} is waiting (see `ferry incoming`)");
    };
    // What the offer claimed, checked against what its ticket holds before saying yes.
    let ticket: ferry_core::Ticket = waiting.ticket.parse().map_err(ferry_core::Error::from)?;
    let real = session.preview(&ticket).await?;
    if real.file_count() as u64 > waiting.files || real.total_size > waiting.size {
        session.answer_offer(id, false).await?;
        anyhow::bail!(
            "the offer said {} ({}) but holds {} ({}): declined",
            plural(waiting.files as usize, "file"),
            human(waiting.size),
            plural(real.file_count(), "file"),
            human(real.total_size)
        );
    }
    let offer = session.answer_offer(id, true).await?;
    drop(session);
    out.note(format!("accepted {:?} from {}", offer.title, offer.name));
    let ticket = offer.ticket.clone();
    let json = out.is_json();
    let result = crate::receive::fetch(config, offer.ticket, dest, false, out).await;
    if result.is_err() && !json {
        eprintln!("to try again: ferry receive {ticket}");
    }
    result
}
