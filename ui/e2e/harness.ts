// Helpers for driving the real Ferry window: app session, ferry CLI processes, file checks.
import { execFileSync, spawn, type ChildProcess } from "node:child_process";
import { createInterface } from "node:readline";
import { existsSync, mkdirSync, readFileSync, readdirSync, statSync, writeFileSync } from "node:fs";
import { join, relative } from "node:path";
import { remote } from "webdriverio";

export const env = {
  app: must("FERRY_APP"),
  ferry: must("FERRY_BIN"),
  work: must("FERRY_E2E_WORK"),
  shots: must("FERRY_E2E_SHOTS"),
  theme: process.env.FERRY_E2E_THEME ?? "light",
  notes: must("FERRY_E2E_NOTES"),
};

/** A desktop notification the app showed (recorded by ui/e2e/notifications.py). */
export type Note = { summary: string; body: string };

/** Waits until the app has shown a notification `match` accepts; returns it. */
export async function notified(match: (n: Note) => boolean, ms = 30_000): Promise<Note> {
  const deadline = Date.now() + ms;
  for (;;) {
    const shown: Note[] = existsSync(env.notes)
      ? readFileSync(env.notes, "utf8").split("\n").filter(Boolean).map((l) => JSON.parse(l))
      : [];
    const found = shown.find(match);
    if (found) return found;
    if (Date.now() > deadline) throw new Error(`no such notification; shown: ${JSON.stringify(shown)}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

function must(name: string): string {
  const v = process.env[name];
  if (!v) throw new Error(`${name} is not set: run the suite through scripts/e2e.sh`);
  return v;
}

export type Browser = Awaited<ReturnType<typeof remote>>;

/** Opens the app through tauri-driver (listening on 127.0.0.1:4444). */
export async function openApp(): Promise<Browser> {
  return remote({
    hostname: "127.0.0.1",
    port: 4444,
    logLevel: "warn",
    capabilities: {
      "tauri:options": { application: env.app },
      "wdio:enforceWebDriverClassic": true,
    } as any,
  });
}

/**
 * Saves a screenshot of the app window as X11 shows it. (WebKitWebDriver's own screenshot waits
 * for the next repaint, which a still page under Xvfb may never do.)
 */
export async function screenshot(_browser: Browser, name: string): Promise<void> {
  mkdirSync(env.shots, { recursive: true });
  const id = execFileSync("xdotool", ["search", "--name", "^Ferry$"]).toString().trim().split("\n")[0];
  execFileSync("import", ["-window", id, join(env.shots, `${name}-${env.theme}.png`)]);
}

/** A `ferry` process on its own home, offline and on loopback. */
export function ferry(home: string, args: string[]): ChildProcess {
  return spawn(env.ferry, ["--home", home, "--relay", "disabled", "--bind", "127.0.0.1:0", ...args], {
    stdio: ["ignore", "pipe", "pipe"],
  });
}

/** The first stdout line of a process (its ticket), within `ms`. */
export function firstLine(p: ChildProcess, ms = 60_000): Promise<string> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error("no output in time")), ms);
    createInterface({ input: p.stdout! }).once("line", (line) => {
      clearTimeout(timer);
      resolve(line.trim());
    });
    p.once("exit", (code) => reject(new Error(`exited with ${code} before printing`)));
  });
}

/** Resolves once a process prints a stderr line containing `text`, within `ms`. */
export function stderrLine(p: ChildProcess, text: string, ms = 60_000): Promise<string> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no stderr line with ${text} in time`)), ms);
    const lines = createInterface({ input: p.stderr! });
    lines.on("line", (line) => {
      if (line.includes(text)) {
        clearTimeout(timer);
        lines.close();
        resolve(line);
      }
    });
    p.once("exit", (code) => reject(new Error(`exited with ${code} before printing ${text}`)));
  });
}

/** A `ferry` home whose device is called `name`. */
export function namedHome(dir: string, name: string): string {
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, "settings.json"), JSON.stringify({ device_name: name }));
  return dir;
}

/** Waits for a process to exit; resolves with its exit code and stderr. */
export function exit(p: ChildProcess): Promise<{ code: number | null; stderr: string }> {
  let stderr = "";
  p.stderr!.on("data", (d) => (stderr += d));
  return new Promise((resolve) => p.once("exit", (code) => resolve({ code, stderr })));
}

/** Writes a small tree of files with varied content. */
export function makeTree(root: string): void {
  const files: Record<string, Buffer> = {
    "readme.txt": Buffer.from("hello from ferry\n"),
    "photos/beach.jpg": Buffer.alloc(300_000, 7),
    "photos/ünïcødé name.txt": Buffer.from("unicode"),
    "empty.dat": Buffer.alloc(0),
  };
  for (const [name, data] of Object.entries(files)) {
    const p = join(root, name);
    mkdirSync(join(p, ".."), { recursive: true });
    writeFileSync(p, data);
  }
}

/** Every file below `a` exists below `b` with identical bytes, and nothing more. */
export function sameTree(a: string, b: string): string | null {
  const list = (root: string): string[] => {
    const out: string[] = [];
    const walk = (d: string) => {
      for (const e of readdirSync(d)) {
        const p = join(d, e);
        if (statSync(p).isDirectory()) walk(p);
        else out.push(relative(root, p));
      }
    };
    walk(root);
    return out.sort();
  };
  const la = list(a);
  const lb = list(b);
  if (JSON.stringify(la) !== JSON.stringify(lb)) return `file lists differ: ${la} vs ${lb}`;
  for (const f of la) {
    if (!readFileSync(join(a, f)).equals(readFileSync(join(b, f)))) return `${f} differs`;
  }
  return null;
}
