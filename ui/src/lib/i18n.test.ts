import { describe, expect, it } from "vitest";
import { readdirSync, readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import { catalogs, LANGUAGES, pickLanguage, setLanguage, t } from "./i18n.svelte";
import { ERROR_CODES, WHY_CODES } from "./bindings";
import { whyText } from "./notsynced";
import { explain } from "./errors";
import { formatBytes, formatEta } from "./format";

type Messages = { [key: string]: string | Messages };

function flatten(m: Messages, prefix = ""): string[] {
  return Object.entries(m).flatMap(([k, v]) => (typeof v === "string" ? [prefix + k] : flatten(v, `${prefix}${k}.`)));
}

function keys(lang: string): Set<string> {
  return new Set(Object.entries(catalogs[lang]).flatMap(([ns, m]) => flatten(m).map((k) => `${ns}:${k}`)));
}

function sources(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) return sources(p);
    return /\.(svelte|ts)$/.test(name) && !name.endsWith(".test.ts") && name !== "bindings.ts" ? [p] : [];
  });
}

describe("message catalog", () => {
  const en = keys("en");

  it("has every language complete: no key missing or extra", () => {
    for (const { code } of LANGUAGES) {
      const other = keys(code);
      expect([...en].filter((k) => !other.has(k)), `missing in ${code}`).toEqual([]);
      expect([...other].filter((k) => !en.has(k)), `only in ${code}`).toEqual([]);
    }
  });

  it("keeps each message's parameters in every language", () => {
    const params = (s: string) => [...s.matchAll(/\{\{(\w+)\}\}/g)].map((m) => m[1]).sort();
    for (const { code } of LANGUAGES) {
      for (const key of en) {
        const [ns, k] = key.split(":");
        expect(params(t(`${ns}:${k}`, { lng: code })), `${code} ${key}`).toEqual(params(t(`${ns}:${k}`, { lng: "en" })));
      }
    }
  });

  it("has every key the code asks for", () => {
    const root = join(__dirname, "..");
    const missing: string[] = [];
    for (const file of sources(root)) {
      const text = readFileSync(file, "utf8");
      for (const m of text.matchAll(/\bt\(\s*"([a-z_]+:[A-Za-z0-9_.]+)"/g)) {
        const key = m[1];
        if (!en.has(key) && !en.has(`${key}_one`) && !en.has(`${key}_other`)) missing.push(`${file}: ${key}`);
      }
    }
    expect(missing).toEqual([]);
  });

  it("words every error code the app can receive, in every language", () => {
    for (const { code: lang } of LANGUAGES) {
      setLanguage(lang);
      for (const code of ERROR_CODES) {
        const e = explain({ code, message: "core says", params: { path: "/x", needed: "2000000000", available: "1000", reason: "r", detail: "d" } });
        expect(e.code).toBe(code);
        expect(e.title, `${lang} ${code}`).not.toContain("errors:");
        expect(e.next, `${lang} ${code}`).not.toContain("errors:");
        expect(e.title).not.toMatch(/\{\{/);
      }
    }
    setLanguage("en");
  });

  it("words every reason a file is not synced, in every language", () => {
    const params = { name: "aux.c", char: "?", other: "AUX.C", why: "windows_device", reason: "r" };
    for (const { code: lang } of LANGUAGES) {
      setLanguage(lang);
      for (const code of WHY_CODES) {
        const text = whyText({ code, params, reason: "core text" });
        expect(text, `${lang} ${code}`).not.toBe("core text");
        expect(text).not.toMatch(/\{\{|folders:/);
      }
    }
    setLanguage("en");
    expect(whyText({ code: "only_here", params, reason: "x" })).toBe(
      "“aux.c” is a device name on Windows. Kept on this device only, so that every device can hold the folder.",
    );
    expect(whyText({ code: "from_the_future", params: {}, reason: "the core's words" })).toBe("the core's words");
  });

  it("turns parameters into sizes and unknown codes into a general message", () => {
    setLanguage("en");
    const full = explain({ code: "disk_full", message: "not enough", params: { path: "/media/usb", needed: "53687091200", available: "1000000000" } });
    expect(full.title).toBe("Not enough free space in /media/usb");
    expect(full.next).toContain("54 GB");
    expect(full.next).toContain("1.0 GB");
    expect(full.actions).toContain("choose_folder");
    const odd = explain({ code: "from_the_future", message: "new", params: {} });
    expect(odd.code).toBe("unknown");
    expect(odd.detail).toBe("new");
    expect(explain("plain text").detail).toBe("plain text");
  });

  it("follows the setting, else the system, else English; formats in that language", () => {
    expect(pickLanguage(null, ["de-AT", "en-US"])).toBe("de");
    expect(pickLanguage("en", ["de-DE"])).toBe("en");
    expect(pickLanguage(undefined, ["fr-FR", "ja"])).toBe("en");
    expect(pickLanguage("xx", ["fr", "de"])).toBe("de");
    setLanguage("de");
    expect(formatBytes(1500)).toBe("1,5 KB");
    expect(formatEta(125)).toBe("noch 2 min 5 s");
    expect(t("receive:done", { count: 1 })).toContain("1 Datei");
    expect(t("receive:done", { count: 3 })).toContain("3 Dateien");
    setLanguage("en");
    expect(formatBytes(1500)).toBe("1.5 KB");
  });
});
