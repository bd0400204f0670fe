//! The C boundary between a worker and a plugin library. Everything here is
//! `#[repr(C)]` and versioned: [`Descriptor::interface_version`] comes first
//! and stays first, so a worker reads it from any plugin and refuses one whose
//! interface it does not speak before touching anything else.

use std::ffi::c_void;

/// The interface this rask speaks: the layout of [`Descriptor`] and the
/// calling convention of [`CallFn`] and [`FreeFn`].
pub const INTERFACE_VERSION: u32 = 1;
/// How values are encoded as bytes ([`crate::value::encode`]: postcard).
pub const ENCODING_VERSION: u32 = 1;
/// The symbol every library linking rask exports: an [`EntryFn`].
pub const ENTRY_SYMBOL: &str = "rask_plugin_entry";

/// Bytes owned by the side that made them.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct RawBytes {
    /// The first byte (dangling when empty).
    pub ptr: *const u8,
    /// How many.
    pub len: usize,
}

impl RawBytes {
    /// A view of `bytes`, valid while they live.
    pub fn of(bytes: &[u8]) -> RawBytes {
        RawBytes {
            ptr: bytes.as_ptr(),
            len: bytes.len(),
        }
    }

    /// The bytes.
    ///
    /// # Safety
    /// `ptr` and `len` describe live, initialised bytes.
    pub unsafe fn as_slice<'a>(&self) -> &'a [u8] {
        if self.len == 0 {
            &[]
        } else {
            // SAFETY: the caller's promise.
            unsafe { std::slice::from_raw_parts(self.ptr, self.len) }
        }
    }
}

/// What one call of an op gave: the result's encoded bytes, or the failure's
/// message (UTF-8), owned by the plugin until [`FreeFn`] is called on `owner`.
#[repr(C)]
#[derive(Debug)]
pub struct Output {
    /// 0: `bytes` is the result; 1: `bytes` is why the task failed.
    pub failed: u32,
    /// The result or the message.
    pub bytes: RawBytes,
    /// What to give back to [`FreeFn`].
    pub owner: *mut c_void,
}

/// Runs op number `op` (an index into [`Descriptor::ops`]) on `nargs` encoded
/// arguments and writes what came of it to `out`. Never unwinds.
pub type CallFn =
    unsafe extern "C" fn(op: u32, args: *const RawBytes, nargs: usize, out: *mut Output);
/// Frees what a [`CallFn`] left in [`Output::owner`].
pub type FreeFn = unsafe extern "C" fn(owner: *mut c_void);
/// The entry point: the plugin's description, alive as long as the library.
pub type EntryFn = unsafe extern "C" fn() -> *const Descriptor;

/// What a plugin says of itself.
#[repr(C)]
pub struct Descriptor {
    /// [`INTERFACE_VERSION`] of the rask it was built with. Always first.
    pub interface_version: u32,
    /// [`ENCODING_VERSION`] of the rask it was built with.
    pub encoding_version: u32,
    /// Its rask's version (UTF-8).
    pub rask_version: RawBytes,
    /// The target triple it was built for (UTF-8).
    pub target: RawBytes,
    /// The compiler that built it (UTF-8, `rustc --version`).
    pub rustc: RawBytes,
    /// Its ops' full names (UTF-8 each), `nops` of them.
    pub ops: *const RawBytes,
    /// How many ops.
    pub nops: usize,
    /// Runs an op.
    pub call: CallFn,
    /// Frees an output.
    pub free: FreeFn,
}
