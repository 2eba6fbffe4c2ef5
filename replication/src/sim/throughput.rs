//! The core's CPU cost: committed entries per second through a 3-node group
//! in one thread, with instant storage and delivery, so only the Raft code
//! (and message/entry copying) is measured. Used by `benches/core.rs` and,
//! with tiny parameters, by a test.

use crate::raft::{Config, Raft, Restored, Role};
use crate::types::{GroupId, NodeId, Payload};
use std::collections::VecDeque;
use std::time::{Duration, Instant};

#[derive(Debug, Clone, Copy)]
pub struct Params {
    pub entries: u64,
    /// Entries per proposal (one `propose` call).
    pub batch: usize,
    pub payload_bytes: usize,
    pub check_invariants: bool,
}

#[derive(Debug, Clone, Copy)]
pub struct Report {
    pub committed: u64,
    pub elapsed: Duration,
    /// CPU time of this thread (Linux `/proc/thread-self/schedstat`), which
    /// other load on the machine does not inflate.
    pub cpu: Option<Duration>,
    pub messages: u64,
}

impl Report {
    pub fn entries_per_sec(&self) -> f64 {
        self.committed as f64 / self.elapsed.as_secs_f64()
    }

    /// Entries per second of CPU time, if the platform reports it (the
    /// kernel updates it at scheduler events, so very short runs read 0).
    pub fn entries_per_cpu_sec(&self) -> Option<f64> {
        self.cpu
            .filter(|c| !c.is_zero())
            .map(|c| self.committed as f64 / c.as_secs_f64())
    }
}

/// This thread's CPU time so far, from `/proc/thread-self/schedstat`.
fn thread_cpu() -> Option<Duration> {
    let s = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    let ns = s.split_whitespace().next()?.parse::<u64>().ok()?;
    Some(Duration::from_nanos(ns))
}

/// Runs the group until `params.entries` entries are applied on every node.
///
/// # Panics
/// If the group fails to elect a leader or stops making progress (a bug).
pub fn run(params: Params) -> Report {
    let voters: Vec<NodeId> = (1..=3).map(NodeId).collect();
    let mut nodes: Vec<Raft> = voters
        .iter()
        .map(|&id| {
            let mut cfg = Config::new(id, GroupId(1), voters.clone());
            cfg.check_invariants = params.check_invariants;
            cfg.inflight_msgs_max = 256;
            cfg.inflight_bytes_max = 64 << 20;
            Raft::new(cfg, Restored::default()).expect("valid config")
        })
        .collect();
    let mut queue = VecDeque::new();
    let mut applied = [0u64; 3];
    let mut messages = 0u64;
    // Tick everyone until some node leads.
    let mut leader = None;
    for _ in 0..1000 {
        leader = nodes.iter().position(|n| n.role() == Role::Leader);
        if leader.is_some() {
            break;
        }
        for n in nodes.iter_mut() {
            n.tick();
        }
        pump(&mut nodes, &mut queue, &mut applied, &mut messages);
    }
    let leader = leader.expect("a leader is elected");
    let payload: Payload = vec![0xAB; params.payload_bytes].into();
    let base = applied;
    let start = Instant::now();
    let cpu_start = thread_cpu();
    let mut proposed = 0u64;
    let mut stalled = 0;
    while applied
        .iter()
        .zip(base)
        .any(|(a, b)| a - b < params.entries)
    {
        if proposed < params.entries {
            let n = params.batch.min((params.entries - proposed) as usize);
            nodes[leader]
                .propose(vec![payload.clone(); n])
                .expect("leader accepts");
            proposed += n as u64;
        }
        let before = applied;
        pump(&mut nodes, &mut queue, &mut applied, &mut messages);
        if before == applied && proposed >= params.entries {
            // Followers learn the final commit index from a heartbeat.
            nodes[leader].tick();
            stalled += 1;
            assert!(stalled < 1000, "no progress");
        }
    }
    let cpu = match (cpu_start, thread_cpu()) {
        (Some(a), Some(b)) => Some(b.saturating_sub(a)),
        _ => None,
    };
    Report {
        committed: applied[leader] - base[leader],
        elapsed: start.elapsed(),
        cpu,
        messages,
    }
}

/// Handles every Ready and delivers every message until all are quiet.
fn pump(
    nodes: &mut [Raft],
    queue: &mut VecDeque<crate::raft::message::Message>,
    applied: &mut [u64; 3],
    messages: &mut u64,
) {
    loop {
        for (i, n) in nodes.iter_mut().enumerate() {
            while n.has_ready() {
                let rd = n.ready();
                queue.extend(rd.messages);
                if let Some(last) = rd.entries.last() {
                    n.persisted(last.index, last.term);
                }
                queue.extend(rd.messages_after_persist);
                applied[i] += rd.committed.len() as u64;
            }
        }
        if queue.is_empty() {
            return;
        }
        while let Some(m) = queue.pop_front() {
            *messages += 1;
            let to = (m.to.0 - 1) as usize;
            nodes[to].step(m).expect("well-formed");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn throughput_harness_commits_everything_with_tiny_parameters() {
        for check_invariants in [false, true] {
            let r = run(Params {
                entries: 2_000,
                batch: 64,
                payload_bytes: 32,
                check_invariants,
            });
            // Exactly the proposals: one leader throughout, no new no-op.
            assert_eq!(r.committed, 2_000);
            assert!(r.messages > 0);
        }
    }
}
