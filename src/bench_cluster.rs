//! The embedded cluster a benchmark command runs on, sized from its command line.

use rask::prelude::*;

/// `--workers` and `--threads` of a benchmark command.
#[derive(clap::Args)]
pub struct BenchCluster {
    /// Workers in the local cluster.
    #[arg(long, value_parser = crate::counts::at_least_one, default_value_t = 1)]
    pub workers: usize,
    /// Threads per worker.
    #[arg(long, value_parser = crate::counts::at_least_one, default_value_t = 2)]
    pub threads: usize,
}

impl BenchCluster {
    /// A client of a new local cluster of this size.
    pub fn client(&self) -> Result<Client, rask::Error> {
        Client::local(
            LocalCluster::new()
                .workers(self.workers)
                .threads_per_worker(self.threads),
        )
    }

    /// Worker threads in all.
    pub fn total_threads(&self) -> usize {
        self.workers * self.threads
    }
}
