//! Linearizability of the client history (Herlihy & Wing), checked with the
//! Wing–Gong search with Lowe's memoization, per (group, key) register: a
//! history of one register is linearizable iff some order of its operations
//! respects real time (an operation that returned before another was called
//! comes first) and register semantics (a read sees the latest write). Writes
//! with an unknown outcome may take effect at any point after their call, or
//! never. Per-key partitioning is sound because registers are independent.

use crate::sim::workload::{HistoryKind, HistoryOp, Value};
use crate::types::GroupId;
use std::collections::{BTreeMap, HashSet};

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Report {
    pub registers: usize,
    pub ops: usize,
    /// Registers whose search ran out of budget (neither proven nor refuted).
    pub inconclusive: usize,
}

/// Checks every register's history; `budget` bounds search steps per
/// register.
pub fn check(history: &[HistoryOp], budget: u64) -> Result<Report, String> {
    let mut by_key: BTreeMap<(GroupId, u32), Vec<HistoryOp>> = BTreeMap::new();
    for op in history {
        by_key.entry((op.group, op.key)).or_default().push(*op);
    }
    let mut report = Report::default();
    for ((group, key), mut ops) in by_key {
        ops.sort_by_key(|o| (o.call, o.client));
        report.registers += 1;
        report.ops += ops.len();
        match check_register(&ops, budget) {
            Some(true) => {}
            Some(false) => {
                return Err(format!(
                    "linearizability: group {group} key {key}: no linearization of its {} \
                     operations; history: {}",
                    ops.len(),
                    describe(&ops)
                ));
            }
            None => report.inconclusive += 1,
        }
    }
    Ok(report)
}

fn describe(ops: &[HistoryOp]) -> String {
    let shown: Vec<String> = ops
        .iter()
        .take(40)
        .map(|o| {
            let ret = o.ret.map_or("?".to_string(), |r| r.to_string());
            format!("c{} {:?} [{}, {}]", o.client, o.kind, o.call, ret)
        })
        .collect();
    let more = if ops.len() > 40 { " ..." } else { "" };
    format!("{}{more}", shown.join("; "))
}

/// `Some(true)`: linearizable; `Some(false)`: not; `None`: budget exceeded.
/// `ops` are sorted by call time.
pub fn check_register(ops: &[HistoryOp], budget: u64) -> Option<bool> {
    let n = ops.len();
    let words = n.div_ceil(64);
    let mut done = vec![0u64; words];
    let is_done = |done: &[u64], i: usize| done[i / 64] >> (i % 64) & 1 == 1;
    let mut remaining = ops.iter().filter(|o| o.ret.is_some()).count();
    let mut state: Option<Value> = None;
    // (op linearized, state before it)
    let mut stack: Vec<(usize, Option<Value>)> = Vec::new();
    let mut memo: HashSet<(Vec<u64>, Option<Value>)> = HashSet::new();
    let mut from = 0;
    let mut steps = 0u64;
    loop {
        if remaining == 0 {
            return Some(true);
        }
        steps += 1;
        if steps > budget {
            return None;
        }
        let min_ret = (0..n)
            .filter(|&i| !is_done(&done, i))
            .filter_map(|i| ops[i].ret)
            .min()
            .unwrap_or(u64::MAX);
        let mut advanced = false;
        for i in from..n {
            if ops[i].call >= min_ret {
                break;
            }
            if is_done(&done, i) {
                continue;
            }
            let next = match ops[i].kind {
                HistoryKind::Write(v) => Some(v),
                HistoryKind::Read(seen) if seen == state => state,
                HistoryKind::Read(_) => continue,
            };
            done[i / 64] |= 1 << (i % 64);
            if memo.insert((done.clone(), next)) {
                stack.push((i, state));
                state = next;
                if ops[i].ret.is_some() {
                    remaining -= 1;
                }
                advanced = true;
                break;
            }
            done[i / 64] &= !(1 << (i % 64));
        }
        if advanced {
            from = 0;
            continue;
        }
        let Some((i, before)) = stack.pop() else {
            return Some(false);
        };
        done[i / 64] &= !(1 << (i % 64));
        if ops[i].ret.is_some() {
            remaining += 1;
        }
        state = before;
        from = i + 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sim::workload::HistoryKind::{Read, Write};

    fn op(client: u32, call: u64, ret: Option<u64>, kind: HistoryKind) -> HistoryOp {
        HistoryOp {
            client,
            group: GroupId(1),
            key: 0,
            call,
            ret,
            kind,
        }
    }

    fn linearizable(mut ops: Vec<HistoryOp>) -> bool {
        ops.sort_by_key(|o| o.call);
        check_register(&ops, 1_000_000).expect("within budget")
    }

    #[test]
    fn sequential_history_is_linearizable() {
        let ops = vec![
            op(1, 0, Some(1), Write(5)),
            op(1, 2, Some(3), Read(Some(5))),
            op(2, 4, Some(5), Write(6)),
            op(1, 6, Some(7), Read(Some(6))),
        ];
        assert!(linearizable(ops));
    }

    #[test]
    fn stale_read_after_a_completed_write_is_not() {
        let ops = vec![
            op(1, 0, Some(1), Write(5)),
            op(2, 2, Some(3), Write(6)),
            op(1, 4, Some(5), Read(Some(5))),
        ];
        assert!(!linearizable(ops));
    }

    #[test]
    fn concurrent_operations_may_order_either_way() {
        let ops = vec![
            op(1, 0, Some(10), Write(5)),
            op(2, 1, Some(9), Read(Some(5))),
            op(3, 2, Some(8), Read(None)),
        ];
        assert!(linearizable(ops));
    }

    #[test]
    fn reads_cannot_flip_back_and_forth() {
        let ops = vec![
            op(1, 0, Some(100), Write(5)),
            op(2, 1, Some(2), Read(Some(5))),
            op(2, 3, Some(4), Read(None)),
        ];
        assert!(!linearizable(ops));
    }

    #[test]
    fn unknown_writes_may_apply_late_or_never() {
        let late = vec![
            op(1, 0, None, Write(5)),
            op(2, 10, Some(11), Read(None)),
            op(2, 12, Some(13), Read(Some(5))),
        ];
        assert!(linearizable(late));
        let never = vec![op(1, 0, None, Write(5)), op(2, 10, Some(11), Read(None))];
        assert!(linearizable(never));
        let before_call = vec![op(2, 0, Some(1), Read(Some(5))), op(1, 2, None, Write(5))];
        assert!(!linearizable(before_call));
    }
}
