//! The `rask` binary's allocator, chosen once per process before `main`:
//!
//! - jemalloc (Polars' choice on Linux) for everything but worker processes: its
//!   per-thread caches take no lock where glibc's malloc spent a quarter of a
//!   join's time waiting on its arena locks (the join benchmark runs about 2x
//!   faster with it, the bag benchmark about 1.1x, BENCHMARKS.md);
//! - glibc's malloc for `rask worker`, which has a memory limit to keep: large
//!   blocks come straight from mmap and go straight back, and grow by `mremap`
//!   without a copy, so resident memory tracks what the worker holds. With
//!   jemalloc (freed pages purged at once) the memory test's workers peaked at
//!   84-110% of their limit in ten runs; with glibc at 86-93%.
//!
//! `RASK_ALLOCATOR=system` or `=jemalloc` overrides the choice.

use std::alloc::{GlobalAlloc, Layout, System};
use std::ffi::{c_char, c_int, CStr};
use std::sync::atomic::{AtomicBool, Ordering};
use tikv_jemallocator::Jemalloc;

/// jemalloc's options, read when it starts: large blocks (file reads, columns)
/// are served from the ordinary arenas and their freed pages reused for ten
/// seconds, instead of a dedicated arena that returns them at once (the groupby
/// benchmark then spent its time faulting fresh pages in for every file read);
/// a background thread purges what lies unused.
#[export_name = "_rjem_malloc_conf"]
#[used]
static MALLOC_CONF: JemallocConf =
    JemallocConf(c"oversize_threshold:0,background_thread:true".as_ptr());

/// A C string jemalloc reads (`const char *malloc_conf`).
#[repr(transparent)]
struct JemallocConf(*const c_char);

// SAFETY: the pointer is to a static string that is never written.
unsafe impl Sync for JemallocConf {}

/// Set before `main` when this process allocates with glibc's malloc.
static USE_SYSTEM: AtomicBool = AtomicBool::new(false);

/// Allocates with jemalloc or glibc's malloc, as [`choose`] decided.
pub struct RaskAllocator;

// SAFETY: both allocators uphold `GlobalAlloc`'s contract, and a process uses only
// the one chosen before its first allocation (the choice never changes).
unsafe impl GlobalAlloc for RaskAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if USE_SYSTEM.load(Ordering::Relaxed) {
            System.alloc(layout)
        } else {
            Jemalloc.alloc(layout)
        }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        if USE_SYSTEM.load(Ordering::Relaxed) {
            System.alloc_zeroed(layout)
        } else {
            Jemalloc.alloc_zeroed(layout)
        }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        if USE_SYSTEM.load(Ordering::Relaxed) {
            System.dealloc(ptr, layout)
        } else {
            Jemalloc.dealloc(ptr, layout)
        }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if USE_SYSTEM.load(Ordering::Relaxed) {
            System.realloc(ptr, layout, new_size)
        } else {
            Jemalloc.realloc(ptr, layout, new_size)
        }
    }
}

/// Runs before `main` and before any allocation through [`RaskAllocator`]
/// (glibc calls `.init_array` functions with the program's arguments and
/// environment, as Rust's standard library does to capture them).
#[cfg(all(target_os = "linux", target_env = "gnu"))]
#[used]
#[link_section = ".init_array"]
static CHOOSE: extern "C" fn(c_int, *const *const c_char, *const *const c_char) = choose;

/// glibc's malloc when the subcommand is `worker` or `RASK_ALLOCATOR=system`;
/// jemalloc otherwise.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
extern "C" fn choose(argc: c_int, argv: *const *const c_char, envp: *const *const c_char) {
    let mut system = false;
    // SAFETY: glibc passes `argc` valid strings in `argv`, and a null-terminated
    // `envp` of valid strings.
    unsafe {
        if argc >= 2 && !argv.is_null() && !(*argv.add(1)).is_null() {
            system = CStr::from_ptr(*argv.add(1)).to_bytes() == b"worker";
        }
        let mut at = envp;
        while !at.is_null() && !(*at).is_null() {
            match CStr::from_ptr(*at).to_bytes() {
                b"RASK_ALLOCATOR=system" => system = true,
                b"RASK_ALLOCATOR=jemalloc" => system = false,
                _ => {}
            }
            at = at.add(1);
        }
    }
    USE_SYSTEM.store(system, Ordering::Relaxed);
}

/// An error naming `RASK_ALLOCATOR` when it is set to neither `system` nor
/// `jemalloc` (the choice before `main` then fell back to the default).
pub fn check_override() -> Result<(), String> {
    match std::env::var_os("RASK_ALLOCATOR") {
        None => Ok(()),
        Some(value) if value == "system" || value == "jemalloc" => Ok(()),
        Some(value) => Err(format!(
            "RASK_ALLOCATOR={}: expected `system` or `jemalloc`",
            value.to_string_lossy()
        )),
    }
}

/// Which allocator this process uses, for logs.
pub fn name() -> &'static str {
    if USE_SYSTEM.load(Ordering::Relaxed) {
        "glibc malloc"
    } else {
        "jemalloc"
    }
}
