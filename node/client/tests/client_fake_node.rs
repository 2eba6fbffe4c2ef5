//! The client against `FakeNode`, a test double speaking the real protocol
//! over loopback QUIC with mutual TLS (see `fake_node/mod.rs`).

mod fake_node;

use fake_node::{FakeNode, TestCerts, make_certs, test_dir};
use ferrisdb_client::{
    Batch, Client, ClientConfig, Error, ErrorCode, KeyBound, ScanOptions, Security,
};
use ferrisdb_proto::{KEY_BYTES_MAX, ProtoError, Request, VALUE_BYTES_MAX};
use std::time::{Duration, Instant};

fn config(node: &FakeNode, certs: &TestCerts) -> ClientConfig {
    let mut config = ClientConfig::new(
        vec![node.addr(0)],
        Security::MutualTls {
            ca_cert: certs.ca.clone(),
            cert: certs.client_cert.clone(),
            key: certs.client_key.clone(),
        },
    );
    config.request_timeout = Duration::from_secs(5);
    config.reconnect_backoff_min = Duration::from_millis(10);
    config
}

/// Two fake cores; shards ["", "m") on core 0 and ["m", ∞) on core 1.
async fn two_cores(name: &str) -> (FakeNode, TestCerts, Client) {
    let certs = make_certs(&test_dir(name));
    let node = FakeNode::start(&certs, 2, &[b"m"]).await;
    let client = Client::connect(config(&node, &certs))
        .await
        .expect("connect");
    (node, certs, client)
}

fn keyed_core(node: &FakeNode, key: &[u8]) -> Vec<u32> {
    node.seen()
        .into_iter()
        .filter(|s| s.frame.request.routing_key() == Some(key))
        .map(|s| s.core)
        .collect()
}

#[tokio::test]
async fn requests_go_to_the_core_owning_the_key() {
    let (node, _certs, client) = two_cores("routing").await;
    assert_eq!(*client.shard_map(), node.map());
    for key in ["apple", "kiwi", "melon", "zucchini"] {
        client.put(key, key.to_uppercase()).await.expect("put");
    }
    for key in ["apple", "kiwi", "melon", "zucchini"] {
        let value = client.get(key).await.expect("get");
        assert_eq!(value, Some(key.to_uppercase().into_bytes()));
    }
    assert_eq!(keyed_core(&node, b"apple"), vec![0, 0]);
    assert_eq!(keyed_core(&node, b"kiwi"), vec![0, 0]);
    assert_eq!(keyed_core(&node, b"melon"), vec![1, 1]);
    assert_eq!(keyed_core(&node, b"zucchini"), vec![1, 1]);
    assert_eq!(client.get("absent").await.expect("get"), None);

    client.delete("kiwi").await.expect("delete");
    assert_eq!(node.value(b"kiwi"), None);
    let status = client.status().await.expect("status");
    assert!(status.contains(r#""keys":3"#), "{status}");
    // Every request carried the map version it was routed with (0 for the
    // first map request, made before the client had one).
    for seen in node.seen() {
        let expected = if seen.frame.request == Request::ShardMap {
            0
        } else {
            1
        };
        assert_eq!(seen.frame.shard_map_version, expected, "{seen:?}");
    }
}

#[tokio::test]
async fn responses_out_of_order_reach_their_callers() {
    let certs = make_certs(&test_dir("order"));
    let node = FakeNode::start(&certs, 1, &[]).await;
    let mut config = config(&node, &certs);
    config.lanes_per_connection = 1; // both requests on one stream
    let client = Client::connect(config).await.expect("connect");
    node.insert(b"slow", b"1");
    node.insert(b"fast", b"2");
    node.delay(b"slow", Duration::from_millis(400));

    let started = Instant::now();
    let slow = async {
        let value = client.get("slow").await;
        (value, started.elapsed())
    };
    let fast = async {
        tokio::time::sleep(Duration::from_millis(50)).await; // sent second
        let value = client.get("fast").await;
        (value, started.elapsed())
    };
    let ((slow, slow_at), (fast, fast_at)) = tokio::join!(slow, fast);
    assert_eq!(slow.expect("slow get"), Some(b"1".to_vec()));
    assert_eq!(fast.expect("fast get"), Some(b"2".to_vec()));
    // In-order delivery on the one lane would hold "fast" behind "slow".
    assert!(
        fast_at < slow_at,
        "fast answered at {fast_at:?}, slow at {slow_at:?}"
    );
}

#[tokio::test]
async fn many_requests_in_flight_on_one_connection() {
    let (_node, _certs, client) = two_cores("inflight").await;
    let mut tasks = Vec::new();
    for i in 0..200u32 {
        let client = client.clone();
        tasks.push(tokio::spawn(async move {
            let key = format!("k{i:03}");
            client.put(&key, i.to_le_bytes()).await.expect("put");
            client.get(&key).await.expect("get")
        }));
    }
    for (i, task) in tasks.into_iter().enumerate() {
        let value = task.await.expect("task");
        assert_eq!(value, Some((i as u32).to_le_bytes().to_vec()));
    }
}

#[tokio::test]
async fn scans_cross_the_shard_boundary() {
    let (node, _certs, client) = two_cores("scan").await;
    let keys: Vec<Vec<u8>> = (b'a'..=b'z').map(|c| vec![c]).collect();
    for key in &keys {
        node.insert(key, key);
    }
    let all = client
        .scan_collect(ScanOptions::all())
        .await
        .expect("scan all");
    let got: Vec<Vec<u8>> = all.iter().map(|e| e.key.clone()).collect();
    assert_eq!(got, keys);
    let cores: Vec<u32> = node.seen().iter().map(|s| s.core).collect();
    assert!(cores.contains(&0) && cores.contains(&1), "{cores:?}");

    let some = client
        .scan_collect(ScanOptions::range("k", "p"))
        .await
        .expect("range");
    let got: Vec<&[u8]> = some.iter().map(|e| e.key.as_slice()).collect();
    assert_eq!(got, [b"k", b"l", b"m", b"n", b"o"]);

    let limited = client
        .scan_collect(ScanOptions::range("j", "z").limit(5))
        .await
        .expect("limit");
    let got: Vec<&[u8]> = limited.iter().map(|e| e.key.as_slice()).collect();
    assert_eq!(got, [b"j", b"k", b"l", b"m", b"n"]);

    let reversed = client
        .scan_collect(ScanOptions::range("h", "p").reverse())
        .await
        .expect("reverse");
    let got: Vec<&[u8]> = reversed.iter().map(|e| e.key.as_slice()).collect();
    assert_eq!(got, [b"o", b"n", b"m", b"l", b"k", b"j", b"i", b"h"]);

    // Ends exactly at the boundary, excluded: served by shard 0 alone.
    let below = ScanOptions {
        start: KeyBound::Unbounded,
        end: KeyBound::Excluded(b"m".to_vec()),
        limit: Some(3),
        reverse: true,
    };
    let got: Vec<Vec<u8>> = client
        .scan_collect(below)
        .await
        .expect("reverse below boundary")
        .into_iter()
        .map(|e| e.key)
        .collect();
    assert_eq!(got, [b"l".to_vec(), b"k".to_vec(), b"j".to_vec()]);

    // Streamed: entries arrive while the scan is still going.
    let mut scan = client.scan(ScanOptions::all().limit(3)).expect("scan");
    assert_eq!(
        scan.next().await.expect("first").map(|e| e.key),
        Some(b"a".to_vec())
    );
    assert!(scan.next().await.expect("second").is_some());
    assert!(scan.next().await.expect("third").is_some());
    assert!(scan.next().await.expect("end").is_none());
}

#[tokio::test]
async fn a_scan_resumes_after_an_error_without_repeating_entries() {
    let (node, _certs, client) = two_cores("scanretry").await;
    let keys: Vec<Vec<u8>> = (b'a'..=b'z').map(|c| vec![c]).collect();
    for key in &keys {
        node.insert(key, key);
    }
    // The first part sends two chunks (a..d) and then stalls past the deadline.
    node.stall_next_scan_after(2);
    let client = client.with_timeout(Duration::from_millis(300));
    let mut scan = client.scan(ScanOptions::all()).expect("scan");
    let mut got = Vec::new();
    let err = loop {
        match scan.next().await {
            Ok(Some(entry)) => got.push(entry.key),
            Ok(None) => panic!("the scan should have timed out"),
            Err(err) => break err,
        }
    };
    assert!(matches!(err, Error::Timeout { .. }), "{err:?}");
    assert_eq!(got, keys[..4], "two chunks of two");
    while let Some(entry) = scan.next().await.expect("retried in place") {
        got.push(entry.key);
    }
    assert_eq!(got, keys, "every key once");
}

#[tokio::test]
async fn a_scan_told_wrong_shard_refreshes_and_retries() {
    let (node, _certs, client) = two_cores("scanwrongshard").await;
    for key in [b"b", b"n", b"x"] {
        node.insert(key, b"v");
    }
    node.reply_wrong_shard(1);
    let got: Vec<Vec<u8>> = client
        .scan_collect(ScanOptions::all())
        .await
        .expect("scan")
        .into_iter()
        .map(|e| e.key)
        .collect();
    assert_eq!(got, [b"b".to_vec(), b"n".to_vec(), b"x".to_vec()]);
}

#[tokio::test]
async fn a_call_past_its_deadline_times_out() {
    let (node, _certs, client) = two_cores("deadline").await;
    node.delay(b"slow", Duration::from_secs(3));
    let started = Instant::now();
    let err = client
        .with_timeout(Duration::from_millis(200))
        .get("slow")
        .await
        .expect_err("deadline");
    assert!(matches!(err, Error::Timeout { timeout_ms: 200 }), "{err:?}");
    assert!(err.is_retryable());
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
    let sent = node
        .seen()
        .into_iter()
        .find(|s| s.frame.request.routing_key() == Some(b"slow"))
        .expect("the request reached the node");
    assert!(
        (1..=200).contains(&sent.frame.timeout_ms),
        "{}",
        sent.frame.timeout_ms
    );
    // The connection is still good for other calls.
    client.put("quick", "1").await.expect("put after a timeout");
}

#[tokio::test]
async fn a_dropped_connection_fails_in_flight_calls_and_reconnects() {
    let (node, _certs, client) = two_cores("reconnect").await;
    client.put("a", "1").await.expect("put");
    node.delay(b"a", Duration::from_secs(2));
    let in_flight = {
        let client = client.clone();
        tokio::spawn(async move { client.get("a").await })
    };
    tokio::time::sleep(Duration::from_millis(200)).await;
    node.drop_connections();
    let err = in_flight
        .await
        .expect("task")
        .expect_err("connection dropped");
    assert!(matches!(err, Error::ConnectionLost { .. }), "{err:?}");
    assert!(err.is_retryable());

    node.delay(b"a", Duration::ZERO);
    assert_eq!(
        client.get("a").await.expect("reconnected"),
        Some(b"1".to_vec())
    );
    client.put("z", "2").await.expect("other core reconnected");
}

#[tokio::test]
async fn wrong_shard_refreshes_the_map_and_retries() {
    let (node, _certs, client) = two_cores("wrongshard").await;
    node.reply_wrong_shard(1);
    client
        .put("apple", "1")
        .await
        .expect("retried after WrongShard");
    assert_eq!(keyed_core(&node, b"apple"), vec![0, 0]);
    let map_requests = node
        .seen()
        .iter()
        .filter(|s| s.frame.request == Request::ShardMap)
        .count();
    assert_eq!(map_requests, 2, "one at connect, one after WrongShard");

    // The node moves "apple" to core 1 under map version 2; the client,
    // still on version 1, is told WrongShard by core 0 and follows.
    let map = node.resplit(&[b"a"]);
    assert_eq!(map.shard_for(b"apple").map(|s| s.core), Some(1));
    node.clear_seen();
    assert_eq!(client.get("apple").await.expect("get"), Some(b"1".to_vec()));
    assert_eq!(keyed_core(&node, b"apple"), vec![0, 1]);
    assert_eq!(client.shard_map().version, 2);

    // WrongShard forever: the client gives up with a retryable error.
    node.reply_wrong_shard(100);
    let err = client.get("apple").await.expect_err("always wrong");
    assert_eq!(err.code(), Some(ErrorCode::WrongShard));
    assert!(err.is_retryable());
}

#[tokio::test]
async fn a_newer_map_version_in_a_reply_refreshes_the_map() {
    let (node, _certs, client) = two_cores("mapversion").await;
    node.resplit(&[b"g", b"t"]);
    client.get("apple").await.expect("get");
    let map = client.shard_map();
    assert_eq!(map.version, 2);
    assert_eq!(map.shards.len(), 3);
}

#[tokio::test]
async fn batches_are_atomic_within_one_shard_only() {
    let (node, _certs, client) = two_cores("batch").await;
    let mut batch = Batch::new();
    batch
        .put("a", "1")
        .put("b", "2")
        .delete("c")
        .delete_range("d", "f");
    client.batch(batch).await.expect("one-shard batch");
    assert_eq!(node.value(b"a"), Some(b"1".to_vec()));
    assert_eq!(node.value(b"b"), Some(b"2".to_vec()));

    node.clear_seen();
    let mut batch = Batch::new();
    batch.put("a", "x").put("z", "y");
    let err = client.batch(batch).await.expect_err("two shards");
    assert!(
        matches!(err, Error::CrossShardBatch { first: 0, other: 1 }),
        "{err:?}"
    );
    assert!(!err.is_retryable());
    assert!(node.seen().is_empty(), "nothing is sent");
    assert_eq!(node.value(b"a"), Some(b"1".to_vec()));
}

#[tokio::test]
async fn delete_range_is_split_at_shard_boundaries() {
    let (node, _certs, client) = two_cores("deleterange").await;
    for key in [b"a", b"h", b"m", b"q", b"z"] {
        node.insert(key, b"v");
    }
    client.delete_range("b", "r").await.expect("delete range");
    assert_eq!(node.value(b"a"), Some(b"v".to_vec()));
    assert_eq!(node.value(b"h"), None);
    assert_eq!(node.value(b"m"), None);
    assert_eq!(node.value(b"q"), None);
    assert_eq!(node.value(b"z"), Some(b"v".to_vec()));
}

#[tokio::test]
async fn oversized_keys_and_values_are_refused_before_sending() {
    let (node, _certs, client) = two_cores("limits").await;
    node.clear_seen();
    let err = client
        .put(vec![b'k'; KEY_BYTES_MAX + 1], "v")
        .await
        .expect_err("key too large");
    assert_eq!(err.code(), Some(ErrorCode::KeyTooLarge));
    let err = client
        .put("k", vec![0u8; VALUE_BYTES_MAX + 1])
        .await
        .expect_err("value too large");
    assert_eq!(err.code(), Some(ErrorCode::ValueTooLarge));
    let err = client.get("").await.expect_err("empty key");
    assert_eq!(err.code(), Some(ErrorCode::KeyTooLarge));
    assert!(matches!(err, Error::InvalidArgument { .. }));
    assert!(node.seen().is_empty(), "nothing is sent");
    // At the limit is fine.
    client
        .put(vec![b'k'; KEY_BYTES_MAX], vec![1u8; VALUE_BYTES_MAX])
        .await
        .expect("largest key and value");
}

#[tokio::test]
async fn a_client_of_another_ca_is_refused() {
    let certs = make_certs(&test_dir("ca-node"));
    let other = make_certs(&test_dir("ca-other"));
    let node = FakeNode::start(&certs, 1, &[]).await;

    // Trusts the right CA, but its own certificate is from another CA: the
    // node refuses it.
    let mut config = config(&node, &certs);
    config.security = Security::MutualTls {
        ca_cert: certs.ca.clone(),
        cert: other.client_cert.clone(),
        key: other.client_key.clone(),
    };
    config.request_timeout = Duration::from_secs(2);
    let err = Client::connect(config)
        .await
        .expect_err("node refuses the client");
    assert!(!err.is_retryable(), "{err:?}");

    // Trusts another CA: the client refuses the node.
    let mut config = ferrisdb_client::ClientConfig::new(
        vec![node.addr(0)],
        Security::MutualTls {
            ca_cert: other.ca.clone(),
            cert: other.client_cert.clone(),
            key: other.client_key.clone(),
        },
    );
    config.request_timeout = Duration::from_secs(2);
    let err = Client::connect(config)
        .await
        .expect_err("client refuses the node");
    assert!(
        matches!(
            err,
            Error::Connect {
                retryable: false,
                ..
            }
        ),
        "{err:?}"
    );
    assert!(node.seen().is_empty());
}

#[tokio::test]
async fn missing_certificate_files_are_named() {
    let certs = make_certs(&test_dir("missingfile"));
    let node = FakeNode::start(&certs, 1, &[]).await;
    let mut config = config(&node, &certs);
    config.security = Security::MutualTls {
        ca_cert: certs.ca.clone(),
        cert: "/nonexistent/client.pem".into(),
        key: certs.client_key.clone(),
    };
    let err = Client::connect(config).await.expect_err("no such file");
    assert!(matches!(err, Error::Tls(_)), "{err:?}");
    assert!(err.to_string().contains("/nonexistent/client.pem"), "{err}");
}

#[tokio::test]
async fn insecure_is_for_loopback_only() {
    let config = ClientConfig::new(vec!["192.0.2.1:7000".parse().unwrap()], Security::Insecure);
    let err = Client::connect(config).await.expect_err("not loopback");
    assert!(matches!(err, Error::Config(_)), "{err:?}");
}

#[tokio::test]
async fn connect_tries_the_next_endpoint() {
    let certs = make_certs(&test_dir("seeds"));
    let node = FakeNode::start(&certs, 1, &[]).await;
    // Bound but silent: a handshake to it never completes.
    let silent = std::net::UdpSocket::bind("127.0.0.1:0").expect("bind");
    let mut config = config(&node, &certs);
    config.endpoints = vec![silent.local_addr().expect("bound"), node.addr(0)];
    config.connect_timeout = Duration::from_millis(300);
    config.request_timeout = Duration::from_secs(1);
    let client = Client::connect(config)
        .await
        .expect("second endpoint answers");
    client.put("k", "v").await.expect("put");
}

#[tokio::test]
async fn a_stream_level_error_fails_the_lane_and_the_next_call_reconnects() {
    let (node, _certs, client) = two_cores("streamerror").await;
    client.put("a", "1").await.expect("put");
    node.refuse_next_stream(ProtoError::UnsupportedVersion {
        got: 9,
        expected: 1,
    });
    let err = client.get("a").await.expect_err("stream refused");
    assert!(
        matches!(
            err,
            Error::Connect {
                retryable: false,
                ..
            }
        ),
        "{err:?}"
    );
    assert!(err.to_string().contains("UnsupportedVersion"), "{err}");
    assert_eq!(
        client.get("a").await.expect("new connection"),
        Some(b"1".to_vec())
    );
}

#[tokio::test]
async fn reconnection_attempts_back_off_exponentially() {
    let (node, certs, _) = two_cores("backoff").await;
    let mut config = config(&node, &certs);
    config.connect_timeout = Duration::from_millis(100);
    config.reconnect_backoff_min = Duration::from_millis(400);
    config.reconnect_backoff_max = Duration::from_secs(10);
    let client = Client::connect(config).await.expect("connect");
    client.get("a").await.expect("get");
    drop(node); // the node is gone: its sockets close

    // A call may first find the old connection and fail as it closes
    // (ConnectionLost). Then the first reconnection is immediate; the next
    // waits 400 ms before it tries, the one after 800 ms.
    let mut connect_waits = Vec::new();
    while connect_waits.len() < 3 {
        let started = Instant::now();
        let err = client.get("a").await.expect_err("node gone");
        assert!(err.is_retryable(), "{err:?}");
        if matches!(err, Error::Connect { .. }) {
            connect_waits.push(started.elapsed());
        }
    }
    let waits = connect_waits;
    assert!(waits[0] < Duration::from_millis(400), "{waits:?}");
    assert!(waits[1] >= Duration::from_millis(400), "{waits:?}");
    assert!(waits[2] >= Duration::from_millis(800), "{waits:?}");
}

#[tokio::test]
async fn insecure_client_and_insecure_node() {
    let certs = make_certs(&test_dir("insecure"));
    let node = FakeNode::start_insecure(&certs, 2, &[b"m"]).await;
    let config = ClientConfig::new(vec![node.addr(0)], Security::Insecure);
    let client = Client::connect(config).await.expect("connect");
    client.put("z", "1").await.expect("put");
    assert_eq!(client.get("z").await.expect("get"), Some(b"1".to_vec()));

    // A node that requires client certificates refuses an insecure client.
    let secure = FakeNode::start(&certs, 1, &[]).await;
    let mut config = ClientConfig::new(vec![secure.addr(0)], Security::Insecure);
    config.request_timeout = Duration::from_secs(2);
    let err = Client::connect(config)
        .await
        .expect_err("no client certificate");
    assert!(!err.is_retryable(), "{err:?}");
}

/// The requests the fake node has seen, as (core, ops per request), leaving
/// out shard map requests.
fn write_requests(node: &FakeNode) -> Vec<(u32, usize)> {
    node.seen()
        .into_iter()
        .filter_map(|s| match s.frame.request {
            Request::Batch { ops } => Some((s.core, ops.len())),
            Request::Put { .. } | Request::Delete { .. } => Some((s.core, 1)),
            _ => None,
        })
        .collect()
}

/// Runs `writes` (key, value; `None` deletes) as concurrent calls, spawned
/// in order on the test's single-threaded runtime, and returns each call's
/// result in the same order.
async fn concurrent_writes(
    client: &Client,
    writes: Vec<(String, Option<Vec<u8>>)>,
) -> Vec<Result<u64, Error>> {
    let tasks: Vec<_> = writes
        .into_iter()
        .map(|(key, value)| {
            let client = client.clone();
            tokio::spawn(async move {
                match value {
                    Some(value) => client.put(key, value).await,
                    None => client.delete(key).await,
                }
            })
        })
        .collect();
    let mut results = Vec::new();
    for task in tasks {
        results.push(task.await.expect("task"));
    }
    results
}

#[tokio::test]
async fn concurrent_writes_to_one_shard_travel_as_one_batch() {
    let (node, _certs, client) = two_cores("combine").await;
    node.insert(b"a99", b"old");
    node.clear_seen();
    let mut writes: Vec<_> = (0..40)
        .map(|i| (format!("a{i:02}"), Some(vec![i as u8])))
        .collect();
    writes.push(("a99".into(), None));
    // Two writes of one key: the later call's value wins.
    writes.push(("dup".into(), Some(b"first".to_vec())));
    writes.push(("dup".into(), Some(b"second".to_vec())));
    let results = concurrent_writes(&client, writes).await;

    assert_eq!(write_requests(&node), vec![(0, 43)], "one batch on core 0");
    let versions: Vec<u64> = results.into_iter().map(|r| r.expect("write")).collect();
    assert!(versions.iter().all(|v| *v == versions[0]), "{versions:?}");
    for i in 0..40u8 {
        assert_eq!(node.value(format!("a{i:02}").as_bytes()), Some(vec![i]));
    }
    assert_eq!(node.value(b"a99"), None);
    assert_eq!(node.value(b"dup"), Some(b"second".to_vec()));

    // A lone write goes out as itself.
    node.clear_seen();
    client.put("solo", "1").await.expect("put");
    let seen = node.seen();
    assert_eq!(seen.len(), 1);
    assert!(
        matches!(seen[0].frame.request, Request::Put { .. }),
        "{seen:?}"
    );
}

/// Clears what `node` has seen, runs `writes` concurrently, expects every
/// one to succeed and returns the write requests the node saw, sorted.
async fn requests_for(
    node: &FakeNode,
    client: &Client,
    writes: Vec<(String, Option<Vec<u8>>)>,
) -> Vec<(u32, usize)> {
    node.clear_seen();
    for result in concurrent_writes(client, writes).await {
        result.expect("write");
    }
    let mut requests = write_requests(node);
    requests.sort();
    requests
}

fn puts(keys: impl IntoIterator<Item = String>, value: &[u8]) -> Vec<(String, Option<Vec<u8>>)> {
    keys.into_iter()
        .map(|k| (k, Some(value.to_vec())))
        .collect()
}

#[tokio::test]
async fn combined_writes_go_to_each_shard_separately() {
    let (node, _certs, client) = two_cores("combine-shards").await;
    let keys = ["b", "c", "x", "d", "y"].map(String::from);
    let requests = requests_for(&node, &client, puts(keys, b"v")).await;
    assert_eq!(requests, vec![(0, 3), (1, 2)]);
}

#[tokio::test]
async fn without_combining_every_write_is_its_own_request() {
    let certs = make_certs(&test_dir("combine-off"));
    let node = FakeNode::start(&certs, 2, &[b"m"]).await;
    let mut config = config(&node, &certs);
    config.combine_writes = false;
    let client = Client::connect(config).await.expect("connect");
    let writes = puts((0..10).map(|i| format!("k{i}")), b"v");
    assert_eq!(requests_for(&node, &client, writes).await, vec![(0, 1); 10]);
}

#[tokio::test]
async fn a_group_is_closed_at_its_write_and_byte_limits() {
    let (node, _certs, client) = two_cores("combine-limits").await;
    let writes = puts((0..600).map(|i| format!("k{i:03}")), b"v");
    let requests = requests_for(&node, &client, writes).await;
    assert_eq!(requests, vec![(0, 88), (0, 256), (0, 256)]);
    assert_eq!(node.value(b"k599"), Some(b"v".to_vec()));

    // 12 values of VALUE_BYTES_MAX: 10 fill a group's 1 MiB of keys and values.
    let big = vec![7u8; VALUE_BYTES_MAX];
    let writes = puts((0..12).map(|i| format!("big{i:02}")), &big);
    assert_eq!(
        requests_for(&node, &client, writes).await,
        vec![(0, 2), (0, 10)]
    );
}

#[tokio::test]
async fn a_batch_refused_for_spanning_shards_is_sent_write_by_write() {
    let (node, _certs, client) = two_cores("combine-stale").await;
    // The node splits anew at "f" (map version 2); the client still routes
    // "b" and "g" to shard 0 by version 1 and combines them.
    node.resplit(&[b"f"]);
    node.clear_seen();
    let writes = vec![
        ("b".to_string(), Some(b"1".to_vec())),
        ("g".to_string(), Some(b"2".to_vec())),
    ];
    for result in concurrent_writes(&client, writes).await {
        result.expect("write");
    }
    assert_eq!(node.value(b"b"), Some(b"1".to_vec()));
    assert_eq!(node.value(b"g"), Some(b"2".to_vec()));
    let requests = write_requests(&node);
    assert_eq!(
        requests[0],
        (0, 2),
        "the combined batch first: {requests:?}"
    );
    assert!(
        requests[1..].contains(&(0, 1)) && requests[1..].contains(&(1, 1)),
        "{requests:?}"
    );
    assert_eq!(client.shard_map().version, 2);
}

#[tokio::test]
async fn combined_writes_keep_their_own_deadlines() {
    let (node, _certs, client) = two_cores("combine-deadline").await;
    node.delay(b"a1", Duration::from_millis(600));
    node.clear_seen();
    // Calls with another deadline length do not join the same group.
    let short = client.with_timeout(Duration::from_millis(150));
    let (r1, r3, r2) = tokio::join!(
        short.put("a1", "v"),
        short.put("a3", "v"),
        client.put("a2", "v")
    );
    for result in [r1, r3] {
        assert!(
            matches!(result, Err(Error::Timeout { timeout_ms: 150 })),
            "{result:?}"
        );
    }
    r2.expect("the other group is not held back");
    let mut requests = write_requests(&node);
    requests.sort();
    assert_eq!(requests, vec![(0, 1), (0, 2)]);
}
