//! Entry point of the Ferry desktop app; everything lives in the library.
#![cfg_attr(not(debug_assertions), windows_subsystem = "windows")]

/// jemalloc rather than glibc's allocator, as in the `ferry` daemon: see docs/DESIGN.md,
/// "Memory given back".
#[cfg(target_os = "linux")]
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

fn main() {
    ferry_app::run();
}
