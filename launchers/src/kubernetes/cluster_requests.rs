//! `scale`, `adapt` and `cluster_status` (from `rask cluster` or any
//! client) for clusters on Kubernetes: the scheduler passes them to the
//! process that makes the pods — `rask cluster up`, or the operator, which
//! writes them into the RaskCluster's spec as `kubectl scale` would.

use super::crd::{AdaptiveSpec, RaskCluster, RaskClusterSpec};
use super::operator::{cluster_key, Context};
use super::render;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{ListParams, Patch, PatchParams};
use kube::{Api, ResourceExt};
use rask::client::ClusterCall;
use rask::comm::launcher::{ClusterRequest, ClusterStatus, JobSummary};

/// Changes `spec` as `request` asks: `Scale` fixes the default group's
/// replicas and stops adaptive scaling; `Adapt` sets its bounds.
pub fn apply(spec: &mut RaskClusterSpec, request: &ClusterRequest) -> Result<(), String> {
    match *request {
        ClusterRequest::Status => {}
        ClusterRequest::Scale { workers } => {
            spec.worker.replicas = i32::try_from(workers).map_err(|e| e.to_string())?;
            spec.adaptive = None;
        }
        ClusterRequest::Adapt { minimum, maximum } => {
            if minimum > maximum {
                return Err(format!(
                    "adapt: the minimum ({minimum}) is above the maximum ({maximum})"
                ));
            }
            spec.adaptive = Some(AdaptiveSpec {
                minimum: i32::try_from(minimum).map_err(|e| e.to_string())?,
                maximum: i32::try_from(maximum).map_err(|e| e.to_string())?,
            });
        }
    }
    Ok(())
}

/// What a cluster looks like to `rask cluster status`: one line per worker
/// pod, with the workers connected from it.
pub struct StatusInputs<'a> {
    /// The cluster's name.
    pub name: &'a str,
    /// Its namespace.
    pub namespace: &'a str,
    /// Its spec (for the target when not adaptive, and the bounds).
    pub spec: &'a RaskClusterSpec,
    /// Its status as the operator writes it (`workers`, `workersWanted`).
    pub status: &'a serde_json::Value,
    /// The names of the workers connected to its scheduler.
    pub connected: &'a [String],
    /// Worker pods made since the process started.
    pub submitted: u32,
}

/// The status, with the worker pods listed from the API.
pub async fn status_of(
    client: &kube::Client,
    inputs: StatusInputs<'_>,
) -> Result<ClusterStatus, kube::Error> {
    let pods = Api::<Pod>::namespaced(client.clone(), inputs.namespace)
        .list(&ListParams::default().labels(&render::selector(inputs.name, "worker", None)))
        .await?
        .items;
    let jobs = pods
        .iter()
        .map(|pod| {
            let name = pod.name_any();
            let phase = pod
                .status
                .as_ref()
                .and_then(|s| s.phase.clone())
                .unwrap_or_else(|| "Pending".into());
            // Why a pending pod waits, as the scheduler's condition says
            // (e.g. "Unschedulable: 0/3 nodes are available: ...").
            let waiting = pod
                .status
                .as_ref()
                .and_then(|s| s.conditions.as_ref())
                .and_then(|c| {
                    c.iter()
                        .find(|c| c.type_ == "PodScheduled" && c.status == "False")
                })
                .map(|c| {
                    let reason = c.reason.clone().unwrap_or_default();
                    match &c.message {
                        Some(message) => format!("{reason}: {message}"),
                        None => reason,
                    }
                });
            JobSummary {
                workers: inputs.connected.iter().filter(|w| **w == name).count() as u32,
                state: if pod.metadata.deletion_timestamp.is_some() {
                    "retiring".into()
                } else {
                    match (phase.as_str(), waiting) {
                        ("Pending", Some(why)) => format!("pending ({why})"),
                        _ => phase.to_lowercase(),
                    }
                },
                id: name,
                remaining_seconds: None,
            }
        })
        .collect();
    let count = |key: &str| inputs.status[key].as_u64().unwrap_or(0) as u32;
    Ok(ClusterStatus {
        backend: "kubernetes".into(),
        workers: count("workers"),
        target: match &inputs.spec.adaptive {
            Some(_) => count("workersWanted"),
            None => inputs.spec.worker.replicas.max(0) as u32,
        },
        adaptive: inputs
            .spec
            .adaptive
            .as_ref()
            .map(|a| (a.minimum as u32, a.maximum as u32)),
        jobs,
        submitted: inputs.submitted,
    })
}

/// Serves the scheduler's cluster requests on `scheduler` (a client of it);
/// the calls, for async code. It ends when the client is dropped.
pub async fn serve(
    scheduler: &rask::Client,
) -> Result<tokio::sync::mpsc::UnboundedReceiver<ClusterCall>, String> {
    let serving = scheduler.clone();
    let calls = tokio::task::spawn_blocking(move || serving.serve_cluster_requests())
        .await
        .map_err(|e| e.to_string())?
        .map_err(|e| e.to_string())?;
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    // The calls arrive on a blocking channel; a thread hands them on.
    std::thread::Builder::new()
        .name("cluster-calls".into())
        .spawn(move || {
            for call in calls {
                if tx.send(call).is_err() {
                    return;
                }
            }
        })
        .map_err(|e| e.to_string())?;
    Ok(rx)
}

/// The operator's side: each call is written into the RaskCluster's spec
/// (the reconcile that follows does the rest) and answered with the
/// cluster's status. The task ends when the operator drops its connection
/// (the cluster is deleted, or its scheduler moved).
pub(super) async fn serve_for_operator(rc: &RaskCluster, ctx: &Context, scheduler: &rask::Client) {
    let key = cluster_key(rc);
    let mut calls = match serve(scheduler).await {
        Ok(calls) => calls,
        Err(error) => {
            // Likely the connection of an operator that was killed, not yet
            // noticed by the scheduler: the next reconcile connects afresh.
            tracing::warn!(cluster = %key, %error, "cannot take the cluster's scale requests yet");
            ctx.schedulers
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .remove(&key);
            return;
        }
    };
    let name = rc.name_any();
    let namespace = rc.namespace().unwrap_or_else(|| "default".into());
    let kube = ctx.client().clone();
    let schedulers = ctx.schedulers.clone();
    let created = ctx.created.clone();
    tokio::spawn(async move {
        let clusters = Api::<RaskCluster>::namespaced(kube.clone(), &namespace);
        while let Some(call) = calls.recv().await {
            let answer = async {
                let mut rc = clusters.get(&name).await.map_err(|e| e.to_string())?;
                if !matches!(call.request(), ClusterRequest::Status) {
                    apply(&mut rc.spec, call.request())?;
                    let patch = serde_json::json!({"spec": {
                        "worker": {"replicas": rc.spec.worker.replicas},
                        "adaptive": rc.spec.adaptive,
                    }});
                    rc = clusters
                        .patch(&name, &PatchParams::default(), &Patch::Merge(&patch))
                        .await
                        .map_err(|e| e.to_string())?;
                    tracing::info!(cluster = %key, request = ?call.request(), "cluster request written into the spec");
                }
                // Not kept across the await: a fresh look at the connection.
                let client = schedulers
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .get(&key)
                    .map(|(_, c)| c.clone());
                let connected = match client {
                    Some(c) => worker_names(c).await,
                    None => Vec::new(),
                };
                let submitted = created
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .get(&key)
                    .copied()
                    .unwrap_or(0);
                let status = serde_json::to_value(&rc.status).unwrap_or_default();
                status_of(
                    &kube,
                    StatusInputs {
                        name: &name,
                        namespace: &namespace,
                        spec: &rc.spec,
                        status: &status,
                        connected: &connected,
                        submitted,
                    },
                )
                .await
                .map_err(|e| e.to_string())
            }
            .await;
            call.answer(answer);
        }
    });
}

/// The names of the workers connected to the scheduler.
pub async fn worker_names(scheduler: rask::Client) -> Vec<String> {
    tokio::task::spawn_blocking(move || scheduler.workers())
        .await
        .ok()
        .and_then(Result::ok)
        .map(|workers| workers.into_iter().map(|w| w.name).collect())
        .unwrap_or_default()
}
