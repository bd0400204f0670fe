//! `rask plugin build`: a crate of ops built as a plugin library that stock
//! workers load ([`rask::plugin`]).

use anyhow::{bail, Context, Result};
use std::io::BufRead;
use std::path::PathBuf;
use std::process::{Command, Stdio};

/// `rask plugin …`.
#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(subcommand)]
    command: PluginCommand,
}

#[derive(clap::Subcommand, Debug)]
enum PluginCommand {
    /// Build a crate that depends on rask and defines ops with `rask::op!` as
    /// a plugin library (a release cdylib, Rust's standard library linked in);
    /// prints the library's path as the last line.
    Build {
        /// The crate's Cargo.toml (default: the one cargo finds from here).
        #[arg(long)]
        manifest_path: Option<PathBuf>,
    },
}

/// Runs `rask plugin`.
pub fn run(args: Args) -> Result<()> {
    match args.command {
        PluginCommand::Build { manifest_path } => {
            let library = build(manifest_path.as_deref())?;
            println!("{}", library.display());
            Ok(())
        }
    }
}

/// Builds the plugin and returns its library's path.
fn build(manifest: Option<&std::path::Path>) -> Result<PathBuf> {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut command = Command::new(&cargo);
    command.args([
        "rustc",
        "--release",
        "--lib",
        "--crate-type",
        "cdylib",
        "--message-format=json-render-diagnostics",
    ]);
    if let Some(manifest) = manifest {
        if !manifest.is_file() {
            bail!("--manifest-path {}: no such file", manifest.display());
        }
        command.arg("--manifest-path").arg(manifest);
    }
    // The library's debug information is of no use on workers.
    command.args(["--", "-C", "strip=debuginfo"]);
    command.stdout(Stdio::piped()).stderr(Stdio::inherit());
    let mut child = command
        .spawn()
        .with_context(|| format!("running {}", cargo.to_string_lossy()))?;
    let stdout = child.stdout.take().context("cargo's output")?;
    let mut library = None;
    for line in std::io::BufReader::new(stdout).lines() {
        let line = line.context("reading cargo's output")?;
        let Ok(message) = serde_json::from_str::<serde_json::Value>(&line) else {
            continue;
        };
        if message["reason"] != "compiler-artifact" {
            continue;
        }
        let is_cdylib = message["target"]["crate_types"]
            .as_array()
            .is_some_and(|types| types.iter().any(|t| t == "cdylib"));
        if !is_cdylib {
            continue;
        }
        let files = message["filenames"].as_array().cloned().unwrap_or_default();
        if let Some(file) = files
            .iter()
            .filter_map(|f| f.as_str())
            .find(|f| f.ends_with(std::env::consts::DLL_SUFFIX))
        {
            library = Some(PathBuf::from(file));
        }
    }
    let status = child.wait().context("waiting for cargo")?;
    if !status.success() {
        bail!("cargo could not build the plugin ({status})");
    }
    library.context("cargo built no cdylib: does the crate have a library target (src/lib.rs)?")
}
