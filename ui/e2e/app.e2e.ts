// The real app window, driven through tauri-driver and WebKitWebDriver.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { randomBytes } from "node:crypto";
import { execFileSync, spawn } from "node:child_process";
import { env, exit, ferry, firstLine, makeTree, namedHome, notified, openApp, sameTree, screenshot, stderrLine, type Browser } from "./harness";

let browser: Browser;

beforeAll(async () => {
  browser = await openApp();
  const status = await browser.$('[data-testid="nav-send"]');
  await status.waitForDisplayed({ timeout: 30_000 });
});

afterAll(async () => {
  // The last test quits the app: its session may be gone already.
  await browser?.deleteSession().catch(() => {});
});

describe("Ferry app", () => {
  it("shows the empty send screen", async () => {
    await (await browser.$('[data-testid="send-empty"]')).waitForDisplayed();
    await screenshot(browser, "send-empty");
  });

  it("receives a folder shared by the ferry CLI", async () => {
    const src = join(env.work, "cli-share", "Holiday");
    makeTree(src);
    const sender = ferry(namedHome(join(env.work, "home-cli-sender"), "Anna's laptop"), ["send", src]);
    try {
      const ticket = await firstLine(sender);
      expect(ticket.startsWith("blob")).toBe(true);

      await (await browser.$('[data-testid="nav-receive"]')).click();
      const input = await browser.$('[data-testid="ticket-input"]');
      await input.setValue(ticket);
      await (await browser.$('[data-testid="preview"]')).click();
      const entries = await browser.$('[data-testid="offer-entries"]');
      await entries.waitForDisplayed({ timeout: 30_000 });
      // Who shares it: the name it gives itself, marked as not a contact.
      const from = await browser.$('[data-testid="offer-from"]');
      await from.waitForDisplayed({ timeout: 15_000 });
      expect(String(await from.getProperty("textContent"))).toMatch(/from Anna's laptop\s*not a contact/);
      // textContent: WebKitWebDriver's visible-text algorithm skips ellipsised names.
      const text = String(await entries.getProperty("textContent"));
      for (const name of ["Holiday/readme.txt", "Holiday/photos/beach.jpg", "Holiday/empty.dat"]) {
        expect(text).toContain(name);
      }
      await screenshot(browser, "receive-preview");

      await (await browser.$('[data-testid="accept"]')).click();
      const done = await browser.$('[data-testid="receive-done"]');
      await done.waitForDisplayed({ timeout: 60_000 });
      expect(await done.getText()).toContain("4 files");
      await screenshot(browser, "receive-done");
      const dest = join(env.work, "downloads", "Holiday");
      expect(sameTree(src, dest)).toBeNull();
      await notified((n) => n.summary === "Ferry: transfer complete" && n.body.includes("Holiday"));
    } finally {
      sender.kill("SIGINT");
    }
  });

  it("shares a folder and the ferry CLI receives it", async () => {
    const src = join(env.work, "app-share", "Project");
    makeTree(src);
    await (await browser.$('[data-testid="nav-send"]')).click();
    // The same path as a drop on the window: Tauri's drag-drop event with real paths.
    await browser.execute((path: string) => {
      return (window as any).__TAURI_INTERNALS__.invoke("plugin:event|emit", {
        event: "tauri://drag-drop",
        payload: { paths: [path], position: { x: 10, y: 10 } },
      });
    }, src);
    const ticketField = await browser.$('[data-testid="ticket"]');
    await ticketField.waitForDisplayed({ timeout: 30_000 });
    const ticket = await ticketField.getValue();
    expect(ticket.startsWith("blob")).toBe(true);

    const out = join(env.work, "cli-received");
    mkdirSync(out, { recursive: true });
    const receiver = ferry(join(env.work, "home-cli-receiver"), ["receive", ticket, "--out", out]);
    const result = await exit(receiver);
    expect(result.code, result.stderr).toBe(0);
    expect(sameTree(src, join(out, "Project"))).toBeNull();
    await (await browser.$('[data-testid="peer"]')).waitForDisplayed({ timeout: 30_000 });
    await browser.waitUntil(async () => (await (await browser.$('[data-testid="peer"]')).getText()).includes("Received everything"), {
      timeout: 30_000,
      timeoutMsg: "the peer never showed as complete",
    });
    await notified((n) => n.summary === "Ferry: downloaded" && n.body.endsWith("downloaded Project"));
    await screenshot(browser, "send-sharing");
  });

  it("explains an invalid ticket in the window", async () => {
    await (await browser.$('[data-testid="nav-receive"]')).click();
    const input = await browser.$('[data-testid="ticket-input"]');
    await input.setValue("this-is-not-a-ticket");
    await (await browser.$('[data-testid="preview"]')).click();
    const error = await browser.$('[data-testid="receive-error"]');
    await error.waitForDisplayed({ timeout: 15_000 });
    expect(await error.getText()).toContain("not a Ferry ticket");
    await screenshot(browser, "receive-invalid");
  });

  it("leads a folder ticket from Receive to Folders, and offers to retry an unreachable sender", async () => {
    const dir = join(env.work, "kind-folder");
    mkdirSync(dir, { recursive: true });
    const owner = ferry(join(env.work, "home-kind"), ["folder", "share", dir]);
    try {
      const folderTicket = await firstLine(owner);
      await (await browser.$('[data-testid="nav-receive"]')).click();
      await (await browser.$('[data-testid="ticket-input"]')).setValue(folderTicket);
      await (await browser.$('[data-testid="preview"]')).click();
      const error = await browser.$('[data-testid="receive-error"]');
      await error.waitForDisplayed({ timeout: 15_000 });
      expect(await error.getAttribute("data-code")).toBe("ticket_is_folder");
      expect(await error.getText()).toContain("This is a folder ticket");
      await screenshot(browser, "receive-folder-ticket");
      await (await browser.$('[data-testid="error-go_folders"]')).click();
      const join_ = await browser.$('[data-testid="join-ticket"]');
      await join_.waitForDisplayed({ timeout: 15_000 });
      expect(await join_.getValue()).toBe(folderTicket);
    } finally {
      owner.kill("SIGINT");
    }

    // A sender that is gone: looking for it can be cancelled; when it fails, Try again is offered.
    const file = join(env.work, "gone.txt");
    writeFileSync(file, "nobody serves this");
    const sender = ferry(join(env.work, "home-gone"), ["send", file]);
    const ticket = await firstLine(sender);
    sender.kill("SIGKILL");
    await exit(sender);
    await (await browser.$('[data-testid="nav-receive"]')).click();
    const input = await browser.$('[data-testid="ticket-input"]');
    await input.clearValue();
    await input.setValue(ticket);
    await (await browser.$('[data-testid="preview"]')).click();
    await (await browser.$('[data-testid="cancel-preview"]')).click();
    await (await browser.$('[data-testid="preview"]')).waitForEnabled({ timeout: 5_000 });
    await (await browser.$('[data-testid="preview"]')).click();
    const unreachable = await browser.$('[data-testid="receive-error"]');
    await unreachable.waitForDisplayed({ timeout: 60_000 });
    expect(await unreachable.getAttribute("data-code")).toBe("connect_failed");
    expect(await unreachable.getText()).toContain("The sender cannot be reached");
    await (await browser.$('[data-testid="error-retry"]')).waitForDisplayed();
    await screenshot(browser, "receive-unreachable");
  });

  it("lists both transfers in the history", async () => {
    await (await browser.$('[data-testid="nav-transfers"]')).click();
    await browser.waitUntil(async () => (await browser.$$('[data-testid="transfer"]')).length >= 2, {
      timeout: 15_000,
      timeoutMsg: "history did not show the transfers",
    });
    const text = String(await (await browser.$("main")).getProperty("textContent"));
    expect(text).toContain("Holiday");
    expect(text).toContain("Project");
    await screenshot(browser, "transfers");
  });
});

describe("settings", () => {
  it("shows the settings with the download folder in use", async () => {
    await (await browser.$('[data-testid="nav-settings"]')).click();
    const dir = await browser.$("#download-dir");
    await dir.waitForDisplayed({ timeout: 15_000 });
    expect(await dir.getValue()).toBe(join(env.work, "downloads"));
    expect(await (await browser.$("#device-name")).getValue()).toBe("e2e");
    await screenshot(browser, "settings");
  });
});

describe("swarm", () => {
  it("limits uploads and shows which receivers have what, and from whom", async () => {
    // A slow sender: an upload limit set in Settings holds at once.
    await (await browser.$('[data-testid="nav-settings"]')).click();
    const limit = await browser.$('[data-testid="upload-limit"]');
    await limit.waitForDisplayed({ timeout: 15_000 });
    await limit.setValue("2");
    await (await browser.$('button[type="submit"]')).click();
    await (await browser.$("span.ok")).waitForDisplayed({ timeout: 15_000 });
    await screenshot(browser, "settings-limits");

    const src = join(env.work, "swarm-src");
    mkdirSync(src, { recursive: true });
    writeFileSync(join(src, "video.bin"), randomBytes(6 << 20));
    await (await browser.$('[data-testid="nav-send"]')).click();
    await browser.execute((path: string) => {
      return (window as any).__TAURI_INTERNALS__.invoke("plugin:event|emit", {
        event: "tauri://drag-drop",
        payload: { paths: [path], position: { x: 10, y: 10 } },
      });
    }, join(src, "video.bin"));
    // This share's card (the other tests' shares are on the screen too).
    const findCard = async () => {
      for (const c of await browser.$$('[data-testid="share-card"]')) {
        if (String(await c.getProperty("textContent")).includes("video.bin") && (await c.$('[data-testid="ticket"]').isExisting())) return c;
      }
      return null;
    };
    await browser.waitUntil(async () => (await findCard()) != null, { timeout: 30_000, timeoutMsg: "no ticket for the share" });
    const ticket = await (await (await findCard())!.$('[data-testid="ticket"]')).getValue();

    // The first receiver stays to serve; the second fetches from both.
    const outA = join(env.work, "swarm-a");
    const seeding = ferry(namedHome(join(env.work, "home-swarm-a"), "Kitchen PC"), ["--json", "receive", ticket, "--seed", "--out", outA]);
    try {
      await stderrLine(seeding, '"event":"serving"');
      const outB = join(env.work, "swarm-b");
      const late = ferry(namedHome(join(env.work, "home-swarm-b"), "Office laptop"), ["receive", ticket, "--out", outB]);
      const result = await exit(late);
      expect(result.code, result.stderr).toBe(0);
      expect(sameTree(src, outB)).toBeNull();
      const card = async () => String(await (await findCard())?.getProperty("textContent"));
      await browser.waitUntil(async () => (await card()).includes("2 of 2 devices have everything"), {
        timeout: 30_000,
        timeoutMsg: "the share never showed both receivers complete",
      });
      const text = await card();
      expect(text).toContain("Kitchen PC");
      expect(text).toContain("Office laptop");
      expect(text).toMatch(/\d+% of what they received came from this device/);
      await screenshot(browser, "send-swarm");
    } finally {
      seeding.kill("SIGINT");
      await (await browser.$('[data-testid="nav-settings"]')).click();
      const field = await browser.$('[data-testid="upload-limit"]');
      await field.waitForDisplayed({ timeout: 15_000 });
      await field.clearValue();
      await (await browser.$('button[type="submit"]')).click();
    }
  });
});

describe("swarm receive", () => {
  it("receives from the sender and another receiver at once, within a download limit", async () => {
    const setLimit = async (value: string) => {
      await (await browser.$('[data-testid="nav-settings"]')).click();
      const field = await browser.$('[data-testid="download-limit"]');
      await field.waitForDisplayed({ timeout: 15_000 });
      await field.clearValue();
      if (value) await field.setValue(value);
      await (await browser.$('button[type="submit"]')).click();
      await (await browser.$("span.ok")).waitForDisplayed({ timeout: 15_000 });
    };
    // Slow enough to watch: the app fetches 6 MB at 2 MB/s.
    await setLimit("2");
    const src = join(env.work, "swarm-in");
    mkdirSync(src, { recursive: true });
    writeFileSync(join(src, "film.bin"), randomBytes(6 << 20));
    const sender = ferry(join(env.work, "home-swarm-sender"), ["send", join(src, "film.bin")]);
    const ticket = await firstLine(sender);
    const helper = ferry(namedHome(join(env.work, "home-swarm-helper"), "Living room"), [
      "--json", "receive", ticket, "--seed", "--out", join(env.work, "swarm-helper"),
    ]);
    try {
      await stderrLine(helper, '"event":"serving"');
      await (await browser.$('[data-testid="nav-receive"]')).click();
      await (await browser.$('[data-testid="ticket-input"]')).setValue(ticket);
      await (await browser.$('[data-testid="preview"]')).click();
      await (await browser.$('[data-testid="accept"]')).waitForDisplayed({ timeout: 30_000 });
      await (await browser.$('[data-testid="accept"]')).click();
      const peers = await browser.$('[data-testid="receive-peers"]');
      await peers.waitForDisplayed({ timeout: 30_000 });
      await browser.waitUntil(async () => String(await peers.getProperty("textContent")).includes("From 2 peers"), {
        timeout: 30_000,
        timeoutMsg: "the receive never listed the sender and the other receiver",
      });
      await (await peers.$("summary")).click();
      await screenshot(browser, "receive-swarm");
      await (await browser.$('[data-testid="receive-done"]')).waitForDisplayed({ timeout: 60_000 });
      expect(readFileSync(join(env.work, "downloads", "film.bin")).equals(readFileSync(join(src, "film.bin")))).toBe(true);
    } finally {
      sender.kill("SIGINT");
      helper.kill("SIGINT");
      await setLimit("");
    }
  });
});

describe("folders", () => {
  it("syncs a folder shared in the app with the ferry CLI", async () => {
    const dir = join(env.work, "app-folder");
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, "from-app.txt"), "shared by the app");
    await (await browser.$('[data-testid="nav-folders"]')).click();
    await (await browser.$('[data-testid="folders-empty"]')).waitForDisplayed({ timeout: 15_000 });
    await screenshot(browser, "folders-empty");
    // Dropping a folder on the Folders screen shares it for sync.
    await browser.execute((path: string) => {
      return (window as any).__TAURI_INTERNALS__.invoke("plugin:event|emit", {
        event: "tauri://drag-drop",
        payload: { paths: [path], position: { x: 10, y: 10 } },
      });
    }, dir);
    const field = await browser.$('[data-testid="folder-ticket"]');
    await field.waitForDisplayed({ timeout: 30_000 });
    const ticket = await field.getValue();

    const cliDir = join(env.work, "cli-folder");
    const joiner = ferry(namedHome(join(env.work, "home-cli-folder"), "Garden laptop"), ["folder", "join", ticket, cliDir]);
    try {
      const arrived = join(cliDir, "from-app.txt");
      const deadline = Date.now() + 30_000;
      while (!existsSync(arrived) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
      expect(readFileSync(arrived, "utf8")).toBe("shared by the app");
      // A change on the CLI side shows up in the app's folder status.
      writeFileSync(join(cliDir, "from-cli.txt"), "written next to the CLI");
      await browser.waitUntil(
        async () => String(await (await browser.$('[data-testid="folder-summary"]')).getProperty("textContent")).startsWith("2 files"),
        { timeout: 30_000, timeoutMsg: "the app never showed the CLI's new file" },
      );
      expect(readFileSync(join(dir, "from-cli.txt"), "utf8")).toBe("written next to the CLI");
      // Its state, its peer and the change itself are shown.
      const text = async (id: string) => String(await (await browser.$(`[data-testid="${id}"]`)).getProperty("textContent"));
      await browser.waitUntil(async () => (await text("folder-state")) === "Up to date", {
        timeout: 30_000,
        timeoutMsg: "the folder never showed as up to date",
      });
      expect(await text("folder-summary")).toContain("1 of 1 peer connected");
      // The peer by the name its changes carry, and how it is reached.
      await (await browser.$('[data-testid="folder-peers"] summary')).click();
      await browser.waitUntil(async () => (await text("folder-peers")).includes("connected directly"), {
        timeout: 30_000,
        timeoutMsg: "the peer never showed as connected directly",
      });
      expect(await text("folder-peers")).toContain("Garden laptop");
      expect(await text("folder-recent")).toContain("from-cli.txt");
      expect(await text("folder-recent")).toContain("Garden laptop");
      await (await browser.$('[data-testid="folder-recent"] summary')).click();
      await screenshot(browser, "folders");

      // A name other devices could not hold is listed with its reason, and the folder is not
      // called up to date while it is there.
      writeFileSync(join(dir, "aux.c"), "a device name on Windows");
      const notSynced = await browser.$('[data-testid="folder-not-synced"]');
      await notSynced.waitForDisplayed({ timeout: 30_000 });
      await (await browser.$('[data-testid="folder-not-synced"] summary')).click();
      expect(await text("folder-not-synced")).toContain("aux.c");
      expect(await text("folder-not-synced")).toContain("device name");
      expect(await text("folder-state")).not.toBe("Up to date");
      await screenshot(browser, "folders-not-synced");
      rmSync(join(dir, "aux.c"));
      await notSynced.waitForDisplayed({ timeout: 30_000, reverse: true });

      // A conflict copy is listed for review; keeping the first version moves the copy to the
      // trash (and the CLI side follows).
      const copy = "plan.sync-conflict-20261125-120000-laptop.txt";
      writeFileSync(join(dir, "plan.txt"), "the version kept");
      writeFileSync(join(dir, copy), "the other version");
      const conflicts = await browser.$('[data-testid="folder-conflicts"]');
      await conflicts.waitForDisplayed({ timeout: 30_000 });
      expect(await text("folder-conflicts")).toContain(copy);
      await screenshot(browser, "folders-conflict");
      // ... and announced, also while the window is hidden.
      await notified((n) => n.summary === "Ferry: a conflict in app-folder" && n.body.startsWith("plan.txt"));
      await (await browser.$('[data-testid="keep-original"]')).click();
      await browser.waitUntil(async () => !existsSync(join(dir, copy)) && !existsSync(join(cliDir, copy)), {
        timeout: 30_000,
        timeoutMsg: "the conflict copy was not resolved on both sides",
      });
      expect(readFileSync(join(cliDir, "plan.txt"), "utf8")).toBe("the version kept");

      // Leaving asks once, then stops syncing and keeps the files.
      const leave = await browser.$('[data-testid="folder-leave"]');
      await leave.click();
      expect(await text("folder-leave")).toContain("Press again");
      await leave.click();
      await (await browser.$('[data-testid="folders-empty"]')).waitForDisplayed({ timeout: 15_000 });
      expect(readFileSync(join(dir, "from-cli.txt"), "utf8")).toBe("written next to the CLI");
    } finally {
      joiner.kill("SIGINT");
    }
  });
});

describe("garbage input", () => {
  it("answers every command's garbage with a clear error, and the window stays usable", async () => {
    const huge = "__HUGE__";
    const binary = "\u0000\u0001\u00ff\ufffe";
    const calls: [string, Record<string, unknown>][] = [
      ["preview", { ticket: "" }],
      ["preview", { ticket: huge }],
      ["preview", { ticket: binary }],
      ["preview", { ticket: 42 }],
      ["share_paths", { paths: [] }],
      ["share_paths", { paths: ["/nonexistent/ferry-e2e"] }],
      ["share_paths", { paths: "not a list" }],
      ["stop_share", { id: -1 }],
      ["cancel_receive", { id: "seven" }],
      ["discard_transfer", { id: binary }],
      ["set_settings", { settings: { device_name: 5 } }],
      ["qr_svg", { text: huge }],
      ["folder_share", { path: "", readOnly: false }],
      ["folder_share", { path: "/nonexistent/ferry-e2e", readOnly: "yes" }],
      ["folder_join", { ticket: "garbage", path: "/tmp/ferry-e2e-join" }],
      ["folder_join", { ticket: huge, path: binary }],
      ["folder_leave", { path: "/not/a/synced/folder" }],
      ["folder_pause", { path: "/not/a/synced/folder", paused: true }],
      ["folder_pause", { path: binary, paused: "later" }],
      ["folder_rescan", { path: huge }],
      ["pause_all_sync", { paused: 3 }],
      ["quit_app", { force: "yes" }],
      ["resolve_conflict", { folder: "/tmp", copy: "../x.sync-conflict-1-2-d.txt", keep: "copy" }],
      ["resolve_conflict", { folder: "/tmp", copy: "a.txt", keep: "bogus" }],
      ["restore_from_trash", { folder: "/tmp", id: "../../etc/passwd" }],
      ["open_in_folder", { folder: "/tmp", rel: "../etc/passwd" }],
      ["reveal", { path: binary }],
      ["set_autostart", { enabled: "maybe" }],
      ["check_update", {}],
    ];
    for (const [cmd, args] of calls) {
      // Huge values are made in the page, not sent through the WebDriver connection; the
      // answer is left in a global and read back (the driver does not await page promises).
      await browser.execute(
        (cmd: string, json: string) => {
          const w = window as any;
          const big = "x".repeat(1_000_000);
          const args = JSON.parse(json, (_k, v) => (v === "__HUGE__" ? big : v));
          w.__garbage = null;
          w.__TAURI_INTERNALS__.invoke(cmd, args).then(
            (ok: unknown) => (w.__garbage = { ok: true, value: typeof ok === "string" ? ok.slice(0, 80) : ok }),
            // Not "error": WebdriverIO takes any result with that key for a driver error.
            (e: unknown) => (w.__garbage = { ok: false, failure: e }),
          );
        },
        cmd,
        JSON.stringify(args),
      );
      let outcome: { ok: boolean; value?: unknown; failure?: unknown } | null = null;
      await browser.waitUntil(
        async () => {
          outcome = (await browser.execute(() => (window as any).__garbage)) as typeof outcome;
          return outcome !== null;
        },
        { timeout: 30_000, timeoutMsg: `${cmd} never answered` },
      );
      if (!outcome) throw new Error(`${cmd}: no answer`);
      const label = `${cmd}(${JSON.stringify(args).slice(0, 80)})`;
      expect(outcome.ok, `${label} succeeded: ${JSON.stringify(outcome.value)}`).toBe(false);
      const message =
        typeof outcome.failure === "string"
          ? outcome.failure
          : String((outcome.failure as { message?: string })?.message ?? "");
      expect(message.length, `${label} gave no message`).toBeGreaterThan(0);
      expect(message, label).not.toMatch(/panicked|RUST_BACKTRACE/);
    }
    // The window still works: switch screens and see them.
    await (await browser.$('[data-testid="nav-send"]')).click();
    await (await browser.$('[data-testid="nav-folders"]')).click();
    await (await browser.$('[data-testid="folders-empty"]')).waitForDisplayed({ timeout: 15_000 });
  });
});

describe("offers", () => {
  // Another device, running: a `ferry run` daemon on its own home.
  const kitchenHome = join(env.work, "home-offer");
  let kitchen: ReturnType<typeof ferry> | null = null;
  afterAll(() => {
    kitchen?.kill("SIGINT");
  });
  const cli = (args: string[]) => execFileSync(env.ferry, ["--home", kitchenHome, "--relay", "disabled", "--bind", "127.0.0.1:0", ...args]).toString();

  it("shows an offer from another device, and accepting it receives the files", async () => {
    kitchen = ferry(namedHome(kitchenHome, "Kitchen PC"), ["run"]);
    await stderrLine(kitchen, "running");
    // The app's node, as the CLI's running-node channel reports it.
    const statusLine = execFileSync(env.ferry, ["--home", process.env.FERRY_HOME!, "--json", "status"]).toString();
    const me = JSON.parse(statusLine);
    const to = `${me.node_id}@${me.addrs[0]}`;
    const file = join(env.work, "offered", "menu.txt");
    mkdirSync(join(file, ".."), { recursive: true });
    writeFileSync(file, "soup of the day\n");
    const sender = ferry(kitchenHome, ["send", "--to", to, file]);
    try {
      const row = await browser.$('[data-testid="offer-row"]');
      await (await browser.$('[data-testid="nav-receive"]')).click();
      await row.waitForDisplayed({ timeout: 30_000 });
      const text = String(await row.getProperty("textContent"));
      expect(text).toContain("Kitchen PC");
      expect(text).toContain("menu.txt");
      expect(text).toContain("not a contact");
      await notified((n) => n.summary === "Ferry: Kitchen PC (not a contact) wants to send you files");
      await screenshot(browser, "receive-offer");
      await (await browser.$('[data-testid="offer-accept"]')).click();
      // The usual preview, then Download.
      await (await browser.$('[data-testid="offer-entries"]')).waitForDisplayed({ timeout: 30_000 });
      await (await browser.$('[data-testid="accept"]')).click();
      await (await browser.$('[data-testid="receive-done"]')).waitForDisplayed({ timeout: 60_000 });
      expect(readFileSync(join(env.work, "downloads", "menu.txt"), "utf8")).toBe("soup of the day\n");
      await stderrLine(sender, "accepted", 30_000);
    } finally {
      sender.kill("SIGINT");
    }
  });

  it("sends to a device picked on the Send screen, which accepts; the device is named everywhere", async () => {
    // Kitchen PC is a contact now: the Send screen offers it as a target.
    const src = join(env.work, "to-device");
    mkdirSync(src, { recursive: true });
    writeFileSync(join(src, "notes.txt"), "bring the big pot\n");
    await (await browser.$('[data-testid="nav-send"]')).click();
    await browser.execute((path: string) => {
      return (window as any).__TAURI_INTERNALS__.invoke("plugin:event|emit", {
        event: "tauri://drag-drop",
        payload: { paths: [path], position: { x: 10, y: 10 } },
      });
    }, join(src, "notes.txt"));
    const findCard = async () => {
      for (const c of await browser.$$('[data-testid="share-card"]')) {
        if (String(await c.getProperty("textContent")).includes("notes.txt") && (await c.$('[data-testid="ticket"]').isExisting())) return c;
      }
      return null;
    };
    await browser.waitUntil(async () => (await findCard()) != null, { timeout: 30_000, timeoutMsg: "no ticket for the share" });
    const target = async () => {
      for (const b of await (await findCard())!.$$('[data-testid="device-target"]')) {
        if (String(await b.getProperty("textContent")).includes("Kitchen PC")) return b;
      }
      return null;
    };
    await browser.waitUntil(async () => (await target()) != null, { timeout: 15_000, timeoutMsg: "Kitchen PC is not a target" });
    await (await target())!.click();
    const state = async () => String(await (await (await findCard())!.$('[data-testid="offer-state"]')).getProperty("textContent"));
    await browser.waitUntil(async () => (await state()) === "Waiting for an answer", { timeout: 15_000, timeoutMsg: "the offer is not shown waiting" });

    // The other device sees the offer, from this one, and accepts it.
    let offer: any = null;
    await browser.waitUntil(
      async () => {
        const line = cli(["--json", "incoming"]).split("\n")[0];
        offer = line ? JSON.parse(line) : null;
        return offer != null;
      },
      { timeout: 30_000, timeoutMsg: "the offer never arrived" },
    );
    const me = JSON.parse(execFileSync(env.ferry, ["--home", process.env.FERRY_HOME!, "--json", "status"]).toString());
    expect(offer.from).toBe(me.node_id);
    expect(offer.title).toBe("notes.txt");
    expect(offer.contact).toBe(true);
    const out = join(env.work, "kitchen-in");
    mkdirSync(out, { recursive: true });
    cli(["accept", String(offer.id), "--out", out]);
    expect(readFileSync(join(out, "notes.txt"), "utf8")).toBe("bring the big pot\n");
    await browser.waitUntil(async () => (await state()) === "Received everything", { timeout: 30_000, timeoutMsg: "the offer never showed done" });
    // The receiver's row carries its name, not its id.
    const peers = await (await findCard())!.$$('[data-testid="peer"]');
    expect(String(await peers[0].getProperty("textContent"))).toContain("Kitchen PC");
    await screenshot(browser, "send-to-device");

    // Settings lists it; renamed there, it is called so on the Send screen too.
    await (await browser.$('[data-testid="nav-settings"]')).click();
    const row = await browser.$('[data-testid="contact-row"]');
    await row.waitForDisplayed({ timeout: 15_000 });
    expect(String(await row.getProperty("textContent"))).toContain("Kitchen PC");
    await (await row.$('[data-testid="contact-rename"]')).click();
    const input = await browser.$('[data-testid="contact-name"]');
    await input.setValue("Kitchen");
    await browser.keys("Enter");
    await browser.waitUntil(async () => String(await (await browser.$('[data-testid="contact-row"]')).getProperty("textContent")).includes("calls itself “Kitchen PC”"), {
      timeout: 15_000,
      timeoutMsg: "the rename did not show",
    });
    await (await browser.$('[data-testid="contacts"]')).scrollIntoView();
    await screenshot(browser, "settings-devices");
    await (await browser.$('[data-testid="nav-send"]')).click();
    const names = async () => {
      const out: string[] = [];
      for (const b of await (await findCard())!.$$('[data-testid="device-target"]')) out.push(String(await b.getProperty("textContent")));
      return out;
    };
    await browser.waitUntil(async () => (await names()).some((n) => n.includes("Kitchen") && !n.includes("Kitchen PC")), {
      timeout: 15_000,
      timeoutMsg: "the new name is not on the Send screen",
    });
  });
});

describe("in the background", () => {
  it("keeps sharing with the window closed, and opening Ferry again shows it", async () => {
    const src = join(env.work, "background-share", "Evening");
    makeTree(src);
    await (await browser.$('[data-testid="nav-send"]')).click();
    const before = (await browser.$$('[data-testid="ticket"]')).length;
    await browser.execute((path: string) => {
      return (window as any).__TAURI_INTERNALS__.invoke("plugin:event|emit", {
        event: "tauri://drag-drop",
        payload: { paths: [path], position: { x: 10, y: 10 } },
      });
    }, src);
    await browser.waitUntil(async () => (await browser.$$('[data-testid="ticket"]')).length > before, {
      timeout: 30_000,
      timeoutMsg: "the share never became ready",
    });
    // The newest share comes first.
    const ticket = await (await browser.$('[data-testid="ticket"]')).getValue();

    // The window manager's close button: the window goes, Ferry stays.
    expect(x11("close")).not.toBe("0");
    await until(() => x11("state") === "hidden", "the window never hid");
    await notified((n) => n.summary === "Ferry is still running");
    const out = join(env.work, "background-received");
    mkdirSync(out, { recursive: true });
    const result = await exit(ferry(join(env.work, "home-background"), ["receive", ticket, "--out", out]));
    expect(result.code, result.stderr).toBe(0);
    expect(sameTree(src, join(out, "Evening"))).toBeNull();
    expect(x11("state")).toBe("hidden");

    // Opening Ferry again hands over to the running app, which shows its window.
    const second = spawn(env.app, [], { stdio: "ignore" });
    const code = await new Promise<number | null>((resolve) => second.once("exit", resolve));
    expect(code, "the second launch hands over and exits").toBe(0);
    await until(() => x11("state") === "shown", "the window never came back");
    await (await browser.$('[data-testid="nav-send"]')).waitForDisplayed();
  });

  it("asks before quitting while a share runs, and keeps running when told to", async () => {
    await browser.keys(["Control", "q"]);
    const dialog = await browser.$('[data-testid="quit-dialog"]');
    await dialog.waitForDisplayed({ timeout: 15_000 });
    const text = String(await dialog.getProperty("textContent"));
    expect(text).toContain("Sharing Evening");
    expect(text).toContain("Sharing Project");
    await screenshot(browser, "quit-question");
    await (await browser.$('[data-testid="quit-keep"]')).click();
    await dialog.waitForDisplayed({ reverse: true, timeout: 15_000 });
    expect(x11("state")).toBe("shown");
  });
});

describe("languages", () => {
  it("switches to German from the settings, at once", async () => {
    await (await browser.$('[data-testid="nav-settings"]')).click();
    const select = await browser.$('[data-testid="settings-language"]');
    await select.waitForDisplayed({ timeout: 15_000 });
    await select.selectByAttribute("value", "de");
    await (await browser.$('button[type="submit"]')).click();
    await browser.waitUntil(async () => (await (await browser.$('[data-testid="nav-send"]')).getText()).includes("Senden"), {
      timeout: 15_000,
      timeoutMsg: "the navigation never turned German",
    });
    await screenshot(browser, "settings-de");
    await (await browser.$('[data-testid="nav-send"]')).click();
    await (await browser.$('[data-testid="ticket"]')).waitForDisplayed({ timeout: 15_000 });
    expect(String(await (await browser.$("main")).getProperty("textContent"))).toContain("Teilen beenden");
    await screenshot(browser, "send-de");
    await (await browser.$('[data-testid="nav-folders"]')).click();
    await (await browser.$('[data-testid="folders-empty"]')).waitForDisplayed({ timeout: 15_000 });
    await screenshot(browser, "folders-de");
  });
});

describe("quitting", () => {
  it("quits when told to, and lets go of its home", async () => {
    await browser.keys(["Control", "q"]);
    await (await browser.$('[data-testid="quit-dialog"]')).waitForDisplayed({ timeout: 15_000 });
    await (await browser.$('[data-testid="quit-anyway"]')).click();
    await until(() => x11("state") === "gone", "the window never went away", 30_000);
    // The node let go of its home: a command that asks it finds none.
    const status = await exit(spawn(env.ferry, ["--home", process.env.FERRY_HOME!, "--json", "status"], { stdio: ["ignore", "pipe", "pipe"] }));
    expect(status.code, status.stderr).toBe(1);
    expect(status.stderr).toContain("not_running");
  });
});

/** Runs ui/e2e/x11.py (close or state) on the window titled Ferry. */
function x11(what: "close" | "state"): string {
  return execFileSync("/usr/bin/python3", [new URL("./x11.py", import.meta.url).pathname, what, "Ferry"]).toString().trim();
}

async function until(f: () => boolean, message: string, ms = 15_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!f()) {
    if (Date.now() > deadline) throw new Error(message);
    await new Promise((r) => setTimeout(r, 100));
  }
}
