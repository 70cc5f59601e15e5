// Helpers around the generated bindings: results, errors and event channels.
import { Channel } from "@tauri-apps/api/core";
import type { ErrorInfo, StreamItem } from "./bindings";

/** A message for people from whatever a command rejected with. */
export function describeError(e: unknown): string {
  if (e && typeof e === "object" && "message" in e) return String((e as ErrorInfo).message);
  return String(e);
}

/** Unwraps a tauri-specta result, throwing the `ErrorInfo` on failure. */
export async function unwrap<T>(
  result: Promise<{ status: "ok"; data: T } | { status: "error"; error: ErrorInfo }>,
): Promise<T> {
  const r = await result;
  if (r.status === "error") throw r.error;
  return r.data;
}

/** A channel that calls `onEvent` for events and `onError` for a failure. */
export function eventChannel<E>(
  onEvent: (e: E) => void,
  onError: (e: ErrorInfo) => void,
): Channel<StreamItem<E>> {
  const ch = new Channel<StreamItem<E>>();
  ch.onmessage = (item) => {
    if (item.kind === "event") onEvent(item.body);
    else onError(item.body);
  };
  return ch;
}

/** The code of a rejected command, or "unknown". */
export function errorCode(e: unknown): string {
  if (e && typeof e === "object" && "code" in e) return String((e as ErrorInfo).code);
  return "unknown";
}
