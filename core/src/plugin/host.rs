//! The worker side of the boundary: checking, loading and calling plugin
//! libraries. A library is loaded once per content hash and never unloaded.

use super::abi::{self, Descriptor, EntryFn, Output, RawBytes};
use crate::ops::{OpRef, TaskFailure};
use crate::value::Value;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock, RwLock};

/// Why a plugin could not be taken.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub enum PluginError {
    /// The bytes are not those the scheduler announced.
    #[error("plugin {name}: its bytes hash to {actual}, not the announced {expected}")]
    HashMismatch {
        /// The plugin's name.
        name: String,
        /// The announced hash.
        expected: String,
        /// What the bytes hash to.
        actual: String,
    },
    /// Writing or reading the library file.
    #[error("plugin {name}: {path}: {message}")]
    Io {
        /// The plugin's name.
        name: String,
        /// The file.
        path: PathBuf,
        /// What failed.
        message: String,
    },
    /// Not a shared library this worker can load (not one at all, truncated,
    /// or for another platform).
    #[error("plugin {name} is not a loadable shared library: {message}")]
    NotALibrary {
        /// The plugin's name.
        name: String,
        /// What the loader said.
        message: String,
    },
    /// A shared library without rask's entry point.
    #[error("plugin {name} is not a rask plugin: it exports no `{}` (build it with `rask plugin build`)", abi::ENTRY_SYMBOL)]
    NotAPlugin {
        /// The plugin's name.
        name: String,
    },
    /// A plugin speaking another interface.
    #[error("plugin {name} speaks plugin interface version {plugin}, this worker speaks version {worker}: rebuild it against this worker's rask")]
    Interface {
        /// The plugin's name.
        name: String,
        /// The plugin's interface version.
        plugin: u32,
        /// The worker's.
        worker: u32,
    },
    /// A plugin encoding values another way.
    #[error("plugin {name} encodes values with version {plugin}, this worker with version {worker}: rebuild it against this worker's rask")]
    Encoding {
        /// The plugin's name.
        name: String,
        /// The plugin's encoding version.
        plugin: u32,
        /// The worker's.
        worker: u32,
    },
    /// This worker runs no plugins (`rask worker --no-plugins`).
    #[error("plugin {name} refused: this worker was started with --no-plugins")]
    Disabled {
        /// The plugin's name.
        name: String,
    },
}

/// A plugin library loaded in this process.
#[derive(Debug)]
pub struct LoadedPlugin {
    /// Its content hash (SHA-256, hex).
    pub hash: String,
    /// Its name, as uploaded (the library's file name).
    pub name: String,
    /// The rask version it was built with.
    pub rask_version: String,
    /// The target it was built for.
    pub target: String,
    /// The compiler that built it.
    pub rustc: String,
    /// Its ops' full names.
    pub ops: Vec<String>,
    call: abi::CallFn,
    free: abi::FreeFn,
    /// Kept loaded for the life of the process: its functions are called
    /// through the pointers above.
    _library: libloading::Library,
}

/// One op of a loaded plugin.
#[derive(Debug)]
pub struct PluginOp {
    plugin: Arc<LoadedPlugin>,
    index: u32,
    name: Arc<str>,
}

impl PluginOp {
    /// The op's full name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Runs the op in the plugin on `args`, which cross as encoded bytes.
    pub fn call(&self, args: &[Value]) -> Result<Value, TaskFailure> {
        let encoded: Vec<bytes::Bytes> = args
            .iter()
            .map(|a| a.to_bytes())
            .collect::<Result<_, _>>()
            .map_err(|e| TaskFailure::new(format!("op `{}`: {e}", self.name)))?;
        let views: Vec<RawBytes> = encoded.iter().map(|b| RawBytes::of(b)).collect();
        let mut out = Output {
            failed: 1,
            bytes: RawBytes::of(&[]),
            owner: std::ptr::null_mut(),
        };
        // SAFETY: the views live for the call, `out` is a valid place, and the
        // plugin never unwinds out of `call`.
        unsafe { (self.plugin.call)(self.index, views.as_ptr(), views.len(), &mut out) };
        // SAFETY: the plugin left its bytes in `out` until `free`.
        let bytes = unsafe { out.bytes.as_slice() };
        let result = if out.failed == 0 {
            Ok(Value::Encoded(bytes::Bytes::copy_from_slice(bytes)))
        } else {
            Err(TaskFailure::new(
                String::from_utf8_lossy(bytes).into_owned(),
            ))
        };
        // SAFETY: the owner the plugin gave, freed once.
        unsafe { (self.plugin.free)(out.owner) };
        result
    }
}

#[derive(Default)]
struct Registry {
    by_hash: HashMap<String, Arc<LoadedPlugin>>,
    /// Op name → the newest loaded plugin op of that name.
    ops: HashMap<String, Arc<PluginOp>>,
}

fn registry() -> &'static RwLock<Registry> {
    static REGISTRY: OnceLock<RwLock<Registry>> = OnceLock::new();
    REGISTRY.get_or_init(RwLock::default)
}

/// The op `name` of the newest loaded plugin that defines it.
pub fn op(name: &str) -> Option<OpRef> {
    let registry = registry().read().unwrap_or_else(|p| p.into_inner());
    registry.ops.get(name).cloned().map(OpRef::Plugin)
}

/// The content hash of a plugin library: SHA-256, in hex.
pub fn content_hash(bytes: &[u8]) -> String {
    let digest = ring::digest::digest(&ring::digest::SHA256, bytes);
    digest.as_ref().iter().map(|b| format!("{b:02x}")).collect()
}

/// Checks that `bytes` hash to `hash`, writes them under `dir` (removed once
/// loaded) and loads
/// them as plugin `name`; a plugin already loaded is not loaded again. Its
/// ops are then found by [`op`], except those the worker's own binary
/// registers.
pub fn install(
    name: &str,
    hash: &str,
    bytes: &[u8],
    dir: &Path,
) -> Result<Arc<LoadedPlugin>, PluginError> {
    if let Some(loaded) = registry()
        .read()
        .unwrap_or_else(|p| p.into_inner())
        .by_hash
        .get(hash)
    {
        return Ok(loaded.clone());
    }
    let actual = content_hash(bytes);
    if actual != hash {
        return Err(PluginError::HashMismatch {
            name: name.to_string(),
            expected: hash.to_string(),
            actual,
        });
    }
    let path = dir.join(format!("{hash}.so"));
    let io = |e: std::io::Error| PluginError::Io {
        name: name.to_string(),
        path: path.clone(),
        message: e.to_string(),
    };
    std::fs::create_dir_all(dir).map_err(io)?;
    check_library(name, bytes)?;
    std::fs::write(&path, bytes).map_err(io)?;
    let loaded = load(name, hash, &path);
    // A loaded library stays mapped without its file.
    let _ = std::fs::remove_file(&path);
    let plugin = Arc::new(loaded?);
    let mut registry = registry().write().unwrap_or_else(|p| p.into_inner());
    for (index, op) in plugin.ops.iter().enumerate() {
        if crate::ops::lookup(op).is_some() {
            // The worker's own op of that name stays.
            continue;
        }
        let entry = PluginOp {
            plugin: plugin.clone(),
            index: index as u32,
            name: Arc::from(op.as_str()),
        };
        registry.ops.insert(op.clone(), Arc::new(entry));
    }
    registry.by_hash.insert(hash.to_string(), plugin.clone());
    tracing::info!(plugin = name, hash, ops = ?plugin.ops, rask = %plugin.rask_version, "loaded a plugin");
    Ok(plugin)
}

/// Checks that `bytes` are a whole shared library for this machine before
/// the loader maps them: a truncated file would map pages past its end, and
/// touching them kills the process.
fn check_library(name: &str, bytes: &[u8]) -> Result<(), PluginError> {
    use object::{Object, ObjectKind, ObjectSegment};
    let refuse = |message: String| PluginError::NotALibrary {
        name: name.to_string(),
        message,
    };
    let file = object::File::parse(bytes).map_err(|e| refuse(format!("not an ELF file ({e})")))?;
    if file.kind() != ObjectKind::Dynamic {
        return Err(refuse(format!(
            "an ELF file of kind {:?}, not a shared library",
            file.kind()
        )));
    }
    let ours = if cfg!(target_arch = "x86_64") {
        object::Architecture::X86_64
    } else if cfg!(target_arch = "aarch64") {
        object::Architecture::Aarch64
    } else {
        file.architecture()
    };
    if file.architecture() != ours {
        return Err(refuse(format!(
            "built for {:?}, this worker runs on {ours:?}",
            file.architecture()
        )));
    }
    for segment in file.segments() {
        let (offset, size) = segment.file_range();
        if offset
            .checked_add(size)
            .is_none_or(|end| end > bytes.len() as u64)
        {
            return Err(refuse(format!(
                "truncated: a segment ends at byte {}, the file has {}",
                offset.saturating_add(size),
                bytes.len()
            )));
        }
    }
    Ok(())
}

/// Loads the library at `path` and reads its description.
fn load(name: &str, hash: &str, path: &Path) -> Result<LoadedPlugin, PluginError> {
    let not_a_library = |message: String| PluginError::NotALibrary {
        name: name.to_string(),
        message,
    };
    // SAFETY: loading runs the library's initialisers: running the cluster
    // users' code is what plugins are for, and only authenticated clients
    // can upload one.
    let library =
        unsafe { libloading::Library::new(path) }.map_err(|e| not_a_library(dlopen_error(&e)))?;
    // SAFETY: the symbol, if present, has the entry point's type (every
    // library linking rask exports it).
    let entry: EntryFn = unsafe { library.get::<EntryFn>(abi::ENTRY_SYMBOL.as_bytes()) }
        .map(|symbol| *symbol)
        .map_err(|_| PluginError::NotAPlugin {
            name: name.to_string(),
        })?;
    // SAFETY: the entry point takes nothing and returns a pointer to a
    // description that lives as long as the library.
    let descriptor: *const Descriptor = unsafe { entry() };
    if descriptor.is_null() {
        return Err(PluginError::NotAPlugin {
            name: name.to_string(),
        });
    }
    // The interface version is first in every version of the descriptor.
    // SAFETY: `descriptor` points at least to a u32.
    let interface = unsafe { *(descriptor as *const u32) };
    if interface != abi::INTERFACE_VERSION {
        return Err(PluginError::Interface {
            name: name.to_string(),
            plugin: interface,
            worker: abi::INTERFACE_VERSION,
        });
    }
    // SAFETY: an interface this worker speaks: the layout is `Descriptor`.
    let descriptor = unsafe { &*descriptor };
    if descriptor.encoding_version != abi::ENCODING_VERSION {
        return Err(PluginError::Encoding {
            name: name.to_string(),
            plugin: descriptor.encoding_version,
            worker: abi::ENCODING_VERSION,
        });
    }
    // SAFETY: the description's strings live as long as the library.
    let text = |raw: RawBytes| String::from_utf8_lossy(unsafe { raw.as_slice() }).into_owned();
    let ops: Vec<String> = if descriptor.nops == 0 {
        Vec::new()
    } else {
        // SAFETY: `nops` names at `ops`, alive as long as the library.
        unsafe { std::slice::from_raw_parts(descriptor.ops, descriptor.nops) }
            .iter()
            .map(|raw| text(*raw))
            .collect()
    };
    Ok(LoadedPlugin {
        hash: hash.to_string(),
        name: name.to_string(),
        rask_version: text(descriptor.rask_version),
        target: text(descriptor.target),
        rustc: text(descriptor.rustc),
        ops,
        call: descriptor.call,
        free: descriptor.free,
        _library: library,
    })
}

/// The loader's own words (libloading's `Display` says only "dlopen failed").
fn dlopen_error(error: &libloading::Error) -> String {
    let mut text = error.to_string();
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        text = format!("{text}: {cause}");
        source = cause.source();
    }
    if text.contains("static TLS") {
        text.push_str(
            " (the library carries thread-local storage a loaded library cannot have, \
             typically an allocator such as jemalloc: leave it out of the plugin)",
        );
    }
    text
}
