//! Log Matching (§5.3, Figure 3): if two logs contain an entry with the same
//! index and term, the logs are identical in all entries up to that index.
//!
//! Each node's log is mirrored as a chain of prefix digests; the first chain
//! digest seen for an (index, term) is remembered, and any log that later
//! holds that (index, term) must have the same prefix digest.

use super::{entry_digest, mix};
use crate::types::{Entry, GroupId, LogIndex, NodeId, Term};
use std::collections::BTreeMap;

#[derive(Debug, Default)]
pub struct LogMatching {
    /// Per node and group: the index the chain starts after (a snapshot
    /// point, or 0), the prefix digest there, and the prefix digest of
    /// each later entry.
    chains: BTreeMap<(NodeId, GroupId), Chain>,
    seen: BTreeMap<(GroupId, LogIndex, Term), u64>,
}

#[derive(Debug, Default)]
struct Chain {
    base: LogIndex,
    base_digest: u64,
    digests: Vec<u64>,
}

impl LogMatching {
    /// `entries` were appended to the node's log (replacing any suffix from
    /// the first one's index).
    pub fn observe_append(
        &mut self,
        node: NodeId,
        group: GroupId,
        entries: &[Entry],
    ) -> Result<(), String> {
        let Some(first) = entries.first() else {
            return Ok(());
        };
        let chain = self.chains.entry((node, group)).or_default();
        if first.index <= chain.base
            || first.index.0 - chain.base.0 - 1 > chain.digests.len() as u64
        {
            return Err(format!(
                "log matching: node {node} group {group} appended at {} outside its log \
                 ({}..={})",
                first.index,
                chain.base.0 + 1,
                chain.base.0 + chain.digests.len() as u64
            ));
        }
        chain
            .digests
            .truncate((first.index.0 - chain.base.0 - 1) as usize);
        for e in entries {
            let prev = chain.digests.last().copied().unwrap_or(chain.base_digest);
            let h = mix(prev ^ mix(e.term.0) ^ entry_digest(e));
            chain.digests.push(h);
            let known = *self.seen.entry((group, e.index, e.term)).or_insert(h);
            if known != h {
                return Err(format!(
                    "log matching: group {group} entry {}/{} on node {node} follows a \
                     different prefix than on another node",
                    e.index, e.term
                ));
            }
        }
        Ok(())
    }

    /// The node's log is now `entries` after the point `before` (a restart,
    /// or a snapshot installed). A snapshot point must be an entry some node
    /// held: it takes that entry's prefix digest.
    pub fn reset(
        &mut self,
        node: NodeId,
        group: GroupId,
        before: (LogIndex, Term),
        entries: &[Entry],
    ) -> Result<(), String> {
        let base_digest = if before.0 == LogIndex(0) {
            0
        } else {
            *self.seen.get(&(group, before.0, before.1)).ok_or_else(|| {
                format!(
                    "log matching: node {node} group {group} starts after {}/{}, an entry no \
                     node held",
                    before.0, before.1
                )
            })?
        };
        self.chains.insert(
            (node, group),
            Chain {
                base: before.0,
                base_digest,
                digests: Vec::new(),
            },
        );
        self.observe_append(node, group, entries)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn e(index: u64, term: u64, data: &[u8]) -> Entry {
        Entry::normal(LogIndex(index), Term(term), data.into())
    }

    #[test]
    fn same_index_and_term_after_different_prefixes_is_caught() {
        let mut c = LogMatching::default();
        let g = GroupId(1);
        c.observe_append(NodeId(1), g, &[e(1, 1, b"a"), e(2, 2, b"b")])
            .expect("ok");
        c.observe_append(NodeId(2), g, &[e(1, 1, b"a"), e(2, 2, b"b")])
            .expect("same");
        c.observe_append(NodeId(2), g, &[e(2, 3, b"c")])
            .expect("a new term replaces");
        let bad = c.observe_append(NodeId(3), g, &[e(1, 1, b"X"), e(2, 2, b"b")]);
        assert!(bad.is_err());
    }
}
