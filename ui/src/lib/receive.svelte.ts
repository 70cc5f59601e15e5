// The Receive flow: ticket, preview, accept, progress, done (or error, cancelled).
import { commands, type Device, type ErrorInfo, type Offer, type ReceiveEvent, type ReceiveSummary, type TransferProgress } from "./bindings";
import { eventChannel, unwrap } from "./api";
import { asInfo } from "./errors";

export type Phase = "idle" | "previewing" | "preview" | "receiving" | "done" | "error" | "cancelled";

export class Receive {
  phase: Phase = $state("idle");
  ticket = $state("");
  offer: Offer | null = $state(null);
  /** Who shares the ticket: a device this one knows, or as it names itself (a claim). */
  from: Device | null = $state(null);
  dest: string | null = $state(null);
  progress: TransferProgress | null = $state(null);
  writing = $state(false);
  resumed = $state(false);
  summary: ReceiveSummary | null = $state(null);
  error: ErrorInfo | null = $state(null);
  private id: number | null = null;
  /** Counts previews, so that the answer to one that was cancelled is ignored. */
  private previews = 0;
  /** Counts what the user started (previews and downloads): what appears for a new one takes the focus. */
  attempt = $state(0);

  /** Fetches what a ticket offers; invalid tickets end in the error phase with a message. */
  async preview(text: string): Promise<void> {
    this.reset();
    this.ticket = text.trim();
    if (!this.ticket) {
      this.attempt++;
      this.fail({ code: "ticket_empty", message: "the ticket is empty", params: {} });
      return;
    }
    this.phase = "previewing";
    this.attempt++;
    const mine = ++this.previews;
    try {
      const offer = await unwrap(commands.preview(this.ticket));
      if (mine !== this.previews) return;
      this.offer = offer;
      this.phase = "preview";
      // Its name is asked for on the side: the preview does not wait for it.
      commands
        .ticketSender(this.ticket)
        .then((r) => {
          if (mine === this.previews && r.status === "ok") this.from = r.data;
        })
        .catch(() => {});
    } catch (e) {
      if (mine === this.previews) this.fail(e);
    }
  }

  /** Stops looking for the sender; a late answer is ignored. */
  cancelPreview(): void {
    this.previews++;
    this.phase = "idle";
  }

  /** Tries again what failed: the download if an offer was seen, else the preview. */
  retry(): void {
    if (this.offer) void this.accept();
    else void this.preview(this.ticket);
  }

  /** Starts the download into `dest` (null: the download folder from the settings). */
  async accept(dest: string | null = this.dest): Promise<void> {
    this.phase = "receiving";
    this.attempt++;
    this.error = null;
    const channel = eventChannel<ReceiveEvent>(
      (e) => this.handle(e),
      (e) => (e.code === "cancelled" ? (this.phase = "cancelled") : this.fail(e)),
    );
    try {
      this.id = await unwrap(commands.receive(this.ticket, dest, channel));
    } catch (e) {
      this.fail(e);
    }
  }

  handle(e: ReceiveEvent): void {
    switch (e.event) {
      case "offer":
        this.offer = e.offer;
        this.resumed = e.resumed;
        this.progress = { done: e.local_bytes, total: e.offer.total_size, rate: 0, current: null };
        break;
      case "progress": {
        const { event: _, ...p } = e;
        this.progress = p as TransferProgress;
        break;
      }
      case "exporting":
        this.writing = true;
        break;
      case "done": {
        const { event: _, ...s } = e;
        this.summary = s as ReceiveSummary;
        this.phase = "done";
        break;
      }
    }
  }

  async cancel(): Promise<void> {
    if (this.id != null) await commands.cancelReceive(this.id);
    this.phase = "cancelled";
  }

  fail(e: unknown): void {
    this.error = asInfo(e);
    this.phase = "error";
  }

  reset(): void {
    this.previews++;
    this.phase = "idle";
    this.offer = null;
    this.from = null;
    this.progress = null;
    this.summary = null;
    this.error = null;
    this.writing = false;
    this.resumed = false;
    this.id = null;
  }

  get percent(): number {
    if (!this.progress || this.progress.total === 0) return this.phase === "done" ? 100 : 0;
    return Math.min(100, Math.floor((this.progress.done / this.progress.total) * 100));
  }

  get eta(): number | null {
    const p = this.progress;
    if (!p || p.rate <= 0) return null;
    return (p.total - p.done) / p.rate;
  }
}
