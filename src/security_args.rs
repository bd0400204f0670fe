//! The TLS and token flags every command that talks to a cluster takes.

use anyhow::{Context, Result};
use rask::comm::{Security, TlsFiles};
use std::path::PathBuf;

/// `--tls-ca-file`, `--tls-cert`, `--tls-key`, `--token`.
#[derive(clap::Args, Debug, Clone, Default)]
pub struct SecurityArgs {
    /// CA certificate (PEM) that signs every certificate in the cluster.
    #[arg(long, value_name = "PATH", requires_all = ["tls_cert", "tls_key"])]
    pub tls_ca_file: Option<PathBuf>,
    /// This process's certificate (PEM).
    #[arg(long, value_name = "PATH", requires_all = ["tls_ca_file", "tls_key"])]
    pub tls_cert: Option<PathBuf>,
    /// This process's private key (PEM).
    #[arg(long, value_name = "PATH", requires_all = ["tls_ca_file", "tls_cert"])]
    pub tls_key: Option<PathBuf>,
    /// Shared token that clients and workers must present (a scheduler file
    /// that carries one supplies it too).
    #[arg(long, env = "RASK_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
}

impl SecurityArgs {
    /// The TLS files, when given.
    pub fn tls_files(&self) -> Option<TlsFiles> {
        match (&self.tls_ca_file, &self.tls_cert, &self.tls_key) {
            (Some(ca), Some(cert), Some(key)) => Some(TlsFiles {
                ca: ca.clone(),
                cert: cert.clone(),
                key: key.clone(),
            }),
            _ => None,
        }
    }

    /// The security settings for a server or worker.
    pub fn security(&self) -> Result<Security> {
        let mut security = Security::none().with_token(self.token.clone());
        if let Some(files) = self.tls_files() {
            security = security.with_tls(&files).context("loading the TLS files")?;
        }
        Ok(security)
    }

    /// Adds TLS and token to client connect options.
    pub fn apply(&self, mut options: rask::ConnectOptions) -> Result<rask::ConnectOptions> {
        if let Some(files) = self.tls_files() {
            options = options.tls(files);
        }
        if let Some(token) = &self.token {
            options = options.token(token.clone());
        }
        Ok(options)
    }
}
