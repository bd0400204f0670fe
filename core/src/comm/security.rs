//! Credentials: mutual TLS (rustls) and an optional shared token.

use super::connection::CommError;
use super::frame::Limits;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use tokio_rustls::{TlsAcceptor, TlsConnector};

/// Files for mutual TLS: every side presents a certificate signed by the CA.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFiles {
    /// The CA certificate (PEM) that signs every certificate in the cluster.
    pub ca: PathBuf,
    /// This side's certificate chain (PEM).
    pub cert: PathBuf,
    /// This side's private key (PEM).
    pub key: PathBuf,
}

/// What a process presents and demands on its connections.
#[derive(Clone, Default)]
pub struct Security {
    tls: Option<Arc<TlsConfigs>>,
    /// The shared token clients and workers must present, if any.
    pub token: Option<String>,
    /// Frame size limits.
    pub limits: Limits,
}

struct TlsConfigs {
    acceptor: TlsAcceptor,
    connector: TlsConnector,
}

impl std::fmt::Debug for Security {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Security")
            .field("tls", &self.tls.is_some())
            .field("token", &self.token.as_ref().map(|_| "<set>"))
            .finish()
    }
}

impl Security {
    /// No TLS, no token.
    pub fn none() -> Self {
        Security::default()
    }

    /// Mutual TLS from PEM files; fails naming the file that is missing or invalid.
    pub fn with_tls(mut self, files: &TlsFiles) -> Result<Self, CommError> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut roots = rustls::RootCertStore::empty();
        for cert in read_certs(&files.ca)? {
            roots.add(cert).map_err(|e| {
                CommError::Config(format!(
                    "{}: not a usable CA certificate: {e}",
                    files.ca.display()
                ))
            })?;
        }
        let roots = Arc::new(roots);
        let chain = read_certs(&files.cert)?;
        let key = PrivateKeyDer::from_pem_file(&files.key).map_err(|e| {
            CommError::Config(format!(
                "{}: no private key in PEM form: {e}",
                files.key.display()
            ))
        })?;
        let tls_error = |e: rustls::Error| CommError::Config(format!("TLS settings: {e}"));
        let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
            roots.clone(),
            provider.clone(),
        )
        .build()
        .map_err(|e| CommError::Config(format!("TLS client verifier: {e}")))?;
        let server = rustls::ServerConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .map_err(tls_error)?
            .with_client_cert_verifier(verifier)
            .with_single_cert(chain.clone(), key.clone_key())
            .map_err(tls_error)?;
        let client = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(tls_error)?
            .with_root_certificates(roots)
            .with_client_auth_cert(chain, key)
            .map_err(tls_error)?;
        self.tls = Some(Arc::new(TlsConfigs {
            acceptor: TlsAcceptor::from(Arc::new(server)),
            connector: TlsConnector::from(Arc::new(client)),
        }));
        Ok(self)
    }

    /// Requires (and presents) a shared token.
    pub fn with_token(mut self, token: Option<String>) -> Self {
        self.token = token.filter(|t| !t.is_empty());
        self
    }

    /// Whether peers must prove who they are (a token, or mutual TLS).
    pub fn authenticates_peers(&self) -> bool {
        self.token.is_some() || self.tls.is_some()
    }

    /// Whether TLS is configured.
    pub fn has_tls(&self) -> bool {
        self.tls.is_some()
    }

    pub(crate) fn acceptor(&self) -> Result<Option<TlsAcceptor>, CommError> {
        Ok(self.tls.as_ref().map(|t| t.acceptor.clone()))
    }

    pub(crate) fn connector(&self) -> Result<TlsConnector, CommError> {
        self.tls
            .as_ref()
            .map(|t| t.connector.clone())
            .ok_or_else(|| {
                CommError::Config(
                    "a tls:// address needs TLS settings (--tls-ca-file, --tls-cert, --tls-key)"
                        .into(),
                )
            })
    }

    /// Whether a presented token is acceptable.
    pub fn token_matches(&self, presented: Option<&str>) -> bool {
        match &self.token {
            None => true,
            Some(expected) => {
                presented.is_some_and(|p| constant_time_eq(p.as_bytes(), expected.as_bytes()))
            }
        }
    }
}

/// Compares secrets in time that does not depend on where they differ.
pub(crate) fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn read_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, CommError> {
    let certs: Vec<_> = CertificateDer::pem_file_iter(path)
        .map_err(|e| {
            CommError::Config(format!("{}: cannot read certificates: {e}", path.display()))
        })?
        .collect::<Result<_, _>>()
        .map_err(|e| CommError::Config(format!("{}: bad PEM: {e}", path.display())))?;
    if certs.is_empty() {
        return Err(CommError::Config(format!(
            "{}: no certificate found",
            path.display()
        )));
    }
    Ok(certs)
}
