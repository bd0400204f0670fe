//! Cluster managers for rask: job queues (SLURM, PBS, SGE, LSF), Kubernetes, cloud VMs and SSH.
//!
//! Empty until the launcher issues land; see `DESIGN.md` for the planned layout.
