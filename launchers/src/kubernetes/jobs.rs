//! RaskJobs: a client pod run against a RaskCluster of the same namespace,
//! with the scheduler's address (and the cluster's credentials) given to it;
//! once the pod ends, its outcome goes into the job's status, the pod is
//! deleted and, with `deleteCluster`, the cluster too.

use super::crd::{Condition, RaskCluster, RaskJob};
use super::operator::{Context, OperatorError};
use super::render;
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::jiff;
use kube::api::{DeleteParams, Patch, PatchParams, PostParams};
use kube::runtime::controller::Action;
use kube::{Api, ResourceExt};
use serde_json::json;
use std::sync::Arc;
use std::time::Duration;

/// How often a job is looked at again while it runs.
const RESYNC: Duration = Duration::from_secs(2);

/// One step of a job.
pub async fn reconcile(job: Arc<RaskJob>, ctx: Arc<Context>) -> Result<Action, OperatorError> {
    let namespace = job.namespace().unwrap_or_else(|| "default".into());
    let jobs: Api<RaskJob> = Api::namespaced(ctx.client().clone(), &namespace);
    let phase = job
        .status
        .as_ref()
        .map(|s| s.phase.clone())
        .unwrap_or_default();
    if matches!(phase.as_str(), "Succeeded" | "Failed") {
        return Ok(Action::await_change());
    }
    let pods: Api<Pod> = Api::namespaced(ctx.client().clone(), &namespace);
    let pod_name = format!("{}-client", job.name_any());
    let pod = pods.get_opt(&pod_name).await?;
    let Some(pod) = pod else {
        let clusters: Api<RaskCluster> = Api::namespaced(ctx.client().clone(), &namespace);
        let Some(cluster) = clusters.get_opt(&job.spec.cluster).await? else {
            let message = format!("no RaskCluster {:?} in {namespace}", job.spec.cluster);
            set_status(
                &jobs,
                &job,
                "Pending",
                Some(("ClusterNotFound", &message)),
                None,
            )
            .await?;
            return Ok(Action::requeue(RESYNC));
        };
        // The client starts once the scheduler answers (a client started
        // against a service with no ready scheduler would fail at once).
        let phase = cluster
            .status
            .as_ref()
            .map(|s| s.phase.as_str())
            .unwrap_or("");
        if !matches!(phase, "Running" | "Scaling") {
            let message = format!("waiting for RaskCluster {:?}'s scheduler", job.spec.cluster);
            set_status(
                &jobs,
                &job,
                "Pending",
                Some(("ClusterNotReady", &message)),
                None,
            )
            .await?;
            return Ok(Action::requeue(RESYNC));
        }
        let client = match render::client_pod(&job, &cluster, ctx.image()) {
            Ok(pod) => pod,
            Err(error) => {
                let message = error.to_string();
                set_status(&jobs, &job, "Failed", Some(("BadTemplate", &message)), None).await?;
                return Ok(Action::await_change());
            }
        };
        match pods.create(&PostParams::default(), &client).await {
            Ok(_) => {}
            Err(kube::Error::Api(e)) if e.code == 409 => {}
            Err(e) => return Err(e.into()),
        }
        set_status(&jobs, &job, "Pending", None, Some(&pod_name)).await?;
        return Ok(Action::requeue(RESYNC));
    };
    let status = pod.status.clone().unwrap_or_default();
    match status.phase.as_deref() {
        Some("Running") => {
            if phase != "Running" {
                set_status(&jobs, &job, "Running", None, Some(&pod_name)).await?;
            }
            Ok(Action::requeue(RESYNC))
        }
        Some(ended @ ("Succeeded" | "Failed")) => {
            let why = status
                .container_statuses
                .unwrap_or_default()
                .into_iter()
                .find_map(|c| c.state?.terminated)
                .map(|t| format!("the client exited with code {}", t.exit_code))
                .unwrap_or_default();
            let condition = (ended == "Failed").then_some(("ClientFailed", why.as_str()));
            set_status(&jobs, &job, ended, condition, Some(&pod_name)).await?;
            pods.delete(&pod_name, &DeleteParams::default()).await?;
            if job.spec.delete_cluster {
                let clusters: Api<RaskCluster> = Api::namespaced(ctx.client().clone(), &namespace);
                match clusters
                    .delete(&job.spec.cluster, &DeleteParams::default())
                    .await
                {
                    Ok(_) => {}
                    Err(kube::Error::Api(e)) if e.code == 404 => {}
                    Err(e) => return Err(e.into()),
                }
            }
            Ok(Action::await_change())
        }
        _ => Ok(Action::requeue(RESYNC)),
    }
}

/// What went wrong with a job, for the log; it is tried again.
pub fn error_policy(job: Arc<RaskJob>, error: &OperatorError, _ctx: Arc<Context>) -> Action {
    tracing::warn!(job = %job.name_any(), %error, "reconciling failed; trying again in 5 s");
    Action::requeue(Duration::from_secs(5))
}

async fn set_status(
    jobs: &Api<RaskJob>,
    job: &RaskJob,
    phase: &str,
    failure: Option<(&str, &str)>,
    pod: Option<&str>,
) -> Result<(), OperatorError> {
    let now = jiff::Timestamp::now().to_string();
    let old = job.status.clone().unwrap_or_default();
    let mut status = json!({"phase": phase});
    if let Some(pod) = pod {
        status["pod"] = json!(pod);
    }
    if phase == "Running" && old.start_time.is_none() {
        status["startTime"] = json!(now);
    }
    if matches!(phase, "Succeeded" | "Failed") {
        status["completionTime"] = json!(now);
    }
    // A merge patch's null removes conditions that no longer hold.
    status["conditions"] = serde_json::Value::Null;
    if let Some((reason, message)) = failure {
        let condition = Condition {
            type_: if phase == "Failed" {
                "Failed"
            } else {
                "Waiting"
            }
            .into(),
            status: "True".into(),
            reason: reason.into(),
            message: message.into(),
            last_transition_time: now,
        };
        status["conditions"] = json!([condition]);
    }
    let same_condition = match (failure, old.conditions.first()) {
        (None, None) => true,
        (Some((reason, message)), Some(c)) => c.reason == reason && c.message == message,
        _ => false,
    };
    if old.phase == phase && same_condition && old.pod.as_deref() == pod {
        return Ok(());
    }
    jobs.patch_status(
        &job.name_any(),
        &PatchParams::default(),
        &Patch::Merge(&json!({ "status": status })),
    )
    .await?;
    Ok(())
}
