//! Entry point of the Ferry desktop app; everything lives in the library.
#![cfg_attr(not(debug_assertions), windows_subsystem = "windows")]

fn main() {
    ferry_app::run();
}
