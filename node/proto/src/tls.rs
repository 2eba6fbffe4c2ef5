//! TLS configuration shared by node and client (rustls, mutual TLS).
//!
//! Every configuration here speaks TLS 1.3 only, offers ALPN [`crate::ALPN`]
//! and names the ring crypto provider explicitly, so no process-wide default
//! provider has to be installed first.
//!
//! - [`server_config`]: a node's configuration; clients must present a
//!   certificate signed by the CA (mutual TLS, the default).
//! - [`client_config`]: a client's configuration; it checks the node's
//!   certificate against the CA and presents its own.
//! - [`insecure_server_config`] and [`insecure_client_config`]: no client
//!   authentication, and a client that accepts any server certificate. For
//!   loopback testing only (`--insecure`).

use crate::ALPN;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::server::WebPkiClientVerifier;
use rustls::{DigitallySignedStruct, RootCertStore, SignatureScheme};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Why a TLS configuration could not be built. File errors name the file.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TlsError {
    /// The file at `path` could not be read or is not valid PEM; `what` it
    /// should have held. (The cause is in the message, not also a
    /// `source()`, so that a report walking the chain shows it once.)
    #[error("read {what} from {}: {error}", path.display())]
    Read {
        path: PathBuf,
        what: &'static str,
        error: rustls_pki_types::pem::Error,
    },
    /// The file is PEM but holds no section of the expected kind.
    #[error("{} holds no {what}", path.display())]
    Missing { path: PathBuf, what: &'static str },
    /// A CA certificate was not accepted as a trust anchor.
    #[error("CA certificate in {} is not usable as a trust anchor: {error}", path.display())]
    BadCa { path: PathBuf, error: rustls::Error },
    /// The client certificate verifier could not be built.
    #[error("build the client certificate verifier: {0}")]
    Verifier(String),
    /// rustls refused the configuration (for example a key that does not
    /// match its certificate).
    #[error("build the TLS configuration: {0}")]
    Config(rustls::Error),
}

impl From<rustls::Error> for TlsError {
    fn from(error: rustls::Error) -> Self {
        TlsError::Config(error)
    }
}

const CERT_WHAT: &str = "PEM certificates";
const KEY_WHAT: &str = "a PEM private key (PKCS#8 \"PRIVATE KEY\")";

/// Every certificate in the PEM file at `path`, in file order (leaf first
/// for a chain).
pub fn load_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let read_error = |error| TlsError::Read {
        path: path.to_path_buf(),
        what: CERT_WHAT,
        error,
    };
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(read_error)?
        .collect::<Result<Vec<_>, _>>()
        .map_err(read_error)?;
    if certs.is_empty() {
        return Err(TlsError::Missing {
            path: path.to_path_buf(),
            what: CERT_WHAT,
        });
    }
    Ok(certs)
}

/// The first private key in the PEM file at `path`. PKCS#8 is what
/// `ferrisdb cert` writes; PKCS#1 and SEC1 keys are accepted too.
pub fn load_private_key(path: &Path) -> Result<PrivateKeyDer<'static>, TlsError> {
    PrivateKeyDer::from_pem_file(path).map_err(|error| match error {
        rustls_pki_types::pem::Error::NoItemsFound => TlsError::Missing {
            path: path.to_path_buf(),
            what: KEY_WHAT,
        },
        error => TlsError::Read {
            path: path.to_path_buf(),
            what: KEY_WHAT,
            error,
        },
    })
}

/// A root store holding every certificate of the PEM file at `ca_path`.
pub fn load_roots(ca_path: &Path) -> Result<RootCertStore, TlsError> {
    let mut roots = RootCertStore::empty();
    for cert in load_certs(ca_path)? {
        roots.add(cert).map_err(|error| TlsError::BadCa {
            path: ca_path.to_path_buf(),
            error,
        })?;
    }
    Ok(roots)
}

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// A node's configuration for mutual TLS: it presents the chain in
/// `cert_path` with the key in `key_path`, and accepts only clients whose
/// certificate chains to a CA in `ca_path`.
pub fn server_config(
    ca_path: &Path,
    cert_path: &Path,
    key_path: &Path,
) -> Result<rustls::ServerConfig, TlsError> {
    let roots = Arc::new(load_roots(ca_path)?);
    let chain = load_certs(cert_path)?;
    let key = load_private_key(key_path)?;
    let provider = provider();
    let verifier = WebPkiClientVerifier::builder_with_provider(roots, provider.clone())
        .build()
        .map_err(|e| TlsError::Verifier(e.to_string()))?;
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13])?
        .with_client_cert_verifier(verifier)
        .with_single_cert(chain, key)?;
    config.alpn_protocols = vec![ALPN.to_vec()];
    Ok(config)
}

/// A node's configuration without client authentication, presenting
/// `cert_der` (typically a throwaway self-signed certificate). For
/// `--insecure` loopback nodes only.
pub fn insecure_server_config(
    cert_der: CertificateDer<'static>,
    key_der: PrivateKeyDer<'static>,
) -> Result<rustls::ServerConfig, TlsError> {
    let mut config = rustls::ServerConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13])?
        .with_no_client_auth()
        .with_single_cert(vec![cert_der], key_der)?;
    config.alpn_protocols = vec![ALPN.to_vec()];
    Ok(config)
}

/// A client's configuration for mutual TLS: it accepts only nodes whose
/// certificate chains to a CA in `ca_path` (and names the server name the
/// client connects with), and presents the chain in `cert_path` with the
/// key in `key_path`.
pub fn client_config(
    ca_path: &Path,
    cert_path: &Path,
    key_path: &Path,
) -> Result<rustls::ClientConfig, TlsError> {
    let roots = load_roots(ca_path)?;
    let chain = load_certs(cert_path)?;
    let key = load_private_key(key_path)?;
    let mut config = rustls::ClientConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13])?
        .with_root_certificates(roots)
        .with_client_auth_cert(chain, key)?;
    config.alpn_protocols = vec![ALPN.to_vec()];
    Ok(config)
}

/// A client's configuration that accepts **any** server certificate and
/// presents none.
///
/// For loopback testing only: it offers no protection against anyone who can
/// intercept the traffic. It pairs with [`insecure_server_config`]; a node
/// that requires client certificates refuses it.
pub fn insecure_client_config() -> Result<rustls::ClientConfig, TlsError> {
    let provider = provider();
    let verifier = Arc::new(AcceptAnyServerCert {
        provider: provider.clone(),
    });
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13])?
        .dangerous()
        .with_custom_certificate_verifier(verifier)
        .with_no_client_auth();
    config.alpn_protocols = vec![ALPN.to_vec()];
    Ok(config)
}

/// Accepts every server certificate without looking at it (loopback testing
/// only). The handshake signatures are still checked, so the session is
/// at least bound to the key of the certificate the server sent.
#[derive(Debug)]
struct AcceptAnyServerCert {
    provider: Arc<CryptoProvider>,
}

impl ServerCertVerifier for AcceptAnyServerCert {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp_file(name: &str, contents: &[u8]) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("ferrisdb-proto-tls-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("create temp dir");
        let path = dir.join(name);
        std::fs::write(&path, contents).expect("write temp file");
        path
    }

    #[test]
    fn missing_file_error_names_the_file() {
        let path = Path::new("/nonexistent/ferrisdb/ca.pem");
        let err = load_certs(path).expect_err("no such file");
        let text = err.to_string();
        assert!(text.contains("/nonexistent/ferrisdb/ca.pem"), "{text}");
        let err = server_config(path, path, path).expect_err("no such file");
        assert!(err.to_string().contains("ca.pem"), "{err}");
    }

    #[test]
    fn file_without_certificates_is_refused() {
        let path = temp_file("empty.pem", b"not pem at all\n");
        let err = load_certs(&path).expect_err("no certificates");
        assert!(matches!(err, TlsError::Missing { .. }), "{err:?}");
        assert!(err.to_string().contains("empty.pem"), "{err}");
        let err = load_private_key(&path).expect_err("no key");
        assert!(matches!(err, TlsError::Missing { .. }), "{err:?}");
    }

    #[test]
    fn broken_pem_is_refused() {
        let path = temp_file(
            "broken.pem",
            b"-----BEGIN CERTIFICATE-----\n!!!!\n-----END CERTIFICATE-----\n",
        );
        let err = load_certs(&path).expect_err("bad base64");
        assert!(matches!(err, TlsError::Read { .. }), "{err:?}");
        assert!(err.to_string().contains("broken.pem"), "{err}");
    }

    /// A CA and a leaf certificate it signed, as PEM files named after
    /// `test` (tests run in parallel); plus a key that belongs to neither.
    fn make_pki(test: &str) -> (PathBuf, PathBuf, PathBuf, PathBuf) {
        use rcgen::{BasicConstraints, CertificateParams, IsCa, KeyPair};
        let ca_key = KeyPair::generate().expect("CA key");
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).expect("CA params");
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let ca = ca_params.self_signed(&ca_key).expect("CA");
        let leaf_key = KeyPair::generate().expect("leaf key");
        let leaf = CertificateParams::new(vec!["127.0.0.1".to_string()])
            .expect("leaf params")
            .signed_by(&leaf_key, &ca, &ca_key)
            .expect("leaf");
        let stranger = KeyPair::generate().expect("other key");
        (
            temp_file(&format!("{test}-ca.pem"), ca.pem().as_bytes()),
            temp_file(&format!("{test}-leaf.pem"), leaf.pem().as_bytes()),
            temp_file(
                &format!("{test}-leaf.key"),
                leaf_key.serialize_pem().as_bytes(),
            ),
            temp_file(
                &format!("{test}-other.key"),
                stranger.serialize_pem().as_bytes(),
            ),
        )
    }

    #[test]
    fn configs_build_from_pem_files() {
        let (ca, cert, key, _) = make_pki("configs");
        let server = server_config(&ca, &cert, &key).expect("server config");
        assert_eq!(server.alpn_protocols, vec![ALPN.to_vec()]);
        let client = client_config(&ca, &cert, &key).expect("client config");
        assert_eq!(client.alpn_protocols, vec![ALPN.to_vec()]);
        let der = load_certs(&cert).expect("cert").remove(0);
        let key_der = load_private_key(&key).expect("key");
        insecure_server_config(der, key_der).expect("insecure server config");
    }

    #[test]
    fn a_key_that_does_not_match_its_certificate_is_refused() {
        let (ca, cert, _, other_key) = make_pki("mismatch");
        let err = server_config(&ca, &cert, &other_key).expect_err("mismatched key");
        assert!(matches!(err, TlsError::Config(_)), "{err:?}");
        let err = client_config(&ca, &cert, &other_key).expect_err("mismatched key");
        assert!(matches!(err, TlsError::Config(_)), "{err:?}");
    }

    #[test]
    fn a_ca_file_with_an_unparsable_certificate_is_refused() {
        let (_, cert, key, _) = make_pki("bogus");
        let bogus = temp_file(
            "bogus-ca.pem",
            b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
        );
        let err = server_config(&bogus, &cert, &key).expect_err("bad CA");
        assert!(matches!(err, TlsError::BadCa { .. }), "{err:?}");
        assert!(err.to_string().contains("bogus-ca.pem"), "{err}");
    }

    #[test]
    fn insecure_client_config_speaks_our_alpn() {
        let config = insecure_client_config().expect("ring supports TLS 1.3");
        assert_eq!(config.alpn_protocols, vec![ALPN.to_vec()]);
    }
}
