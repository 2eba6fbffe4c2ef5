//! Log Matching (§5.3, Figure 3): if two logs contain an entry with the same
//! index and term, the logs are identical in all entries up to that index.
//!
//! Each node's log is mirrored as a chain of prefix digests; the first chain
//! digest seen for an (index, term) is remembered, and any log that later
//! holds that (index, term) must have the same prefix digest.

use super::{digest, mix};
use crate::types::{Entry, GroupId, LogIndex, NodeId, Term};
use std::collections::BTreeMap;

#[derive(Debug, Default)]
pub struct LogMatching {
    /// Prefix digests of each node's log; `chains[..][i]` covers index i + 1.
    chains: BTreeMap<(NodeId, GroupId), Vec<u64>>,
    seen: BTreeMap<(GroupId, LogIndex, Term), u64>,
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
        let keep = (first.index.0 - 1) as usize;
        if keep > chain.len() {
            return Err(format!(
                "log matching: node {node} group {group} appended at {} past its end {}",
                first.index,
                chain.len()
            ));
        }
        chain.truncate(keep);
        for e in entries {
            let prev = chain.last().copied().unwrap_or(0);
            let h = mix(prev ^ mix(e.term.0) ^ digest(&e.data));
            chain.push(h);
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

    /// The node restarted with `entries` as its whole log.
    pub fn reset(&mut self, node: NodeId, group: GroupId, entries: &[Entry]) -> Result<(), String> {
        self.chains.remove(&(node, group));
        self.observe_append(node, group, entries)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn e(index: u64, term: u64, data: &[u8]) -> Entry {
        Entry {
            term: Term(term),
            index: LogIndex(index),
            data: data.into(),
        }
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
