//! State Machine Safety (§5.4.3, Figure 3): if a server has applied a log
//! entry at a given index, no other server ever applies a different entry at
//! that index.

use super::entry_digest;
use crate::types::{Entry, GroupId, NodeId, Term};
use std::collections::BTreeMap;

#[derive(Debug, Default)]
pub struct StateMachineSafety {
    /// Per group, (term, payload digest) of the entry applied at index i + 1.
    applied: BTreeMap<GroupId, Vec<(Term, u64)>>,
}

impl StateMachineSafety {
    pub fn observe_apply(&mut self, node: NodeId, group: GroupId, e: &Entry) -> Result<(), String> {
        let seen = self.applied.entry(group).or_default();
        let at = (e.index.0 - 1) as usize;
        let this = (e.term, entry_digest(e));
        if at < seen.len() {
            if seen[at] != this {
                return Err(format!(
                    "state machine safety: node {node} applied {}/{} at index {} of group \
                     {group}, another node applied term {} there",
                    e.index, e.term, e.index, seen[at].0
                ));
            }
            return Ok(());
        }
        if at > seen.len() {
            return Err(format!(
                "state machine safety: node {node} applied index {} of group {group} before \
                 index {} was applied anywhere",
                e.index,
                seen.len() + 1
            ));
        }
        seen.push(this);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::LogIndex;

    #[test]
    fn a_different_entry_at_an_applied_index_is_caught() {
        let mut c = StateMachineSafety::default();
        let e = |t, d: &[u8]| Entry::normal(LogIndex(1), Term(t), d.into());
        c.observe_apply(NodeId(1), GroupId(1), &e(1, b"a"))
            .expect("first");
        c.observe_apply(NodeId(2), GroupId(1), &e(1, b"a"))
            .expect("same");
        assert!(c.observe_apply(NodeId(3), GroupId(1), &e(2, b"a")).is_err());
    }
}
