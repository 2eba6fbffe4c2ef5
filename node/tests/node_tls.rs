//! Mutual TLS of a real node (DESIGN.md §8, "security on by default";
//! `docs/protocol.md`, *Transport*): a client whose certificate chains to
//! another CA, a client without a certificate, and a client offering
//! another ALPN are refused with a TLS alert, and no request of theirs is
//! answered; the node keeps serving a proper client.

mod support;

use ferrisdb_client::{Client, ClientConfig, Security};
use ferrisdb_proto::frame::encode_request;
use ferrisdb_proto::{Request, RequestFrame};
use std::sync::Arc;
use std::time::Duration;
use support::{Certs, NodeProcess, RawLane};

/// Longest wait for a refused connection to be closed.
const REFUSAL_DEADLINE: Duration = Duration::from_secs(10);

/// TLS alert carried as a QUIC CRYPTO_ERROR (RFC 9001 §4.8: 0x100 + alert).
fn alert_of(err: &quinn::ConnectionError) -> Option<u8> {
    let code = match err {
        quinn::ConnectionError::TransportError(e) => u64::from(e.code),
        quinn::ConnectionError::ConnectionClosed(c) => u64::from(c.error_code),
        _ => return None,
    };
    (0x100..=0x1ff)
        .contains(&code)
        .then(|| (code - 0x100) as u8)
}

/// Connects with `tls` and tries a `ShardMap` request; the node must close
/// the connection with a TLS alert before answering anything. Returns the
/// alert.
async fn expect_refused(node: &NodeProcess, tls: rustls::ClientConfig, what: &str) -> u8 {
    let config = support::quic_config(tls);
    let err = match support::quic_connect(node.listen, config).await {
        Err(err) => err,
        // In TLS 1.3 the client's handshake completes before the server has
        // checked the client's certificate: the refusal comes as a close.
        Ok((_endpoint, connection)) => {
            if let Ok((mut send, mut recv)) = connection.open_bi().await {
                let request = encode_request(&RequestFrame {
                    id: 1,
                    shard_map_version: 0,
                    timeout_ms: 1_000,
                    request: Request::ShardMap,
                })
                .expect("encode");
                let _ = send.write_all(&request).await;
                let answer =
                    tokio::time::timeout(REFUSAL_DEADLINE, recv.read_to_end(1 << 20)).await;
                assert!(
                    !matches!(answer, Ok(Ok(ref bytes)) if !bytes.is_empty()),
                    "{what}: the node answered a refused client: {answer:?}"
                );
            }
            tokio::time::timeout(REFUSAL_DEADLINE, connection.closed())
                .await
                .unwrap_or_else(|_| panic!("{what}: the node did not close the connection"))
        }
    };
    alert_of(&err).unwrap_or_else(|| panic!("{what}: closed without a TLS alert: {err}"))
}

/// A client of another CA: `ferrisdb cert` makes a second CA and a client
/// certificate under it.
/// `Client::connect` with `config` fails in time, with an error that
/// retrying cannot fix (a refused certificate is final).
async fn expect_connect_refused(config: ClientConfig, what: &str) {
    let err = tokio::time::timeout(Duration::from_secs(30), Client::connect(config))
        .await
        .expect("refused in time")
        .expect_err(what);
    eprintln!("client library error: {err}");
    assert!(!err.is_retryable(), "a refused certificate is final: {err}");
}

fn foreign_client(node: &NodeProcess) -> Certs {
    Certs::create(&node.dir().join("foreign"))
}

/// The proper client still works and the node is alive.
async fn assert_still_serving(node: &mut NodeProcess, tag: &str) {
    let client = tokio::time::timeout(
        Duration::from_secs(30),
        Client::connect(node.client_config()),
    )
    .await
    .expect("connect in time")
    .expect("the proper client connects");
    client.put(tag, "v").await.expect("put");
    assert_eq!(client.get(tag).await.expect("get"), Some(b"v".to_vec()));
    node.assert_alive();
}

#[test]
fn a_client_certificate_from_another_ca_is_refused() {
    let mut node = NodeProcess::start();
    let foreign = foreign_client(&node);
    support::runtime().block_on(async {
        // Trusts the node properly, presents a certificate the node's CA
        // never signed.
        let tls = ferrisdb_proto::tls::client_config(
            &node.certs.ca,
            &foreign.client_cert,
            &foreign.client_key,
        )
        .expect("TLS config");
        let alert = expect_refused(&node, tls, "client of another CA").await;
        // unknown_ca (48), bad_certificate (42), or decrypt_error (51): both
        // CAs carry the default name "FerrisDB CA", so the verifier finds an
        // issuer by name and then the signature does not check.
        assert!(matches!(alert, 42 | 48 | 51), "alert {alert}");

        // The same through the client library: connect fails, and not with
        // a retryable error (retrying cannot fix a certificate).
        let mut config = node.client_config();
        config.security = Security::MutualTls {
            ca_cert: node.certs.ca.clone(),
            cert: foreign.client_cert.clone(),
            key: foreign.client_key.clone(),
        };
        expect_connect_refused(config, "a client of another CA is refused").await;
        assert_still_serving(&mut node, "after-foreign-ca").await;
    });
}

#[test]
fn a_client_without_a_certificate_is_refused() {
    let mut node = NodeProcess::start();
    support::runtime().block_on(async {
        // Verifies the node against the right CA but presents nothing.
        let roots = ferrisdb_proto::tls::load_roots(&node.certs.ca).expect("roots");
        let mut tls = rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_protocol_versions(&[&rustls::version::TLS13])
        .expect("TLS 1.3")
        .with_root_certificates(roots)
        .with_no_client_auth();
        tls.alpn_protocols = vec![ferrisdb_proto::ALPN.to_vec()];
        let alert = expect_refused(&node, tls, "client without a certificate").await;
        assert_eq!(alert, 116, "certificate_required");

        // The insecure client configuration (no certificate, trusts anyone).
        let tls = ferrisdb_proto::tls::insecure_client_config().expect("insecure config");
        let alert = expect_refused(&node, tls, "insecure client").await;
        assert_eq!(alert, 116, "certificate_required");

        let mut config = node.client_config();
        config.security = Security::Insecure;
        expect_connect_refused(config, "an insecure client is refused by a mutual-TLS node").await;
        assert_still_serving(&mut node, "after-no-cert").await;
    });
}

#[test]
fn a_client_offering_another_alpn_is_refused() {
    let mut node = NodeProcess::start();
    support::runtime().block_on(async {
        let mut tls = node.certs.client_tls();
        tls.alpn_protocols = vec![b"ferrisdb/2".to_vec()];
        let alert = expect_refused(&node, tls, "ALPN ferrisdb/2").await;
        assert_eq!(alert, 120, "no_application_protocol");
        assert_still_serving(&mut node, "after-alpn").await;
    });
}

#[test]
fn a_proper_client_on_a_raw_lane_is_served() {
    // The control for the refusals above: the same raw path with the right
    // certificate gets an answer.
    let mut node = NodeProcess::start();
    support::runtime().block_on(async {
        let config = support::quic_config(node.certs.client_tls());
        let (_endpoint, connection) = support::quic_connect(node.listen, config).await.expect("handshake");
        let mut lane = RawLane::open(&connection).await;
        let request = encode_request(&RequestFrame {
            id: 1,
            shard_map_version: 0,
            timeout_ms: 1_000,
            request: Request::ShardMap,
        })
        .expect("encode");
        lane.write(&request).await.expect("write");
        let reply = lane.next(Duration::from_secs(10)).await.expect("an answer");
        assert_eq!(reply.id, 1);
        assert!(matches!(reply.response, ferrisdb_proto::Response::ShardMap(ref m) if m.core_ports.len() == 2));
        assert_still_serving(&mut node, "raw").await;
    });
}
