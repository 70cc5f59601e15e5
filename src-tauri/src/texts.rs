//! What the shell itself says (tray menu and tooltip, notifications), in English and German.
//!
//! The UI has its own message catalog (`ui/src/locales`); these few strings are shown while
//! the window may be hidden, so the shell words them. The language is the one the settings
//! name, else the system's (`LC_ALL`, `LC_MESSAGES`, `LANG`), else English, as in the UI.

use std::path::Path;

use ferry_core::{
    overview::{Busy, Line, News, Summary},
    settings::Settings,
};

/// The shell's languages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lang {
    /// English.
    En,
    /// German.
    De,
}

impl Lang {
    /// The language of the settings of `home`, else of the system.
    pub fn of(home: &Path) -> Lang {
        Lang::of_settings(&Settings::load(home))
    }

    /// The language `settings` name, else the system's.
    pub fn of_settings(settings: &Settings) -> Lang {
        let setting = settings.language.clone();
        // LANGUAGE is a list of preferences ("de:en"); the others one locale ("de_DE.UTF-8").
        let system = ["LANGUAGE", "LC_ALL", "LC_MESSAGES", "LANG"]
            .iter()
            .filter_map(|v| std::env::var(v).ok())
            .find(|v| !v.is_empty() && v != "C" && v != "POSIX")
            .map(|v| v.split(':').next().unwrap_or_default().to_string());
        Lang::pick(setting.as_deref(), system.as_deref())
    }

    fn pick(setting: Option<&str>, system: Option<&str>) -> Lang {
        let known = |tag: &str| match tag.get(..2).map(|p| p.to_ascii_lowercase()).as_deref() {
            Some("de") => Some(Lang::De),
            Some("en") => Some(Lang::En),
            _ => None,
        };
        setting
            .and_then(known)
            .or_else(|| system.and_then(known))
            .unwrap_or(Lang::En)
    }
}

/// A notification: its title and body.
pub struct Note {
    /// The title.
    pub title: String,
    /// The text.
    pub body: String,
}

/// How long a name may be in a menu line or a notification.
const NAME_CHARS: usize = 48;

/// A name from a peer or the disk (a file, a folder, a device), fit to show: no control or
/// formatting characters (a right-to-left override could make `exe.txt` of `txt.exe`), cut
/// to [`NAME_CHARS`].
pub fn shown(name: &str) -> String {
    let clean = ferry_core::contacts::clean_text(name, usize::MAX);
    if clean.chars().count() <= NAME_CHARS {
        return clean;
    }
    let mut cut: String = clean.chars().take(NAME_CHARS - 1).collect();
    cut.push('…');
    cut
}

/// Text for a menu item: `&` marks a mnemonic there, `&&` is a literal one.
pub fn menu_text(text: &str) -> String {
    text.replace('&', "&&")
}

/// Text for a notification's body: Linux notification servers that take markup read `<`
/// and `&` as markup (Windows and macOS show the text as it is).
pub fn body_text(text: &str) -> String {
    if cfg!(target_os = "linux") {
        text.replace('&', "&amp;")
            .replace('<', "&lt;")
            .replace('>', "&gt;")
    } else {
        text.to_string()
    }
}

/// The tray menu's fixed items.
pub fn menu_item(lang: Lang, id: &str) -> &'static str {
    match (lang, id) {
        (Lang::En, "show") => "Open Ferry",
        (Lang::De, "show") => "Ferry öffnen",
        (Lang::En, "pause_all") => "Pause all sync",
        (Lang::De, "pause_all") => "Alle Ordner pausieren",
        (Lang::En, "resume_all") => "Resume all sync",
        (Lang::De, "resume_all") => "Alle Ordner fortsetzen",
        (Lang::En, "quit") => "Quit Ferry",
        (Lang::De, "quit") => "Ferry beenden",
        _ => "",
    }
}

/// "and 3 more" under the menu's lines.
pub fn more(lang: Lang, n: usize) -> String {
    match lang {
        Lang::En => format!("and {n} more"),
        Lang::De => format!("und {n} weitere"),
    }
}

/// The tray icon's tooltip.
pub fn tooltip(lang: Lang, summary: &Summary) -> String {
    let state = match (lang, summary.busy) {
        (Lang::En, Busy::Idle) if summary.lines.is_empty() => "ready",
        (Lang::De, Busy::Idle) if summary.lines.is_empty() => "bereit",
        (Lang::En, Busy::Idle) => "sharing",
        (Lang::De, Busy::Idle) => "teilt",
        (Lang::En, Busy::Syncing) => "syncing",
        (Lang::De, Busy::Syncing) => "synchronisiert",
        (Lang::En, Busy::Sending) => "sending",
        (Lang::De, Busy::Sending) => "sendet",
        (Lang::En, Busy::Receiving) => "receiving",
        (Lang::De, Busy::Receiving) => "empfängt",
        (Lang::En, Busy::Error) => "a folder needs attention",
        (Lang::De, Busy::Error) => "ein Ordner braucht Aufmerksamkeit",
    };
    format!("Ferry: {state}")
}

/// One thing in progress, for people.
pub fn line(lang: Lang, line: &Line) -> String {
    let named = |name: &str, others: usize| match (lang, name.is_empty(), others) {
        (Lang::En, true, _) => "files".to_string(),
        (Lang::De, true, _) => "Dateien".to_string(),
        (_, false, 0) => shown(name),
        (Lang::En, false, n) => format!("{} and {n} more", shown(name)),
        (Lang::De, false, n) => format!("{} und {n} weitere", shown(name)),
    };
    let devices = |n: usize| match (lang, n) {
        (Lang::En, 1) => "1 device".to_string(),
        (Lang::En, n) => format!("{n} devices"),
        (Lang::De, 1) => "1 Gerät".to_string(),
        (Lang::De, n) => format!("{n} Geräte"),
    };
    match (lang, line) {
        (
            _,
            Line::Share {
                name,
                others,
                downloading: 0,
                done: 0,
                ..
            },
        ) => match lang {
            Lang::En => format!("Sharing {} · waiting for receivers", named(name, *others)),
            Lang::De => format!("Teilt {} · wartet auf Empfänger", named(name, *others)),
        },
        (
            _,
            Line::Share {
                name,
                others,
                downloading: 0,
                done,
                ..
            },
        ) => match lang {
            Lang::En => format!(
                "Sharing {} · {} {} everything",
                named(name, *others),
                devices(*done),
                if *done == 1 { "has" } else { "have" }
            ),
            Lang::De => format!(
                "Teilt {} · {} {} alles",
                named(name, *others),
                devices(*done),
                if *done == 1 { "hat" } else { "haben" }
            ),
        },
        (
            _,
            Line::Share {
                name,
                others,
                downloading,
                percent,
                ..
            },
        ) => match lang {
            Lang::En => format!(
                "Sending {} to {} · {percent}%",
                named(name, *others),
                devices(*downloading)
            ),
            Lang::De => format!(
                "Sendet {} an {} · {percent} %",
                named(name, *others),
                devices(*downloading)
            ),
        },
        (
            Lang::En,
            Line::Receive {
                name,
                others,
                percent,
            },
        ) => format!("Receiving {} · {percent}%", named(name, *others)),
        (
            Lang::De,
            Line::Receive {
                name,
                others,
                percent,
            },
        ) => format!("Empfängt {} · {percent} %", named(name, *others)),
        (Lang::En, Line::Syncing { folder, files: 0 }) => format!("Syncing {}", shown(folder)),
        (Lang::De, Line::Syncing { folder, files: 0 }) => {
            format!("Synchronisiert {}", shown(folder))
        }
        (Lang::En, Line::Syncing { folder, files: 1 }) => {
            format!("Syncing 1 file in {}", shown(folder))
        }
        (Lang::De, Line::Syncing { folder, files: 1 }) => {
            format!("Synchronisiert 1 Datei in {}", shown(folder))
        }
        (Lang::En, Line::Syncing { folder, files }) => {
            format!("Syncing {files} files in {}", shown(folder))
        }
        (Lang::De, Line::Syncing { folder, files }) => {
            format!("Synchronisiert {files} Dateien in {}", shown(folder))
        }
        (Lang::En, Line::FolderError { folder }) => {
            format!("{}: sync stopped, open Ferry to see why", shown(folder))
        }
        (Lang::De, Line::FolderError { folder }) => {
            let folder = shown(folder);
            format!("{folder}: Synchronisierung angehalten, Details in Ferry")
        }
    }
}

/// The notification the first time the window is closed.
pub fn still_running(lang: Lang) -> Note {
    match lang {
        Lang::En => Note {
            title: "Ferry is still running".into(),
            body: "Shares and synced folders go on. Quit from the tray icon, or with Ctrl+Q in the window.".into(),
        },
        Lang::De => Note {
            title: "Ferry läuft weiter".into(),
            body: "Freigaben und synchronisierte Ordner laufen weiter. Beenden kannst du über das Symbol in der Leiste oder mit Strg+Q im Fenster.".into(),
        },
    }
}

/// A receive finished: `names` saved, `files` in all.
pub fn received(lang: Lang, names: &str, files: usize) -> Note {
    let names = shown(names);
    match lang {
        Lang::En => Note {
            title: "Ferry: transfer complete".into(),
            body: if files == 1 {
                format!("{names} saved (1 file)")
            } else {
                format!("{names} saved ({files} files)")
            },
        },
        Lang::De => Note {
            title: "Ferry: Übertragung fertig".into(),
            body: if files == 1 {
                format!("{names} gespeichert (1 Datei)")
            } else {
                format!("{names} gespeichert ({files} Dateien)")
            },
        },
    }
}

/// A device finished downloading the share `share`; `device` is the name it claims.
pub fn peer_done(lang: Lang, share: &str, device: Option<&str>) -> Note {
    let device = device.map(shown);
    let share = &shown(share);
    match lang {
        Lang::En => Note {
            title: "Ferry: downloaded".into(),
            body: format!(
                "{} downloaded {}",
                device.unwrap_or_else(|| "A device".into()),
                if share.is_empty() {
                    "your share"
                } else {
                    share
                }
            ),
        },
        Lang::De => Note {
            title: "Ferry: heruntergeladen".into(),
            body: format!(
                "{} hat {} heruntergeladen",
                device.unwrap_or_else(|| "Ein Gerät".into()),
                if share.is_empty() {
                    "deine Freigabe"
                } else {
                    share
                }
            ),
        },
    }
}

/// Another device offers files.
pub fn offer(lang: Lang, from: &str, title: &str, contact: bool) -> Note {
    let (from, title) = (shown(from), shown(title));
    match (lang, contact) {
        (Lang::En, true) => Note {
            title: format!("Ferry: {from} wants to send you files"),
            body: format!("{title}. Open Ferry to accept or decline."),
        },
        (Lang::En, false) => Note {
            title: format!("Ferry: {from} (not a contact) wants to send you files"),
            body: format!("{title}. Open Ferry to accept or decline."),
        },
        (Lang::De, true) => Note {
            title: format!("Ferry: {from} möchte dir Dateien senden"),
            body: format!("{title}. Öffne Ferry, um anzunehmen oder abzulehnen."),
        },
        (Lang::De, false) => Note {
            title: format!("Ferry: {from} (kein Kontakt) möchte dir Dateien senden"),
            body: format!("{title}. Öffne Ferry, um anzunehmen oder abzulehnen."),
        },
    }
}

/// A folder's news.
pub fn news(lang: Lang, news: &News) -> Note {
    let news = &match news {
        News::Conflict { folder, file } => News::Conflict {
            folder: shown(folder),
            file: shown(file),
        },
        News::FolderError { folder, error } => News::FolderError {
            folder: shown(folder),
            error: error.chars().take(300).collect(),
        },
    };
    match (lang, news) {
        (Lang::En, News::Conflict { folder, file }) => Note {
            title: format!("Ferry: a conflict in {folder}"),
            body: format!("{file} was changed on two devices at once; both versions are kept. Open Ferry to choose."),
        },
        (Lang::De, News::Conflict { folder, file }) => Note {
            title: format!("Ferry: ein Konflikt in {folder}"),
            body: format!("{file} wurde auf zwei Geräten gleichzeitig geändert; beide Versionen bleiben erhalten. Öffne Ferry, um zu wählen."),
        },
        (Lang::En, News::FolderError { folder, error }) => Note {
            title: format!("Ferry: {folder} stopped syncing"),
            body: error.clone(),
        },
        (Lang::De, News::FolderError { folder, error }) => Note {
            title: format!("Ferry: {folder} wird nicht mehr synchronisiert"),
            body: error.clone(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_setting_wins_then_the_system_then_english() {
        assert_eq!(Lang::pick(Some("de"), Some("en_US.UTF-8")), Lang::De);
        assert_eq!(Lang::pick(None, Some("de_AT.UTF-8")), Lang::De);
        assert_eq!(Lang::pick(Some("fr"), Some("C")), Lang::En);
        assert_eq!(Lang::pick(None, None), Lang::En);
    }

    #[test]
    fn names_from_peers_are_shown_tamed() {
        assert_eq!(shown("report\u{202E}txt.exe"), "reporttxt.exe");
        assert_eq!(shown("a\nb\tc"), "abc");
        let long = "x".repeat(300);
        assert_eq!(shown(&long).chars().count(), NAME_CHARS);
        assert!(shown(&long).ends_with('…'));
        assert_eq!(menu_text("Tom & Jerry"), "Tom && Jerry");
        assert_eq!(body_text("<b>a & b</b>"), "&lt;b&gt;a &amp; b&lt;/b&gt;");
    }

    #[test]
    fn lines_read_well_in_both_languages() {
        let sending = Line::Share {
            name: "Project".into(),
            others: 0,
            downloading: 2,
            done: 1,
            percent: 42,
        };
        assert_eq!(
            line(Lang::En, &sending),
            "Sending Project to 2 devices · 42%"
        );
        assert_eq!(
            line(Lang::De, &sending),
            "Sendet Project an 2 Geräte · 42 %"
        );
        let waiting = Line::Syncing {
            folder: "Docs".into(),
            files: 3,
        };
        assert_eq!(line(Lang::En, &waiting), "Syncing 3 files in Docs");
        assert_eq!(line(Lang::De, &waiting), "Synchronisiert 3 Dateien in Docs");
    }
}
