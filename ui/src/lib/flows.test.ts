import { afterEach, describe, expect, it, vi } from "vitest";
import { clearMocks, mockIPC, mockWindows } from "@tauri-apps/api/mocks";
import { emit } from "@tauri-apps/api/event";
import { Receive } from "./receive.svelte";
import { Share, topLevel } from "./send.svelte";
import { listenForDrops } from "./dragdrop";

afterEach(() => clearMocks());

const offer = {
  hash: "ab",
  entries: [
    { name: "photos/a.jpg", size: 1000 },
    { name: "photos/b.jpg", size: 3000 },
  ],
  total_size: 4000,
};

describe("receive flow", () => {
  it("previews a ticket, then downloads with progress to done", async () => {
    let channel: any = null;
    const calls: Record<string, unknown>[] = [];
    mockIPC((cmd, args: any) => {
      calls.push({ cmd, ...args });
      if (cmd === "preview") return offer;
      if (cmd === "ticket_sender") return { id: "ab12", name: "Anna's laptop", claimed: "Anna's laptop", contact: false, nearby: false, online: true, via: "direct", auto_accept: null, seen_ms: 0 };
      if (cmd === "receive") {
        channel = args.onEvent;
        return 7;
      }
    });
    const flow = new Receive();
    await flow.preview("  blobticket  ");
    expect(flow.phase).toBe("preview");
    expect(flow.offer?.entries).toHaveLength(2);
    // Who shares it arrives on the side.
    await vi.waitFor(() => expect(flow.from?.name).toBe("Anna's laptop"));
    expect(calls[0]).toMatchObject({ cmd: "preview", ticket: "blobticket" });

    await flow.accept("/tmp/dest");
    expect(calls.find((c) => c.cmd === "receive")).toMatchObject({ cmd: "receive", ticket: "blobticket", dest: "/tmp/dest" });
    expect(flow.phase).toBe("receiving");
    channel.onmessage({ kind: "event", body: { event: "offer", offer, local_bytes: 0, resumed: false } });
    channel.onmessage({ kind: "event", body: { event: "progress", done: 1000, total: 4000, rate: 500, current: "photos/b.jpg" } });
    expect(flow.percent).toBe(25);
    expect(flow.eta).toBe(6);
    expect(flow.progress?.current).toBe("photos/b.jpg");
    channel.onmessage({
      kind: "event",
      body: { event: "done", saved: ["/tmp/dest/photos"], files: 2, total_size: 4000, bytes_fetched: 4000, elapsed_secs: 1 },
    });
    expect(flow.phase).toBe("done");
    expect(flow.summary?.saved).toEqual(["/tmp/dest/photos"]);
  });

  it("shows the core's message for an invalid ticket", async () => {
    mockIPC((cmd) => {
      if (cmd === "preview") throw { code: "ticket_malformed", message: 'this is not a Ferry ticket: "hello"' };
    });
    const flow = new Receive();
    await flow.preview("hello");
    expect(flow.phase).toBe("error");
    expect(flow.error?.code).toBe("ticket_malformed");
    expect(flow.error?.message).toContain("not a Ferry ticket");
  });

  it("asks for a ticket when the field is empty, without calling the core", async () => {
    const spy = vi.fn();
    mockIPC(spy);
    const flow = new Receive();
    await flow.preview("   ");
    expect(flow.phase).toBe("error");
    expect(flow.error?.code).toBe("ticket_empty");
    expect(spy).not.toHaveBeenCalled();
  });

  it("a cancelled transfer can be resumed", async () => {
    let channel: any = null;
    mockIPC((cmd, args: any) => {
      if (cmd === "receive") {
        channel = args.onEvent;
        return 1;
      }
      if (cmd === "cancel_receive") return true;
    });
    const flow = new Receive();
    flow.ticket = "blobx";
    await flow.accept(null);
    channel.onmessage({ kind: "error", body: { code: "cancelled", message: "the transfer was cancelled" } });
    expect(flow.phase).toBe("cancelled");
    channel.onmessage({ kind: "error", body: { code: "transfer_failed", message: "peer vanished; run again to resume" } });
    expect(flow.phase).toBe("error");
    expect(flow.error?.code).toBe("transfer_failed");
  });

  it("a preview cancelled while looking for the sender ignores the late answer", async () => {
    let answer: (v: unknown) => void = () => {};
    mockIPC((cmd) => {
      if (cmd === "preview") return new Promise((r) => (answer = r));
    });
    const flow = new Receive();
    const looking = flow.preview("blobx");
    expect(flow.phase).toBe("previewing");
    flow.cancelPreview();
    expect(flow.phase).toBe("idle");
    answer(offer);
    await looking;
    expect(flow.phase).toBe("idle");
    expect(flow.offer).toBeNull();
  });
});

describe("send to a device", () => {
  const device = (id: string, name: string) => ({ id, name, claimed: name, contact: true, nearby: true, online: true, via: null, auto_accept: null, seen_ms: 0 });

  it("offers a share to each picked device and follows each answer to done", async () => {
    let channel: any = null;
    const offered: Record<string, unknown>[] = [];
    const answers: Record<string, (a: unknown) => void> = {};
    mockIPC((cmd, args: any) => {
      if (cmd === "share_paths") {
        channel = args.onEvent;
        return 3;
      }
      if (cmd === "offer_to") {
        offered.push(args);
        return new Promise((resolve) => (answers[args.device] = resolve));
      }
      if (cmd === "plugin:event|listen") return 1;
    });
    const share = new Share(["/home/me/photos"]);
    await share.start();
    // Nothing to offer before the share is ready.
    await share.offerTo(device("peerA", "Office"));
    expect(offered).toHaveLength(0);
    channel.onmessage({ kind: "event", body: { event: "ready", id: 1, ticket: "blobT", link: "ferry://receive/blobT", offer, skipped: [] } });
    const a = share.offerTo(device("peerA", "Office"));
    const b = share.offerTo(device("peerB", "Phone"));
    await vi.waitFor(() => expect(offered).toHaveLength(2));
    expect(offered[0]).toMatchObject({ device: "peerA", ticket: "blobT", title: "photos", files: 2, size: 4000 });
    expect(share.offerState("peerA")?.state).toBe("waiting");
    // Asking again while waiting sends nothing more.
    await share.offerTo(device("peerA", "Office"));
    expect(offered).toHaveLength(2);
    answers.peerA("accepted");
    answers.peerB("declined");
    await Promise.all([a, b]);
    expect(share.offerState("peerA")?.state).toBe("accepted");
    expect(share.offerState("peerB")?.state).toBe("declined");
    channel.onmessage({ kind: "event", body: { event: "peer_done", peer: "peerA" } });
    expect(share.offerState("peerA")?.state).toBe("done");
    // A declined device may be asked again.
    const again = share.offerTo(device("peerB", "Phone"));
    await vi.waitFor(() => expect(offered).toHaveLength(3));
    answers.peerB({ invalid: "the ticket is not the offering device's own" });
    await again;
    expect(share.offerState("peerB")?.state).toBe("invalid");
    expect(share.offerState("peerB")?.reason).toBe("the ticket is not the offering device's own");
  });

  it("says why an offer could not be made", async () => {
    let channel: any = null;
    mockIPC((cmd, args: any) => {
      if (cmd === "share_paths") {
        channel = args.onEvent;
        return 3;
      }
      if (cmd === "offer_to") throw { code: "device_unreachable", message: "could not reach the device x: no answer within 30 s", params: {} };
    });
    const share = new Share(["/home/me/photos"]);
    await share.start();
    channel.onmessage({ kind: "event", body: { event: "ready", id: 1, ticket: "blobT", link: "ferry://receive/blobT", offer, skipped: [] } });
    await share.offerTo(device("peerA", "Office"));
    expect(share.offerState("peerA")?.state).toBe("failed");
    expect(share.offerState("peerA")?.error?.code).toBe("device_unreachable");
  });
});

describe("share", () => {
  it("starts sharing dropped paths and follows its peers", async () => {
    let channel: any = null;
    let paths: string[] = [];
    mockIPC((cmd, args: any) => {
      if (cmd === "share_paths") {
        channel = args.onEvent;
        paths = args.paths;
        return 3;
      }
      if (cmd === "stop_share") return true;
    });
    const share = new Share(["/home/me/photos"]);
    expect(share.title).toBe("photos");
    await share.start();
    expect(paths).toEqual(["/home/me/photos"]);
    channel.onmessage({ kind: "event", body: { event: "importing", files_done: 1, files_total: 2, bytes_done: 10, bytes_total: 20 } });
    expect(share.hashed.bytes).toBe(10);
    channel.onmessage({
      kind: "event",
      body: { event: "ready", id: 1, ticket: "blobT", link: "ferry://receive/blobT", offer, skipped: [] },
    });
    expect(share.phase).toBe("ready");
    expect(share.info?.ticket).toBe("blobT");
    channel.onmessage({ kind: "event", body: { event: "peer_connected", peer: "peer1" } });
    channel.onmessage({ kind: "event", body: { event: "peer_progress", peer: "peer1", progress: { done: 2000, total: 4000, rate: 10, current: null } } });
    expect(share.peers[0].progress?.done).toBe(2000);
    channel.onmessage({ kind: "event", body: { event: "peer_done", peer: "peer1" } });
    expect(share.peers[0].done).toBe(true);
    await share.stop();
    expect(share.phase).toBe("stopped");
  });

  it("reports a share that fails to start", async () => {
    mockIPC((cmd) => {
      if (cmd === "share_paths") throw { code: "share_source", message: "cannot share /nope: No such file" };
    });
    const share = new Share(["/nope"]);
    await share.start();
    expect(share.phase).toBe("error");
    expect(share.error?.code).toBe("share_source");
    expect(share.error?.message).toContain("/nope");
  });

  it("names receivers and says how much of the swarm's data came from this device", () => {
    const share = new Share(["/x"]);
    share.handle({ event: "peer_progress", peer: "p1", name: "Office laptop", progress: { done: 1000, total: 4000, rate: 0, current: null, from_here: 1000 } } as any);
    share.handle({ event: "peer_progress", peer: "p2", progress: { done: 3000, total: 4000, rate: 0, current: null, from_here: 500 } } as any);
    share.handle({ event: "peer_progress", peer: "p3", progress: { done: 4000, total: 4000, rate: 0, current: null } } as any);
    share.handle({ event: "peer_done", peer: "p3" } as any);
    expect(share.peers[0].name).toBe("Office laptop");
    expect(share.peers[1].name).toBeNull();
    // p3 did not say where its data came from: it is left out of the share.
    expect(share.summary).toEqual({ devices: 3, complete: 1, fromHerePercent: 38 });
    // A claim larger than what the peer has counts only up to that.
    share.handle({ event: "peer_progress", peer: "p2", progress: { done: 3000, total: 4000, rate: 0, current: null, from_here: 9e9 } } as any);
    expect(share.summary.fromHerePercent).toBe(100);
  });

  it("titles long selections", () => {
    expect(topLevel(["a/1", "a/2", "b", "c", "d", "e"])).toBe("a, b, c and 2 more");
  });
});

describe("drop zone", () => {
  it("hands dropped paths to the share flow and tracks hovering", async () => {
    mockWindows("main");
    mockIPC(() => {}, { shouldMockEvents: true });
    const dropped: string[][] = [];
    const hover: boolean[] = [];
    const unlisten = await listenForDrops({ onHover: (h) => hover.push(h), onDrop: (p) => dropped.push(p) });
    await emit("tauri://drag-enter", { paths: ["/x/file.txt"], position: { x: 1, y: 1 } });
    await emit("tauri://drag-drop", { paths: ["/x/file.txt", "/x/dir"], position: { x: 1, y: 1 } });
    expect(hover).toEqual([true, false]);
    expect(dropped).toEqual([["/x/file.txt", "/x/dir"]]);
    unlisten();
  });
});
