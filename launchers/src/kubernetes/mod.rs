//! Kubernetes: rask's custom resources and the operator that reconciles them
//! (`rask operator`), and pods started by `rask cluster up` without one.

pub mod cluster_requests;
pub mod crd;
pub mod jobs;
pub mod operator;
pub mod render;
