//! `rask operator`: rask's Kubernetes custom resources (`crds` prints their
//! definitions, for `kubectl apply -f -`).

use anyhow::Result;

/// `rask operator …`.
#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(subcommand)]
    command: OperatorCommand,
}

#[derive(clap::Subcommand, Debug)]
enum OperatorCommand {
    /// Print the CustomResourceDefinitions of RaskCluster and RaskJob (YAML).
    Crds,
}

/// Runs `rask operator`.
pub fn run(args: Args) -> Result<()> {
    match args.command {
        OperatorCommand::Crds => {
            print!("{}", rask_launchers::kubernetes::crd::crds_yaml());
            Ok(())
        }
    }
}
