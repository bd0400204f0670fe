//! How the process's allocators hand memory back to the system. A worker with a
//! memory limit wants its resident memory to track what it holds (freed pages go
//! back soon, and at once when the memory manager asks); an in-process cluster
//! without a limit wants freed memory kept for reuse, since fresh pages for every
//! chunk are slow. glibc's malloc is tuned either way; a binary that also
//! allocates with another allocator (the `rask` binary uses jemalloc) hands its
//! controls over with [`set_allocator_controls`], and they are tuned too.
//!
//! A hook rather than a dependency: a library linking rask (an op plugin above
//! all) must not carry an allocator of its own, whose thread-local storage a
//! `dlopen` cannot place.

use std::sync::OnceLock;

/// Controls of an allocator besides glibc's malloc.
#[derive(Debug, Clone, Copy)]
pub struct AllocatorControls {
    /// Freed pages go back to the system at once (a worker with a memory limit).
    pub return_freed_at_once: fn(),
    /// Freed pages go back from a background thread, in the allocator's time.
    pub return_freed_in_background: fn(),
    /// Every free page goes back now.
    pub purge: fn(),
}

static CONTROLS: OnceLock<AllocatorControls> = OnceLock::new();

/// Tunes this allocator too from now on; the first call wins.
pub fn set_allocator_controls(controls: AllocatorControls) {
    let _ = CONTROLS.set(controls);
}

/// For a worker with a memory limit: freed memory goes back to the system, so
/// process memory tracks what is held. glibc serves large blocks straight from
/// mmap and trims free heap tops; jemalloc purges freed pages at once.
pub fn tune_allocator() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only changes allocator thresholds.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 64 * 1024);
        libc::mallopt(libc::M_TRIM_THRESHOLD, 1024 * 1024);
    }
    if let Some(controls) = CONTROLS.get() {
        (controls.return_freed_at_once)();
    }
}

/// For an in-process cluster without a memory limit: freed memory is kept for
/// reuse instead of every large block going back to the system, so a new chunk
/// does not pay a page fault per page. glibc's heap is never trimmed as blocks
/// are freed; a background thread gives free memory back once the process has
/// stopped allocating for a while (see `trim_when_quiet`). jemalloc keeps its
/// default decay (freed pages go back over about ten seconds).
pub fn tune_allocator_for_throughput() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        // SAFETY: mallopt only changes allocator thresholds.
        unsafe {
            libc::mallopt(libc::M_MMAP_THRESHOLD, 512 << 20);
            // -1: glibc never trims the heap top on free.
            libc::mallopt(libc::M_TRIM_THRESHOLD, -1);
            // Per-thread arenas are at most 64 MiB, so bigger chunks would still be
            // fresh mappings; one arena serves them from the reusable main heap.
            libc::mallopt(libc::M_ARENA_MAX, 1);
        }
        static TRIMMER: std::sync::Once = std::sync::Once::new();
        TRIMMER.call_once(|| {
            let _ = std::thread::Builder::new()
                .name("rask-trim".into())
                .spawn(|| loop {
                    std::thread::sleep(QUIET_CHECK);
                    trim_when_quiet();
                });
        });
    }
    if let Some(controls) = CONTROLS.get() {
        (controls.return_freed_in_background)();
    }
}

/// Hands every free page the allocators hold back to the system now.
pub fn release_free_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only returns free memory to the system.
    unsafe {
        libc::malloc_trim(0);
    }
    if let Some(controls) = CONTROLS.get() {
        (controls.purge)();
    }
}

/// How often the trimmer looks at the heap.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
const QUIET_CHECK: std::time::Duration = std::time::Duration::from_secs(1);

/// Returns glibc's free heap memory to the system once the bytes in use have
/// not changed for three looks in a row and more than 64 MiB lie free: memory
/// is reused while a computation runs and handed back when it is over (once,
/// until the heap changes again).
#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn trim_when_quiet() {
    use std::sync::atomic::{AtomicUsize, Ordering};
    static LAST_IN_USE: AtomicUsize = AtomicUsize::new(usize::MAX);
    static QUIET_LOOKS: AtomicUsize = AtomicUsize::new(0);
    // SAFETY: mallinfo2 only reads the allocator's statistics.
    let info = unsafe { libc::mallinfo2() };
    let in_use = info.uordblks;
    if LAST_IN_USE.swap(in_use, Ordering::Relaxed) != in_use {
        QUIET_LOOKS.store(0, Ordering::Relaxed);
        return;
    }
    let looks = QUIET_LOOKS.fetch_add(1, Ordering::Relaxed) + 1;
    if looks == 3 && info.fordblks > 64 << 20 {
        // SAFETY: malloc_trim only returns free memory to the system.
        unsafe {
            libc::malloc_trim(0);
        }
    }
}
