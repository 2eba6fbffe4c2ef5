//! Leader Completeness (§5.4, Figure 3): if an entry is committed in a term,
//! it is present in the logs of the leaders of all higher terms.
//!
//! Commitment is recorded from leaders' commit indexes (the first to know),
//! with the term of the leader that committed it; each new leader's log is
//! checked against every entry committed in an earlier term.

use crate::raft::log::RaftLog;
use crate::types::{GroupId, LogIndex, NodeId, Term};
use std::collections::BTreeMap;

#[derive(Debug, Default)]
pub struct LeaderCompleteness {
    /// Per group, for index i + 1: (entry term, term in which it was first
    /// known committed).
    committed: BTreeMap<GroupId, Vec<(Term, Term)>>,
}

impl LeaderCompleteness {
    /// A leader of `term` has committed up to its commit index.
    pub fn observe_commit(&mut self, group: GroupId, term: Term, log: &RaftLog) {
        let known = self.committed.entry(group).or_default();
        let mut next = LogIndex(known.len() as u64 + 1);
        while next <= log.committed() {
            // Term 0: compacted before it was recorded; not checked.
            let entry_term = log.term(next).unwrap_or(Term(0));
            known.push((entry_term, term));
            next = next.next();
        }
    }

    /// `node` just became leader of `group` in `term` with `log`.
    pub fn observe_new_leader(
        &mut self,
        group: GroupId,
        node: NodeId,
        term: Term,
        log: &RaftLog,
    ) -> Result<(), String> {
        let Some(known) = self.committed.get(&group) else {
            return Ok(());
        };
        for (i, &(entry_term, commit_term)) in known.iter().enumerate() {
            let index = LogIndex(i as u64 + 1);
            // Entries under the leader's snapshot are in its state machine.
            if commit_term >= term || entry_term == Term(0) || index < log.snapshot_index() {
                continue;
            }
            let held = log.term(index);
            if held != Some(entry_term) {
                return Err(format!(
                    "leader completeness: node {node} leads group {group} in term {term} \
                     without entry {index}/{entry_term} committed in term {commit_term} \
                     (it holds {held:?})"
                ));
            }
        }
        Ok(())
    }
}
