//! How the process's allocators hand memory back to the system. A worker with a
//! memory limit wants its resident memory to track what it holds (freed pages go
//! back soon, and at once when the memory manager asks); an in-process cluster
//! without a limit wants freed memory kept for reuse, since fresh pages for every
//! chunk are slow. glibc's malloc is tuned either way; with the `jemalloc` feature
//! (the `rask` binary allocates with jemalloc) jemalloc's dirty pages are too.

/// How long jemalloc keeps a limited worker's freed pages: not at all (0 ms), as
/// glibc hands large blocks back at once.
#[cfg(feature = "jemalloc")]
const LIMITED_DECAY_MS: isize = 0;

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
    #[cfg(feature = "jemalloc")]
    jemalloc::set_decay(LIMITED_DECAY_MS);
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
    #[cfg(feature = "jemalloc")]
    jemalloc::start_background_purging();
}

/// Hands every free page both allocators hold back to the system now.
pub fn release_free_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only returns free memory to the system.
    unsafe {
        libc::malloc_trim(0);
    }
    #[cfg(feature = "jemalloc")]
    jemalloc::purge_all();
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

/// jemalloc's controls (`mallctl`), for binaries that allocate with it.
#[cfg(feature = "jemalloc")]
mod jemalloc {
    use std::ffi::{c_void, CStr};
    use std::ptr::null_mut;
    use tikv_jemalloc_sys::mallctl;

    /// Writes one value; failures are logged (a control jemalloc lacks changes nothing).
    fn write<T>(name: &CStr, mut value: T) {
        // SAFETY: `value` lives across the call and its size is the one given;
        // jemalloc checks the size against the control's type.
        let code = unsafe {
            mallctl(
                name.as_ptr(),
                null_mut(),
                null_mut(),
                &mut value as *mut T as *mut c_void,
                std::mem::size_of::<T>(),
            )
        };
        if code != 0 {
            tracing::debug!(control = ?name, code, "jemalloc refused a setting");
        }
    }

    /// Reads one value.
    fn read<T: Copy + Default>(name: &CStr) -> Option<T> {
        let mut value = T::default();
        let mut len = std::mem::size_of::<T>();
        // SAFETY: `value` and `len` describe a buffer of the control's size.
        let code = unsafe {
            mallctl(
                name.as_ptr(),
                &mut value as *mut T as *mut c_void,
                &mut len,
                null_mut(),
                0,
            )
        };
        (code == 0).then_some(value)
    }

    /// Freed pages are purged from a background thread, not by the freeing thread.
    pub(super) fn start_background_purging() {
        write(c"background_thread", true);
    }

    /// Every arena, present and future, purges freed pages after `ms`.
    pub(super) fn set_decay(ms: isize) {
        start_background_purging();
        write(c"arenas.dirty_decay_ms", ms);
        write(c"arenas.muzzy_decay_ms", 0isize);
        let arenas: u32 = read(c"arenas.narenas").unwrap_or(0);
        for arena in 0..arenas {
            let dirty = format!("arena.{arena}.dirty_decay_ms\0");
            let muzzy = format!("arena.{arena}.muzzy_decay_ms\0");
            if let (Ok(dirty), Ok(muzzy)) = (
                CStr::from_bytes_with_nul(dirty.as_bytes()),
                CStr::from_bytes_with_nul(muzzy.as_bytes()),
            ) {
                write(dirty, ms);
                write(muzzy, 0isize);
            }
        }
    }

    /// Purges the free pages of every arena now (`MALLCTL_ARENAS_ALL` is 4096).
    pub(super) fn purge_all() {
        // SAFETY: `arena.<i>.purge` takes and gives no value.
        unsafe {
            mallctl(
                c"arena.4096.purge".as_ptr(),
                null_mut(),
                null_mut(),
                null_mut(),
                0,
            );
        }
    }
}
