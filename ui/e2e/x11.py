#!/usr/bin/python3
"""What a window manager does to the app's window, for a test under Xvfb (which runs none).

  x11.py close TITLE   asks each top-level window titled TITLE to close (WM_DELETE_WINDOW,
                       as a window manager does when its close button is pressed)
  x11.py state TITLE   prints "shown" if such a window is mapped, "hidden" if there is one but
                       none is mapped, "gone" if there is none
"""
import sys

from Xlib import X, display, protocol


def windows(d, title):
    for w in d.screen().root.query_tree().children:
        try:
            if w.get_wm_name() == title:
                yield w
        except Exception:
            pass


def main():
    what, title = sys.argv[1], sys.argv[2]
    d = display.Display()
    found = list(windows(d, title))
    if what == "close":
        protocols = d.intern_atom("WM_PROTOCOLS")
        delete = d.intern_atom("WM_DELETE_WINDOW")
        for w in found:
            event = protocol.event.ClientMessage(
                window=w, client_type=protocols, data=(32, [delete, X.CurrentTime, 0, 0, 0])
            )
            w.send_event(event)
        d.flush()
        print(len(found))
    elif what == "state":
        if not found:
            print("gone")
        elif any(w.get_attributes().map_state == X.IsViewable for w in found):
            print("shown")
        else:
            print("hidden")
    else:
        sys.exit(f"unknown command {what}")


main()
