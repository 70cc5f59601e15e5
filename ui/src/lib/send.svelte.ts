// One share as the Send screen shows it: importing, live with a ticket, peers, stopped.
import { commands, type ShareEvent, type ShareInfo, type TransferProgress } from "./bindings";
import { describeError, eventChannel, unwrap } from "./api";

export interface PeerView {
  id: string;
  progress: TransferProgress | null;
  done: boolean;
  connected: boolean;
}

export class Share {
  phase: "importing" | "ready" | "error" | "stopped" = $state("importing");
  paths: string[];
  id: number | null = null;
  info: ShareInfo | null = $state(null);
  hashed = $state({ files: 0, filesTotal: 0, bytes: 0, bytesTotal: 0 });
  peers: PeerView[] = $state([]);
  error: string | null = $state(null);

  constructor(paths: string[]) {
    this.paths = paths;
  }

  /** Starts sharing through the core. */
  async start(): Promise<void> {
    const channel = eventChannel<ShareEvent>(
      (e) => this.handle(e),
      (e) => this.fail(e.message),
    );
    try {
      this.id = await unwrap(commands.sharePaths(this.paths, channel));
    } catch (e) {
      this.fail(describeError(e));
    }
  }

  handle(e: ShareEvent): void {
    switch (e.event) {
      case "importing":
        this.hashed = {
          files: e.files_done,
          filesTotal: e.files_total,
          bytes: e.bytes_done,
          bytesTotal: e.bytes_total,
        };
        break;
      case "ready": {
        const { event: _, ...info } = e;
        this.info = info as ShareInfo;
        this.phase = "ready";
        break;
      }
      case "peer_connected":
        this.peer(e.peer).connected = true;
        break;
      case "peer_progress":
        this.peer(e.peer).progress = e.progress as TransferProgress;
        break;
      case "peer_done":
        this.peer(e.peer).done = true;
        break;
      case "peer_disconnected":
        this.peer(e.peer).connected = false;
        break;
    }
  }

  private peer(id: string): PeerView {
    let p = this.peers.find((p) => p.id === id);
    if (!p) {
      this.peers.push({ id, progress: null, done: false, connected: true });
      p = this.peers[this.peers.length - 1];
    }
    return p;
  }

  fail(message: string): void {
    this.error = message;
    this.phase = "error";
  }

  /** Stops serving: peers are refused from the next request on. */
  async stop(): Promise<void> {
    if (this.id != null) await commands.stopShare(this.id);
    this.phase = "stopped";
  }

  get title(): string {
    if (this.info) return this.info.offer.entries.length ? topLevel(this.info.offer.entries.map((e) => e.name)) : "";
    return this.paths.map((p) => p.split(/[\\/]/).filter(Boolean).pop() ?? p).join(", ");
  }
}

/** The distinct first components of `/`-separated names, joined for a title. */
export function topLevel(names: string[]): string {
  const tops: string[] = [];
  for (const n of names) {
    const t = n.split("/")[0];
    if (!tops.includes(t)) tops.push(t);
  }
  return tops.length > 3 ? `${tops.slice(0, 3).join(", ")} and ${tops.length - 3} more` : tops.join(", ");
}
