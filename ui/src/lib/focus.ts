// Keyboard and screen-reader users land on what just appeared.

/** A Svelte action: focuses the element when it appears (it needs tabindex="-1" if it is not a control). */
export function focusOnMount(node: HTMLElement): void {
  queueMicrotask(() => node.focus({ preventScroll: false }));
}
