//! The glommio QUIC driver over real UDP sockets on loopback, with mutual TLS.

use ferrisdb_io::executor::run_local;
use ferrisdb_io::quic::{
    ClientConfig, Connection, Endpoint, EndpointLimits, QuicClientConfig, QuicError,
    QuicServerConfig, ServerConfig,
};
use rcgen::{BasicConstraints, CertificateParams, IsCa, KeyPair};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

struct Ca {
    cert: rcgen::Certificate,
    key: KeyPair,
}

struct Leaf {
    chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
}

fn make_ca() -> Ca {
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let key = KeyPair::generate().unwrap();
    Ca {
        cert: params.self_signed(&key).unwrap(),
        key,
    }
}

fn make_leaf(ca: &Ca, names: &[&str]) -> Leaf {
    let params =
        CertificateParams::new(names.iter().map(|n| n.to_string()).collect::<Vec<_>>()).unwrap();
    let key = KeyPair::generate().unwrap();
    let cert = params.signed_by(&key, &ca.cert, &ca.key).unwrap();
    Leaf {
        chain: vec![cert.der().clone()],
        key: PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der())),
    }
}

fn roots(ca: &Ca) -> Arc<rustls::RootCertStore> {
    let mut roots = rustls::RootCertStore::empty();
    roots.add(ca.cert.der().clone()).unwrap();
    Arc::new(roots)
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

const ALPN: &[u8] = b"ferrisdb-test";

fn server_config(ca: &Ca, leaf: Leaf) -> ServerConfig {
    let verifier =
        rustls::server::WebPkiClientVerifier::builder_with_provider(roots(ca), provider())
            .build()
            .unwrap();
    let mut tls = rustls::ServerConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13])
        .unwrap()
        .with_client_cert_verifier(verifier)
        .with_single_cert(leaf.chain, leaf.key)
        .unwrap();
    tls.alpn_protocols = vec![ALPN.to_vec()];
    ServerConfig::with_crypto(Arc::new(QuicServerConfig::try_from(tls).unwrap()))
}

fn client_config(ca: &Ca, leaf: Option<Leaf>) -> ClientConfig {
    let builder = rustls::ClientConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13])
        .unwrap()
        .with_root_certificates(roots(ca));
    let mut tls = match leaf {
        Some(leaf) => builder.with_client_auth_cert(leaf.chain, leaf.key).unwrap(),
        None => builder.with_no_client_auth(),
    };
    tls.alpn_protocols = vec![ALPN.to_vec()];
    ClientConfig::new(Arc::new(QuicClientConfig::try_from(tls).unwrap()))
}

fn loopback() -> SocketAddr {
    "127.0.0.1:0".parse().unwrap()
}

/// Serves every stream of every connection: reads it to the end and echoes
/// it back reversed.
async fn echo_server(endpoint: Endpoint) {
    while let Some(conn) = endpoint.accept().await {
        glommio::spawn_local(serve_connection(conn)).detach();
    }
}

async fn serve_connection(conn: Connection) {
    while let Ok((mut send, mut recv)) = conn.accept_bi().await {
        glommio::spawn_local(async move {
            let mut data = Vec::new();
            while let Ok(Some(chunk)) = recv.read_chunk(usize::MAX).await {
                data.extend_from_slice(&chunk);
            }
            data.reverse();
            if send.write_all(&data).await.is_ok() {
                let _ = send.finish();
            }
        })
        .detach();
    }
}

/// An echo server with a certificate of `ca`, on a loopback port.
fn start_echo_server(ca: &Ca) -> (Endpoint, SocketAddr) {
    let config = server_config(ca, make_leaf(ca, &["127.0.0.1"]));
    let server = Endpoint::bind(loopback(), Some(config), EndpointLimits::default()).unwrap();
    let addr = server.local_addr();
    glommio::spawn_local(echo_server(server.clone())).detach();
    (server, addr)
}

async fn round_trip(conn: &Connection, payload: &[u8]) -> Result<Vec<u8>, QuicError> {
    let (mut send, mut recv) = conn.open_bi().await?;
    send.write_all(payload).await?;
    send.finish()?;
    let mut back = Vec::new();
    while let Some(chunk) = recv.read_chunk(usize::MAX).await? {
        back.extend_from_slice(&chunk);
    }
    Ok(back)
}

#[test]
fn mutual_tls_echo_of_many_concurrent_streams() {
    run_local(|| async {
        let ca = make_ca();
        let (server, addr) = start_echo_server(&ca);

        let client = Endpoint::bind(loopback(), None, EndpointLimits::default()).unwrap();
        let config = client_config(&ca, Some(make_leaf(&ca, &["client-1"])));
        let conn = client.connect(config, addr, "127.0.0.1").await.unwrap();

        // One large stream (flow control must open up repeatedly).
        let big: Vec<u8> = (0..3_000_000u32).map(|i| (i % 251) as u8).collect();
        let mut expected = big.clone();
        expected.reverse();
        assert_eq!(round_trip(&conn, &big).await.unwrap(), expected);

        // Many small streams at once on one connection.
        let tasks: Vec<_> = (0..200u32)
            .map(|i| {
                let conn = conn.clone();
                glommio::spawn_local(async move {
                    let payload = format!("request number {i}").into_bytes();
                    let back = round_trip(&conn, &payload).await.unwrap();
                    let mut expected = payload;
                    expected.reverse();
                    assert_eq!(back, expected);
                })
            })
            .collect();
        for task in tasks {
            task.await;
        }
        conn.close(0, b"done");
        client.close(0, b"done", Duration::from_secs(1)).await;
        server.close(0, b"done", Duration::from_secs(1)).await;
        assert!(
            server.accept().await.is_none(),
            "a closed endpoint accepts nothing"
        );
    });
}

/// The server refuses a client whose certificate another CA signed, and one
/// with no certificate at all: no stream gets through.
#[test]
fn clients_without_a_certificate_of_our_ca_are_refused() {
    run_local(|| async {
        let ca = make_ca();
        let other_ca = make_ca();
        let (server, addr) = start_echo_server(&ca);
        let client = Endpoint::bind(loopback(), None, EndpointLimits::default()).unwrap();

        let strangers = [Some(make_leaf(&other_ca, &["mallory"])), None];
        for leaf in strangers {
            // The client trusts the server, but the server must not trust it.
            let config = client_config(&ca, leaf);
            let refused = match client.connect(config, addr, "127.0.0.1").await {
                Err(_) => true,
                Ok(conn) => round_trip(&conn, b"let me in").await.is_err(),
            };
            assert!(refused, "a client outside the CA got an answer");
        }

        // A client that does not trust the server's CA refuses it too.
        let config = client_config(&other_ca, Some(make_leaf(&other_ca, &["c"])));
        assert!(client.connect(config, addr, "127.0.0.1").await.is_err());

        // The server still serves a proper client afterwards.
        let config = client_config(&ca, Some(make_leaf(&ca, &["client-2"])));
        let conn = client.connect(config, addr, "127.0.0.1").await.unwrap();
        assert_eq!(round_trip(&conn, b"abc").await.unwrap(), b"cba");
        client.close(0, b"", Duration::from_secs(1)).await;
        server.close(0, b"", Duration::from_secs(1)).await;
    });
}

/// Garbage datagrams at the endpoint's port are ignored; real clients keep
/// being served.
#[test]
fn garbage_datagrams_do_not_disturb_the_endpoint() {
    run_local(|| async {
        let ca = make_ca();
        let (server, addr) = start_echo_server(&ca);

        let junk = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let mut state = 0x9E37_79B9_7F4A_7C15u64;
        for len in [0usize, 1, 5, 20, 100, 1200, 1500, 9000, 65_000] {
            let bytes: Vec<u8> = (0..len)
                .map(|_| {
                    state ^= state << 13;
                    state ^= state >> 7;
                    state ^= state << 17;
                    state as u8
                })
                .collect();
            junk.send_to(&bytes, addr).unwrap();
            // A long-header Initial-looking prefix with nonsense after it.
            let mut initial = vec![0xC0, 0, 0, 0, 1, 8];
            initial.extend_from_slice(&bytes);
            junk.send_to(&initial, addr).unwrap();
        }

        let client = Endpoint::bind(loopback(), None, EndpointLimits::default()).unwrap();
        let config = client_config(&ca, Some(make_leaf(&ca, &["client"])));
        let conn = client.connect(config, addr, "127.0.0.1").await.unwrap();
        assert_eq!(
            round_trip(&conn, b"still here").await.unwrap(),
            b"ereh llits"
        );
        client.close(0, b"", Duration::from_secs(1)).await;
        server.close(0, b"", Duration::from_secs(1)).await;
    });
}
