//! Learners at run time (thesis §4.2.1) and growing a group, through the
//! joint-consensus change of §6: each test restates the rule it checks and
//! cites the paper or the thesis.

mod common;

use common::{Cluster, change, simple};
use ferrisdb_replication::{NodeId, RaftError, Snapshot};

/// Thesis §4.2.1: new servers join as non-voting members (learners) and
/// receive the log until they have caught up, without counting towards
/// any majority; then a change makes one a voter (the same joint mechanism
/// as every other change).
#[test]
fn a_learner_added_at_run_time_catches_up_and_is_promoted() {
    let mut c = Cluster::members(4, &[1, 2, 3], &[], |_| {});
    c.campaign(1);
    c.propose(1, b"a");
    c.propose(1, b"b");
    change(&mut c, 1, &[1, 2, 3], &[4]);
    c.settle();
    c.tick_all(2);
    assert_eq!(c.node(4).membership(), &simple(&[1, 2, 3], &[4]));
    assert_eq!(
        c.applied_data(4),
        vec![b"a".to_vec(), b"b".to_vec()],
        "caught up"
    );
    // A learner's copy does not count: with 2 and 3 cut off, nothing commits.
    c.isolate(2);
    c.isolate(3);
    c.propose(1, b"c");
    let last = c.node(1).log().last_index();
    assert_eq!(
        c.node(1).progress(NodeId(4)).map(|p| p.match_index),
        Some(last)
    );
    assert!(c.node(1).log().committed() < last, "a learner is no quorum");
    c.heal();
    c.tick_all(2);
    change(&mut c, 1, &[1, 2, 3, 4], &[]);
    c.settle();
    assert_eq!(c.node(1).membership(), &simple(&[1, 2, 3, 4], &[]));
    // Now 4 counts: 1, 3 and 4 are 3 of 4.
    c.isolate(2);
    c.propose(1, b"d");
    assert_eq!(c.node(1).log().committed(), c.node(1).log().last_index());
    assert_eq!(c.applied_data(4).last(), Some(&b"d".to_vec()));
    // A voter demoted to learner keeps receiving the log.
    c.heal();
    change(&mut c, 1, &[1, 3, 4], &[2]);
    c.settle();
    c.propose(1, b"e");
    c.tick_all(2);
    assert_eq!(c.node(2).membership(), &simple(&[1, 3, 4], &[2]));
    assert_eq!(c.applied_data(2).last(), Some(&b"e".to_vec()));
}

/// §7: a learner added after the log was compacted gets a snapshot, which
/// carries "the latest configuration as of the last included index".
#[test]
fn a_learner_added_after_compaction_gets_the_configuration_with_a_snapshot() {
    let mut c = Cluster::members(4, &[1, 2, 3], &[], |_| {});
    c.campaign(1);
    for i in 0..10 {
        c.propose(1, format!("x{i}").as_bytes());
    }
    let applied = c.node(1).log().applied();
    c.node(1).compact(applied);
    change(&mut c, 1, &[1, 2, 3], &[4]);
    c.settle();
    assert_eq!(c.snapshot_needed.get(&NodeId(1)), Some(&vec![NodeId(4)]));
    let applied = c.node(1).log().applied();
    let membership = c.node(1).membership_at(applied).expect("held").clone();
    assert_eq!(
        membership,
        simple(&[1, 2, 3], &[4]),
        "the change is applied"
    );
    let term = c.node(1).log().term(applied).expect("held");
    let stale = Snapshot {
        index: applied,
        term,
        membership: simple(&[1, 2, 3], &[]),
        data: b"image".as_slice().into(),
    };
    let wrong = c.node(1).send_snapshot(NodeId(4), stale.clone());
    assert!(
        matches!(wrong, Err(RaftError::BadSnapshot)),
        "configuration must match"
    );
    let snap = Snapshot {
        membership: membership.clone(),
        ..stale
    };
    c.node(1)
        .send_snapshot(NodeId(4), snap)
        .expect("node 4 waits");
    c.settle();
    assert_eq!(c.snapshots[&NodeId(4)][0].membership, membership);
    assert_eq!(c.node(4).membership(), &membership);
    c.propose(1, b"after");
    c.tick_all(2);
    assert_eq!(c.applied_data(4), vec![b"after".to_vec()]);
}

/// §6 bootstrap growth: a single-voter group becomes three voters.
#[test]
fn a_single_voter_group_grows_to_three() {
    let mut c = Cluster::members(3, &[1], &[], |_| {});
    c.campaign(1);
    assert_eq!(c.leaders(), vec![NodeId(1)]);
    c.propose(1, b"solo");
    change(&mut c, 1, &[1, 2, 3], &[]);
    c.settle();
    c.tick_all(2);
    assert_eq!(c.node(3).membership(), &simple(&[1, 2, 3], &[]));
    c.isolate(3);
    c.propose(1, b"pair");
    assert_eq!(c.applied_data(2), vec![b"solo".to_vec(), b"pair".to_vec()]);
}
