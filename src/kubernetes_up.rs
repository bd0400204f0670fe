//! `rask cluster up kubernetes.yaml`: a cluster on Kubernetes without the
//! operator. This process makes the scheduler's Deployment and Service and
//! one pod per worker, converges them as the operator does (the same code:
//! scaling retires workers before deleting their pods; adaptive scaling
//! follows the scheduler's target), says what it sees, and at SIGINT or
//! SIGTERM retires the workers and deletes everything it made.

use crate::cluster_up::{parse_bounds, UpArgs};
use anyhow::{bail, Context, Result};
use rask_launchers::config::{Adaptive, Kubernetes};
use rask_launchers::kubernetes::crd::{
    AdaptiveSpec, RaskCluster, RaskClusterSpec, SchedulerSpec, SecuritySpec, ServiceSpec,
    WorkerGroup,
};
use rask_launchers::kubernetes::{operator, render};
use serde_json::json;
use std::time::Duration;

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
        security: k.token_secret.clone().map(|secret| SecuritySpec {
            token_secret: Some(secret),
            tls_secret: None,
        }),
    };
    let mut rc = RaskCluster::new(&k.name, spec);
    rc.metadata.namespace = Some(k.namespace.clone());
    rc
}

async fn run(k: &Kubernetes, args: &UpArgs, rc: RaskCluster, cooldown: Duration) -> Result<()> {
    let (client, _) = crate::operator::connect().await?;
    let image = k
        .image
        .clone()
        .unwrap_or_else(|| render::DEFAULT_IMAGE.into());
    let ctx = operator::Context::new(client, image, cooldown);
    let mut stop = Box::pin(stop_signal());
    let mut told = String::new();
    let mut address_told = false;
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
                        if let Some(path) = &args.scheduler_file {
                            write_scheduler_file(path, &address)?;
                        }
                        address_told = true;
                    }
                }
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
            _ = tokio::time::sleep(INTERVAL) => {}
        }
    };
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

fn write_scheduler_file(path: &std::path::Path, address: &str) -> Result<()> {
    let text = serde_json::to_string(&json!({ "address": address }))?;
    let temporary = path.with_extension("tmp");
    std::fs::write(&temporary, text).with_context(|| format!("writing {}", temporary.display()))?;
    std::fs::rename(&temporary, path).with_context(|| format!("writing {}", path.display()))
}

async fn stop_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate()).expect("a SIGTERM handler");
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
}
