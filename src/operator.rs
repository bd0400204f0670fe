//! `rask operator`: rask's Kubernetes custom resources (`crds` prints their
//! definitions, for `kubectl apply -f -`) and the controller that runs them
//! (`run`, in the operator's pod or anywhere with a kubeconfig).

use anyhow::{bail, Context, Result};
use rask_launchers::kubernetes::crd::RaskCluster;
use rask_launchers::kubernetes::{operator, render};
use std::sync::Arc;

/// `rask operator …`.
#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(subcommand)]
    command: OperatorCommand,
}

#[derive(clap::Subcommand, Debug)]
enum OperatorCommand {
    /// Print the CustomResourceDefinitions of RaskCluster and RaskJob (YAML).
    Crds,
    /// Reconcile RaskClusters until SIGTERM: the API server from the
    /// in-cluster service account, or from $KUBECONFIG / ~/.kube/config.
    Run {
        /// Only this namespace's RaskClusters (default: every namespace).
        #[arg(long)]
        namespace: Option<String>,
        /// The image of pods whose template names none.
        #[arg(long, env = "RASK_IMAGE", default_value = render::DEFAULT_IMAGE)]
        image: String,
        /// Seconds adaptive scaling waits after a change before removing workers.
        #[arg(long, default_value_t = operator::ADAPTIVE_COOLDOWN.as_secs_f64(), value_name = "SECONDS")]
        adaptive_cooldown: f64,
    },
}

/// Runs `rask operator`.
pub fn run(args: Args) -> Result<()> {
    match args.command {
        OperatorCommand::Crds => {
            print!("{}", rask_launchers::kubernetes::crd::crds_yaml());
            Ok(())
        }
        OperatorCommand::Run {
            namespace,
            image,
            adaptive_cooldown,
        } => {
            if !(adaptive_cooldown.is_finite() && adaptive_cooldown >= 0.0) {
                bail!(
                    "--adaptive-cooldown {adaptive_cooldown}: give a number of seconds, 0 or more"
                );
            }
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()
                .context("starting the operator's runtime")?;
            let cooldown = std::time::Duration::from_secs_f64(adaptive_cooldown);
            runtime.block_on(serve(namespace, image, cooldown))
        }
    }
}

async fn serve(
    namespace: Option<String>,
    image: String,
    cooldown: std::time::Duration,
) -> Result<()> {
    let (client, version) = connect().await?;
    // The CRD must be there: otherwise every watch fails, quietly.
    let clusters: kube::Api<RaskCluster> = match &namespace {
        Some(ns) => kube::Api::namespaced(client.clone(), ns),
        None => kube::Api::all(client.clone()),
    };
    if let Err(error) = clusters
        .list(&kube::api::ListParams::default().limit(1))
        .await
    {
        match error {
            kube::Error::Api(ref e) if e.code == 404 => bail!(
                "the RaskCluster resource is not installed on this cluster: \
                 `kubectl apply -f cluster-configs/kubernetes/crds.yaml` (or `rask operator crds | kubectl apply -f -`)"
            ),
            other => return Err(other).context("listing RaskClusters"),
        }
    }
    eprintln!(
        "rask operator: watching RaskClusters in {} (Kubernetes {}.{})",
        namespace.as_deref().unwrap_or("every namespace"),
        version.major,
        version.minor
    );
    let ctx = Arc::new(operator::Context::new(client, image, cooldown).serving_cluster_requests());
    operator::run(ctx, namespace.as_deref()).await;
    Ok(())
}

/// A client of the Kubernetes API (the in-cluster service account, or
/// $KUBECONFIG / ~/.kube/config), checked to answer; and its version.
pub async fn connect() -> Result<(kube::Client, k8s_openapi::apimachinery::pkg::version::Info)> {
    let config = kube::Config::infer().await.context(
        "no Kubernetes API to talk to (in-cluster service account, $KUBECONFIG or ~/.kube/config)",
    )?;
    let url = config.cluster_url.clone();
    let client = kube::Client::try_from(config)
        .with_context(|| format!("a client for the Kubernetes API at {url}"))?;
    let version = client
        .apiserver_version()
        .await
        .with_context(|| format!("cannot reach the Kubernetes API server at {url}"))?;
    Ok((client, version))
}
