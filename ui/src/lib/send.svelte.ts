// One share as the Send screen shows it: importing, live with a ticket, peers, stopped.
import { commands, type Answer, type Device, type ErrorInfo, type ShareEvent, type ShareInfo, type TransferProgress } from "./bindings";
import { eventChannel, unwrap } from "./api";
import { asInfo } from "./errors";
import { t } from "./i18n.svelte";

export interface PeerView {
  id: string;
  /** Its device name, as it says (shown, never trusted). */
  name: string | null;
  progress: TransferProgress | null;
  /** Bytes per second, from the events' rate or from the change between two reports. */
  rate: number;
  /** When `progress` arrived (ms). */
  at: number;
  /** Of what it has, the bytes that came from this device (its own report). */
  fromHere: number | null;
  done: boolean;
  connected: boolean;
}

/** Where an offer of a share to a device stands. */
export type OfferState = "waiting" | "accepted" | "declined" | "expired" | "busy" | "invalid" | "failed" | "done";

export interface OfferView {
  state: OfferState;
  /** Why it failed, when it did. */
  error: ErrorInfo | null;
  /** Why the device refused it, in its words (state "invalid"). */
  reason?: string;
}

/** What an answer to an offer makes of it. */
export function answered(a: Answer): OfferView {
  return typeof a === "string" ? { state: a, error: null } : { state: "invalid", error: null, reason: a.invalid };
}

/** What the Send screen says of a share's receivers as a whole. */
export interface SwarmSummary {
  devices: number;
  complete: number;
  /** Percent of what the receivers report having that came from this device, if known. */
  fromHerePercent: number | null;
}

export class Share {
  phase: "importing" | "ready" | "error" | "stopped" = $state("importing");
  paths: string[];
  id: number | null = null;
  info: ShareInfo | null = $state(null);
  hashed = $state({ files: 0, filesTotal: 0, bytes: 0, bytesTotal: 0 });
  peers: PeerView[] = $state([]);
  error: ErrorInfo | null = $state(null);
  /** Offers of this share to devices, by device id. */
  offers: Record<string, OfferView> = $state({});

  constructor(paths: string[]) {
    this.paths = paths;
  }

  /** Starts sharing through the core. */
  async start(): Promise<void> {
    const channel = eventChannel<ShareEvent>(
      (e) => this.handle(e),
      (e) => this.fail(e),
    );
    try {
      this.id = await unwrap(commands.sharePaths(this.paths, channel));
    } catch (e) {
      this.fail(e);
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
      case "peer_progress": {
        const p = this.peer(e.peer);
        const progress = e.progress as TransferProgress;
        const now = Date.now();
        if (e.name) p.name = e.name;
        if (progress.rate > 0) p.rate = progress.rate;
        else if (p.progress && now - p.at > 200) p.rate = Math.max(0, ((progress.done - p.progress.done) * 1000) / (now - p.at));
        if (progress.from_here != null) p.fromHere = progress.from_here;
        p.progress = progress;
        p.at = now;
        if (progress.total > 0 && progress.done >= progress.total) p.rate = 0;
        break;
      }
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
      this.peers.push({ id, name: null, progress: null, rate: 0, at: 0, fromHere: null, done: false, connected: true });
      p = this.peers[this.peers.length - 1];
    }
    return p;
  }

  /** How many receivers have everything, and how much of their data came from here. */
  get summary(): SwarmSummary {
    let got = 0;
    let fromHere = 0;
    for (const p of this.peers) {
      if (p.fromHere != null && p.progress) {
        got += p.progress.done;
        fromHere += Math.min(p.fromHere, p.progress.done);
      }
    }
    return {
      devices: this.peers.length,
      complete: this.peers.filter((p) => p.done).length,
      fromHerePercent: got > 0 ? Math.round((fromHere / got) * 100) : null,
    };
  }

  fail(e: unknown): void {
    this.error = asInfo(e);
    this.phase = "error";
  }

  /** Where the offer to device `id` stands: done once that device received everything. */
  offerState(id: string): OfferView | null {
    const o = this.offers[id];
    if (!o) return null;
    if (o.state === "accepted" && this.peers.some((p) => p.id === id && p.done)) return { state: "done", error: null };
    return o;
  }

  /** Offers this share to `device`; it is asked to accept. Again after a final answer. */
  async offerTo(device: Device): Promise<void> {
    const now = this.offers[device.id]?.state;
    if (!this.info || now === "waiting") return;
    // Its user may take minutes to answer.
    this.offers[device.id] = { state: "waiting", error: null };
    const info = this.info;
    try {
      const r = await commands.offerTo(device.id, info.ticket, this.title, info.offer.entries.length, info.offer.total_size);
      this.offers[device.id] = r.status === "ok" ? answered(r.data) : { state: "failed", error: r.error };
    } catch (e) {
      // The call itself failed (the app is shutting down): never left waiting.
      this.offers[device.id] = { state: "failed", error: asInfo(e) };
    }
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
    const top = n.split("/")[0];
    if (!tops.includes(top)) tops.push(top);
  }
  return tops.length > 3 ? t("send:title_more", { names: tops.slice(0, 3).join(", "), count: tops.length - 3 }) : tops.join(", ");
}
