//! Cluster managers for rask. This crate reads YAML cluster configs (the keys of
//! dask-jobqueue's `jobqueue.yaml`, so a Dask user's file carries over key for
//! key) and renders the batch job scripts that start rask workers on SLURM, PBS,
//! Grid Engine and LSF, submits them, and scales them adaptively; and runs
//! clusters on Kubernetes, with an operator and custom resources.

#![warn(missing_docs)]

pub mod adaptive;
pub mod config;
pub mod jobqueue;
pub mod kubernetes;
