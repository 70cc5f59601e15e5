//! Node configuration: where the node keeps its data and how it reaches the network.

use std::{net::SocketAddr, path::PathBuf, str::FromStr};

use iroh::RelayUrl;
use serde::{Deserialize, Serialize};

use crate::error::Error;

/// How the node uses relay servers.
#[cfg_attr(feature = "specta", derive(specta::Type))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case", tag = "mode", content = "url")]
pub enum RelayChoice {
    /// The public relays run by n0, plus DNS address lookup: what works across the internet.
    #[default]
    Default,
    /// No relay and no address lookup: peers are reached only at the addresses in the ticket.
    Disabled,
    /// One relay of your own.
    Custom(#[cfg_attr(feature = "specta", specta(type = String))] RelayUrl),
}

impl FromStr for RelayChoice {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self, Error> {
        match s.trim() {
            "default" => Ok(RelayChoice::Default),
            "disabled" | "off" | "none" => Ok(RelayChoice::Disabled),
            url => RelayUrl::from_str(url)
                .map(RelayChoice::Custom)
                .map_err(|e| {
                    Error::Config(format!(
                        "relay must be 'default', 'disabled' or a URL, got {url:?} ({e})"
                    ))
                }),
        }
    }
}

impl std::fmt::Display for RelayChoice {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RelayChoice::Default => f.write_str("default"),
            RelayChoice::Disabled => f.write_str("disabled"),
            RelayChoice::Custom(url) => write!(f, "{url}"),
        }
    }
}

/// Everything needed to start a node.
#[derive(Debug, Clone)]
pub struct NodeConfig {
    /// The data directory: identity, blob store, control channel address.
    pub home: PathBuf,
    /// Relay servers to use.
    pub relay: RelayChoice,
    /// Local address to bind the QUIC socket to; `None` binds all interfaces on a random port.
    pub bind: Option<SocketAddr>,
    /// Skip TLS verification of the relay (only for a test relay with a self-signed certificate).
    pub relay_insecure_tls: bool,
    /// Ask the home router for a port mapping (UPnP, PCP, NAT-PMP). Off when bound to loopback.
    pub portmapper: bool,
    /// Upload rate limits.
    pub upload: crate::limits::RateLimits,
    /// Download rate limits.
    pub download: crate::limits::RateLimits,
    /// Limits may be set while the node runs (the app's Settings): uploads are throttled even
    /// while no upload limit is set, at the cost of a message per chunk sent.
    pub adjustable_limits: bool,
    /// Serve shares received here to their other receivers while their sender shares them,
    /// after the receive (see [`crate::seed`]).
    pub keep_serving: bool,
    /// How often the store drops what nothing keeps (tests make it short).
    pub gc_interval: std::time::Duration,
    /// Find devices on the local network over mDNS (see [`crate::nearby`]). Never while bound
    /// to loopback: multicast would leave the machine.
    pub nearby: bool,
    /// Show this device to nearby devices (the settings' "Visible to nearby devices").
    pub visible: bool,
}

impl NodeConfig {
    /// A configuration with the production defaults for the given home.
    pub fn new(home: impl Into<PathBuf>) -> Self {
        NodeConfig {
            home: home.into(),
            relay: RelayChoice::Default,
            bind: None,
            relay_insecure_tls: false,
            portmapper: true,
            upload: Default::default(),
            download: Default::default(),
            adjustable_limits: false,
            keep_serving: false,
            gc_interval: std::time::Duration::from_secs(300),
            nearby: false,
            visible: true,
        }
    }

    /// A configuration for tests and local use: no relay, bound to 127.0.0.1, nothing leaves
    /// the loopback interface.
    pub fn local(home: impl Into<PathBuf>) -> Self {
        NodeConfig {
            relay: RelayChoice::Disabled,
            bind: Some(SocketAddr::from(([127, 0, 0, 1], 0))),
            portmapper: false,
            ..NodeConfig::new(home)
        }
    }
}

/// The default home: the platform data directory for Ferry (e.g. `~/.local/share/ferry`).
pub fn default_home() -> Result<PathBuf, Error> {
    directories::ProjectDirs::from("app", "Ferry", "ferry")
        .map(|d| d.data_dir().to_path_buf())
        .ok_or_else(|| Error::Config("no home directory found; pass --home".into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relay_choice_parses() {
        assert_eq!(
            "default".parse::<RelayChoice>().unwrap(),
            RelayChoice::Default
        );
        assert_eq!(
            "disabled".parse::<RelayChoice>().unwrap(),
            RelayChoice::Disabled
        );
        let c: RelayChoice = "https://relay.example.org".parse().unwrap();
        assert!(matches!(c, RelayChoice::Custom(_)));
        let err = "not a url".parse::<RelayChoice>().unwrap_err();
        assert_eq!(err.code(), "invalid_config");
        assert!(err.to_string().contains("not a url"));
    }
}
