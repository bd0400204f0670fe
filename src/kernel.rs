//! `rask kernel`: the Jupyter kernel (`install` its kernelspec, `run` it for
//! a connection file, as Jupyter does).

use anyhow::Result;
use rask_kernel::kernelspec::{self, Prefix};
use std::path::PathBuf;
use std::time::Instant;

/// `rask kernel …`.
#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(subcommand)]
    command: KernelCommand,
}

#[derive(clap::Subcommand, Debug)]
enum KernelCommand {
    /// Install the kernelspec "rask" (display name "Rust (rask)") for this
    /// binary, and compile rask once for the cells (minutes the first time).
    Install {
        /// In your Jupyter data directory (the default).
        #[arg(long, conflicts_with_all = ["sys_prefix", "prefix"])]
        user: bool,
        /// In the Python environment of the `python3` on PATH.
        #[arg(long, conflicts_with = "prefix")]
        sys_prefix: bool,
        /// Under DIR/share/jupyter/kernels.
        #[arg(long, value_name = "DIR")]
        prefix: Option<PathBuf>,
        /// Where cells are compiled (default: ~/.cache/rask/kernel).
        #[arg(long, value_name = "DIR", env = "RASK_KERNEL_CELLS")]
        cells_cache: Option<PathBuf>,
    },
    /// Serve a kernel for a Jupyter connection file (what the kernelspec runs).
    Run {
        /// The connection file Jupyter wrote.
        #[arg(long, short = 'f')]
        connection_file: PathBuf,
        /// Where cells are compiled (default: ~/.cache/rask/kernel).
        #[arg(long, value_name = "DIR", env = "RASK_KERNEL_CELLS")]
        cells_cache: Option<PathBuf>,
    },
}

/// Runs `rask kernel`.
pub fn run(args: Args) -> Result<()> {
    match args.command {
        KernelCommand::Install {
            user: _,
            sys_prefix,
            prefix,
            cells_cache,
        } => {
            let prefix = match (sys_prefix, prefix) {
                (true, _) => Prefix::SysPrefix,
                (false, Some(dir)) => Prefix::Dir(dir),
                (false, None) => Prefix::User,
            };
            let cells = cells_cache.unwrap_or_else(rask_kernel::cells_cache::default_root);
            let exe = std::env::current_exe()?;
            let started = Instant::now();
            let bar = indicatif::ProgressBar::new_spinner().with_message(format!(
                "preparing rask for notebook cells in {}",
                cells.display()
            ));
            bar.enable_steady_tick(std::time::Duration::from_millis(200));
            let installed = kernelspec::install(&exe, &prefix, &cells);
            bar.finish_and_clear();
            let dir = installed?;
            println!(
                "Installed kernelspec {} in {} (cells ready in {:.0?})",
                kernelspec::KERNEL_NAME,
                dir.display(),
                started.elapsed()
            );
            Ok(())
        }
        KernelCommand::Run {
            connection_file,
            cells_cache,
        } => {
            let cells = cells_cache.unwrap_or_else(rask_kernel::cells_cache::default_root);
            rask_kernel::server::run(&connection_file, &cells)
        }
    }
}
