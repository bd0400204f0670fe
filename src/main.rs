//! The `rask` command line.

mod allocator;
mod arraybench;
mod bagbench;
mod bench_cluster;
mod cluster;
mod cluster_up;
mod counts;
mod dashboard;
mod dataframebench;
mod demo;
mod demo_bag;
mod demo_dataframe;
mod interface;
mod jemalloc_controls;
mod jobqueuebench;
mod kernel;
mod kubernetes_up;
mod microbench;
mod nanny;
mod operator;
mod plugin;
mod scheduler;
mod security_args;
mod signals;
mod worker;

use clap::{Parser, Subcommand};
use std::process::ExitCode;

/// jemalloc, except in worker processes (see `allocator`).
#[global_allocator]
static ALLOCATOR: allocator::RaskAllocator = allocator::RaskAllocator;

/// Parallel and distributed computing for Rust.
#[derive(Parser)]
#[command(name = "rask", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the showcase workload on an embedded local cluster and check its results.
    Demo(demo::Args),
    /// Time the dask.array comparison workloads on a local cluster.
    Arraybench(arraybench::Args),
    /// Time the dask.dataframe comparison workloads on a local cluster.
    Dataframebench(dataframebench::Args),
    /// Time the dask.bag comparison workload (word frequencies) on a local cluster.
    Bagbench(bagbench::Args),
    /// Time `cluster up` and adaptive scale-up on a batch system.
    Jobqueuebench(jobqueuebench::Args),
    /// Measure scheduling throughput (map + gather, and a tree reduction).
    Microbench(microbench::Args),
    /// Run a scheduler that workers and clients connect to over TCP.
    Scheduler(scheduler::Args),
    /// Print (and with --open, open) the dashboard's link for a scheduler file.
    Dashboard(dashboard::Args),
    /// Run a worker process that joins a scheduler.
    Worker(worker::Args),
    /// Clusters on batch systems: `check` a config, print its `job-script`,
    /// bring one `up`, ask it for `status`, `scale` or `adapt`.
    Cluster(cluster::Args),
    /// Op plugins: `build` a crate of ops into a library stock workers load.
    Plugin(plugin::Args),
    /// The Jupyter kernel: `install` its kernelspec, `run` it for a connection file.
    Kernel(kernel::Args),
    /// Kubernetes: print the `crds` of RaskCluster and RaskJob, or `run` the operator.
    Operator(operator::Args),
}

fn main() -> ExitCode {
    // The kernel runs notebook cells in a copy of this binary (evcxr's runtime).
    rask_kernel::runtime_hook();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("RASK_LOG")
                .unwrap_or_else(|_| "warn,rask=info".into()),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    rask::worker::allocator::set_allocator_controls(jemalloc_controls::CONTROLS);
    let cli = Cli::parse();
    if let Err(error) = allocator::check_override() {
        eprintln!("error: {error}");
        return ExitCode::from(2);
    }
    let result = match cli.command {
        Command::Demo(args) => demo::run(args).map(|()| 0),
        Command::Microbench(args) => microbench::run(args).map(|()| 0),
        Command::Arraybench(args) => arraybench::run(args).map(|()| 0),
        Command::Dataframebench(args) => dataframebench::run(args).map(|()| 0),
        Command::Bagbench(args) => bagbench::run(args).map(|()| 0),
        Command::Jobqueuebench(args) => jobqueuebench::run(args).map(|()| 0),
        Command::Scheduler(args) => scheduler::run(args).map(|()| 0),
        Command::Dashboard(args) => dashboard::run(args).map(|()| 0),
        Command::Worker(args) => worker::run(args),
        Command::Cluster(args) => cluster::run(args).map(|()| 0),
        Command::Plugin(args) => plugin::run(args).map(|()| 0),
        Command::Kernel(args) => kernel::run(args).map(|()| 0),
        Command::Operator(args) => operator::run(args).map(|()| 0),
    };
    match result {
        Ok(code) => ExitCode::from(code),
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}
