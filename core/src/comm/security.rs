//! Credentials: mutual TLS (rustls) and an optional shared token.

use super::cluster_ca::ClusterCaVerifier;
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

/// Mutual TLS material held in memory, in PEM form.
#[derive(Clone)]
pub struct TlsPem {
    /// The CA certificate(s) that sign every certificate in the cluster.
    pub ca: Vec<u8>,
    /// This side's certificate chain.
    pub cert: Vec<u8>,
    /// This side's private key.
    pub key: Vec<u8>,
    /// Where it came from, for error messages.
    pub origin: TlsOrigin,
}

impl std::fmt::Debug for TlsPem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsPem")
            .field("origin", &self.origin)
            .field("key", &"<hidden>")
            .finish()
    }
}

/// Where TLS material came from, so that an error names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TlsOrigin {
    /// Files on disk.
    Files(TlsFiles),
    /// A named source with its parts under conventional keys (a Kubernetes
    /// Secret: `ca.crt`, `tls.crt`, `tls.key`).
    Keys(String),
}

#[derive(Clone, Copy)]
enum Part {
    Ca,
    Cert,
    Key,
}

impl TlsOrigin {
    fn name(&self, part: Part) -> String {
        match (self, part) {
            (TlsOrigin::Files(files), Part::Ca) => files.ca.display().to_string(),
            (TlsOrigin::Files(files), Part::Cert) => files.cert.display().to_string(),
            (TlsOrigin::Files(files), Part::Key) => files.key.display().to_string(),
            (TlsOrigin::Keys(source), Part::Ca) => format!("{source} key ca.crt"),
            (TlsOrigin::Keys(source), Part::Cert) => format!("{source} key tls.crt"),
            (TlsOrigin::Keys(source), Part::Key) => format!("{source} key tls.key"),
        }
    }
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
    pub fn with_tls(self, files: &TlsFiles) -> Result<Self, CommError> {
        let read = |path: &Path| {
            std::fs::read(path).map_err(CommError::io(format!("reading {}", path.display())))
        };
        self.with_tls_pem(&TlsPem {
            ca: read(&files.ca)?,
            cert: read(&files.cert)?,
            key: read(&files.key)?,
            origin: TlsOrigin::Files(files.clone()),
        })
    }

    /// Mutual TLS from PEM text in memory (a Kubernetes Secret's `ca.crt`,
    /// `tls.crt` and `tls.key`); fails naming the part that is invalid.
    ///
    /// Peers' certificates must chain to the CA; host names are not checked
    /// (see [`super::cluster_ca`]).
    pub fn with_tls_pem(mut self, pem: &TlsPem) -> Result<Self, CommError> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut roots = rustls::RootCertStore::empty();
        let ca_name = pem.origin.name(Part::Ca);
        for cert in parse_certs(&pem.ca, &ca_name)? {
            roots.add(cert).map_err(|e| {
                CommError::Config(format!("{ca_name}: not a usable CA certificate: {e}"))
            })?;
        }
        let roots = Arc::new(roots);
        let chain = parse_certs(&pem.cert, &pem.origin.name(Part::Cert))?;
        let key = PrivateKeyDer::from_pem_slice(&pem.key).map_err(|e| {
            CommError::Config(format!(
                "{}: no private key in PEM form: {e}",
                pem.origin.name(Part::Key)
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
        let server_verifier =
            rustls::client::WebPkiServerVerifier::builder_with_provider(roots, provider.clone())
                .build()
                .map_err(|e| CommError::Config(format!("TLS server verifier: {e}")))?;
        let client = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(tls_error)?
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(ClusterCaVerifier::new(server_verifier)))
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

fn parse_certs(pem: &[u8], name: &str) -> Result<Vec<CertificateDer<'static>>, CommError> {
    let certs: Vec<_> = CertificateDer::pem_slice_iter(pem)
        .collect::<Result<_, _>>()
        .map_err(|e| CommError::Config(format!("{name}: bad PEM: {e}")))?;
    if certs.is_empty() {
        return Err(CommError::Config(format!("{name}: no certificate found")));
    }
    Ok(certs)
}
