//! jemalloc's controls (`mallctl`) for rask's memory manager: the `rask` binary
//! links jemalloc (see `allocator`), so a limited worker's freed pages go back
//! at once and a purge reaches jemalloc's arenas too.

use rask::worker::allocator::AllocatorControls;
use std::ffi::{c_void, CStr};
use std::ptr::null_mut;
use tikv_jemalloc_sys::mallctl;

/// What rask's memory manager does to jemalloc.
pub const CONTROLS: AllocatorControls = AllocatorControls {
    return_freed_at_once: || set_decay(0),
    return_freed_in_background: start_background_purging,
    purge: purge_all,
};

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
fn start_background_purging() {
    write(c"background_thread", true);
}

/// Every arena, present and future, purges freed pages after `ms`.
fn set_decay(ms: isize) {
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
fn purge_all() {
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
