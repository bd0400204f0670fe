//! The entry point of a plugin built against a rask that speaks plugin
//! interface version 999: a worker must read that first field, refuse the
//! library naming both versions, and touch nothing else.

/// What the entry point describes: only the leading interface version.
#[repr(C)]
pub struct FutureDescriptor {
    /// A version no rask speaks yet.
    pub interface_version: u32,
}

static DESCRIPTOR: FutureDescriptor = FutureDescriptor {
    interface_version: 999,
};

/// rask's plugin entry point, as a future rask would export it.
#[unsafe(no_mangle)]
pub extern "C" fn rask_plugin_entry() -> *const FutureDescriptor {
    &DESCRIPTOR
}
