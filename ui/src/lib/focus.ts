// Keyboard and screen-reader users land on what just appeared, once: an element shown again
// (the user came back to its screen) does not take the focus again.

const focused = new Set<string>();

/**
 * A Svelte action: focuses the element the first time it appears for `key` (an offer's hash,
 * an error's number); nothing when `key` is undefined. Elements that are not controls need
 * tabindex="-1".
 */
export function focusOnce(node: HTMLElement, key: string | undefined) {
  const take = (k: string | undefined) => {
    if (k === undefined || focused.has(k)) return;
    focused.add(k);
    queueMicrotask(() => node.focus());
  };
  take(key);
  return { update: take };
}
