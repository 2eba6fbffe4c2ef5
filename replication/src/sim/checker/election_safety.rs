//! Election Safety (§5.2, Figure 3): at most one leader per term.

use crate::types::{GroupId, NodeId, Term};
use std::collections::BTreeMap;

#[derive(Debug, Default)]
pub struct ElectionSafety {
    leaders: BTreeMap<(GroupId, Term), NodeId>,
}

impl ElectionSafety {
    /// `node` is leader of `group` in `term` now.
    pub fn observe(&mut self, group: GroupId, term: Term, node: NodeId) -> Result<(), String> {
        let first = *self.leaders.entry((group, term)).or_insert(node);
        if first != node {
            return Err(format!(
                "election safety: group {group} term {term} has leaders {first} and {node}"
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn two_leaders_in_one_term_are_caught() {
        let mut c = ElectionSafety::default();
        c.observe(GroupId(1), Term(3), NodeId(1)).expect("first");
        c.observe(GroupId(1), Term(3), NodeId(1))
            .expect("same leader again");
        c.observe(GroupId(2), Term(3), NodeId(2))
            .expect("other group");
        assert!(c.observe(GroupId(1), Term(3), NodeId(2)).is_err());
    }
}
