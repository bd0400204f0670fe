//! The Kubernetes objects of a rask cluster: the scheduler's Deployment and
//! Service, and one pod per worker. A user's pod template is the starting
//! point; what rask needs (its command, the pod's own address, the token and
//! TLS Secrets, labels and the owner) is added where the template leaves it
//! out, and a template's own choices are kept.

use super::crd::{RaskCluster, SecuritySpec, WorkerGroup};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{Pod, PodTemplateSpec, Service};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
use kube::Resource;
use serde_json::{json, Map, Value};
use std::collections::BTreeMap;

/// The port workers and clients reach the scheduler on.
pub const SCHEDULER_PORT: u16 = 8786;
/// The scheduler's HTTP port (`/metrics`, the API).
pub const HTTP_PORT: u16 = 8787;
/// The label naming a pod's cluster.
pub const CLUSTER_LABEL: &str = "rask.dev/cluster";
/// The label naming a pod's part: `scheduler` or `worker`.
pub const COMPONENT_LABEL: &str = "rask.dev/component";
/// The label naming a worker pod's group.
pub const GROUP_LABEL: &str = "rask.dev/worker-group";
/// The default worker group's name.
pub const DEFAULT_GROUP: &str = "default";
/// The image when neither the template nor the operator names one.
pub const DEFAULT_IMAGE: &str = "localhost/rask:latest";
/// Where the TLS Secret is mounted.
const TLS_DIR: &str = "/etc/rask/tls";
/// Where a worker spills: an emptyDir volume of its pod.
const SCRATCH: &str = "/var/lib/rask-worker";
/// The non-root user (and group) rask's pods run as unless the template says.
const USER: i64 = 65532;

/// A pod template that cannot be used, or a spec that makes no cluster.
#[derive(Debug, thiserror::Error, PartialEq)]
#[error("{what}: {why}")]
pub struct RenderError {
    /// Which part of the spec (`spec.scheduler.template`, …).
    pub what: String,
    /// What is wrong with it.
    pub why: String,
}

/// Names of a cluster's objects.
pub fn scheduler_name(cluster: &str) -> String {
    format!("{cluster}-scheduler")
}

/// The labels of a cluster's part (and, for workers, group).
pub fn labels(cluster: &str, component: &str, group: Option<&str>) -> BTreeMap<String, String> {
    let mut labels = BTreeMap::from([
        (CLUSTER_LABEL.to_string(), cluster.to_string()),
        (COMPONENT_LABEL.to_string(), component.to_string()),
        ("app.kubernetes.io/name".to_string(), "rask".to_string()),
    ]);
    if let Some(group) = group {
        labels.insert(GROUP_LABEL.to_string(), group.to_string());
    }
    labels
}

/// A label selector for a cluster's part, as the API takes it.
pub fn selector(cluster: &str, component: &str, group: Option<&str>) -> String {
    let mut terms = vec![
        format!("{CLUSTER_LABEL}={cluster}"),
        format!("{COMPONENT_LABEL}={component}"),
    ];
    if let Some(group) = group {
        terms.push(format!("{GROUP_LABEL}={group}"));
    }
    terms.join(",")
}

/// How workers and clients inside the cluster reach the scheduler.
pub fn scheduler_address(
    cluster: &str,
    namespace: &str,
    security: Option<&SecuritySpec>,
) -> String {
    let scheme = if security.is_some_and(|s| s.tls_secret.is_some()) {
        "tls"
    } else {
        "tcp"
    };
    format!(
        "{scheme}://{}.{namespace}.svc:{SCHEDULER_PORT}",
        scheduler_name(cluster)
    )
}

fn owner(rc: &RaskCluster) -> Option<OwnerReference> {
    rc.controller_owner_ref(&())
}

/// The template's JSON (`{metadata, spec}`), checked against the
/// PodTemplateSpec API type.
fn template(value: Option<&Value>, what: &str) -> Result<Map<String, Value>, RenderError> {
    match value {
        None | Some(Value::Null) => Ok(Map::new()),
        Some(Value::Object(map)) => {
            typed::<PodTemplateSpec>(Value::Object(map.clone()), what)?;
            Ok(map.clone())
        }
        Some(_) => Err(RenderError {
            what: what.into(),
            why: "a pod template is an object with `metadata` and `spec`".into(),
        }),
    }
}

fn object<'a>(map: &'a mut Map<String, Value>, key: &str) -> &'a mut Map<String, Value> {
    let entry = map.entry(key).or_insert_with(|| json!({}));
    if !entry.is_object() {
        *entry = json!({});
    }
    entry.as_object_mut().expect("an object")
}

fn list<'a>(map: &'a mut Map<String, Value>, key: &str) -> &'a mut Vec<Value> {
    let entry = map.entry(key).or_insert_with(|| json!([]));
    if !entry.is_array() {
        *entry = json!([]);
    }
    entry.as_array_mut().expect("a list")
}

/// Adds `item` to a list of named items unless one of that name is there.
fn add_named(items: &mut Vec<Value>, item: Value) {
    let name = item["name"].clone();
    if !items.iter().any(|i| i["name"] == name) {
        items.push(item);
    }
}

/// Fills the pod spec's first container (creating it) and the pod's defaults.
fn fill_pod(
    spec: &mut Map<String, Value>,
    container_name: &str,
    image: &str,
    command: Vec<String>,
    security: Option<&SecuritySpec>,
) {
    // Non-root by default; secret files readable through the group.
    let context = object(spec, "securityContext");
    context.entry("runAsNonRoot").or_insert(json!(true));
    context.entry("runAsUser").or_insert(json!(USER));
    context.entry("runAsGroup").or_insert(json!(USER));
    context.entry("fsGroup").or_insert(json!(USER));
    let tls = security.and_then(|s| s.tls_secret.clone());
    if let Some(secret) = &tls {
        add_named(
            list(spec, "volumes"),
            json!({"name": "rask-tls", "secret": {"secretName": secret, "defaultMode": 0o440}}),
        );
    }
    let containers = list(spec, "containers");
    if containers.is_empty() {
        containers.push(json!({}));
    }
    let first = containers[0]
        .as_object_mut()
        .expect("containers are objects");
    first
        .entry("name")
        .or_insert(json!(container_name.to_string()));
    first.entry("image").or_insert(json!(image));
    if !first.contains_key("command") {
        first.insert("command".into(), json!(command));
    }
    let env = list(first, "env");
    add_named(
        env,
        json!({"name": "RASK_POD_IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}}),
    );
    add_named(
        env,
        json!({"name": "RASK_POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}}),
    );
    if let Some(secret) = security.and_then(|s| s.token_secret.clone()) {
        add_named(
            env,
            json!({"name": "RASK_TOKEN", "valueFrom": {"secretKeyRef": {"name": secret, "key": "token"}}}),
        );
    }
    if tls.is_some() {
        add_named(
            list(first, "volumeMounts"),
            json!({"name": "rask-tls", "mountPath": TLS_DIR, "readOnly": true}),
        );
    }
    let context = object(first, "securityContext");
    context
        .entry("allowPrivilegeEscalation")
        .or_insert(json!(false));
    context
        .entry("capabilities")
        .or_insert(json!({"drop": ["ALL"]}));
}

/// The TLS flags, when the cluster has a TLS Secret.
fn tls_args(security: Option<&SecuritySpec>) -> Vec<String> {
    match security.and_then(|s| s.tls_secret.as_ref()) {
        Some(_) => vec![
            "--tls-ca-file".into(),
            format!("{TLS_DIR}/ca.crt"),
            "--tls-cert".into(),
            format!("{TLS_DIR}/tls.crt"),
            "--tls-key".into(),
            format!("{TLS_DIR}/tls.key"),
        ],
        None => Vec::new(),
    }
}

fn metadata(template: &mut Map<String, Value>, labels: &BTreeMap<String, String>) {
    let meta = object(template, "metadata");
    let own = object(meta, "labels");
    for (k, v) in labels {
        own.insert(k.clone(), json!(v));
    }
}

fn typed<T: serde::de::DeserializeOwned>(value: Value, what: &str) -> Result<T, RenderError> {
    serde_json::from_value(value).map_err(|e| RenderError {
        what: what.into(),
        why: e.to_string(),
    })
}

fn name_and_namespace(rc: &RaskCluster) -> (String, String) {
    (
        rc.metadata.name.clone().unwrap_or_default(),
        rc.metadata
            .namespace
            .clone()
            .unwrap_or_else(|| "default".into()),
    )
}

/// The scheduler's Deployment (one pod, recreated rather than rolled).
pub fn scheduler_deployment(rc: &RaskCluster, image: &str) -> Result<Deployment, RenderError> {
    let (name, _) = name_and_namespace(rc);
    let security = rc.spec.security.as_ref();
    let labels = labels(&name, "scheduler", None);
    let mut pod = template(
        rc.spec.scheduler.template.as_ref(),
        "spec.scheduler.template",
    )?;
    metadata(&mut pod, &labels);
    let mut command: Vec<String> = [
        "/usr/local/bin/rask",
        "scheduler",
        "--host",
        "$(RASK_POD_IP)",
        "--port",
        "8786",
        "--dashboard-port",
        "8787",
    ]
    .map(String::from)
    .to_vec();
    command.extend(tls_args(security));
    let spec = object(&mut pod, "spec");
    fill_pod(spec, "scheduler", image, command, security);
    let first = list(spec, "containers")[0].as_object_mut().expect("filled");
    let ports = list(first, "ports");
    add_named(
        ports,
        json!({"name": "scheduler", "containerPort": SCHEDULER_PORT}),
    );
    add_named(ports, json!({"name": "http", "containerPort": HTTP_PORT}));
    first
        .entry("readinessProbe")
        .or_insert(json!({"tcpSocket": {"port": "scheduler"}, "periodSeconds": 2}));
    let deployment = json!({
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": scheduler_metadata(rc, &labels),
        "spec": {
            "replicas": 1,
            "strategy": {"type": "Recreate"},
            "selector": {"matchLabels": labels},
            "template": pod,
        }
    });
    typed(deployment, "spec.scheduler.template")
}

/// The metadata of the scheduler's Deployment and Service.
fn scheduler_metadata(rc: &RaskCluster, labels: &BTreeMap<String, String>) -> Value {
    let (name, namespace) = name_and_namespace(rc);
    json!({
        "name": scheduler_name(&name),
        "namespace": namespace,
        "labels": labels,
        "ownerReferences": owner(rc).into_iter().collect::<Vec<_>>(),
    })
}

/// The scheduler's Service.
pub fn scheduler_service(rc: &RaskCluster) -> Result<Service, RenderError> {
    let (name, _) = name_and_namespace(rc);
    let labels = labels(&name, "scheduler", None);
    typed(
        json!({
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": scheduler_metadata(rc, &labels),
            "spec": {
                "type": rc.spec.scheduler.service.type_,
                "selector": labels,
                "ports": [
                    {"name": "scheduler", "port": SCHEDULER_PORT, "targetPort": "scheduler"},
                    {"name": "http", "port": HTTP_PORT, "targetPort": "http"},
                ],
            }
        }),
        "spec.scheduler.service",
    )
}

/// rask's memory-size syntax for a Kubernetes quantity (`4Gi` is `4GiB`).
fn memory_limit(quantity: &str) -> String {
    let q = quantity.trim();
    if q.ends_with('i') {
        format!("{q}B")
    } else {
        q.to_string()
    }
}

/// A worker group's pod `index` (named `{cluster}-{group}-{index}`).
pub fn worker_pod(
    rc: &RaskCluster,
    group_name: &str,
    group: &WorkerGroup,
    index: u32,
    image: &str,
) -> Result<Pod, RenderError> {
    let (name, namespace) = name_and_namespace(rc);
    let security = rc.spec.security.as_ref();
    let what = if group_name == DEFAULT_GROUP {
        "spec.worker".to_string()
    } else {
        format!("spec.workerGroups[{group_name}]")
    };
    let labels = labels(&name, "worker", Some(group_name));
    let mut pod = template(group.template.as_ref(), &format!("{what}.template"))?;
    metadata(&mut pod, &labels);
    let mut command: Vec<String> = [
        "/usr/local/bin/rask".to_string(),
        "worker".to_string(),
        scheduler_address(&name, &namespace, security),
        "--host".into(),
        "$(RASK_POD_IP)".into(),
        "--name".into(),
        "$(RASK_POD_NAME)".into(),
        "--death-timeout".into(),
        "120".into(),
        "--local-directory".into(),
        SCRATCH.into(),
    ]
    .to_vec();
    if let Some(threads) = group.threads {
        command.extend(["--nthreads".into(), threads.to_string()]);
    }
    let resources = group.resources.clone().unwrap_or(Value::Null);
    if !resources.is_null() && !resources.is_object() {
        return Err(RenderError {
            what: format!("{what}.resources"),
            why: "resources are an object with `requests` and `limits`".into(),
        });
    }
    let memory = resources["limits"]["memory"]
        .as_str()
        .map(String::from)
        .or_else(|| {
            resources["limits"]["memory"]
                .as_u64()
                .map(|b| b.to_string())
        });
    command.extend([
        "--memory-limit".into(),
        memory.as_deref().map_or("auto".into(), memory_limit),
    ]);
    command.extend(tls_args(security));
    let spec = object(&mut pod, "spec");
    // The operator replaces a worker whose pod ends; its nanny restarts the
    // worker process inside it.
    spec.entry("restartPolicy").or_insert(json!("Never"));
    spec.entry("terminationGracePeriodSeconds")
        .or_insert(json!(60));
    fill_pod(spec, "worker", image, command, security);
    // Spilled data goes to the pod's own scratch volume.
    add_named(
        list(spec, "volumes"),
        json!({"name": "rask-scratch", "emptyDir": {}}),
    );
    let first = list(spec, "containers")[0].as_object_mut().expect("filled");
    add_named(
        list(first, "volumeMounts"),
        json!({"name": "rask-scratch", "mountPath": SCRATCH}),
    );
    if !resources.is_null() {
        let first = list(spec, "containers")[0].as_object_mut().expect("filled");
        first.entry("resources").or_insert(resources);
    }
    // The template's metadata (labels, annotations) with the pod's identity.
    let mut meta = pod.get("metadata").cloned().unwrap_or_else(|| json!({}));
    meta["name"] = json!(format!("{name}-{group_name}-{index}"));
    meta["namespace"] = json!(namespace);
    meta["ownerReferences"] = json!(owner(rc).into_iter().collect::<Vec<_>>());
    let pod_json =
        json!({"apiVersion": "v1", "kind": "Pod", "metadata": meta, "spec": pod["spec"].clone()});
    typed(pod_json, &format!("{what}.template"))
}

/// The label naming a client pod's RaskJob.
pub const JOB_LABEL: &str = "rask.dev/job";

/// A RaskJob's client pod (`{job}-client`): its template, with the cluster's
/// scheduler address as `RASK_SCHEDULER_ADDRESS` and the cluster's token
/// and TLS files as its workers get them; never restarted.
pub fn client_pod(
    job: &super::crd::RaskJob,
    cluster: &RaskCluster,
    image: &str,
) -> Result<Pod, RenderError> {
    let name = job.metadata.name.clone().unwrap_or_default();
    let (cluster_name, namespace) = name_and_namespace(cluster);
    let security = cluster.spec.security.as_ref();
    let mut pod = template(Some(&job.spec.template), "spec.template")?;
    let mut labels = labels(&cluster_name, "client", None);
    labels.insert(JOB_LABEL.to_string(), name.clone());
    metadata(&mut pod, &labels);
    let spec = object(&mut pod, "spec");
    spec.insert("restartPolicy".into(), json!("Never"));
    if list(spec, "containers").is_empty() {
        return Err(RenderError {
            what: "spec.template".into(),
            why: "the client pod needs a container with a command".into(),
        });
    }
    fill_pod(spec, "client", image, Vec::new(), security);
    let first = list(spec, "containers")[0].as_object_mut().expect("filled");
    if first["command"].as_array().is_some_and(|c| c.is_empty()) {
        return Err(RenderError {
            what: "spec.template".into(),
            why: "the client container has no command".into(),
        });
    }
    add_named(
        list(first, "env"),
        json!({"name": "RASK_SCHEDULER_ADDRESS",
               "value": scheduler_address(&cluster_name, &namespace, security)}),
    );
    let owner = job.controller_owner_ref(&());
    let mut meta = pod.get("metadata").cloned().unwrap_or_else(|| json!({}));
    meta["name"] = json!(format!("{name}-client"));
    meta["namespace"] = json!(namespace);
    meta["ownerReferences"] = json!(owner.into_iter().collect::<Vec<_>>());
    typed(
        json!({"apiVersion": "v1", "kind": "Pod", "metadata": meta, "spec": pod["spec"].clone()}),
        "spec.template",
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kubernetes::crd::RaskClusterSpec;

    fn cluster(spec: Value) -> RaskCluster {
        let mut rc = RaskCluster::new(
            "demo",
            serde_json::from_value::<RaskClusterSpec>(spec).unwrap(),
        );
        rc.metadata.namespace = Some("science".into());
        rc.metadata.uid = Some("1234".into());
        rc
    }

    #[test]
    fn a_worker_pod_runs_rask_worker_against_the_service() {
        let rc = cluster(json!({
            "worker": {"replicas": 2, "threads": 2,
                       "resources": {"limits": {"memory": "4Gi"}, "requests": {"cpu": "2"}}},
            "security": {"tokenSecret": "tok"}
        }));
        let pod = worker_pod(&rc, DEFAULT_GROUP, &rc.spec.worker, 3, DEFAULT_IMAGE).unwrap();
        assert_eq!(pod.metadata.name.as_deref(), Some("demo-default-3"));
        let spec = pod.spec.unwrap();
        let c = &spec.containers[0];
        let command = c.command.clone().unwrap();
        assert_eq!(command[2], "tcp://demo-scheduler.science.svc:8786");
        assert!(
            command.windows(2).any(|w| w == ["--memory-limit", "4GiB"]),
            "{command:?}"
        );
        assert!(
            command.windows(2).any(|w| w == ["--nthreads", "2"]),
            "{command:?}"
        );
        let env: Vec<_> = c.env.clone().unwrap().into_iter().map(|e| e.name).collect();
        assert!(env.contains(&"RASK_TOKEN".to_string()), "{env:?}");
        assert_eq!(spec.restart_policy.as_deref(), Some("Never"));
        assert_eq!(pod.metadata.owner_references.unwrap()[0].uid, "1234");
    }

    #[test]
    fn a_template_keeps_its_own_choices() {
        let rc = cluster(json!({
            "worker": {"template": {"metadata": {"labels": {"team": "a"}},
                                    "spec": {"containers": [{"name": "w", "image": "mine:1"}],
                                             "nodeSelector": {"disk": "ssd"}}}},
            "security": {"tlsSecret": "certs"}
        }));
        let pod = worker_pod(&rc, DEFAULT_GROUP, &rc.spec.worker, 0, DEFAULT_IMAGE).unwrap();
        let spec = pod.spec.unwrap();
        assert_eq!(spec.containers[0].image.as_deref(), Some("mine:1"));
        assert_eq!(spec.node_selector.unwrap()["disk"], "ssd");
        assert_eq!(pod.metadata.labels.unwrap()["team"], "a");
        let command = spec.containers[0].command.clone().unwrap();
        assert!(command[2].starts_with("tls://"), "{command:?}");
        assert_eq!(
            spec.volumes.unwrap()[0]
                .secret
                .as_ref()
                .unwrap()
                .default_mode,
            Some(0o440)
        );
    }

    #[test]
    fn a_template_of_the_wrong_shape_is_an_error_that_names_it() {
        let rc = cluster(json!({"scheduler": {"template": {"spec": {"containers": "nope"}}}}));
        let e = scheduler_deployment(&rc, DEFAULT_IMAGE).unwrap_err();
        assert_eq!(e.what, "spec.scheduler.template");
        let rc = cluster(json!({"worker": {"template": [1]}}));
        let e = worker_pod(&rc, DEFAULT_GROUP, &rc.spec.worker, 0, DEFAULT_IMAGE).unwrap_err();
        assert_eq!(e.what, "spec.worker.template");
    }

    #[test]
    fn the_scheduler_listens_on_its_pod_address_behind_its_service() {
        let rc = cluster(json!({"scheduler": {"service": {"type": "NodePort"}}}));
        let d = scheduler_deployment(&rc, DEFAULT_IMAGE).unwrap();
        let c = &d.spec.unwrap().template.spec.unwrap().containers[0];
        assert!(c
            .command
            .as_ref()
            .unwrap()
            .contains(&"$(RASK_POD_IP)".to_string()));
        assert!(c.readiness_probe.is_some());
        let s = scheduler_service(&rc).unwrap();
        assert_eq!(s.spec.unwrap().type_.as_deref(), Some("NodePort"));
    }
}
