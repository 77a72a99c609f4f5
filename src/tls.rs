//! TLS for the HTTP listeners (rustls): a certificate chain and key from PEM files, ALPN `h2`
//! and `http/1.1`, optional client certificates verified against a CA bundle. The files are
//! checked every second and a changed certificate is served to new connections without a
//! restart; a pair that does not load is logged and the old one kept.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use arc_swap::ArcSwap;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::rustls;

/// Marks a request that arrived over TLS (`aws:SecureTransport`), in its extensions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SecureTransport;

/// The client certificate of a mutual-TLS connection, in its requests' extensions (as
/// `Arc<ClientCert>`): condition keys `tollgate:ClientCertSubject` (RFC 4514, e.g.
/// `CN=orders-web, O=Example`) and `tollgate:ClientCertCommonName`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientCert {
    /// The subject distinguished name.
    pub subject: String,
    /// The subject's first common name, if any.
    pub common_name: Option<String>,
}

impl ClientCert {
    /// The leaf certificate's subject; `None` when it cannot be parsed (rustls verified it).
    ///
    /// A subject that does not render as a distinguished name also gives `None` (no condition
    /// keys), not `X509Name`'s `Display`, which prints an error text in its place — a policy
    /// would have compared that text as if it were the subject (found by the `client_cert`
    /// fuzz target).
    pub fn from_der(der: &[u8]) -> Option<Self> {
        let (_, cert) = x509_parser::parse_x509_certificate(der).ok()?;
        let subject = cert.subject();
        let rendered = subject
            .to_string_with_registry(x509_parser::objects::oid_registry())
            .ok()?;
        let common_name = subject
            .iter_common_name()
            .next()
            .and_then(|cn| cn.as_str().ok())
            .map(str::to_owned);
        Some(Self {
            subject: rendered,
            common_name,
        })
    }
}

/// The TLS files of the listeners (`[tls]`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsSettings {
    /// PEM certificate chain, leaf first.
    pub cert_file: PathBuf,
    /// PEM private key (PKCS#8, PKCS#1 or SEC1).
    pub key_file: PathBuf,
    /// PEM CA bundle: when set, clients must present a certificate it signed.
    pub client_ca_file: Option<PathBuf>,
}

/// How often the files are checked for a new certificate.
pub const POLL: Duration = Duration::from_secs(1);

/// The acceptor in force, swapped when the files change.
pub struct Tls {
    settings: TlsSettings,
    acceptor: ArcSwap<tokio_rustls::TlsAcceptor>,
}

impl std::fmt::Debug for Tls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tls")
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

fn read_error(path: &Path, e: impl std::fmt::Display) -> String {
    format!("{}: {e}", path.display())
}

/// Builds a server configuration from the files.
pub fn server_config(s: &TlsSettings) -> Result<rustls::ServerConfig, String> {
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(&s.cert_file)
        .map_err(|e| read_error(&s.cert_file, e))?
        .collect::<Result<_, _>>()
        .map_err(|e| read_error(&s.cert_file, e))?;
    if certs.is_empty() {
        return Err(read_error(&s.cert_file, "no certificate in the file"));
    }
    let key = PrivateKeyDer::from_pem_file(&s.key_file).map_err(|e| read_error(&s.key_file, e))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?;
    let builder = match &s.client_ca_file {
        None => builder.with_no_client_auth(),
        Some(ca) => {
            let mut roots = rustls::RootCertStore::empty();
            for c in CertificateDer::pem_file_iter(ca).map_err(|e| read_error(ca, e))? {
                roots
                    .add(c.map_err(|e| read_error(ca, e))?)
                    .map_err(|e| read_error(ca, e))?;
            }
            let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
                Arc::new(roots),
                provider,
            )
            .build()
            .map_err(|e| read_error(ca, e))?;
            builder.with_client_cert_verifier(verifier)
        }
    };
    let mut config = builder.with_single_cert(certs, key).map_err(|e| {
        format!(
            "{} and {}: {e}",
            s.cert_file.display(),
            s.key_file.display()
        )
    })?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(config)
}

impl Tls {
    /// Loads the files; an error names the file and what is wrong.
    pub fn load(settings: &TlsSettings) -> Result<Arc<Self>, String> {
        let config = server_config(settings)?;
        Ok(Arc::new(Self {
            settings: settings.clone(),
            acceptor: ArcSwap::from_pointee(tokio_rustls::TlsAcceptor::from(Arc::new(config))),
        }))
    }

    /// The acceptor for a new connection.
    pub fn acceptor(&self) -> Arc<tokio_rustls::TlsAcceptor> {
        self.acceptor.load_full()
    }

    fn stamps(&self) -> Vec<Option<(SystemTime, u64)>> {
        let s = &self.settings;
        [
            Some(&s.cert_file),
            Some(&s.key_file),
            s.client_ca_file.as_ref(),
        ]
        .into_iter()
        .flatten()
        .map(|p| {
            let m = std::fs::metadata(p).ok()?;
            Some((m.modified().ok()?, m.len()))
        })
        .collect()
    }

    /// Reloads the certificate when its files change, until the task is dropped.
    pub async fn watch(self: Arc<Self>) {
        let mut seen = self.stamps();
        let mut tick = tokio::time::interval(POLL);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            let now = self.stamps();
            if now == seen {
                continue;
            }
            // Let a rewrite (certificate and key are often written one after the other) settle.
            tokio::time::sleep(Duration::from_millis(200)).await;
            seen = self.stamps();
            let settings = self.settings.clone();
            match tokio::task::spawn_blocking(move || server_config(&settings)).await {
                Ok(Ok(config)) => {
                    self.acceptor
                        .store(Arc::new(tokio_rustls::TlsAcceptor::from(Arc::new(config))));
                    tracing::info!(cert = %self.settings.cert_file.display(), "TLS certificate reloaded");
                }
                Ok(Err(e)) => {
                    tracing::error!(error = %e, "TLS certificate not reloaded; the old one is served")
                }
                Err(e) => tracing::error!(error = %e, "TLS certificate reload failed"),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_cert_subject_and_common_name() {
        let cert = ClientCert::from_der(include_bytes!("../tests/fixtures/tls/orders-web.der"))
            .expect("a valid certificate");
        assert_eq!(cert.subject, "CN=orders-web, O=Example, OU=Payments");
        assert_eq!(cert.common_name.as_deref(), Some("orders-web"));
    }

    /// The same certificate with one byte of its subject changed (found by the `client_cert`
    /// fuzz target): the name no longer renders, so there is no subject to compare — not the
    /// error text `X509Name`'s `Display` would print in its place.
    #[test]
    fn a_subject_that_does_not_render_gives_no_client_cert() {
        assert_eq!(
            ClientCert::from_der(include_bytes!(
                "../tests/fixtures/tls/subject-unrenderable.der"
            )),
            None
        );
    }
}
