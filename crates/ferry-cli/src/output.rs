//! Progress on stderr: bars for people, JSON lines for programs.

use std::time::Duration;

use indicatif::{HumanBytes, ProgressBar, ProgressStyle};
use serde::Serialize;

/// Where progress goes.
pub struct Output {
    json: bool,
}

impl Output {
    pub fn new(json: bool) -> Self {
        Output { json }
    }

    /// True in `--json` mode.
    pub fn is_json(&self) -> bool {
        self.json
    }

    /// Emits one event as a JSON line (only in `--json` mode).
    pub fn event<T: Serialize>(&self, event: &T) {
        if self.json {
            if let Ok(line) = serde_json::to_string(event) {
                eprintln!("{line}");
            }
        }
    }

    /// A byte progress bar (hidden in `--json` mode).
    pub fn bar(&self, total: u64, prefix: &str) -> ProgressBar {
        if self.json {
            return ProgressBar::hidden();
        }
        let bar =
            ProgressBar::with_draw_target(Some(total), indicatif::ProgressDrawTarget::stderr());
        bar.set_style(
            ProgressStyle::with_template(
                "{prefix} [{bar:30}] {bytes}/{total_bytes} {binary_bytes_per_sec} eta {eta} {wide_msg}",
            )
            .expect("valid template")
            .progress_chars("=> "),
        );
        bar.set_prefix(prefix.to_string());
        bar.enable_steady_tick(Duration::from_millis(250));
        bar
    }

    /// A line for people (suppressed in `--json` mode).
    pub fn note(&self, text: impl AsRef<str>) {
        if !self.json {
            eprintln!("{}", text.as_ref());
        }
    }
}

pub fn human(n: u64) -> String {
    HumanBytes(n).to_string()
}

pub fn plural(n: usize, what: &str) -> String {
    if n == 1 {
        format!("1 {what}")
    } else {
        format!("{n} {what}s")
    }
}
