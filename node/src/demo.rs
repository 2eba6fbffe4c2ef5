//! `ferrisdb demo`: one command that shows a node at work. It makes a CA and
//! certificates, starts a node in this process on free loopback ports with a
//! temporary data directory, runs a short mixed workload through
//! `ferrisdb-client` (mutual TLS, as a real application would), prints what
//! it measured, and leaves the user at `ferrisdb shell` on that node.

use crate::config::{LogFormat, NodeConfig, TlsFiles};
use crate::shell::ShellArgs;
use anyhow::{Context, bail};
use ferrisdb_client::{Batch, Client, ClientConfig, ScanOptions, Security};
use hdrhistogram::Histogram;
use std::net::{Ipv4Addr, SocketAddr, TcpListener, UdpSocket};
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

#[derive(Debug, clap::Args)]
pub struct DemoArgs {
    /// Keep the data directory and certificates (their path is printed).
    #[arg(long)]
    keep: bool,
    /// Cores of the node (at most the CPUs available).
    #[arg(long, default_value_t = 2)]
    cores: usize,
    /// Keys written and read by the workload.
    #[arg(long, default_value_t = 20_000)]
    keys: u64,
    /// Requests in flight at once.
    #[arg(long, default_value_t = 64)]
    concurrency: usize,
    /// Stop after the workload instead of opening a shell.
    #[arg(long)]
    no_shell: bool,
}

/// Bytes of each value the workload writes.
const VALUE_BYTES: usize = 100;
/// How long the demo waits for its node to answer.
const READY_DEADLINE: Duration = Duration::from_secs(20);

pub fn run(args: DemoArgs) -> anyhow::Result<ExitCode> {
    crate::logging::init_with_default(LogFormat::Pretty, "warn")?;
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    if args.cores == 0 || args.keys == 0 || args.concurrency == 0 {
        bail!("--cores, --keys and --concurrency must be at least 1");
    }
    let cores = args.cores.min(cpus);
    let root = tempfile::Builder::new()
        .prefix("ferrisdb-demo-")
        .tempdir()
        .context("make a temporary directory")?;
    let certs = crate::cert::create_all(&root.path().join("certs"), false)?;
    let (listen, admin) = free_ports(cores)?;
    let config = NodeConfig {
        data_dir: root.path().join("data"),
        listen,
        admin,
        cores,
        shards_per_core: crate::config::SHARDS_PER_CORE_DEFAULT,
        // One shard per core over the workload's keys (`user0000000000`...).
        split_keys: (1..cores as u64)
            .map(|i| String::from_utf8_lossy(&key(i * args.keys / cores as u64)).into_owned())
            .collect(),
        insecure: false,
        log_format: LogFormat::Pretty,
        memtable_bytes: crate::config::MEMTABLE_BYTES_DEFAULT,
        block_cache_bytes: 64 << 20,
        request_timeout_ms: 10_000,
        io_depth: crate::config::IO_DEPTH_DEFAULT,
        background_shares: crate::config::BACKGROUND_SHARES_DEFAULT,
        compaction_bytes_per_sec: 0,
        io_properties: None,
        tls: TlsFiles {
            ca_cert: Some(certs.ca.cert.clone()),
            cert: Some(certs.node.cert.clone()),
            key: Some(certs.node.key.clone()),
        },
    };
    println!(
        "FerrisDB demo: a {cores}-core node on {listen} (mutual TLS), admin on http://{admin}/metrics"
    );
    println!("data and certificates in {}", root.path().display());
    let stop = Arc::new(AtomicBool::new(false));
    let node = {
        let stop = stop.clone();
        std::thread::Builder::new()
            .name("ferrisdb-demo-node".into())
            .spawn(move || crate::server::run(config, stop))?
    };
    let security = Security::MutualTls {
        ca_cert: certs.ca.cert.clone(),
        cert: certs.client.cert.clone(),
        key: certs.client.key.clone(),
    };
    let outcome = workload(listen, security, &args);
    if outcome.is_ok() {
        print_durability(admin);
    }
    let shell = match &outcome {
        Ok(()) if !args.no_shell => {
            println!(
                "\nYou are in `ferrisdb shell` on this node: try `get user0000000042`, `getrange user0000000000 user0000000010`, `status`, `help`. `quit` or Ctrl-D ends the demo."
            );
            crate::shell::run_shell(ShellArgs::mutual_tls(
                listen,
                certs.ca.cert.clone(),
                certs.client.cert.clone(),
                certs.client.key.clone(),
            ))
        }
        _ => Ok(ExitCode::SUCCESS),
    };
    stop.store(true, Ordering::SeqCst);
    let stopped = node
        .join()
        .map_err(|_| anyhow::anyhow!("the node thread panicked"))?;
    outcome?;
    stopped.context("the node failed")?;
    if args.keep {
        let kept = root.keep();
        println!(
            "kept {} (start it again: ferrisdb start --data-dir {} --ca-cert {} --cert {} --key {})",
            kept.display(),
            kept.join("data").display(),
            kept.join("certs/ca.pem").display(),
            kept.join("certs/node.pem").display(),
            kept.join("certs/node.key").display()
        );
    }
    shell
}

/// How many durability steps (fdatasync or O_DSYNC group writes) the node
/// made, read from its own `/metrics`: fewer steps than writes is group
/// commit at work.
fn print_durability(admin: SocketAddr) {
    let Ok(text) = http_get(admin, "/metrics") else {
        return;
    };
    // Summed over every core's series of `metric` whose labels include `label`.
    let sum = |metric: &str, label: &str| -> f64 {
        text.lines()
            .filter(|l| l.starts_with(metric) && l.contains(label))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum()
    };
    let steps = sum("ferrisdb_fsync_duration_seconds_count{", "");
    let seconds = sum("ferrisdb_fsync_duration_seconds_sum{", "");
    let writes: f64 = ["put", "batch", "delete", "delete_range"]
        .iter()
        .map(|op| sum("ferrisdb_requests_total{", &format!("op=\"{op}\"")))
        .sum();
    if steps > 0.0 {
        println!(
            "durability: {steps:.0} group commits for {writes:.0} write requests ({:.1} per commit, {:.2} ms each on average)",
            writes / steps,
            seconds / steps * 1000.0
        );
    }
}

fn http_get(addr: SocketAddr, path: &str) -> std::io::Result<String> {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(2))?;
    stream.set_read_timeout(Some(Duration::from_secs(5)))?;
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )?;
    let mut body = String::new();
    stream.read_to_string(&mut body)?;
    Ok(body)
}

/// A free UDP port `p` with `p + 1 .. p + cores` free too, and a free TCP
/// port for the admin listener, all on 127.0.0.1.
pub(crate) fn free_ports(cores: usize) -> anyhow::Result<(SocketAddr, SocketAddr)> {
    for _ in 0..100 {
        let first = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0))?;
        let base = first.local_addr()?.port();
        if usize::from(base) + cores > usize::from(u16::MAX) {
            continue;
        }
        let rest: Result<Vec<_>, _> = (1..cores)
            .map(|i| UdpSocket::bind((Ipv4Addr::LOCALHOST, base + i as u16)))
            .collect();
        if rest.is_ok() {
            let admin = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?.local_addr()?;
            return Ok((SocketAddr::from((Ipv4Addr::LOCALHOST, base)), admin));
        }
    }
    bail!("found no {cores} consecutive free UDP ports on 127.0.0.1")
}

fn workload(endpoint: SocketAddr, security: Security, args: &DemoArgs) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let client = connect(endpoint, security).await?;
        let keys = args.keys;
        let mut table = Vec::new();
        table.push(
            phase(
                "fillrandom",
                &client,
                keys,
                args.concurrency,
                move |c, i| async move {
                    let k = scramble(i, keys);
                    c.put(&key(k), &value(k)).await?;
                    Ok(())
                },
            )
            .await?,
        );
        table.push(
            phase(
                "readrandom",
                &client,
                keys,
                args.concurrency,
                move |c, i| async move {
                    let k = scramble(i.wrapping_mul(7), keys);
                    match c.get(&key(k)).await? {
                        Some(v) if v == value(k) => Ok(()),
                        other => bail!("key {k} read back as {other:?}"),
                    }
                },
            )
            .await?,
        );
        let scans = (keys / 100).max(1);
        table.push(
            phase(
                "scan100",
                &client,
                scans,
                args.concurrency.min(16),
                move |c, i| async move {
                    let start = key((i * 97) % keys);
                    let mut options = ScanOptions::range(start, b"user\xff".to_vec());
                    options.limit = Some(100);
                    c.scan_collect(options).await?;
                    Ok(())
                },
            )
            .await?,
        );
        let batches = (keys / 10).max(1);
        table.push(
            phase(
                "batch10",
                &client,
                batches,
                args.concurrency,
                move |c, i| async move {
                    let mut batch = Batch::new();
                    for j in 0..10 {
                        batch.put(format!("batch{i:08}/{j}").into_bytes(), value(i));
                    }
                    c.batch(batch).await?;
                    Ok(())
                },
            )
            .await?,
        );
        table.push(
            phase("deleterange", &client, 1, 1, move |c, _| async move {
                c.delete_range(b"batch", b"batch\xff").await?;
                Ok(())
            })
            .await?,
        );
        print_table(&table);
        Ok(())
    })
}

async fn connect(endpoint: SocketAddr, security: Security) -> anyhow::Result<Client> {
    let deadline = Instant::now() + READY_DEADLINE;
    loop {
        let config = ClientConfig::new(vec![endpoint], security.clone());
        match Client::connect(config).await {
            Ok(client) => return Ok(client),
            Err(err) if Instant::now() < deadline => {
                tracing::debug!(%err, "node not ready yet");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(err) => return Err(err).context("connect to the demo node"),
        }
    }
}

fn key(i: u64) -> Vec<u8> {
    format!("user{i:010}").into_bytes()
}

fn value(i: u64) -> Vec<u8> {
    let mut v = format!("value-{i}-").into_bytes();
    v.resize(VALUE_BYTES, b'.');
    v
}

/// A permutation of `0..n` (multiplication by an odd constant modulo a power
/// of two, cycle-walked into range), so "random" keys are all distinct.
fn scramble(i: u64, n: u64) -> u64 {
    let bits = 64 - (n.max(2) - 1).leading_zeros();
    let mask = (1u64 << bits) - 1;
    let mut x = i % n;
    loop {
        x = (x
            .wrapping_mul(0x9E37_79B9_7F4A_7C15 | 1)
            .wrapping_add(0x632B_E59B))
            & mask;
        if x < n {
            return x;
        }
    }
}

struct PhaseResult {
    name: &'static str,
    ops: u64,
    elapsed: Duration,
    latency: Histogram<u64>,
}

async fn phase<F, Fut>(
    name: &'static str,
    client: &Client,
    ops: u64,
    concurrency: usize,
    op: F,
) -> anyhow::Result<PhaseResult>
where
    F: Fn(Client, u64) -> Fut + Clone + Send + 'static,
    Fut: std::future::Future<Output = anyhow::Result<()>> + Send,
{
    let next = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let started = Instant::now();
    let mut workers = Vec::new();
    for _ in 0..concurrency {
        let (client, next, op) = (client.clone(), next.clone(), op.clone());
        workers.push(tokio::spawn(async move {
            let mut latency =
                Histogram::<u64>::new_with_bounds(1, 3_600_000_000, 3).expect("valid bounds");
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= ops {
                    return Ok::<_, anyhow::Error>(latency);
                }
                let t = Instant::now();
                op(client.clone(), i).await?;
                latency.saturating_record(t.elapsed().as_micros() as u64);
            }
        }));
    }
    let mut latency = Histogram::<u64>::new_with_bounds(1, 3_600_000_000, 3).expect("valid bounds");
    for worker in workers {
        let part = worker
            .await
            .context("workload task")?
            .with_context(|| name.to_string())?;
        latency.add(part).expect("same precision");
    }
    Ok(PhaseResult {
        name,
        ops,
        elapsed: started.elapsed(),
        latency,
    })
}

fn print_table(rows: &[PhaseResult]) {
    println!(
        "\n{:<12} {:>9} {:>12} {:>10} {:>10}",
        "workload", "ops", "ops/s", "p50 ms", "p99 ms"
    );
    for r in rows {
        let rate = r.ops as f64 / r.elapsed.as_secs_f64().max(1e-9);
        let ms = |q: f64| r.latency.value_at_quantile(q) as f64 / 1000.0;
        println!(
            "{:<12} {:>9} {:>12.0} {:>10.2} {:>10.2}",
            r.name,
            r.ops,
            rate,
            ms(0.5),
            ms(0.99)
        );
    }
    println!("(writes are acknowledged once durable: fdatasync'd, group-committed)");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scramble_is_a_permutation() {
        for n in [1u64, 2, 3, 10, 1000, 1024, 1025] {
            let mut seen: Vec<_> = (0..n).map(|i| scramble(i, n)).collect();
            seen.sort_unstable();
            assert_eq!(seen, (0..n).collect::<Vec<_>>(), "n = {n}");
        }
    }
}
