//! rask as one shared library for notebook cells (`librask_cells.so`).
//!
//! evcxr compiles each cell into a library of its own and loads it into the
//! cells' process. Were rask a Cargo dependency of the cells, every cell would
//! link its own static copy of rask, with its own statics (op registry, IO
//! runtime, the session's client): what one cell made would be unknown to the
//! next, and rask and its dependencies would be compiled again, minutes of
//! work, for the cells alone.
//!
//! Instead, `rask kernel install` links the rask the `rask` binary was built
//! from (the newest `librask-*.rlib` in the build's `deps/`) into one shared
//! library, in seconds. Cells depend on a facade crate, named `rask` in cells, which
//! re-exports that library (named on rustc's command line, `--extern
//! rask_cells=…`). Every cell of a process then uses one rask, and no cell
//! compiles it.
//!
//! rust-analyzer, which evcxr asks for variables' types and completions,
//! sees through the same facade to rask's source: the facade depends on the
//! source tree under `cfg(rask_cells_analysis)`, a cfg set only by the cache
//! root's `.cargo/config.toml`. rust-analyzer's `cargo metadata` reads that
//! file and keeps the dependency; cells' builds set `CARGO_ENCODED_RUSTFLAGS`,
//! which Cargo takes over the file, so the source is never compiled.

use anyhow::{bail, Context, Result};
use std::path::{Path, PathBuf};
use std::process::Command;

/// The library's file name in the cache root.
const LIBRARY: &str = "librask_cells.so";
/// The file that records which build directory the library was linked from.
const DEPS_RECORD: &str = "rask_cells.deps";
/// The facade crate's directory in the cache root.
const FACADE: &str = "rask-facade";

/// The rask source tree rust-analyzer reads: the one this kernel was built from.
pub const RASK_SOURCE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../core");

/// The linked library and the build directory whose crates it was linked
/// from (cells need those crates' metadata to compile).
#[derive(Debug, Clone)]
pub struct CellsLib {
    library: PathBuf,
    deps: PathBuf,
}

impl CellsLib {
    /// The flags cells compile with, as `CARGO_ENCODED_RUSTFLAGS` (separated
    /// by 0x1f, so paths may hold spaces): std and rask as shared libraries,
    /// the library named on the command line and found by an absolute rpath.
    pub fn rustflags(&self) -> String {
        [
            "-Cprefer-dynamic".to_owned(),
            "--extern".to_owned(),
            format!("rask_cells={}", self.library.display()),
            // Where rustc finds the library, and the crates it was linked
            // from, when it loads them as dependencies of dependencies.
            "-L".to_owned(),
            format!("dependency={}", self.root().display()),
            "-L".to_owned(),
            format!("dependency={}", self.deps.display()),
            // Where the loader finds the library (evcxr moves each cell's
            // library, which breaks rustc's relative rpath).
            format!("-Clink-arg=-Wl,-rpath,{}", self.root().display()),
        ]
        .join("\u{1f}")
    }

    /// The directory holding the library: the cache root.
    fn root(&self) -> &Path {
        self.library.parent().unwrap_or(Path::new("/"))
    }

    /// The cells' dependency on the facade (evcxr's `:dep` command) and the
    /// item that names it `rask`. (A crate named `rask` itself would shadow
    /// the real one, which rustc looks up by that name.)
    pub fn dep_commands(&self) -> [String; 2] {
        let facade = self.library.with_file_name(FACADE);
        [
            format!(
                ":dep rask_cells_facade = {{ path = {:?} }}",
                facade.display().to_string()
            ),
            "extern crate rask_cells_facade as rask;".to_owned(),
        ]
    }

    /// Compiles `source` (the cells' items, [`crate::cell_ops::CellItems`])
    /// into an op plugin for stock workers: a `cdylib` named like the cells'
    /// crate (`ctx`, so ops keep the names cells give them) that links the
    /// same compiled rask statically, in seconds. Returns its path.
    pub fn build_plugin(&self, source: &str, serial: usize) -> Result<PathBuf> {
        let rlib = newest_rask(&self.deps)?;
        let dir = self.root().join("plugins");
        std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        let file = dir.join(format!("ops-{}-{serial}.rs", std::process::id()));
        std::fs::write(&file, source).with_context(|| format!("writing {}", file.display()))?;
        let library = file.with_extension("so");
        let flags = [
            "--edition",
            "2024",
            "--crate-name",
            "ctx",
            "--crate-type",
            "cdylib",
        ];
        // No symbol table either (a quarter of the file): workers look up the
        // plugin's entry point among its dynamic symbols, which stay.
        let codegen = ["-C", "opt-level=2", "-C", "strip=symbols"];
        compile_with_rask(
            &rlib,
            &self.deps,
            &[&flags[..], &codegen[..]].concat(),
            &file,
            &library,
        )
        .with_context(|| {
            format!(
                "compiling the cells' ops into a plugin ({})",
                file.display()
            )
        })?;
        Ok(library)
    }

    /// The library linked under `cells_root` by [`link`], checked to exist,
    /// and linked again (seconds) when rask was rebuilt since: Cargo rewrites
    /// a rebuilt crate under the same file name, and cells could no longer
    /// compile against the old library.
    pub fn find(cells_root: &Path) -> Result<CellsLib> {
        let library = cells_root.join(LIBRARY);
        let record = cells_root.join(DEPS_RECORD);
        let deps = std::fs::read_to_string(&record).ok().map(PathBuf::from);
        let facade = cells_root.join(FACADE).join("Cargo.toml");
        match deps {
            Some(deps) if library.exists() && deps.is_dir() && facade.exists() => {
                let modified = |path: &Path| path.metadata().and_then(|m| m.modified()).ok();
                let rebuilt = newest_rask(&deps)
                    .ok()
                    .is_some_and(|rlib| modified(&rlib) > modified(&library));
                if rebuilt {
                    tracing::info!(
                        "rask was rebuilt since it was linked for cells: linking it again"
                    );
                    return link(&deps, cells_root);
                }
                Ok(CellsLib { library, deps })
            }
            _ => bail!(
                "rask is not prepared for notebook cells in {} (or the build it was linked \
                 from is gone): run `rask kernel install` again",
                cells_root.display()
            ),
        }
    }
}

/// The build directory holding the crates `exe` was linked from: `deps/`
/// beside it, as Cargo lays out `target/release/`.
pub fn build_deps(exe: &Path) -> Result<PathBuf> {
    let deps = exe
        .parent()
        .map(|dir| dir.join("deps"))
        .filter(|d| d.is_dir())
        .with_context(|| {
            format!(
                "{} has no Cargo build directory beside it (deps/): run `rask kernel install` \
                 from a rask checkout, as `cargo run --release -- kernel install`",
                exe.display()
            )
        })?;
    Ok(deps)
}

/// The newest `librask-*.rlib` in `deps`: the rask of the latest build.
fn newest_rask(deps: &Path) -> Result<PathBuf> {
    let mut newest: Option<(std::time::SystemTime, PathBuf)> = None;
    for entry in std::fs::read_dir(deps).with_context(|| format!("reading {}", deps.display()))? {
        let path = entry?.path();
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
        if !(name.starts_with("librask-") && name.ends_with(".rlib")) {
            continue;
        }
        let modified = path.metadata()?.modified()?;
        if newest.as_ref().is_none_or(|(when, _)| modified > *when) {
            newest = Some((modified, path));
        }
    }
    newest
        .map(|(_, path)| path)
        .with_context(|| format!("no compiled rask (librask-*.rlib) in {}", deps.display()))
}

/// Links rask from `deps` into `cells_root/librask_cells.so` with the
/// `rustc` that compiled it (`$RUSTC`, or `rustc` on `PATH`).
pub fn link(deps: &Path, cells_root: &Path) -> Result<CellsLib> {
    let rlib = newest_rask(deps)?;
    std::fs::create_dir_all(cells_root)
        .with_context(|| format!("creating {}", cells_root.display()))?;
    let source = cells_root.join("rask_cells.rs");
    std::fs::write(&source, "pub use rask::*;\n")
        .with_context(|| format!("writing {}", source.display()))?;
    let library = cells_root.join(LIBRARY);
    // Linked in a directory of its own, then moved: a kernel running cells
    // keeps the library it loaded. (The file name becomes the library's
    // soname, which cells record, so it is the final name from the start.)
    let linking = cells_root.join(format!("linking-{}", std::process::id()));
    std::fs::create_dir_all(&linking)?;
    let partial = linking.join(LIBRARY);
    let flags = [
        "--edition",
        "2021",
        "--crate-name",
        "rask_cells",
        "--crate-type",
        "dylib",
    ];
    let codegen = ["-C", "prefer-dynamic", "-C", "opt-level=3"];
    let linked = compile_with_rask(
        &rlib,
        deps,
        &[&flags[..], &codegen[..]].concat(),
        &source,
        &partial,
    );
    if let Err(e) = linked {
        let _ = std::fs::remove_dir_all(&linking);
        return Err(e.context(format!(
            "linking {} into {} (was it compiled by another rustc?)",
            rlib.display(),
            library.display()
        )));
    }
    std::fs::rename(&partial, &library)
        .with_context(|| format!("renaming {} to {}", partial.display(), library.display()))?;
    let _ = std::fs::remove_dir_all(&linking);
    write_facade(&cells_root.join(FACADE))?;
    let config = cells_root.join(".cargo");
    std::fs::create_dir_all(&config)?;
    std::fs::write(
        config.join("config.toml"),
        "# rust-analyzer's view of cells: rask's source (see rask-facade/Cargo.toml).\n\
         # Cells' builds set CARGO_ENCODED_RUSTFLAGS, which replace these.\n\
         [build]\nrustflags = [\"--cfg\", \"rask_cells_analysis\"]\n",
    )?;
    let deps = std::fs::canonicalize(deps)?;
    std::fs::write(cells_root.join(DEPS_RECORD), deps.display().to_string())?;
    Ok(CellsLib { library, deps })
}

/// Compiles `source` into `output` with `rustc` (`$RUSTC`, or `rustc` on
/// `PATH`: the compiler that built `rlib`), `rask` being `rlib` and its
/// dependencies found in `deps`.
fn compile_with_rask(
    rlib: &Path,
    deps: &Path,
    flags: &[&str],
    source: &Path,
    output: &Path,
) -> Result<()> {
    let rustc = std::env::var_os("RUSTC").unwrap_or_else(|| "rustc".into());
    let run = Command::new(&rustc)
        .args(flags)
        .arg("--extern")
        .arg(format!("rask={}", rlib.display()))
        .arg("-L")
        .arg(format!("dependency={}", deps.display()))
        .arg(source)
        .arg("-o")
        .arg(output)
        .output()
        .with_context(|| format!("running {}", rustc.to_string_lossy()))?;
    if !run.status.success() {
        bail!("{}", String::from_utf8_lossy(&run.stderr));
    }
    Ok(())
}

/// Writes the facade crate cells depend on as `rask`.
fn write_facade(dir: &Path) -> Result<()> {
    let source = std::fs::canonicalize(RASK_SOURCE).with_context(|| {
        format!(
            "rust-analyzer reads rask's source tree, {RASK_SOURCE}, which is gone: install \
             the kernel from the rask checkout it was built in"
        )
    })?;
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let manifest = format!(
        "[package]\nname = \"rask_cells_facade\"\nversion = \"0.0.0\"\nedition = \"2021\"\n\n\
         [lib]\npath = \"lib.rs\"\n\n\
         # For rust-analyzer only: cells' builds never set this cfg.\n\
         [target.'cfg(rask_cells_analysis)'.dependencies]\nrask_source = {{ path = {:?}, package = \"rask\" }}\n",
        source.display().to_string()
    );
    let lib = "#![allow(unexpected_cfgs)]\n\
               //! rask for notebook cells: the shared library when compiled, the source for rust-analyzer.\n\
               #[cfg(not(rust_analyzer))]\npub use rask_cells::*;\n\
               #[cfg(rust_analyzer)]\npub use rask_source::*;\n";
    std::fs::write(dir.join("Cargo.toml"), manifest)?;
    std::fs::write(dir.join("lib.rs"), lib)?;
    Ok(())
}
