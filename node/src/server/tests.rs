//! A node in this process (2 cores, insecure, loopback) talked to with the
//! io crate's QUIC endpoint: requests sent to the core that does not own
//! their key are forwarded over the mesh and answered with the map version.

use super::run;
use crate::config::{LogFormat, NodeConfig, TlsFiles};
use ferrisdb_io::quic::{ClientConfig, Connection, Endpoint, EndpointLimits, QuicClientConfig};
use ferrisdb_proto::frame::{decode_response, encode_request};
use ferrisdb_proto::{FRAME_HEADER_BYTES, Request, RequestFrame, Response, ResponseFrame};
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

fn config(dir: &std::path::Path, listen: SocketAddr, admin: SocketAddr) -> NodeConfig {
    NodeConfig {
        data_dir: dir.to_path_buf(),
        listen,
        admin,
        cores: 2,
        shards_per_core: 1,
        split_keys: vec!["m".into()],
        insecure: true,
        log_format: LogFormat::Pretty,
        memtable_bytes: 1 << 20,
        block_cache_bytes: 8 << 20,
        request_timeout_ms: 10_000,
        io_depth: crate::config::IO_DEPTH_DEFAULT,
        background_shares: crate::config::BACKGROUND_SHARES_DEFAULT,
        compaction_bytes_per_sec: 0,
        io_properties: None,
        tls: TlsFiles::default(),
    }
}

/// Sends one request on a fresh lane and reads every response frame until
/// the stream ends or a final one arrives.
async fn call(conn: &Connection, id: u64, request: Request) -> Vec<ResponseFrame> {
    let (mut send, mut recv) = conn.open_bi().await.expect("open a lane");
    let frame = RequestFrame {
        id,
        shard_map_version: 0,
        timeout_ms: 0,
        request,
    };
    send.write_all(&encode_request(&frame).unwrap())
        .await
        .unwrap();
    let mut buf = Vec::new();
    let mut out = Vec::new();
    loop {
        while buf.len() >= FRAME_HEADER_BYTES {
            let len = u32::from_le_bytes(buf[0..4].try_into().unwrap()) as usize;
            if buf.len() < FRAME_HEADER_BYTES + len {
                break;
            }
            let frame =
                decode_response(&buf[FRAME_HEADER_BYTES..FRAME_HEADER_BYTES + len]).unwrap();
            buf.drain(..FRAME_HEADER_BYTES + len);
            let last = !matches!(frame.response, Response::ScanChunk { done: false, .. });
            out.push(frame);
            if last {
                return out;
            }
        }
        match recv.read_chunk(usize::MAX).await.unwrap() {
            Some(chunk) => buf.extend_from_slice(&chunk),
            None => return out,
        }
    }
}

#[test]
fn misrouted_requests_are_forwarded_to_the_owning_core() {
    let dir = tempfile::tempdir().unwrap();
    let (listen, admin) = crate::demo::free_ports(2).unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let node = {
        let (config, stop) = (config(dir.path(), listen, admin), stop.clone());
        std::thread::spawn(move || run(config, stop))
    };
    let core1 = SocketAddr::new(listen.ip(), listen.port() + 1);
    let result = std::panic::catch_unwind(|| {
        ferrisdb_io::executor::run_local(move || async move {
            let tls = ferrisdb_proto::tls::insecure_client_config().unwrap();
            let client_config =
                ClientConfig::new(Arc::new(QuicClientConfig::try_from(tls).unwrap()));
            let endpoint = Endpoint::bind(
                "127.0.0.1:0".parse().unwrap(),
                None,
                EndpointLimits::default(),
            )
            .unwrap();
            let mut conn = None;
            for _ in 0..200 {
                match endpoint
                    .connect(client_config.clone(), core1, "localhost")
                    .await
                {
                    Ok(c) => {
                        conn = Some(c);
                        break;
                    }
                    Err(_) => ferrisdb_io::executor::sleep(Duration::from_millis(50)).await,
                }
            }
            let conn = conn.expect("the node answers");
            // "apple" lives in shard 0 on core 0; this connection is to core 1.
            let put = call(
                &conn,
                1,
                Request::Put {
                    key: b"apple".to_vec(),
                    value: b"red".to_vec(),
                },
            )
            .await;
            assert!(
                matches!(put[0].response, Response::Written { .. }),
                "{put:?}"
            );
            assert_eq!(put[0].id, 1);
            let get = call(
                &conn,
                2,
                Request::Get {
                    key: b"apple".to_vec(),
                },
            )
            .await;
            assert_eq!(get[0].response, Response::Value(Some(b"red".to_vec())));
            let map = call(&conn, 3, Request::ShardMap).await;
            let Response::ShardMap(map) = &map[0].response else {
                panic!("{map:?}")
            };
            assert_eq!(get[0].shard_map_version, map.version);
            assert_eq!(map.shard_for(b"apple").unwrap().core, 0);
            // A scan from core 1 over both shards: served by shard 0's core
            // first, with a resume bound at its end.
            call(
                &conn,
                4,
                Request::Put {
                    key: b"zebra".to_vec(),
                    value: b"striped".to_vec(),
                },
            )
            .await;
            let scan = call(
                &conn,
                5,
                Request::Scan {
                    start: ferrisdb_proto::KeyBound::Unbounded,
                    end: ferrisdb_proto::KeyBound::Unbounded,
                    limit: 0,
                    reverse: false,
                },
            )
            .await;
            let Response::ScanChunk {
                entries,
                done: true,
                resume,
            } = &scan.last().unwrap().response
            else {
                panic!("{scan:?}")
            };
            assert_eq!(entries.len(), 1);
            assert_eq!(
                resume,
                &Some(ferrisdb_proto::KeyBound::Included(b"m".to_vec()))
            );
            // Garbage on one lane gets a stream error; the connection still serves.
            let (mut send, mut recv) = conn.open_bi().await.unwrap();
            send.write_all(&[0xff; 64]).await.unwrap();
            let chunk = recv
                .read_chunk(usize::MAX)
                .await
                .unwrap()
                .expect("an error frame");
            let len = u32::from_le_bytes(chunk[0..4].try_into().unwrap()) as usize;
            let err =
                decode_response(&chunk[FRAME_HEADER_BYTES..FRAME_HEADER_BYTES + len]).unwrap();
            assert!(matches!(err.response, Response::Error(_)), "{err:?}");
            assert_eq!(err.id, ferrisdb_proto::STREAM_ERROR_ID);
            let again = call(
                &conn,
                6,
                Request::Get {
                    key: b"zebra".to_vec(),
                },
            )
            .await;
            assert_eq!(
                again[0].response,
                Response::Value(Some(b"striped".to_vec()))
            );
            endpoint.close(0, b"", Duration::from_millis(200)).await;
        })
    });
    stop.store(true, Ordering::SeqCst);
    let stopped = node.join().expect("node thread");
    result.expect("client checks");
    stopped.expect("the node stops cleanly");
}
