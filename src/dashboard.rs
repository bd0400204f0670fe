//! `rask dashboard`: prints (and with `--open`, opens) the dashboard of the
//! scheduler a scheduler file names.

use anyhow::{bail, Context, Result};
use std::path::PathBuf;

/// Options of `rask dashboard`.
#[derive(clap::Args)]
pub struct Args {
    /// The scheduler file of the cluster (`rask scheduler --scheduler-file`,
    /// `rask cluster up` write one).
    #[arg(long, value_name = "PATH")]
    scheduler_file: PathBuf,
    /// Open the link in a browser too (`$BROWSER`, else `xdg-open`).
    #[arg(long)]
    open: bool,
}

pub fn run(args: Args) -> Result<()> {
    let file = rask::client::read_scheduler_file(&args.scheduler_file)
        .with_context(|| format!("reading {}", args.scheduler_file.display()))?;
    let Some(link) = file.dashboard_link() else {
        bail!(
            "{}: the scheduler serves no dashboard (it was started with --no-dashboard)",
            args.scheduler_file.display()
        );
    };
    println!("{link}");
    if args.open {
        let browser = std::env::var("BROWSER").unwrap_or_else(|_| "xdg-open".into());
        std::process::Command::new(&browser)
            .arg(&link)
            .spawn()
            .with_context(|| format!("starting {browser} (set $BROWSER to choose another)"))?;
    }
    Ok(())
}
