//! The plugin side of the boundary: the entry point every library linking
//! rask exports. In a worker's own binary it is never called.

use super::abi::{self, Descriptor, Output, RawBytes};
use crate::ops::{catch_panics, OpEntry, TaskFailure};
use crate::value::Value;
use std::ffi::c_void;
use std::sync::OnceLock;

/// The description and what it points into, built once.
struct Guest {
    descriptor: Descriptor,
    /// The ops, in the order of `descriptor.ops`.
    entries: Vec<&'static OpEntry>,
    /// `descriptor.ops` points here.
    _names: Vec<RawBytes>,
}

// SAFETY: the raw pointers point to 'static strings and to `_names`, which is
// never changed after the guest is built.
unsafe impl Send for Guest {}
unsafe impl Sync for Guest {}

/// The ops this library brings: those registered in it that are not rask's own.
fn own_ops() -> Vec<&'static OpEntry> {
    crate::ops::registered()
        .into_iter()
        .filter(|name| !name.starts_with("rask::"))
        .filter_map(crate::ops::lookup)
        .collect()
}

fn guest() -> &'static Guest {
    static GUEST: OnceLock<Guest> = OnceLock::new();
    GUEST.get_or_init(|| {
        let entries = own_ops();
        let names: Vec<RawBytes> = entries
            .iter()
            .map(|e| RawBytes::of(e.name.as_bytes()))
            .collect();
        Guest {
            descriptor: Descriptor {
                interface_version: abi::INTERFACE_VERSION,
                encoding_version: abi::ENCODING_VERSION,
                rask_version: RawBytes::of(env!("CARGO_PKG_VERSION").as_bytes()),
                target: RawBytes::of(env!("RASK_BUILD_TARGET").as_bytes()),
                rustc: RawBytes::of(env!("RASK_BUILD_RUSTC").as_bytes()),
                ops: names.as_ptr(),
                nops: names.len(),
                call,
                free,
            },
            entries,
            _names: names,
        }
    })
}

/// The plugin's description ([`abi::EntryFn`]).
#[unsafe(no_mangle)]
pub extern "C" fn rask_plugin_entry() -> *const Descriptor {
    match std::panic::catch_unwind(|| &guest().descriptor as *const Descriptor) {
        Ok(descriptor) => descriptor,
        Err(_) => std::ptr::null(),
    }
}

/// Runs one op ([`abi::CallFn`]): panics and failures become `out.failed`.
unsafe extern "C" fn call(op: u32, args: *const RawBytes, nargs: usize, out: *mut Output) {
    let result = std::panic::catch_unwind(|| {
        let entry = guest()
            .entries
            .get(op as usize)
            .ok_or_else(|| TaskFailure::new(format!("plugin has no op number {op}")))?;
        let args: &[RawBytes] = if nargs == 0 {
            &[]
        } else {
            // SAFETY: the host passes `nargs` views that live for the call.
            unsafe { std::slice::from_raw_parts(args, nargs) }
        };
        let values: Vec<Value> = args
            .iter()
            // SAFETY: as above.
            .map(|a| Value::Encoded(bytes::Bytes::copy_from_slice(unsafe { a.as_slice() })))
            .collect();
        let value = catch_panics(|| (entry.run)(&values))?;
        value
            .to_bytes()
            .map_err(|e| TaskFailure::new(format!("op `{}`: {e}", entry.name)))
    });
    let (failed, owned) = match result {
        Ok(Ok(bytes)) => (0, bytes),
        Ok(Err(failure)) => (1, bytes::Bytes::from(failure.message)),
        Err(_) => (
            1,
            bytes::Bytes::from_static(b"the plugin panicked outside its op"),
        ),
    };
    let owner = Box::new(owned);
    let bytes = RawBytes::of(&owner);
    // SAFETY: the host passes a valid place for the output.
    unsafe {
        *out = Output {
            failed,
            bytes,
            owner: Box::into_raw(owner) as *mut c_void,
        };
    }
}

/// Frees an output's bytes ([`abi::FreeFn`]).
unsafe extern "C" fn free(owner: *mut c_void) {
    if !owner.is_null() {
        // SAFETY: made by `Box::into_raw` in `call`, freed once by the host.
        drop(unsafe { Box::from_raw(owner as *mut bytes::Bytes) });
    }
}
