// Recognising tickets people paste or copy, before the core parses them.

/** True if `text` looks like a one-shot ticket (a Ferry or sendme ticket or a ferry:// link). */
export function looksLikeTicket(text: string | null | undefined): text is string {
  if (!text) return false;
  const s = text.trim();
  if (s.length < 20 || s.length > 4096 || /\s/.test(s)) return false;
  return /^blob[a-z2-7]+$/i.test(s) || /^ferry:\/\/receive\/blob[a-z2-7]+$/i.test(s);
}
