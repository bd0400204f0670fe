//! How a TLS client checks a scheduler's or worker's certificate: signed by
//! the cluster's CA, whatever host name it was reached by.
//!
//! Cluster members are reached by names and addresses no certificate can list
//! ahead of time (a pod's IP, a Service's cluster IP, a batch node picked by
//! the batch system). As Dask does, membership is proven by the private CA
//! alone: the chain, its validity dates and key usage are checked, and only a
//! certificate that fails for its name is let through.

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{CertificateError, DigitallySignedStruct, Error, SignatureScheme};
use std::sync::Arc;

/// Accepts a server certificate that chains to the cluster's CA.
#[derive(Debug)]
pub(crate) struct ClusterCaVerifier {
    webpki: Arc<WebPkiServerVerifier>,
}

impl ClusterCaVerifier {
    pub(crate) fn new(webpki: Arc<WebPkiServerVerifier>) -> Self {
        ClusterCaVerifier { webpki }
    }
}

impl ServerCertVerifier for ClusterCaVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, Error> {
        // The chain is checked before the name: a name error means the
        // chain (to the CA, in its dates, for server use) was good.
        match self.webpki.verify_server_cert(
            end_entity,
            intermediates,
            server_name,
            ocsp_response,
            now,
        ) {
            Err(Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            )) => Ok(ServerCertVerified::assertion()),
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        self.webpki.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        self.webpki.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.webpki.supported_verify_schemes()
    }
}
