//! The custom resources of the rask operator: `RaskCluster` (a scheduler and
//! groups of workers, scaled by hand, through the scale subresource or
//! adaptively) and `RaskJob` (a client pod run against a cluster, then
//! cleaned up). `rask operator crds` prints their definitions.
//!
//! Pod templates and resources are kept as Kubernetes writes them (the API
//! server stores them as they are, `x-kubernetes-preserve-unknown-fields`);
//! the operator checks them against the Pod API types when it reconciles and
//! reports what is wrong in the cluster's status.

use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// The API group of rask's resources.
pub const GROUP: &str = "rask.dev";

/// A rask cluster: a scheduler Deployment and Service, and one pod per worker.
#[derive(CustomResource, Deserialize, Serialize, Clone, Debug, PartialEq, JsonSchema)]
#[kube(
    group = "rask.dev",
    version = "v1alpha1",
    kind = "RaskCluster",
    plural = "raskclusters",
    shortname = "rkc",
    namespaced,
    status = "RaskClusterStatus",
    scale(
        spec_replicas_path = ".spec.worker.replicas",
        status_replicas_path = ".status.workers"
    ),
    printcolumn = r#"{"name":"Phase","type":"string","jsonPath":".status.phase"}"#,
    printcolumn = r#"{"name":"Workers","type":"integer","jsonPath":".status.workers"}"#,
    printcolumn = r#"{"name":"Wanted","type":"integer","jsonPath":".status.workersWanted"}"#,
    printcolumn = r#"{"name":"Scheduler","type":"string","jsonPath":".status.schedulerAddress"}"#,
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#
)]
#[serde(rename_all = "camelCase")]
pub struct RaskClusterSpec {
    /// The scheduler's pod and service.
    #[serde(default)]
    pub scheduler: SchedulerSpec,
    /// The default worker group (the one `kubectl scale` changes).
    #[serde(default)]
    pub worker: WorkerGroup,
    /// More worker groups, each with its own name, size and pod template.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub worker_groups: Vec<NamedWorkerGroup>,
    /// Scale the default group by load, within bounds (replaces `replicas`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub adaptive: Option<AdaptiveSpec>,
    /// Where the scheduler's token and TLS files come from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub security: Option<SecuritySpec>,
}

/// The scheduler's pod template and service.
#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SchedulerSpec {
    /// The pod template (Kubernetes' PodTemplateSpec: `metadata` and `spec`).
    /// Its first container runs the scheduler; without one, the image's
    /// `rask scheduler` runs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "kept_object")]
    pub template: Option<serde_json::Value>,
    /// The service in front of the scheduler.
    #[serde(default)]
    pub service: ServiceSpec,
}

/// The scheduler's service.
#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ServiceSpec {
    /// `ClusterIP` (default), `NodePort` or `LoadBalancer`.
    #[serde(default = "cluster_ip", rename = "type")]
    #[schemars(schema_with = "service_type")]
    pub type_: String,
}

impl Default for ServiceSpec {
    fn default() -> Self {
        ServiceSpec {
            type_: cluster_ip(),
        }
    }
}

fn cluster_ip() -> String {
    "ClusterIP".into()
}

/// A group of identical workers.
#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct WorkerGroup {
    /// How many workers (ignored while `adaptive` is set for the default group).
    #[serde(default)]
    #[schemars(range(min = 0))]
    pub replicas: i32,
    /// Threads per worker (`rask worker --nthreads`); the CPU request by default.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1))]
    pub threads: Option<u32>,
    /// Kubernetes resource requests and limits (`{requests: {cpu, memory}, limits: …}`);
    /// the memory limit becomes the worker's memory limit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "kept_object")]
    pub resources: Option<serde_json::Value>,
    /// The pod template (PodTemplateSpec); its first container runs the worker.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "kept_object")]
    pub template: Option<serde_json::Value>,
}

/// A worker group with a name (its pods are named after it).
#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct NamedWorkerGroup {
    /// The group's name: lowercase letters, digits and `-`.
    #[schemars(regex(pattern = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"), length(max = 40))]
    pub name: String,
    /// The group's workers.
    #[serde(flatten)]
    pub group: WorkerGroup,
}

/// Adaptive bounds for the default worker group.
#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AdaptiveSpec {
    /// Fewest workers.
    #[serde(default)]
    #[schemars(range(min = 0))]
    pub minimum: i32,
    /// Most workers.
    #[schemars(range(min = 0))]
    pub maximum: i32,
}

/// Secrets holding the scheduler's credentials, mounted read-only with mode
/// 0400 into the scheduler and every worker and client pod.
#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SecuritySpec {
    /// A Secret with key `token`: the shared token clients and workers present.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_secret: Option<String>,
    /// A `kubernetes.io/tls` Secret (`tls.crt`, `tls.key`, and `ca.crt`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls_secret: Option<String>,
}

/// What the operator last saw of a cluster.
#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RaskClusterStatus {
    /// `Pending`, `Running`, `Scaling`, `Degraded` or `Terminating`.
    #[serde(default)]
    pub phase: String,
    /// `tcp://service.namespace.svc:8786` once the scheduler's service exists.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scheduler_address: Option<String>,
    /// Workers connected to the scheduler (the scale subresource's replicas).
    #[serde(default)]
    pub workers: i32,
    /// Workers the operator works towards, in every group.
    #[serde(default)]
    pub workers_wanted: i32,
    /// The generation of the spec this status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// Conditions, as Kubernetes writes them (`Ready`, `PodsPending`, `SpecInvalid`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
}

/// One condition of a cluster or job (metav1.Condition's fields).
#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Condition {
    /// `Ready`, `PodsPending`, `SpecInvalid`, …
    #[serde(rename = "type")]
    pub type_: String,
    /// `True`, `False` or `Unknown`.
    pub status: String,
    /// A CamelCase reason.
    #[serde(default)]
    pub reason: String,
    /// For people: what happened (for pending pods, the scheduler's event message).
    #[serde(default)]
    pub message: String,
    /// When the status last changed (RFC 3339).
    #[serde(default)]
    pub last_transition_time: String,
}

/// A client pod run against a RaskCluster, deleted once it ends (its
/// outcome stays in the status).
#[derive(CustomResource, Deserialize, Serialize, Clone, Debug, PartialEq, JsonSchema)]
#[kube(
    group = "rask.dev",
    version = "v1alpha1",
    kind = "RaskJob",
    plural = "raskjobs",
    shortname = "rkj",
    namespaced,
    status = "RaskJobStatus",
    printcolumn = r#"{"name":"Phase","type":"string","jsonPath":".status.phase"}"#,
    printcolumn = r#"{"name":"Cluster","type":"string","jsonPath":".spec.cluster"}"#,
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#
)]
#[serde(rename_all = "camelCase")]
pub struct RaskJobSpec {
    /// The RaskCluster (same namespace) the client connects to; its
    /// scheduler address is given to the pod as `RASK_SCHEDULER_ADDRESS`.
    pub cluster: String,
    /// The client pod's template (PodTemplateSpec); its first container is the client.
    #[schemars(schema_with = "kept_object")]
    pub template: serde_json::Value,
    /// Delete the cluster too once the job ends.
    #[serde(default)]
    pub delete_cluster: bool,
}

/// Where a job stands.
#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RaskJobStatus {
    /// `Pending`, `Running`, `Succeeded` or `Failed`.
    #[serde(default)]
    pub phase: String,
    /// The client pod's name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pod: Option<String>,
    /// When it started and ended (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_time: Option<String>,
    /// When it ended.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub completion_time: Option<String>,
    /// Conditions (`Failed` carries the pod's reason).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
}

/// An object the API server keeps as written.
fn kept_object(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
    schemars::json_schema!({
        "type": "object",
        "x-kubernetes-preserve-unknown-fields": true
    })
}

fn service_type(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
    schemars::json_schema!({
        "type": "string",
        "enum": ["ClusterIP", "NodePort", "LoadBalancer"]
    })
}

/// The definitions of both resources as one YAML stream (`rask operator crds`).
pub fn crds_yaml() -> String {
    use kube::CustomResourceExt;
    [RaskCluster::crd(), RaskJob::crd()]
        .iter()
        .map(|crd| serde_yaml_ng::to_string(crd).expect("a CRD serializes"))
        .collect::<Vec<_>>()
        .join("---\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crds_name_their_group_scale_and_status() {
        let yaml = crds_yaml();
        assert!(yaml.contains("name: raskclusters.rask.dev"), "{yaml}");
        assert!(yaml.contains("name: raskjobs.rask.dev"), "{yaml}");
        assert!(
            yaml.contains("specReplicasPath: .spec.worker.replicas"),
            "{yaml}"
        );
        assert!(yaml.contains("x-kubernetes-preserve-unknown-fields: true"));
    }

    #[test]
    fn a_cluster_reads_with_defaults() {
        let spec: RaskClusterSpec = serde_json::from_value(serde_json::json!({
            "worker": {"replicas": 2},
            "workerGroups": [{"name": "big", "replicas": 1, "threads": 4}],
            "adaptive": {"maximum": 8}
        }))
        .unwrap();
        assert_eq!(spec.worker.replicas, 2);
        assert_eq!(spec.scheduler.service.type_, "ClusterIP");
        assert_eq!(spec.worker_groups[0].group.threads, Some(4));
        assert_eq!(spec.adaptive.unwrap().minimum, 0);
    }
}
