// The window-wide drop zone: Tauri's drag-drop event carries the real paths.
import { getCurrentWebview } from "@tauri-apps/api/webview";

export interface DropHandlers {
  onHover: (hovering: boolean) => void;
  onDrop: (paths: string[]) => void;
}

/** Listens for files dragged over and dropped on the window; returns the unlisten function. */
export async function listenForDrops(h: DropHandlers): Promise<() => void> {
  return getCurrentWebview().onDragDropEvent((event) => {
    const p = event.payload;
    if (p.type === "enter" || p.type === "over") h.onHover(true);
    else if (p.type === "leave") h.onHover(false);
    else if (p.type === "drop") {
      h.onHover(false);
      if (p.paths.length) h.onDrop(p.paths);
    }
  });
}
