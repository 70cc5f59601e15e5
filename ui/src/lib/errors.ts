// Errors for people: each code the core or the app can return has a title and a next step in
// the catalog ("errors" part), worded from the error's parameters, and the actions that help.
import { ERROR_CODES, type ErrorInfo } from "./bindings";
import { formatBytes } from "./format";
import { t } from "./i18n.svelte";

export type ErrorCode = (typeof ERROR_CODES)[number];

/** What a screen can offer next to an error. */
export type Action = "retry" | "choose_folder" | "go_folders" | "go_receive";

/** The actions that help with each code (a screen shows those it can carry out). */
export const ACTIONS: Partial<Record<ErrorCode, Action[]>> = {
  ticket_is_folder: ["go_folders"],
  ticket_is_send: ["go_receive"],
  connect_failed: ["retry"],
  device_unreachable: ["retry"],
  transfer_failed: ["retry"],
  bad_data: ["retry"],
  write_failed: ["choose_folder", "retry"],
  disk_full: ["choose_folder", "retry"],
  network: ["retry"],
  store: ["retry"],
};

export interface Explained {
  /** The code, or "unknown" for one this UI does not know. */
  code: ErrorCode | "unknown";
  title: string;
  next: string;
  actions: Action[];
  /** What the core said, in English, for the details. */
  detail: string;
}

/** The `ErrorInfo` inside whatever a command rejected with. */
export function asInfo(e: unknown): ErrorInfo {
  if (e && typeof e === "object" && "code" in e && "message" in e) return e as ErrorInfo;
  return { code: "unknown", message: e instanceof Error ? e.message : String(e), params: {} };
}

/** An error, worded in the current language. */
export function explain(e: unknown): Explained {
  const info = asInfo(e);
  const code = (ERROR_CODES as readonly string[]).includes(info.code) ? (info.code as ErrorCode) : "unknown";
  const params: Record<string, string> = { ...(info.params ?? {}) };
  for (const size of ["needed", "available"]) {
    if (params[size] !== undefined) params[size] = formatBytes(Number(params[size]));
  }
  return {
    code,
    title: t(`errors:${code}.title`, params),
    next: t(`errors:${code}.next`, params),
    actions: code === "unknown" ? [] : (ACTIONS[code] ?? []),
    detail: info.message,
  };
}
