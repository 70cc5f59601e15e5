// Human-readable sizes, rates and durations for progress displays, in the UI's language.
import { language, t } from "./i18n.svelte";

const UNITS = ["B", "KB", "MB", "GB", "TB"];

export function formatBytes(n: number): string {
  if (!Number.isFinite(n) || n < 0) return "–";
  let i = 0;
  let v = n;
  while (v >= 1000 && i < UNITS.length - 1) {
    v /= 1000;
    i++;
  }
  const digits = i === 0 ? 0 : v < 10 ? 1 : 0;
  const number = new Intl.NumberFormat(language(), { minimumFractionDigits: digits, maximumFractionDigits: digits }).format(v);
  return `${number} ${UNITS[i]}`;
}

export function formatRate(bytesPerSec: number): string {
  return t("common:per_second", { size: formatBytes(Math.round(bytesPerSec)) });
}

export function formatEta(seconds: number | null | undefined): string {
  if (seconds == null || !Number.isFinite(seconds)) return "";
  const s = Math.max(0, Math.round(seconds));
  if (s < 60) return t("common:eta_seconds", { s });
  const m = Math.floor(s / 60);
  if (m < 60) return t("common:eta_minutes", { m, s: s % 60 });
  return t("common:eta_hours", { h: Math.floor(m / 60), m: m % 60 });
}

/** A count in the UI's language (digit grouping). */
export function formatCount(n: number): string {
  return new Intl.NumberFormat(language()).format(n);
}

/** How long ago `ms` (Unix milliseconds) was, in the UI's language ("5 minutes ago"). */
export function formatAgo(ms: number, now = Date.now()): string {
  const s = Math.max(0, Math.round((now - ms) / 1000));
  if (s < 60) return t("common:just_now");
  const rel = new Intl.RelativeTimeFormat(language(), { numeric: "auto" });
  if (s < 3600) return rel.format(-Math.floor(s / 60), "minute");
  if (s < 86_400) return rel.format(-Math.floor(s / 3600), "hour");
  return rel.format(-Math.floor(s / 86_400), "day");
}
