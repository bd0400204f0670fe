//! The rask operator: reconciles each RaskCluster into its scheduler
//! Deployment and Service and one pod per worker, scales workers (retiring
//! them on the scheduler, so their data moves, before their pods are
//! deleted), follows the scheduler's adaptive target, and reports what it
//! sees in the cluster's status, with the scheduler's reason for pods stuck
//! Pending. Every step reads the current state first, so the operator can be
//! killed at any point and converges when started again.

use super::crd::{AdaptiveSpec, Condition, RaskCluster, RaskJob, WorkerGroup};
use super::render::{self, RenderError, DEFAULT_GROUP};
use futures::StreamExt;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{Event, Pod, Secret, Service};
use k8s_openapi::jiff;
use kube::api::{DeleteParams, ListParams, Patch, PatchParams, PostParams};
use kube::runtime::controller::{Action, Controller};
use kube::runtime::finalizer::{finalizer, Event as Finalize};
use kube::runtime::watcher;
use kube::{Api, Client, ResourceExt};
use rask::client::ConnectOptions;
use rask::comm::{TlsOrigin, TlsPem};
use serde_json::json;
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The finalizer the operator puts on every RaskCluster.
pub const FINALIZER: &str = "rask.dev/cleanup";
/// The field manager of the operator's server-side applies.
const MANAGER: &str = "rask-operator";
/// How often a cluster is looked at again without a change.
const RESYNC: Duration = Duration::from_secs(2);
/// A pod Pending this long has its reason reported.
const PENDING_NOTICE: Duration = Duration::from_secs(5);
/// Adaptive scaling removes at most this share of the workers per step…
const MAX_REMOVED_SHARE: f64 = 0.25;
/// …and waits this long (by default) after any change before removing more.
pub const ADAPTIVE_COOLDOWN: Duration = Duration::from_secs(10);

/// Why a reconcile failed (it is retried).
#[derive(Debug, thiserror::Error)]
pub enum OperatorError {
    /// The API server refused or failed a request.
    #[error("Kubernetes API: {0}")]
    Kube(#[from] kube::Error),
    /// The cluster's spec cannot be turned into pods.
    #[error("the cluster's spec: {0}")]
    Spec(#[from] RenderError),
    /// The scheduler could not be asked.
    #[error("the scheduler: {0}")]
    Scheduler(String),
    /// The finalizer could not be added or removed.
    #[error("the finalizer: {0}")]
    Finalizer(String),
}

/// What the operator keeps between reconciles.
pub struct Context {
    client: Client,
    /// The image pods run when their template names none.
    image: String,
    /// Connections to schedulers, by cluster (namespace/name) and address.
    pub(super) schedulers: Schedulers,
    /// When each cluster last changed its worker count, for the cooldown.
    changed: Mutex<HashMap<String, Instant>>,
    /// Worker pods made for each cluster since this process started.
    pub(super) created: Arc<Mutex<HashMap<String, u32>>>,
    /// Whether clusters' `scale`/`adapt` requests are written into their
    /// RaskClusters (the operator; `cluster up` answers them itself).
    serves_requests: bool,
    /// How long adaptive scaling waits after a change before removing workers.
    cooldown: Duration,
}

impl Context {
    /// A context for an operator talking to `client`, defaulting pods to
    /// `image`, waiting `cooldown` after a change before removing workers.
    pub fn new(client: Client, image: String, cooldown: Duration) -> Context {
        Context {
            client,
            image,
            schedulers: Schedulers::default(),
            changed: Mutex::new(HashMap::new()),
            created: Arc::default(),
            serves_requests: false,
            cooldown,
        }
    }

    /// Passes each cluster's `scale`, `adapt` and `status` requests (from
    /// `rask cluster` or a client) into its RaskCluster, as the operator does.
    pub fn serving_cluster_requests(mut self) -> Context {
        self.serves_requests = true;
        self
    }

    /// The Kubernetes client.
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// The image of pods whose template names none.
    pub fn image(&self) -> &str {
        &self.image
    }

    /// How many worker pods this process has made for the cluster.
    pub fn pods_created(&self, rc: &RaskCluster) -> u32 {
        self.created
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&cluster_key(rc))
            .copied()
            .unwrap_or(0)
    }
}

/// Connections to schedulers, by cluster key (`namespace/name`), with the
/// address each was made to.
pub(super) type Schedulers = Arc<Mutex<HashMap<String, (String, rask::client::Client)>>>;

/// Runs the controller until SIGTERM or SIGINT, over RaskClusters in
/// `namespace` (all namespaces if `None`).
pub async fn run(ctx: Arc<Context>, namespace: Option<&str>) {
    let client = ctx.client.clone();
    let (clusters, pods, services, deployments) = match namespace {
        Some(ns) => (
            Api::<RaskCluster>::namespaced(client.clone(), ns),
            Api::<Pod>::namespaced(client.clone(), ns),
            Api::<Service>::namespaced(client.clone(), ns),
            Api::<Deployment>::namespaced(client.clone(), ns),
        ),
        None => (
            Api::<RaskCluster>::all(client.clone()),
            Api::<Pod>::all(client.clone()),
            Api::<Service>::all(client.clone()),
            Api::<Deployment>::all(client.clone()),
        ),
    };
    let jobs = match namespace {
        Some(ns) => Api::<RaskJob>::namespaced(client.clone(), ns),
        None => Api::<RaskJob>::all(client.clone()),
    };
    let children = watcher::Config::default().labels(render::CLUSTER_LABEL);
    let clients = watcher::Config::default().labels(render::JOB_LABEL);
    let cluster_controller = Controller::new(clusters, watcher::Config::default())
        .owns(pods.clone(), children.clone())
        .owns(services, children.clone())
        .owns(deployments, children)
        .shutdown_on_signal()
        .run(reconcile, error_policy, ctx.clone())
        .for_each(|result| async move {
            match result {
                Ok((object, _)) => tracing::debug!(cluster = %object.name, "reconciled"),
                Err(error) => tracing::warn!(%error, "reconcile"),
            }
        });
    let job_controller = Controller::new(jobs, watcher::Config::default())
        .owns(pods, clients)
        .shutdown_on_signal()
        .run(super::jobs::reconcile, super::jobs::error_policy, ctx)
        .for_each(|result| async move {
            match result {
                Ok((object, _)) => tracing::debug!(job = %object.name, "reconciled"),
                Err(error) => tracing::warn!(%error, "reconcile"),
            }
        });
    futures::future::join(cluster_controller, job_controller).await;
}

fn error_policy(rc: Arc<RaskCluster>, error: &OperatorError, _ctx: Arc<Context>) -> Action {
    tracing::warn!(cluster = %rc.name_any(), %error, "reconciling failed; trying again in 5 s");
    Action::requeue(Duration::from_secs(5))
}

async fn reconcile(rc: Arc<RaskCluster>, ctx: Arc<Context>) -> Result<Action, OperatorError> {
    let namespace = rc.namespace().unwrap_or_else(|| "default".into());
    let api: Api<RaskCluster> = Api::namespaced(ctx.client.clone(), &namespace);
    finalizer(&api, FINALIZER, rc, |event| async {
        match event {
            Finalize::Apply(rc) => apply(&rc, &ctx).await,
            Finalize::Cleanup(rc) => cleanup(&rc, &ctx).await,
        }
    })
    .await
    .map_err(|e| match e {
        kube::runtime::finalizer::Error::ApplyFailed(e)
        | kube::runtime::finalizer::Error::CleanupFailed(e) => e,
        other => OperatorError::Finalizer(other.to_string()),
    })
}

/// Deletion: the pods, service and deployment go with their owner (garbage
/// collection); the operator forgets its connection to the scheduler.
async fn cleanup(rc: &RaskCluster, ctx: &Context) -> Result<Action, OperatorError> {
    let key = cluster_key(rc);
    ctx.schedulers
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .remove(&key);
    ctx.changed
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .remove(&key);
    Ok(Action::await_change())
}

pub(super) fn cluster_key(rc: &RaskCluster) -> String {
    format!("{}/{}", rc.namespace().unwrap_or_default(), rc.name_any())
}

/// The worker groups: the default one first, then the named ones.
fn groups(rc: &RaskCluster) -> Vec<(String, WorkerGroup)> {
    let mut groups = vec![(DEFAULT_GROUP.to_string(), rc.spec.worker.clone())];
    groups.extend(
        rc.spec
            .worker_groups
            .iter()
            .map(|g| (g.name.clone(), g.group.clone())),
    );
    groups
}

/// The operator's step: converge, and write what it sees in the status (a
/// spec that cannot be rendered is reported there and changes nothing).
async fn apply(rc: &RaskCluster, ctx: &Context) -> Result<Action, OperatorError> {
    match converge(rc, ctx).await {
        Ok(status) => {
            write_status(rc, ctx, status).await?;
            Ok(Action::requeue(RESYNC))
        }
        Err(OperatorError::Spec(error)) => {
            let condition = condition("SpecInvalid", "True", "BadTemplate", &error.to_string());
            write_status(
                rc,
                ctx,
                json!({"phase": "Failed", "conditions": [condition]}),
            )
            .await?;
            Ok(Action::await_change())
        }
        Err(other) => Err(other),
    }
}

/// One step towards the cluster `rc` describes (which need not exist in the
/// API: `rask cluster up` converges a cluster of its own): the scheduler's
/// Deployment and Service applied, worker pods created or retired and
/// deleted. Returns the status it sees (RaskClusterStatus' JSON).
pub async fn converge(rc: &RaskCluster, ctx: &Context) -> Result<serde_json::Value, OperatorError> {
    let name = rc.name_any();
    let namespace = rc.namespace().unwrap_or_else(|| "default".into());
    let client = ctx.client.clone();
    // Everything rendered first: a bad template changes nothing.
    let deployment = render::scheduler_deployment(rc, &ctx.image)?;
    let service = render::scheduler_service(rc)?;
    let apply = PatchParams::apply(MANAGER).force();
    let scheduler = render::scheduler_name(&name);
    Api::<Deployment>::namespaced(client.clone(), &namespace)
        .patch(&scheduler, &apply, &Patch::Apply(&deployment))
        .await?;
    let service = Api::<Service>::namespaced(client.clone(), &namespace)
        .patch(&scheduler, &apply, &Patch::Apply(&service))
        .await?;
    let cluster_ip = service
        .spec
        .as_ref()
        .and_then(|s| s.cluster_ip.clone())
        .filter(|ip| !ip.is_empty() && ip != "None");

    let pods_api = Api::<Pod>::namespaced(client.clone(), &namespace);
    let pods = pods_api
        .list(&ListParams::default().labels(&render::selector(&name, "worker", None)))
        .await?
        .items;
    // Ended worker pods are replaced (their workers are gone).
    let mut live: BTreeMap<String, Vec<Pod>> = BTreeMap::new();
    for pod in pods {
        let phase = pod.status.as_ref().and_then(|s| s.phase.clone());
        if matches!(phase.as_deref(), Some("Succeeded" | "Failed")) {
            pods_api
                .delete(&pod.name_any(), &DeleteParams::default())
                .await
                .map(|_| ())
                .or_else(ignore_missing)?;
            continue;
        }
        if pod.metadata.deletion_timestamp.is_some() {
            continue;
        }
        let group = pod
            .labels()
            .get(render::GROUP_LABEL)
            .cloned()
            .unwrap_or_default();
        live.entry(group).or_default().push(pod);
    }

    let scheduler_client = match &cluster_ip {
        Some(ip) => connect(rc, ctx, ip).await,
        None => None,
    };
    let connected: Vec<rask::comm::protocol::WorkerSummary> = match &scheduler_client {
        Some(c) => blocking(c.clone(), |c| c.workers())
            .await
            .unwrap_or_default(),
        None => Vec::new(),
    };

    let mut wanted_total = 0;
    let mut changed = false;
    for (group_name, group) in groups(rc) {
        let have = live.remove(&group_name).unwrap_or_default();
        let wanted = if group_name == DEFAULT_GROUP {
            match (&rc.spec.adaptive, &scheduler_client) {
                (Some(adaptive), Some(c)) => {
                    adaptive_wanted(rc, ctx, adaptive, c, have.len() as i32).await
                }
                (Some(adaptive), None) => adaptive.minimum.max(have.len() as i32),
                (None, _) => group.replicas,
            }
        } else {
            group.replicas
        }
        .max(0) as usize;
        wanted_total += wanted as i32;
        if have.len() < wanted {
            let taken: Vec<u32> = have.iter().filter_map(pod_index).collect();
            let mut index = 0;
            for _ in have.len()..wanted {
                while taken.contains(&index) {
                    index += 1;
                }
                let pod = render::worker_pod(rc, &group_name, &group, index, &ctx.image)?;
                match pods_api.create(&PostParams::default(), &pod).await {
                    Ok(_) => {
                        *ctx.created
                            .lock()
                            .unwrap_or_else(|e| e.into_inner())
                            .entry(cluster_key(rc))
                            .or_default() += 1;
                    }
                    Err(kube::Error::Api(e)) if e.code == 409 => {}
                    Err(e) => return Err(e.into()),
                }
                index += 1;
            }
            changed = true;
        } else if have.len() > wanted {
            let excess = have.len() - wanted;
            let doomed = retire(&have, excess, &connected, scheduler_client.as_ref()).await;
            for pod in doomed {
                pods_api
                    .delete(&pod, &DeleteParams::default())
                    .await
                    .map(|_| ())
                    .or_else(ignore_missing)?;
            }
            changed = true;
        }
    }
    // Pods of groups no longer in the spec.
    for (_, pods) in live {
        for pod in pods {
            pods_api
                .delete(&pod.name_any(), &DeleteParams::default())
                .await
                .map(|_| ())
                .or_else(ignore_missing)?;
        }
    }
    if changed {
        ctx.changed
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(cluster_key(rc), Instant::now());
    }

    let prefix = format!("{name}-");
    let workers = connected
        .iter()
        .filter(|w| w.name.starts_with(&prefix))
        .count() as i32;
    let pending = pending_reasons(rc, ctx).await?;
    let mut conditions = Vec::new();
    let ready = scheduler_client.is_some() && workers >= wanted_total;
    conditions.push(condition(
        "Ready",
        if ready { "True" } else { "False" },
        if scheduler_client.is_none() {
            "SchedulerNotReady"
        } else if ready {
            "AllWorkersConnected"
        } else {
            "WorkersStarting"
        },
        &format!("{workers} of {wanted_total} workers connected"),
    ));
    if !pending.is_empty() {
        conditions.push(condition(
            "PodsPending",
            "True",
            "Unschedulable",
            &pending.join("; "),
        ));
    }
    let phase = match (&scheduler_client, ready) {
        (None, _) => "Pending",
        (Some(_), true) => "Running",
        (Some(_), false) => "Scaling",
    };
    Ok(json!({
        "phase": phase,
        "schedulerAddress": render::scheduler_address(&name, &namespace, rc.spec.security.as_ref()),
        "workers": workers,
        "workersWanted": wanted_total,
        "observedGeneration": rc.metadata.generation,
        "conditions": conditions,
    }))
}

/// Where the cluster's scheduler is reachable from here: its service's
/// cluster IP (from inside the cluster, or wherever that routes).
pub async fn reachable_address(
    rc: &RaskCluster,
    ctx: &Context,
) -> Result<Option<String>, OperatorError> {
    let scheme = if rc
        .spec
        .security
        .as_ref()
        .is_some_and(|s| s.tls_secret.is_some())
    {
        "tls"
    } else {
        "tcp"
    };
    Ok(cluster_ip(rc, ctx)
        .await?
        .map(|ip| format!("{scheme}://{ip}:{}", render::SCHEDULER_PORT)))
}

/// The scheduler service's cluster IP, once it has one.
async fn cluster_ip(rc: &RaskCluster, ctx: &Context) -> Result<Option<String>, OperatorError> {
    let namespace = rc.namespace().unwrap_or_else(|| "default".into());
    let service = Api::<Service>::namespaced(ctx.client.clone(), &namespace)
        .get_opt(&render::scheduler_name(&rc.name_any()))
        .await?;
    Ok(service
        .and_then(|s| s.spec?.cluster_ip)
        .filter(|ip| !ip.is_empty() && ip != "None"))
}

/// The operator's connection to the cluster's scheduler (through its
/// service, with the cluster's token and TLS Secrets), once it answers.
pub async fn scheduler_client(rc: &RaskCluster, ctx: &Context) -> Option<rask::client::Client> {
    let ip = cluster_ip(rc, ctx).await.ok()??;
    connect(rc, ctx, &ip).await
}

/// Takes down a cluster made without an owner (`rask cluster up` at exit):
/// its workers retire on the scheduler, then its pods, service and
/// deployment are deleted, and this waits until no pod of it is left.
/// Returns the names of pods still there after `patience`.
pub async fn teardown(
    rc: &RaskCluster,
    ctx: &Context,
    patience: Duration,
) -> Result<Vec<String>, OperatorError> {
    let name = rc.name_any();
    let namespace = rc.namespace().unwrap_or_else(|| "default".into());
    let scheduler = ctx
        .schedulers
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .remove(&cluster_key(rc))
        .map(|(_, client)| client);
    if let Some(client) = scheduler {
        let prefix = format!("{name}-");
        let retired = blocking(client, move |c| {
            let ids: Vec<_> = c
                .workers()?
                .into_iter()
                .filter(|w| w.name.starts_with(&prefix))
                .map(|w| w.id)
                .collect();
            c.retire_workers(&ids, 0)
        })
        .await;
        if let Err(error) = retired {
            tracing::warn!(%error, "retiring the workers before deleting their pods");
        }
    }
    let everything = ListParams::default().labels(&format!("{}={name}", render::CLUSTER_LABEL));
    let scheduler = render::scheduler_name(&name);
    Api::<Deployment>::namespaced(ctx.client.clone(), &namespace)
        .delete(&scheduler, &DeleteParams::background())
        .await
        .map(|_| ())
        .or_else(ignore_missing)?;
    Api::<Service>::namespaced(ctx.client.clone(), &namespace)
        .delete(&scheduler, &DeleteParams::background())
        .await
        .map(|_| ())
        .or_else(ignore_missing)?;
    let pods = Api::<Pod>::namespaced(ctx.client.clone(), &namespace);
    pods.delete_collection(&DeleteParams::background(), &everything)
        .await?;
    let deadline = Instant::now() + patience;
    loop {
        let left: Vec<String> = pods
            .list(&everything)
            .await?
            .items
            .iter()
            .map(|p| p.name_any())
            .collect();
        if left.is_empty() || Instant::now() >= deadline {
            return Ok(left);
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

fn ignore_missing(e: kube::Error) -> Result<(), kube::Error> {
    match e {
        kube::Error::Api(ref r) if r.code == 404 => Ok(()),
        e => Err(e),
    }
}

/// `{cluster}-{group}-{index}` → index.
fn pod_index(pod: &Pod) -> Option<u32> {
    pod.name_any().rsplit_once('-')?.1.parse().ok()
}

/// Chooses `excess` of `pods` to remove and retires their workers on the
/// scheduler first: pods whose worker never connected go first, then those
/// the scheduler retires (its choice among this group's workers: those
/// holding the least data). Returns the pods to delete.
async fn retire(
    pods: &[Pod],
    excess: usize,
    connected: &[rask::comm::protocol::WorkerSummary],
    scheduler: Option<&rask::client::Client>,
) -> Vec<String> {
    let by_name: HashMap<&str, &rask::comm::protocol::WorkerSummary> =
        connected.iter().map(|w| (w.name.as_str(), w)).collect();
    let mut doomed: Vec<String> = pods
        .iter()
        .map(|p| p.name_any())
        .filter(|n| !by_name.contains_key(n.as_str()))
        .take(excess)
        .collect();
    let left = excess - doomed.len();
    if left == 0 {
        return doomed;
    }
    let Some(scheduler) = scheduler else {
        return doomed;
    };
    // The highest-numbered of the group's connected workers: the scheduler
    // moves their data to the others before they close.
    let mut candidates: Vec<&Pod> = pods
        .iter()
        .filter(|p| by_name.contains_key(p.name_any().as_str()))
        .collect();
    candidates.sort_by_key(|p| std::cmp::Reverse(pod_index(p)));
    let chosen: Vec<String> = candidates.iter().take(left).map(|p| p.name_any()).collect();
    let ids: Vec<rask::scheduler::WorkerId> =
        chosen.iter().map(|n| by_name[n.as_str()].id).collect();
    match blocking(scheduler.clone(), move |c| c.retire_workers(&ids, 0)).await {
        Ok(retired) => {
            tracing::info!(workers = ?retired.iter().map(|w| &w.name).collect::<Vec<_>>(), "retired");
            doomed.extend(chosen);
        }
        Err(error) => tracing::warn!(%error, "retiring workers; their pods stay for now"),
    }
    doomed
}

/// The default group's size under adaptive scaling: the scheduler's target
/// within bounds, growing at once, shrinking by at most a quarter per step and
/// not within the cooldown of the last change.
async fn adaptive_wanted(
    rc: &RaskCluster,
    ctx: &Context,
    adaptive: &AdaptiveSpec,
    scheduler: &rask::client::Client,
    have: i32,
) -> i32 {
    let target = match blocking(scheduler.clone(), |c| c.adaptive_target()).await {
        Ok(n) => n as i32,
        Err(_) => have,
    };
    let target = target.clamp(adaptive.minimum, adaptive.maximum.max(adaptive.minimum));
    if target >= have {
        return target;
    }
    let recent = ctx
        .changed
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .get(&cluster_key(rc))
        .is_some_and(|t| t.elapsed() < ctx.cooldown);
    if recent {
        return have;
    }
    let most = ((have as f64 * MAX_REMOVED_SHARE).ceil() as i32).max(1);
    (have - most).max(target)
}

/// Runs a blocking client call off the async threads.
async fn blocking<T: Send + 'static>(
    client: rask::client::Client,
    call: impl FnOnce(&rask::client::Client) -> Result<T, rask::client::Error> + Send + 'static,
) -> Result<T, OperatorError> {
    tokio::task::spawn_blocking(move || call(&client))
        .await
        .map_err(|e| OperatorError::Scheduler(e.to_string()))?
        .map_err(|e| OperatorError::Scheduler(e.to_string()))
}

/// The token the cluster's scheduler requires, from its token Secret
/// (`None` without one); fails saying which Secret is missing or has no `token`.
pub async fn cluster_token(rc: &RaskCluster, ctx: &Context) -> Result<Option<String>, String> {
    let Some(name) = rc
        .spec
        .security
        .as_ref()
        .and_then(|s| s.token_secret.clone())
    else {
        return Ok(None);
    };
    let namespace = rc.namespace().unwrap_or_else(|| "default".into());
    Api::<Secret>::namespaced(ctx.client.clone(), &namespace)
        .get_opt(&name)
        .await
        .ok()
        .flatten()
        .and_then(|s| s.data?.get("token").cloned())
        .map(|bytes| Some(String::from_utf8_lossy(&bytes.0).to_string()))
        .ok_or_else(|| format!("the token Secret {namespace}/{name} is missing or has no `token`"))
}

/// A connection to the cluster's scheduler through its service (kept while
/// the address stays), with the token from the cluster's Secret.
async fn connect(
    rc: &RaskCluster,
    ctx: &Context,
    cluster_ip: &str,
) -> Option<rask::client::Client> {
    let key = cluster_key(rc);
    let tls = rc.spec.security.as_ref().and_then(|s| s.tls_secret.clone());
    let scheme = if tls.is_some() { "tls" } else { "tcp" };
    let address = format!("{scheme}://{cluster_ip}:{}", render::SCHEDULER_PORT);
    if let Some((known, client)) = ctx
        .schedulers
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .get(&key)
    {
        if *known == address && !client.is_closed() {
            return Some(client.clone());
        }
    }
    let mut options = ConnectOptions::new(&address);
    match cluster_token(rc, ctx).await {
        Ok(Some(token)) => options = options.token(token),
        Ok(None) => {}
        Err(why) => {
            tracing::warn!(cluster = %key, "{why}");
            return None;
        }
    }
    let namespace = rc.namespace().unwrap_or_else(|| "default".into());
    let secrets = Api::<Secret>::namespaced(ctx.client.clone(), &namespace);
    if let Some(name) = tls {
        match secrets
            .get_opt(&name)
            .await
            .ok()
            .flatten()
            .and_then(|s| s.data)
        {
            Some(data) => {
                let part = |key: &str| data.get(key).map(|b| b.0.clone()).unwrap_or_default();
                options = options.tls_pem(TlsPem {
                    ca: part("ca.crt"),
                    cert: part("tls.crt"),
                    key: part("tls.key"),
                    origin: TlsOrigin::Keys(format!("Secret {namespace}/{name}")),
                });
            }
            None => {
                tracing::warn!(cluster = %key, secret = %name, "the TLS Secret is missing or empty");
                return None;
            }
        }
    }
    let client = match tokio::task::spawn_blocking(move || options.connect()).await {
        Ok(Ok(client)) => client,
        Ok(Err(error @ rask::Error::Comm(rask::comm::CommError::Config(_)))) => {
            tracing::warn!(cluster = %key, %error, "cannot use the cluster's TLS Secret");
            return None;
        }
        Ok(Err(error)) => {
            tracing::debug!(cluster = %key, %error, "the scheduler does not answer yet");
            return None;
        }
        Err(_) => return None,
    };
    ctx.schedulers
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .insert(key, (address, client.clone()));
    if ctx.serves_requests {
        super::cluster_requests::serve_for_operator(rc, ctx, &client).await;
    }
    Some(client)
}

/// For worker pods Pending longer than a moment: the scheduler's reason (its
/// `FailedScheduling` event, else the pod's condition or waiting reason).
async fn pending_reasons(rc: &RaskCluster, ctx: &Context) -> Result<Vec<String>, OperatorError> {
    let namespace = rc.namespace().unwrap_or_else(|| "default".into());
    let pods = Api::<Pod>::namespaced(ctx.client.clone(), &namespace)
        .list(&ListParams::default().labels(&render::selector(&rc.name_any(), "worker", None)))
        .await?
        .items;
    let events = Api::<Event>::namespaced(ctx.client.clone(), &namespace);
    let mut reasons = Vec::new();
    for pod in pods {
        let status = pod.status.clone().unwrap_or_default();
        if status.phase.as_deref() != Some("Pending") {
            continue;
        }
        let age = pod
            .metadata
            .creation_timestamp
            .as_ref()
            .map(|t| jiff_age(&t.0))
            .unwrap_or_default();
        if age < PENDING_NOTICE {
            continue;
        }
        let name = pod.name_any();
        let event = events
            .list(&ListParams::default().fields(&format!("involvedObject.name={name}")))
            .await?
            .items
            .into_iter()
            .rfind(|e| e.type_.as_deref() == Some("Warning"));
        let reason = event
            .map(|e| {
                format!(
                    "{}: {}",
                    e.reason.unwrap_or_default(),
                    e.message.unwrap_or_default()
                )
            })
            .or_else(|| {
                status
                    .conditions
                    .unwrap_or_default()
                    .into_iter()
                    .find_map(|c| {
                        (c.status == "False").then(|| {
                            format!(
                                "{}: {}",
                                c.reason.unwrap_or_default(),
                                c.message.unwrap_or_default()
                            )
                        })
                    })
            })
            .or_else(|| {
                status
                    .container_statuses
                    .unwrap_or_default()
                    .into_iter()
                    .find_map(|c| {
                        let waiting = c.state?.waiting?;
                        Some(format!(
                            "{}: {}",
                            waiting.reason.unwrap_or_default(),
                            waiting.message.unwrap_or_default()
                        ))
                    })
            });
        if let Some(reason) = reason {
            reasons.push(format!("pod {name} is Pending ({reason})"));
        }
    }
    Ok(reasons)
}

fn jiff_age(t: &jiff::Timestamp) -> Duration {
    let now = jiff::Timestamp::now();
    now.duration_since(*t).try_into().unwrap_or_default()
}

fn condition(type_: &str, status: &str, reason: &str, message: &str) -> Condition {
    Condition {
        type_: type_.into(),
        status: status.into(),
        reason: reason.into(),
        message: message.into(),
        last_transition_time: jiff::Timestamp::now().to_string(),
    }
}

async fn write_status(
    rc: &RaskCluster,
    ctx: &Context,
    mut status: serde_json::Value,
) -> Result<(), OperatorError> {
    let namespace = rc.namespace().unwrap_or_else(|| "default".into());
    let api: Api<RaskCluster> = Api::namespaced(ctx.client.clone(), &namespace);
    // A condition keeps its transition time while its status stays.
    if let (Some(old), Some(new)) = (rc.status.as_ref(), status["conditions"].as_array_mut()) {
        for c in new.iter_mut() {
            if let Some(prev) = old
                .conditions
                .iter()
                .find(|p| p.type_ == c["type"] && p.status == c["status"])
            {
                c["lastTransitionTime"] = json!(prev.last_transition_time);
            }
        }
    }
    let current = serde_json::to_value(rc.status.clone().unwrap_or_default()).unwrap_or_default();
    let mut merged = current.clone();
    if let (Some(m), Some(s)) = (merged.as_object_mut(), status.as_object()) {
        for (k, v) in s {
            m.insert(k.clone(), v.clone());
        }
    }
    if merged == current {
        return Ok(());
    }
    api.patch_status(
        &rc.name_any(),
        &PatchParams::default(),
        &Patch::Merge(&json!({"status": status})),
    )
    .await?;
    Ok(())
}
