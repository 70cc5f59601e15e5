// The message catalog. Every string the UI shows comes from ui/src/locales/<language>/<part>.json
// through `t`; numbers, sizes and dates are formatted with `Intl` in the same language.
//
// i18next resolves keys ("part:key", nested with "."), plurals (`_one` / `_other`, chosen by
// Intl.PluralRules) and `{{name}}` parameters. `t` reads the current language from a rune, so
// whatever a component shows through it is redrawn when the language changes.
import i18next from "i18next";

type Messages = { [key: string]: string | Messages };

const files = import.meta.glob("../locales/*/*.json", { eager: true, import: "default" }) as Record<string, Messages>;

/** The catalogs: language → part → messages. */
export const catalogs: Record<string, Record<string, Messages>> = {};
for (const [path, messages] of Object.entries(files)) {
  const m = path.match(/locales\/([^/]+)\/([^/]+)\.json$/);
  if (m) (catalogs[m[1]] ??= {})[m[2]] = messages;
}

/** The languages the UI is complete in, each named in itself. */
export const LANGUAGES: { code: string; name: string }[] = [
  { code: "en", name: "English" },
  { code: "de", name: "Deutsch" },
];

const current = $state({ lang: "en" });

i18next.init({
  resources: catalogs,
  lng: "en",
  fallbackLng: "en",
  ns: Object.keys(catalogs.en ?? {}),
  defaultNS: "common",
  // Svelte escapes what it shows; escaping here too would show "&amp;".
  interpolation: { escapeValue: false },
  initAsync: false,
});

/**
 * The language to show: the setting if it names a language the UI has, else the first of the
 * system's languages the UI has, else English.
 */
export function pickLanguage(setting: string | null | undefined, system: readonly string[]): string {
  const known = (tag: string | null | undefined) => {
    const primary = tag?.toLowerCase().split(/[-_]/)[0];
    return LANGUAGES.find((l) => l.code === primary)?.code;
  };
  return known(setting) ?? system.map(known).find((c) => c) ?? "en";
}

/** Shows the UI in `lang` from now on. */
export function setLanguage(lang: string): void {
  current.lang = pickLanguage(lang, []);
  void i18next.changeLanguage(current.lang);
  document.documentElement.lang = current.lang;
}

/** The language shown now (for `Intl` formatters). */
export function language(): string {
  return current.lang;
}

/** The message `key` ("part:key") in the current language, with `params` filled in. */
export function t(key: string, params?: Record<string, unknown>): string {
  // Read the rune so that callers in templates depend on the language.
  const lng = current.lang;
  return i18next.t(key, { lng, ...params }) as string;
}

/** True if the catalog has `key` ("part:key") in English (every language has what English has). */
export function has(key: string): boolean {
  return i18next.exists(key, { lng: "en" });
}
