// Typed calls into the Rust side.
import { invoke } from "@tauri-apps/api/core";

export interface NodeStatus {
  node_id: string;
  addrs: string[];
  shares: number;
  pid: number;
}

export interface ErrorInfo {
  code: string;
  message: string;
}

export function nodeStatus(): Promise<NodeStatus> {
  return invoke<NodeStatus>("node_status");
}

/** A message for people from whatever a command rejected with. */
export function describeError(e: unknown): string {
  if (e && typeof e === "object" && "message" in e) return String((e as ErrorInfo).message);
  return String(e);
}
