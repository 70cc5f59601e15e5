//! Names of conflict copies, in Syncthing's format so people recognise them:
//! `name.sync-conflict-<YYYYMMDD>-<HHMMSS>-<device>.ext`.
//!
//! The name depends only on the losing version (its modification time and device), so every
//! peer that resolves the same conflict picks the same name and the folders converge.

/// The conflict-copy path for `rel` (a `/`-separated relative path) of a version modified at
/// `mtime_ms` (Unix milliseconds, UTC) on `device`.
pub fn conflict_name(rel: &str, mtime_ms: u64, device: &str) -> String {
    let (dir, file) = match rel.rfind('/') {
        Some(i) => (&rel[..=i], &rel[i + 1..]),
        None => ("", rel),
    };
    let (stem, ext) = match file.rfind('.') {
        Some(i) if i > 0 => (&file[..i], &file[i..]),
        _ => (file, ""),
    };
    let device: String = device
        .chars()
        .filter(|c| c.is_alphanumeric() || *c == '-' || *c == '_')
        .take(32)
        .collect();
    let device = if device.is_empty() {
        "device".to_string()
    } else {
        device
    };
    format!(
        "{dir}{stem}.sync-conflict-{}-{device}{ext}",
        timestamp(mtime_ms)
    )
}

/// True if `rel` names a conflict copy.
pub fn is_conflict_copy(rel: &str) -> bool {
    rel.rsplit('/')
        .next()
        .is_some_and(|f| f.contains(".sync-conflict-"))
}

/// `YYYYMMDD-HHMMSS` in UTC.
fn timestamp(ms: u64) -> String {
    let secs = ms / 1000;
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}{m:02}{d:02}-{:02}{:02}{:02}",
        rem / 3600,
        (rem % 3600) / 60,
        rem % 60
    )
}

/// Days since 1970-01-01 to (year, month, day), proleptic Gregorian (H. Hinnant's algorithm).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_like_syncthing() {
        // 2026-11-25 10:30:05 UTC
        let t = 1_795_602_605_000;
        assert_eq!(
            conflict_name("docs/report.pdf", t, "laptop"),
            "docs/report.sync-conflict-20261125-103005-laptop.pdf"
        );
        assert_eq!(timestamp(0), "19700101-000000");
        assert_eq!(timestamp(951_782_400_000), "20000229-000000");
        assert_eq!(
            conflict_name("Makefile", 0, "pc"),
            "Makefile.sync-conflict-19700101-000000-pc"
        );
        assert_eq!(
            conflict_name(".bashrc", 0, "pc"),
            ".bashrc.sync-conflict-19700101-000000-pc"
        );
        assert_eq!(
            conflict_name("a.tar.gz", 0, "my pc/../x"),
            "a.tar.sync-conflict-19700101-000000-mypcx.gz"
        );
        assert!(is_conflict_copy(&conflict_name("x/y.txt", 5, "d")));
        assert!(!is_conflict_copy("x/y.txt"));
    }
}
