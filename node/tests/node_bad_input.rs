//! Bad input against a real node process on loopback (DESIGN.md §8: "bad
//! input gets a clear error, never a panic"): garbage bytes, truncated
//! frames, oversized frames, wrong versions and kinds, requests over the
//! limits, and stray UDP datagrams.
//!
//! Each case writes raw bytes on a QUIC stream of a mutual-TLS connection
//! (quinn, ALPN `ferrisdb/1`) and checks what `docs/protocol.md` promises:
//! a frame whose header cannot be read gets one `ResponseFrame { id: 0,
//! Error }` and the lane is closed; a frame with a readable header but a bad
//! payload gets an id-0 error and the lane goes on; a decodable request over
//! a limit gets its own error and the lane goes on. After every case a normal
//! `ferrisdb_client::Client` still puts and gets, and the node process is
//! alive and has logged no panic.

mod support;

use ferrisdb_client::Client;
use ferrisdb_proto::frame::encode_request;
use ferrisdb_proto::{
    BATCH_OPS_MAX, ErrorCode, FRAME_PAYLOAD_BYTES_MAX, FrameHeader, KEY_BYTES_MAX, KeyBound,
    PROTOCOL_VERSION, Request, RequestFrame, Response, ResponseFrame, SCAN_LIMIT_MAX,
    VALUE_BYTES_MAX, WriteOp,
};
use std::time::Duration;
use support::{LaneEnd, NodeProcess, RawLane, XorShift};

/// Longest wait for the node's answer on a lane.
const LANE_DEADLINE: Duration = Duration::from_secs(10);
/// Longest a whole check with a normal client may take.
const CLIENT_DEADLINE: Duration = Duration::from_secs(30);

fn frame(id: u64, request: Request) -> Vec<u8> {
    encode_request(&RequestFrame {
        id,
        shard_map_version: 0,
        timeout_ms: 5_000,
        request,
    })
    .expect("encode a request")
}

fn header(payload_len: u32, version: u16, kind: u16) -> [u8; 8] {
    FrameHeader {
        payload_len,
        version,
        kind,
    }
    .encode()
}

fn get(key: &[u8]) -> Request {
    Request::Get { key: key.to_vec() }
}

async fn connect(node: &NodeProcess) -> (quinn::Endpoint, quinn::Connection) {
    let config = support::quic_config(node.certs.client_tls());
    support::quic_connect(node.listen, config)
        .await
        .expect("mutual TLS handshake with the node")
}

fn error_of(frame: &ResponseFrame) -> (ErrorCode, &str) {
    match &frame.response {
        Response::Error(reply) => (reply.code, reply.message.as_str()),
        other => panic!("expected an error, got {other:?} (frame id {})", frame.id),
    }
}

/// The node answers one stream-level error (id 0) with one of `codes`, then
/// finishes the lane. Returns the message.
async fn expect_stream_error(lane: &mut RawLane, codes: &[ErrorCode], what: &str) -> String {
    let (frames, end) = lane.read_to_end(LANE_DEADLINE).await;
    assert_eq!(
        frames.len(),
        1,
        "{what}: one error frame, got {frames:?} then {end:?}"
    );
    assert_eq!(frames[0].id, 0, "{what}: a stream error has id 0");
    let (code, message) = error_of(&frames[0]);
    assert!(
        codes.contains(&code),
        "{what}: code {code:?} ({message}), want one of {codes:?}"
    );
    assert!(!message.is_empty(), "{what}: the error says why");
    assert!(
        matches!(end, LaneEnd::Finished),
        "{what}: the node closes the lane, got {end:?}"
    );
    message.to_string()
}

/// A `Get` with id `id` on `lane` is answered with a value (the lane works).
async fn expect_served(lane: &mut RawLane, id: u64, what: &str) {
    lane.write(&frame(id, get(b"probe")))
        .await
        .unwrap_or_else(|e| panic!("{what}: write a valid request: {e}"));
    loop {
        let reply = lane
            .next(LANE_DEADLINE)
            .await
            .unwrap_or_else(|end| panic!("{what}: no answer to a valid request: {end:?}"));
        if reply.id == id {
            assert!(
                matches!(reply.response, Response::Value(_)),
                "{what}: valid request answered {:?}",
                reply.response
            );
            return;
        }
    }
}

/// After a bad input: a fresh lane on the same connection is served, a
/// normal client puts and gets, and the process is alive without a panic.
async fn assert_still_serving(node: &mut NodeProcess, connection: &quinn::Connection, tag: &str) {
    let mut lane = RawLane::open(connection).await;
    expect_served(&mut lane, 1, tag).await;
    let config = node.client_config();
    let checked = tokio::time::timeout(CLIENT_DEADLINE, async {
        let client = Client::connect(config)
            .await
            .expect("a normal client connects");
        let key = format!("after-{tag}");
        client.put(&key, tag).await.expect("put after bad input");
        assert_eq!(
            client.get(&key).await.expect("get after bad input"),
            Some(tag.as_bytes().to_vec())
        );
    })
    .await;
    assert!(
        checked.is_ok(),
        "{tag}: the normal client was not served within {CLIENT_DEADLINE:?}"
    );
    node.assert_alive();
}

#[test]
fn garbage_bytes_get_a_stream_error_and_only_that_lane_is_closed() {
    let mut node = NodeProcess::start();
    support::runtime().block_on(async {
        let (_endpoint, connection) = connect(&node).await;
        let mut rng = XorShift(0x5eed_0001);
        let cases: Vec<(&str, Vec<u8>)> = vec![
            ("random 1 KiB", rng.bytes(1024)),
            ("random 9 bytes", rng.bytes(9)),
            (
                "an HTTP request",
                b"GET / HTTP/1.1\r\nHost: x\r\n\r\n".to_vec(),
            ),
            ("all 0xff", vec![0xff; 64]),
            ("all zeros", vec![0; 64]),
        ];
        for (what, bytes) in cases {
            let mut lane = RawLane::open(&connection).await;
            // The node may stop reading before all of it arrives.
            let _ = lane.write(&bytes).await;
            let message = expect_stream_error(
                &mut lane,
                &[
                    ErrorCode::UnsupportedVersion,
                    ErrorCode::BadRequest,
                    ErrorCode::FrameTooLarge,
                ],
                what,
            )
            .await;
            eprintln!("{what}: {message}");
            assert_still_serving(&mut node, &connection, "garbage").await;
        }
    });
}

#[test]
fn a_readable_header_with_a_garbage_payload_is_bad_request_and_the_lane_goes_on() {
    let mut node = NodeProcess::start();
    support::runtime().block_on(async {
        let (_endpoint, connection) = connect(&node).await;
        let mut rng = XorShift(0x5eed_0002);
        let mut lane = RawLane::open(&connection).await;
        for (i, len) in [0usize, 1, 7, 100, 4096].into_iter().enumerate() {
            let what = format!("payload of {len} garbage bytes");
            let mut bytes = header(len as u32, PROTOCOL_VERSION, 1).to_vec();
            bytes.extend(rng.bytes(len));
            lane.write(&bytes).await.expect("write");
            let reply = lane
                .next(LANE_DEADLINE)
                .await
                .unwrap_or_else(|e| panic!("{what}: {e:?}"));
            assert_eq!(reply.id, 0, "{what}");
            let (code, message) = error_of(&reply);
            assert_eq!(code, ErrorCode::BadRequest, "{what}: {message}");
            // The frame's boundary was known: the same lane keeps working.
            expect_served(&mut lane, 100 + i as u64, &what).await;
        }
        // A valid archive of the wrong type (a response where a request
        // belongs) is refused the same way.
        let response = ferrisdb_proto::frame::encode_response(&ResponseFrame {
            id: 9,
            shard_map_version: 0,
            response: Response::Written { version: 1 },
        })
        .expect("encode a response");
        let mut bytes = header((response.len() - 8) as u32, PROTOCOL_VERSION, 1).to_vec();
        bytes.extend_from_slice(&response[8..]);
        lane.write(&bytes).await.expect("write");
        let reply = lane.next(LANE_DEADLINE).await.expect("an answer");
        assert_eq!((reply.id, error_of(&reply).0), (0, ErrorCode::BadRequest));
        expect_served(&mut lane, 200, "after a response payload").await;
        assert_still_serving(&mut node, &connection, "garbage-payload").await;
    });
}

#[test]
fn truncated_frames_are_reported_when_the_stream_ends_and_never_hang_the_node() {
    let mut node = NodeProcess::start();
    support::runtime().block_on(async {
        let (_endpoint, connection) = connect(&node).await;
        let whole = frame(
            7,
            Request::Put {
                key: b"truncated".to_vec(),
                value: vec![b'v'; 300],
            },
        );
        for cut in [1, 5, 8, 9, whole.len() / 2, whole.len() - 1] {
            let what = format!("frame of {} bytes cut after {cut}", whole.len());
            let mut lane = RawLane::open(&connection).await;
            lane.write(&whole[..cut]).await.expect("write");
            lane.finish();
            let message = expect_stream_error(&mut lane, &[ErrorCode::BadRequest], &what).await;
            assert!(
                message.contains("ended inside a frame"),
                "{what}: {message}"
            );
        }
        // A truncated frame was never executed.
        let client = Client::connect(node.client_config()).await.expect("client");
        assert_eq!(client.get("truncated").await.expect("get"), None);

        // Cut, then the client resets the stream instead of finishing it.
        let mut lane = RawLane::open(&connection).await;
        lane.write(&whole[..whole.len() / 2]).await.expect("write");
        lane.send.reset(0u32.into()).expect("reset");
        // Cut, then the whole connection goes away.
        let (_endpoint2, doomed) = connect(&node).await;
        let mut lane = RawLane::open(&doomed).await;
        lane.write(&whole[..whole.len() / 2]).await.expect("write");
        doomed.close(0u32.into(), b"gone mid-frame");

        // A frame that arrives one byte at a time is not truncated.
        let mut lane = RawLane::open(&connection).await;
        let slow = frame(8, get(b"slow"));
        for byte in &slow {
            lane.write(std::slice::from_ref(byte))
                .await
                .expect("write a byte");
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        let reply = lane
            .next(LANE_DEADLINE)
            .await
            .expect("answer to a slow frame");
        assert_eq!((reply.id, reply.response), (8, Response::Value(None)));
        assert_still_serving(&mut node, &connection, "truncated").await;
    });
}

#[test]
fn oversized_frames_are_refused_from_the_header_and_a_frame_at_the_limit_is_read() {
    let mut node = NodeProcess::start();
    support::runtime().block_on(async {
        let (_endpoint, connection) = connect(&node).await;
        let over = FRAME_PAYLOAD_BYTES_MAX as u32 + 1;
        for len in [over, u32::MAX] {
            let what = format!("header announcing {len} bytes");
            let mut lane = RawLane::open(&connection).await;
            lane.write(&header(len, PROTOCOL_VERSION, 1))
                .await
                .expect("write");
            let message = expect_stream_error(&mut lane, &[ErrorCode::FrameTooLarge], &what).await;
            assert!(message.contains(&len.to_string()), "{what}: {message}");
        }
        // The header, then really that many bytes: the node refuses at the
        // header and stops the stream. The write either fits the send
        // buffer or sees the stream stopped; it must not hang.
        let mut lane = RawLane::open(&connection).await;
        let mut bytes = header(over, PROTOCOL_VERSION, 1).to_vec();
        bytes.extend(vec![0u8; over as usize]);
        let written = tokio::time::timeout(LANE_DEADLINE, lane.write(&bytes)).await;
        assert!(
            matches!(written, Ok(Ok(()) | Err(quinn::WriteError::Stopped(_)))),
            "writing an oversized frame: {written:?}"
        );
        expect_stream_error(
            &mut lane,
            &[ErrorCode::FrameTooLarge],
            "oversized with payload",
        )
        .await;

        // A payload of exactly the limit is read whole (then refused as a
        // bad archive) and the lane goes on.
        let mut lane = RawLane::open(&connection).await;
        let mut bytes = header(FRAME_PAYLOAD_BYTES_MAX as u32, PROTOCOL_VERSION, 1).to_vec();
        bytes.extend(XorShift(0x5eed_0003).bytes(FRAME_PAYLOAD_BYTES_MAX));
        lane.write(&bytes)
            .await
            .expect("write a frame at the limit");
        let reply = lane
            .next(LANE_DEADLINE)
            .await
            .expect("answer to a frame at the limit");
        assert_eq!((reply.id, error_of(&reply).0), (0, ErrorCode::BadRequest));
        expect_served(&mut lane, 3, "after a frame at the limit").await;
        assert_still_serving(&mut node, &connection, "oversized").await;
    });
}

#[test]
fn frames_with_a_wrong_version_or_kind_are_refused_and_the_lane_closed() {
    let mut node = NodeProcess::start();
    support::runtime().block_on(async {
        let (_endpoint, connection) = connect(&node).await;
        let valid = frame(5, get(b"versioned"));
        let cases: [(&str, u16, u16, ErrorCode); 5] = [
            ("version 2", 2, 1, ErrorCode::UnsupportedVersion),
            ("version 0", 0, 1, ErrorCode::UnsupportedVersion),
            ("version 0xffff", 0xffff, 1, ErrorCode::UnsupportedVersion),
            (
                "kind 2 (a response)",
                PROTOCOL_VERSION,
                2,
                ErrorCode::BadRequest,
            ),
            ("kind 7", PROTOCOL_VERSION, 7, ErrorCode::BadRequest),
        ];
        for (what, version, kind, code) in cases {
            let mut lane = RawLane::open(&connection).await;
            let mut bytes = valid.clone();
            bytes[4..6].copy_from_slice(&version.to_le_bytes());
            bytes[6..8].copy_from_slice(&kind.to_le_bytes());
            // A valid frame after it must not be read.
            bytes.extend(frame(6, get(b"after")));
            let _ = lane.write(&bytes).await;
            let message = expect_stream_error(&mut lane, &[code], what).await;
            if code == ErrorCode::UnsupportedVersion {
                assert!(
                    message.contains(&format!("version {version}")),
                    "{what}: {message}"
                );
            }
        }
        assert_still_serving(&mut node, &connection, "version").await;
    });
}

#[test]
fn requests_over_the_limits_get_their_own_error_and_the_lane_goes_on() {
    let mut node = NodeProcess::start();
    support::runtime().block_on(async {
        let (_endpoint, connection) = connect(&node).await;
        let long_key = vec![b'k'; KEY_BYTES_MAX + 1];
        let small_puts = |n: usize| {
            (0..n)
                .map(|i| WriteOp::Put {
                    key: format!("b{i:05}").into_bytes(),
                    value: Vec::new(),
                })
                .collect::<Vec<_>>()
        };
        let cases: Vec<(&str, Request, ErrorCode)> = vec![
            (
                "get with a key over the limit",
                get(&long_key),
                ErrorCode::KeyTooLarge,
            ),
            (
                "put with a key over the limit",
                Request::Put {
                    key: long_key.clone(),
                    value: b"v".to_vec(),
                },
                ErrorCode::KeyTooLarge,
            ),
            (
                "delete with a key over the limit",
                Request::Delete {
                    key: long_key.clone(),
                },
                ErrorCode::KeyTooLarge,
            ),
            ("get with an empty key", get(b""), ErrorCode::KeyTooLarge),
            (
                "put with a value over the limit",
                Request::Put {
                    key: b"big".to_vec(),
                    value: vec![0; VALUE_BYTES_MAX + 1],
                },
                ErrorCode::ValueTooLarge,
            ),
            (
                "a batch over the limit",
                Request::Batch {
                    ops: small_puts(BATCH_OPS_MAX + 1),
                },
                ErrorCode::BatchTooLarge,
            ),
            (
                "a batch with one key over the limit",
                Request::Batch {
                    ops: vec![
                        WriteOp::Put {
                            key: b"ok".to_vec(),
                            value: Vec::new(),
                        },
                        WriteOp::Delete {
                            key: long_key.clone(),
                        },
                    ],
                },
                ErrorCode::KeyTooLarge,
            ),
            (
                "a scan limit over the limit",
                Request::Scan {
                    start: KeyBound::Unbounded,
                    end: KeyBound::Unbounded,
                    limit: SCAN_LIMIT_MAX + 1,
                    reverse: false,
                },
                ErrorCode::InvalidRange,
            ),
            (
                "a scan bound over the key limit",
                Request::Scan {
                    start: KeyBound::Included(long_key.clone()),
                    end: KeyBound::Unbounded,
                    limit: 1,
                    reverse: false,
                },
                ErrorCode::KeyTooLarge,
            ),
            (
                "a delete range with start after end",
                Request::DeleteRange {
                    start: b"z".to_vec(),
                    end: b"a".to_vec(),
                },
                ErrorCode::InvalidRange,
            ),
        ];
        let mut lane = RawLane::open(&connection).await;
        for (i, (what, request, code)) in cases.into_iter().enumerate() {
            let id = 10 + i as u64;
            lane.write(&frame(id, request)).await.expect("write");
            let reply = lane
                .next(LANE_DEADLINE)
                .await
                .unwrap_or_else(|e| panic!("{what}: {e:?}"));
            assert_eq!(reply.id, id, "{what}: the error names the request");
            let (got, message) = error_of(&reply);
            assert_eq!(got, code, "{what}: {message}");
            assert!(!got.is_retryable(), "{what}");
        }
        expect_served(&mut lane, 99, "after requests over the limits").await;
        // Nothing of the refused writes was applied.
        let client = Client::connect(node.client_config()).await.expect("client");
        assert_eq!(client.get("big").await.expect("get"), None);
        assert_eq!(client.get("ok").await.expect("get"), None);
        assert_eq!(client.get("b00000").await.expect("get"), None);
        // At the limits exactly, it works.
        let key = vec![b'k'; KEY_BYTES_MAX];
        let value = vec![b'v'; VALUE_BYTES_MAX];
        lane.write(&frame(
            500,
            Request::Put {
                key: key.clone(),
                value: value.clone(),
            },
        ))
        .await
        .expect("write");
        let reply = lane.next(LANE_DEADLINE).await.expect("answer");
        assert!(
            matches!(reply.response, Response::Written { .. }),
            "{:?}",
            reply.response
        );
        assert_eq!(client.get(&key).await.expect("get"), Some(value));
        // A deadline above the protocol's maximum is clamped, not refused.
        let bytes = encode_request(&RequestFrame {
            id: 501,
            shard_map_version: 0,
            timeout_ms: u32::MAX,
            request: get(b"probe"),
        })
        .expect("encode");
        lane.write(&bytes).await.expect("write");
        let reply = lane.next(LANE_DEADLINE).await.expect("answer");
        assert_eq!((reply.id, reply.response), (501, Response::Value(None)));
        assert_still_serving(&mut node, &connection, "limits").await;
    });
}

#[test]
fn stray_udp_datagrams_do_not_disturb_the_endpoints() {
    let mut node = NodeProcess::start();
    let socket = std::net::UdpSocket::bind("127.0.0.1:0").expect("bind UDP");
    let mut rng = XorShift(0x5eed_0004);
    for i in 0..600usize {
        let len = 1 + (rng.next_u64() % 1400) as usize;
        let mut datagram = rng.bytes(len);
        // Every third looks like a QUIC v1 long-header packet.
        if i % 3 == 0 && len >= 5 {
            datagram[0] = 0xc0 | (datagram[0] & 0x0f);
            datagram[1..5].copy_from_slice(&1u32.to_be_bytes());
        }
        for core in 0..node.options.cores {
            socket
                .send_to(&datagram, node.core_addr(core))
                .expect("send a datagram");
        }
    }
    support::runtime().block_on(async {
        let (_endpoint, connection) = connect(&node).await;
        assert_still_serving(&mut node, &connection, "udp").await;
    });
}

#[test]
fn a_client_keeps_being_served_while_another_sends_garbage() {
    let mut node = NodeProcess::start();
    support::runtime().block_on(async {
        let client = Client::connect(node.client_config()).await.expect("client");
        let good = tokio::spawn(async move {
            for i in 0..300u32 {
                let key = format!("good-{i:04}");
                client
                    .put(&key, i.to_le_bytes())
                    .await
                    .expect("put while another client misbehaves");
                let got = client
                    .get(&key)
                    .await
                    .expect("get while another client misbehaves");
                assert_eq!(got, Some(i.to_le_bytes().to_vec()));
            }
        });
        let (_endpoint, connection) = connect(&node).await;
        let mut rng = XorShift(0x5eed_0005);
        let mut lanes = 0;
        while !good.is_finished() && lanes < 2_000 {
            let mut lane = RawLane::open(&connection).await;
            let len = 1 + (rng.next_u64() % 200) as usize;
            let _ = lane.write(&rng.bytes(len)).await;
            lane.finish();
            let (frames, end) = lane.read_to_end(LANE_DEADLINE).await;
            assert!(
                frames
                    .iter()
                    .all(|f| f.id == 0 && matches!(f.response, Response::Error(_))),
                "garbage lane answered {frames:?}"
            );
            assert!(
                !matches!(end, LaneEnd::TimedOut),
                "garbage lane left hanging"
            );
            lanes += 1;
        }
        tokio::time::timeout(CLIENT_DEADLINE, good)
            .await
            .expect("the good client finished in time")
            .expect("the good client never failed");
        assert!(lanes > 0);
        assert_still_serving(&mut node, &connection, "concurrent").await;
    });
}

/// Many writes sent in one stream write (the node coalesces the puts and
/// deletes it reads together for one shard into one engine batch): each
/// request still gets its own answer, a put with a key over the limit gets
/// its own error while the writes around it succeed, a write for another
/// core's shard is forwarded, a later put of a key wins over an earlier one
/// (in the same batch and across batches), and all of it survives a restart.
#[test]
fn pipelined_writes_each_get_their_answer_and_the_last_put_of_a_key_wins() {
    const WRITES: usize = 600;
    let mut node = NodeProcess::start();
    let config = node.client_config();
    support::runtime().block_on(async {
        // A prefix whose shard is on some core, and a key of another core's.
        let client = Client::connect(config.clone()).await.expect("connect");
        let (home, foreign_key) = home_and_foreign_key(&client);
        let key = |i: usize| format!("c{i:04}").into_bytes();

        let config = support::quic_config(node.certs.client_tls());
        let (_endpoint, connection) = support::quic_connect(node.core_addr(home as usize), config)
            .await
            .expect("mutual TLS handshake with the core");
        let mut lane = RawLane::open(&connection).await;
        let long_key = vec![b'c'; KEY_BYTES_MAX + 1];
        let mut bytes = Vec::new();
        let mut expected = std::collections::HashMap::new();
        let mut id = 0u64;
        let mut send = |request: Request, answer: &'static str, bytes: &mut Vec<u8>| {
            id += 1;
            bytes.extend_from_slice(&frame(id, request));
            expected.insert(id, answer);
        };
        for i in 0..WRITES {
            let value = match i {
                // Later puts of keys written earlier: in the same batch
                // (i = 5 after i = 3) and in a later one (i = 500 after i = 2).
                5 => b"same batch".to_vec(),
                500 => b"later batch".to_vec(),
                _ => format!("v{i}").into_bytes(),
            };
            let k = match i {
                5 => key(3),
                500 => key(2),
                _ => key(i),
            };
            send(Request::Put { key: k, value }, "written", &mut bytes);
            match i {
                100 => send(
                    Request::Put {
                        key: long_key.clone(),
                        value: b"v".to_vec(),
                    },
                    "too large",
                    &mut bytes,
                ),
                200 => send(get(&key(0)), "value", &mut bytes),
                300 => send(Request::Delete { key: key(1) }, "written", &mut bytes),
                400 => send(
                    Request::Put {
                        key: foreign_key.clone(),
                        value: b"forwarded".to_vec(),
                    },
                    "written",
                    &mut bytes,
                ),
                _ => {}
            }
        }
        lane.write(&bytes).await.expect("write the requests");
        let mut versions = std::collections::HashSet::new();
        while !expected.is_empty() {
            let (wanted, reply) = next_expected(&mut lane, &mut expected).await;
            match (wanted, &reply.response) {
                ("written", Response::Written { version }) => {
                    versions.insert(*version);
                }
                ("value", Response::Value(_)) => {}
                ("too large", Response::Error(e)) if e.code == ErrorCode::KeyTooLarge => {}
                (wanted, got) => panic!("request {} wanted {wanted}, got {got:?}", reply.id),
            }
        }
        // Writes read together shared a version: fewer versions than writes.
        assert!(
            versions.len() < WRITES / 2,
            "{} versions for {WRITES} writes: nothing was coalesced",
            versions.len()
        );
        check_pipelined_writes(&client, &key, &foreign_key).await;

        // Deadlines stay each request's own: puts of 2 KB (many to a
        // batch), every other one with a 1 ms deadline. Those may time out;
        // the others are written whatever happens to their batch-mates, and
        // every request gets exactly one answer.
        assert_eq!(
            client.shard_map().shard_for(b"d").map(|s| s.core),
            Some(home),
            "keys d... are served by the core the lane is on"
        );
        let mut bytes = Vec::new();
        let mut expected = std::collections::HashMap::new();
        for i in 0..200u64 {
            let request = Request::Put {
                key: format!("d{i:04}").into_bytes(),
                value: vec![b'x'; 2_000],
            };
            let short = i % 2 == 0;
            let frame = RequestFrame {
                id: 10_000 + i,
                shard_map_version: 0,
                timeout_ms: if short { 1 } else { 30_000 },
                request,
            };
            bytes.extend_from_slice(&encode_request(&frame).expect("encode a request"));
            expected.insert(frame.id, short);
        }
        lane.write(&bytes).await.expect("write the puts");
        while !expected.is_empty() {
            let (short, reply) = next_expected(&mut lane, &mut expected).await;
            match &reply.response {
                Response::Written { .. } => {}
                Response::Error(e) if short && e.code == ErrorCode::Timeout => {}
                other => panic!("put {} (1 ms deadline: {short}) got {other:?}", reply.id),
            }
        }
        for i in (1..200).step_by(2) {
            let value = client.get(format!("d{i:04}")).await.expect("get a put");
            assert_eq!(value.map(|v| v.len()), Some(2_000), "d{i:04}");
        }
        // No late second answer follows a timeout: the next frame on the
        // lane answers the next request.
        lane.write(&frame(20_000, get(b"d0001")))
            .await
            .expect("write a get");
        let reply = lane
            .next(LANE_DEADLINE)
            .await
            .expect("an answer to the get");
        assert_eq!(reply.id, 20_000, "an extra answer: {reply:?}");
    });
    node.terminate();
    node.wait_exit(Duration::from_secs(30))
        .expect("the node stops on SIGTERM");
    node.restart();
    support::runtime().block_on(async {
        let client = Client::connect(config)
            .await
            .expect("connect after restart");
        let key = |i: usize| format!("c{i:04}").into_bytes();
        let (_, foreign_key) = home_and_foreign_key(&client);
        check_pipelined_writes(&client, &key, &foreign_key).await;
    });
    node.assert_alive();
    node.assert_no_panic();
}

/// The next answer on `lane`, with what `expected` held for its id (taken
/// out, so a second answer to an id fails).
async fn next_expected<T>(
    lane: &mut RawLane,
    expected: &mut std::collections::HashMap<u64, T>,
) -> (T, ResponseFrame) {
    let reply = lane
        .next(LANE_DEADLINE)
        .await
        .unwrap_or_else(|end| panic!("{} requests unanswered: {end:?}", expected.len()));
    let wanted = expected
        .remove(&reply.id)
        .unwrap_or_else(|| panic!("an answer to an unknown or answered id {}", reply.id));
    (wanted, reply)
}

/// The core owning the keys starting with `c`, and a key of a shard on
/// another core.
fn home_and_foreign_key(client: &Client) -> (u32, Vec<u8>) {
    let map = client.shard_map();
    let home = map.shard_for(b"c").expect("a shard owns every key").core;
    let elsewhere = map
        .shards
        .iter()
        .find(|s| s.core != home && !s.start.is_empty())
        .expect("a two-core node has a shard on the other core");
    let mut foreign_key = elsewhere.start.clone();
    foreign_key.push(b'!');
    (home, foreign_key)
}

async fn check_pipelined_writes(client: &Client, key: &impl Fn(usize) -> Vec<u8>, foreign: &[u8]) {
    let get = |k: Vec<u8>| async move { client.get(&k).await.expect("get") };
    assert_eq!(get(key(3)).await.as_deref(), Some(&b"same batch"[..]));
    assert_eq!(get(key(2)).await.as_deref(), Some(&b"later batch"[..]));
    assert_eq!(get(key(1)).await, None, "deleted after its put");
    assert_eq!(get(key(599)).await.as_deref(), Some(&b"v599"[..]));
    assert_eq!(get(key(101)).await.as_deref(), Some(&b"v101"[..]));
    assert_eq!(
        get(foreign.to_vec()).await.as_deref(),
        Some(&b"forwarded"[..])
    );
}
