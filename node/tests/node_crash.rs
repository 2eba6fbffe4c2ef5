//! kill -9 of a real node under a client write load, then restart: every
//! acknowledged write is present (DESIGN.md §8, "never lost data").
//!
//! Each cycle: eight client writers (tokio tasks, one `ferrisdb_client`
//! connection) put distinct keys with sync durability; once some puts are
//! acknowledged, after a varying extra delay, the node gets SIGKILL while
//! puts are in flight. The node restarts on the same data directory and a
//! fresh client checks that every put acknowledged in any cycle so far
//! reads back with its value, and that a full scan holds nothing that was
//! never written. The memtable is small (256 KiB) so that flushes happen
//! during the load and recovery covers tables as well as the WAL.
//!
//! `FERRISDB_NODE_KILL9_CYCLES` sets the number of cycles (default 3); see
//! `docs/testing.md` for the long run.

mod support;

use ferrisdb_client::Client;
use std::collections::HashSet;
use std::time::{Duration, Instant};
use support::{NodeOptions, NodeProcess, WriteLoad, XorShift};

const CYCLES_DEFAULT: usize = 3;
const WRITERS: usize = 8;
/// Acknowledged puts per cycle before the kill may come.
const ACKED_BEFORE_KILL: usize = 150;
/// Deadline of one put: the writers notice a dead node within it.
const PUT_TIMEOUT: Duration = Duration::from_secs(3);
/// Longest a cycle's load may take to reach [`ACKED_BEFORE_KILL`].
const LOAD_DEADLINE: Duration = Duration::from_secs(120);
/// Longest the verification of one cycle may take.
const VERIFY_DEADLINE: Duration = Duration::from_secs(120);

fn cycles() -> usize {
    match std::env::var("FERRISDB_NODE_KILL9_CYCLES") {
        Ok(v) => v.parse().expect("FERRISDB_NODE_KILL9_CYCLES is a number"),
        Err(_) => CYCLES_DEFAULT,
    }
}

/// The kill -9 loop on a node with `cores` cores.
fn kill9_cycles(cores: usize) {
    let mut node = NodeProcess::start_with(NodeOptions {
        cores,
        memtable_bytes: "256KiB",
        ..NodeOptions::default()
    });
    let rt = support::runtime();
    let mut rng = XorShift(0x6b69_6c6c_0009);
    let mut acked: Vec<Vec<u8>> = Vec::new();
    let mut attempted: HashSet<Vec<u8>> = HashSet::new();
    let cycles = cycles();
    let started = Instant::now();
    for cycle in 0..cycles {
        let client = rt
            .block_on(Client::connect(node.client_config()))
            .unwrap_or_else(|e| panic!("cycle {cycle}: connect: {e}\nlog:\n{}", node.log()));
        let load = WriteLoad::start(&rt, &client, &format!("c{cycle:03}"), WRITERS, PUT_TIMEOUT);
        let reached = rt.block_on(load.wait_acked(ACKED_BEFORE_KILL, LOAD_DEADLINE));
        assert!(
            reached,
            "cycle {cycle}: {} acks after {LOAD_DEADLINE:?}",
            load.acked()
        );
        // Kill at a varying moment, with puts in flight.
        std::thread::sleep(Duration::from_millis(rng.next_u64() % 300));
        let acked_at_kill = load.acked();
        node.kill9();
        let logs = rt.block_on(load.finish(PUT_TIMEOUT * 3));
        drop(client);
        let mut cycle_acked = 0;
        for log in logs {
            cycle_acked += log.acked.len();
            attempted.extend(log.attempted);
            acked.extend(log.acked);
        }
        assert!(cycle_acked >= acked_at_kill, "acks are recorded");

        node.restart();
        let verified = rt.block_on(async {
            let client = Client::connect(node.client_config())
                .await
                .map_err(|e| e.to_string())?;
            tokio::time::timeout(
                VERIFY_DEADLINE,
                support::verify_writes(&client, &acked, &attempted),
            )
            .await
            .map_err(|_| format!("verification took over {VERIFY_DEADLINE:?}"))?
        });
        if let Err(problem) = verified {
            panic!("cycle {cycle}: {problem}\nlog:\n{}", node.log());
        }
        node.assert_alive();
        eprintln!(
            "cycle {cycle}: {cycle_acked} acknowledged this cycle, {} in all, {} attempted; all present ({:.1?})",
            acked.len(),
            attempted.len(),
            started.elapsed()
        );
    }
}

#[test]
fn every_acknowledged_write_survives_kill9_under_load_one_core() {
    kill9_cycles(1);
}

/// The same on two cores, where puts routed to core 0 are forwarded to
/// core 1 and both cores recover their shards on restart.
#[test]
fn every_acknowledged_write_survives_kill9_under_load_two_cores() {
    kill9_cycles(2);
}
