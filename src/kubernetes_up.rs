//! `rask cluster up kubernetes.yaml`: a cluster on Kubernetes without the
//! operator. This process makes the scheduler's Deployment and Service and
//! one pod per worker, converges them as the operator does (the same code:
//! scaling retires workers before deleting their pods; adaptive scaling
//! follows the scheduler's target), says what it sees, and at SIGINT or
//! SIGTERM retires the workers and deletes everything it made.

use crate::cluster_up::{parse_bounds, UpArgs};
use anyhow::{bail, Context, Result};
use kube::ResourceExt;
use rask::client::ClusterCall;
use rask::comm::launcher::ClusterRequest;
use rask_launchers::config::{Adaptive, Kubernetes};
use rask_launchers::kubernetes::crd::{
    AdaptiveSpec, RaskCluster, RaskClusterSpec, SchedulerSpec, SecuritySpec, ServiceSpec,
    WorkerGroup,
};
use rask_launchers::kubernetes::{cluster_requests, operator, render};
use serde_json::json;
use std::time::Duration;
use tokio::sync::mpsc::UnboundedReceiver;

/// How often the cluster is converged.
const INTERVAL: Duration = Duration::from_secs(1);
/// How long teardown waits for the pods to go.
const TEARDOWN: Duration = Duration::from_secs(120);

/// Runs the cluster until SIGINT or SIGTERM.
pub fn up(k: &Kubernetes, args: &UpArgs) -> Result<()> {
    let adaptive = match (args.workers, &args.adapt, &k.adaptive, k.workers) {
        (Some(_), _, _, _) => None,
        (None, Some(bounds), _, _) => {
            let (minimum, maximum) = parse_bounds(bounds)?;
            Some((minimum, maximum, k.adaptive.clone()))
        }
        (None, None, Some(a), _) => Some((a.minimum as u32, a.maximum as u32, Some(a.clone()))),
        (None, None, None, Some(_)) => None,
        (None, None, None, None) => bail!(
            "{}: say how many workers: --workers N, --adapt MIN:MAX, `workers:` or an `adaptive:` section",
            args.config.display()
        ),
    };
    let replicas = args.workers.or(k.workers).unwrap_or(0);
    let rc = cluster(
        k,
        replicas,
        adaptive.as_ref().map(|(min, max, _)| (*min, *max)),
    );
    // A worker leaves after wait-count decisions with less work, as on batch systems.
    let cooldown = adaptive
        .as_ref()
        .and_then(|(_, _, a)| a.as_ref())
        .map_or(operator::ADAPTIVE_COOLDOWN, cooldown_of);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the runtime")?;
    runtime.block_on(run(k, args, rc, cooldown))
}

fn cooldown_of(a: &Adaptive) -> Duration {
    Duration::from_secs_f64(a.interval * a.wait_count as f64)
}

/// The RaskCluster this config describes (never created in the API: its
/// objects have no owner, and this process deletes them).
fn cluster(k: &Kubernetes, replicas: u32, adaptive: Option<(u32, u32)>) -> RaskCluster {
    let env: Vec<_> = k
        .env
        .iter()
        .map(|(name, value)| json!({"name": name, "value": value}))
        .collect();
    let template = |container: &str| {
        Some(json!({
            "metadata": {"labels": k.labels},
            "spec": {"containers": [{"name": container, "env": env}]},
        }))
    };
    let spec = RaskClusterSpec {
        scheduler: SchedulerSpec {
            template: template("scheduler"),
            service: ServiceSpec {
                type_: k.service_type.clone(),
            },
        },
        worker: WorkerGroup {
            replicas: replicas as i32,
            threads: k.threads,
            resources: k.resources.clone(),
            template: template("worker"),
        },
        worker_groups: Vec::new(),
        adaptive: adaptive.map(|(minimum, maximum)| AdaptiveSpec {
            minimum: minimum as i32,
            maximum: maximum as i32,
        }),
        security: (k.token_secret.is_some() || k.tls_secret.is_some()).then(|| SecuritySpec {
            token_secret: k.token_secret.clone(),
            tls_secret: k.tls_secret.clone(),
        }),
    };
    let mut rc = RaskCluster::new(&k.name, spec);
    rc.metadata.namespace = Some(k.namespace.clone());
    rc
}

async fn run(k: &Kubernetes, args: &UpArgs, mut rc: RaskCluster, cooldown: Duration) -> Result<()> {
    let (client, _) = crate::operator::connect().await?;
    let image = k
        .image
        .clone()
        .unwrap_or_else(|| render::DEFAULT_IMAGE.into());
    let ctx = operator::Context::new(client, image, cooldown);
    let mut stop = Box::pin(stop_signal());
    let mut told = String::new();
    let mut address_told = false;
    let mut launcher = Launcher::default();
    let outcome: Result<()> = loop {
        match operator::converge(&rc, &ctx).await {
            Ok(status) => {
                // Told (and written) once the scheduler answers, so that a
                // client reading the file can connect.
                if !address_told && status["phase"] != "Pending" {
                    if let Some(address) = operator::reachable_address(&rc, &ctx).await? {
                        eprintln!(
                            "scheduler at {address} (from pods: {})",
                            status["schedulerAddress"].as_str().unwrap_or_default()
                        );
                        let token = operator::cluster_token(&rc, &ctx)
                            .await
                            .map_err(anyhow::Error::msg)?;
                        let parsed: rask::comm::address::Address = address.parse()?;
                        // The scheduler pod serves HTTP on the service's other port.
                        let scheme = if parsed.tls { "https" } else { "http" };
                        let dashboard = format!("{scheme}://{}:{}", parsed.host, render::HTTP_PORT);
                        eprintln!(
                            "dashboard at {}",
                            rask::diagnostics::dashboard_link(&dashboard, token.as_deref())
                        );
                        if let Some(path) = &args.scheduler_file {
                            rask::server::tcp::write_scheduler_file(
                                path,
                                &parsed,
                                Some(&dashboard),
                                token.as_deref(),
                            )?;
                        }
                        address_told = true;
                    }
                }
                if address_told {
                    launcher.serve(&rc, &ctx).await;
                }
                launcher.status = Some(status.clone());
                let line = describe(&status);
                if line != told {
                    eprintln!("{line}");
                    told = line;
                }
            }
            Err(operator::OperatorError::Spec(error)) => break Err(error.into()),
            Err(error) => eprintln!("warning: {error}; trying again"),
        }
        tokio::select! {
            _ = &mut stop => break Ok(()),
            Some(call) = launcher.next_call() => launcher.answer(call, &mut rc, &ctx).await,
            _ = tokio::time::sleep(INTERVAL) => {}
        }
    };
    drop(launcher);
    eprintln!("retiring the workers and deleting the cluster's pods, service and deployment");
    let left = operator::teardown(&rc, &ctx, TEARDOWN).await?;
    if let Some(path) = &args.scheduler_file {
        let _ = std::fs::remove_file(path);
    }
    if !left.is_empty() {
        bail!(
            "pods still there after {} s: {}",
            TEARDOWN.as_secs(),
            left.join(", ")
        );
    }
    outcome
}

/// The launcher's side of `rask cluster scale`, `adapt` and `status` (and
/// `Client::scale`...): the scheduler passes them to this process through
/// a client connection that serves them.
#[derive(Default)]
struct Launcher {
    /// The connection serving them, and the calls it brings.
    served: Option<(rask::Client, UnboundedReceiver<ClusterCall>)>,
    /// The latest converged status.
    status: Option<serde_json::Value>,
}

impl Launcher {
    /// Serves the scheduler's cluster requests (again, after a lost connection).
    async fn serve(&mut self, rc: &RaskCluster, ctx: &operator::Context) {
        if self.served.as_ref().is_some_and(|(c, _)| !c.is_closed()) {
            return;
        }
        self.served = None;
        let Some(client) = operator::scheduler_client(rc, ctx).await else {
            return;
        };
        match cluster_requests::serve(&client).await {
            Ok(calls) => self.served = Some((client, calls)),
            Err(error) => eprintln!("warning: cannot take `rask cluster scale` requests: {error}"),
        }
    }

    /// The next call, or never while none is served.
    async fn next_call(&mut self) -> Option<ClusterCall> {
        match &mut self.served {
            Some((_, calls)) => calls.recv().await,
            None => std::future::pending().await,
        }
    }

    /// Applies a call to the cluster, converges, and answers with the result.
    async fn answer(&mut self, call: ClusterCall, rc: &mut RaskCluster, ctx: &operator::Context) {
        if let Err(why) = cluster_requests::apply(&mut rc.spec, call.request()) {
            call.answer(Err(why));
            return;
        }
        match *call.request() {
            ClusterRequest::Status => {}
            ClusterRequest::Scale { workers } => {
                eprintln!("scaling to {workers} workers (adaptive scaling stops)")
            }
            ClusterRequest::Adapt { minimum, maximum } => {
                eprintln!("adapting between {minimum} and {maximum} workers")
            }
        }
        match operator::converge(rc, ctx).await {
            Ok(status) => self.status = Some(status),
            Err(error) => {
                call.answer(Err(error.to_string()));
                return;
            }
        }
        let connected = match &self.served {
            Some((client, _)) => cluster_requests::worker_names(client.clone()).await,
            None => Vec::new(),
        };
        let status = self.status.clone().unwrap_or_default();
        let namespace = rc.namespace().unwrap_or_else(|| "default".into());
        let answer = cluster_requests::status_of(
            ctx.client(),
            cluster_requests::StatusInputs {
                name: &rc.name_any(),
                namespace: &namespace,
                spec: &rc.spec,
                status: &status,
                connected: &connected,
                submitted: ctx.pods_created(rc),
            },
        )
        .await;
        call.answer(answer.map_err(|e| e.to_string()));
    }
}

/// One line for people: workers, and pods that wait with their reason.
fn describe(status: &serde_json::Value) -> String {
    let mut line = format!(
        "{}: {} of {} workers connected",
        status["phase"].as_str().unwrap_or("Pending"),
        status["workers"],
        status["workersWanted"]
    );
    for condition in status["conditions"].as_array().into_iter().flatten() {
        if condition["type"] == "PodsPending" {
            line.push_str(&format!(
                "; {}",
                condition["message"].as_str().unwrap_or_default()
            ));
        }
    }
    line
}

async fn stop_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate()).expect("a SIGTERM handler");
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
}
