//! Membership change by joint consensus: each test restates the rule it
//! checks and cites §6 of the Raft paper (Ongaro & Ousterhout 2014) or §4
//! of Ongaro's thesis.

mod common;

use common::{Cluster, change, ids, msg, simple};
use ferrisdb_replication::{
    Body, Entry, EntryKind, HardState, LogIndex, Membership, Message, NodeId, Raft, RaftError,
    Restored, Role, Term,
};

fn conf_entry(index: u64, term: u64, m: &Membership) -> Entry {
    Entry {
        term: Term(term),
        index: LogIndex(index),
        kind: EntryKind::ConfChange,
        data: m.encode(),
    }
}

fn noop(index: u64, term: u64) -> Entry {
    Entry::normal(LogIndex(index), Term(term), Vec::new().into())
}

/// Everything node `id` would have on disk, as `Restored` (the cluster
/// persists at once): the log after its compaction point, the hard state,
/// and the configuration at that point (what its snapshot would carry).
fn restored_from(c: &mut Cluster, id: u64) -> Restored {
    let r = c.node(id);
    let log = r.log();
    let point = log.snapshot_index();
    Restored {
        hard_state: r.hard_state(),
        before: (point, log.term(point).expect("the compaction point")),
        entries: log.entries_from(log.first_index(), usize::MAX),
        membership: Some(r.membership_at(point).expect("held").clone()),
    }
}

/// §6: "Agreement (for elections and entry commitment) requires separate
/// majorities from both the old and new configurations", and "once
/// C_old,new has been committed ... the leader [creates] a log entry
/// describing C_new and [replicates] it to the cluster". A server uses a
/// configuration as soon as it is in its log, committed or not.
#[test]
fn joint_consensus_commits_only_with_both_majorities() {
    // {1,2,3} becomes {1,4,5}; 4 and 5 start outside the group. First only
    // C_old's other voters hear the leader, then (on a fresh cluster) only
    // C_new's.
    for (cut, half) in [([4, 5], "C_old"), ([2, 3], "C_new")] {
        let mut c = Cluster::members(5, &[1, 2, 3], &[], |_| {});
        c.campaign(1);
        for id in cut {
            c.isolate(id);
        }
        let joint = change(&mut c, 1, &[1, 4, 5], &[]);
        c.propose(1, b"x");
        let joint_conf = simple(&[1, 2, 3], &[]).joint_with(&simple(&[1, 4, 5], &[]));
        assert_eq!(c.node(1).membership(), &joint_conf);
        let heard = if cut == [4, 5] { 2 } else { 4 };
        assert_eq!(
            c.node(heard).membership(),
            &joint_conf,
            "in force on a follower as soon as appended"
        );
        assert!(
            c.node(1).log().committed() < joint,
            "{half}'s majority alone does not commit"
        );
        c.heal();
        c.tick_all(3);
        assert_eq!(c.node(1).membership(), &simple(&[1, 4, 5], &[]), "C_new");
        let log = c.node(1).log();
        assert_eq!(log.committed(), log.last_index(), "C_new committed");
        assert!(
            log.last_index() > joint.next(),
            "C_new follows the joint entry"
        );
        for id in [1, 4, 5] {
            assert_eq!(c.applied_data(id), vec![b"x".to_vec()], "node {id}");
        }
    }
}

/// §6: while joint, a candidate needs "separate majorities from both the
/// old and new configurations" to win an election.
#[test]
fn a_joint_election_needs_both_majorities() {
    let joint = simple(&[1, 2, 3], &[]).joint_with(&simple(&[1, 4, 5], &[]));
    let restored = Restored {
        hard_state: HardState {
            term: Term(1),
            vote: None,
            commit: LogIndex(1),
        },
        before: (LogIndex(0), Term(0)),
        entries: vec![noop(1, 1), conf_entry(2, 1, &joint)],
        membership: None,
    };
    let mut n = Raft::new(common::config_with(1, &[1, 2, 3], &[]), restored).expect("valid");
    assert_eq!(
        n.membership(),
        &joint,
        "the uncommitted joint entry is in force"
    );
    for _ in 0..2 * n.config().election_ticks {
        if n.role() != Role::Follower {
            break;
        }
        n.tick();
    }
    assert_eq!(n.role(), Role::Candidate);
    let rd = n.ready();
    let mut asked: Vec<NodeId> = rd
        .messages_after_persist
        .iter()
        .filter(|m| matches!(m.body, Body::Vote { .. }))
        .map(|m| m.to)
        .collect();
    asked.sort();
    assert_eq!(asked, ids(&[2, 3, 4, 5]), "both halves are asked");
    let term = n.term().0;
    let grant = |from| msg(from, 1, term, Body::VoteResponse { granted: true });
    n.step(grant(1)).expect("its own vote, once durable");
    n.step(grant(4)).expect("ok");
    n.step(grant(5)).expect("ok");
    n.step(grant(9)).expect("ok"); // not a member: not counted
    assert_eq!(
        n.role(),
        Role::Candidate,
        "all of C_new, one of three of C_old"
    );
    n.step(grant(2)).expect("ok");
    assert_eq!(n.role(), Role::Leader, "a majority of each");
}

/// §6: "the leader steps down (returns to follower state) once it has
/// committed the C_new log entry"; until then it "manages a cluster that
/// does not include itself": it replicates C_new but does not count
/// itself in C_new's majority. A removed leader hands over to an up-to-date
/// voter of C_new, and never campaigns again.
#[test]
fn a_leader_removed_by_the_change_steps_down_once_c_new_commits() {
    let mut c = Cluster::members(4, &[1, 2, 3], &[], |_| {});
    c.campaign(1);
    c.propose(1, b"before");
    change(&mut c, 1, &[2, 3, 4], &[]);
    // Stop as soon as the joint entry committed and the leader appended C_new.
    let new = simple(&[2, 3, 4], &[]);
    assert!(c.settle_until(|c| c.node(1).membership() == &new));
    c.isolate(3);
    c.isolate(4);
    c.settle();
    assert_eq!(
        c.node(1).role(),
        Role::Leader,
        "still leads until C_new commits"
    );
    let log = c.node(1).log();
    assert!(
        log.committed() < log.last_index(),
        "the leader and node 2 are not a majority of C_new {{2,3,4}}"
    );
    let term = c.node(1).term();
    c.heal();
    c.tick_all(2);
    assert_ne!(c.node(1).role(), Role::Leader, "stepped down");
    assert_eq!(c.lost.get(&NodeId(1)).cloned(), Some(vec![term]));
    let leaders = c.leaders();
    assert_eq!(leaders.len(), 1);
    assert!(new.voters.contains(&leaders[0]), "a voter of C_new leads");
    let leader = leaders[0].0;
    c.propose(leader, b"after");
    c.tick_all(60);
    assert_eq!(c.leaders(), vec![NodeId(leader)]);
    assert_eq!(
        c.node(1).role(),
        Role::Follower,
        "a removed node never campaigns"
    );
    for id in [2, 3, 4] {
        let want = vec![b"before".to_vec(), b"after".to_vec()];
        assert_eq!(c.applied_data(id), want, "node {id}");
    }
    assert_eq!(
        c.applied_data(1),
        vec![b"before".to_vec()],
        "not replicated to"
    );
}

/// §6 (a leader "manages a cluster that does not include itself" until
/// C_new commits), when that leader loses office first: with the only copy
/// of C_new and the longest log it would deny the joint configuration's
/// candidates its vote, so it may campaign under C_new — asking C_new's
/// voters, not counting itself — then commits C_new and steps down
/// (the simulator's seed 10216: C_old {1}, C_new {3}).
#[test]
fn a_removed_leader_that_lost_office_before_c_new_committed_finishes_the_change() {
    let mut c = Cluster::members(2, &[1], &[], |cfg| cfg.check_quorum = true);
    c.campaign(1);
    change(&mut c, 1, &[2], &[]);
    let new = simple(&[2], &[]);
    assert!(c.settle_until(|c| c.node(1).membership() == &new));
    c.isolate(2);
    c.tick_all(25);
    assert_eq!(c.node(1).role(), Role::Follower, "check-quorum deposed it");
    assert!(c.node(2).membership().is_joint(), "2 never got C_new");
    c.heal();
    // Node 2, under the joint configuration, cannot win (node 1 denies it);
    // node 1 wins once its request finds node 2 out of its own campaign's
    // election timeout.
    for _ in 0..50 {
        c.tick_all(10);
        if c.leaders() == vec![NodeId(2)] {
            break;
        }
    }
    assert_eq!(c.leaders(), vec![NodeId(2)]);
    assert_eq!(c.node(2).membership(), &new);
    let log = c.node(2).log();
    assert_eq!(log.committed(), log.last_index());
    assert_eq!(c.node(1).role(), Role::Follower);
}

/// Figure 2: persistent state (currentTerm, votedFor) is "updated on
/// stable storage before responding to RPCs". A candidate's own vote
/// counts only once it is durable, like its peers' votes (which they send
/// only once durable): it comes back to the candidate through
/// `messages_after_persist`. A single voter (common while a group grows
/// from one node) would otherwise lead before its term and vote are
/// durable, and a crash could give its term a second leader (simulator,
/// seeds 70196 and 18419).
#[test]
fn a_single_voter_leads_only_once_its_vote_is_durable() {
    let mut c = Cluster::members(2, &[1], &[2], |_| {});
    let n = c.node(1);
    let e = n.config().election_ticks;
    for _ in 0..2 * e {
        n.tick();
        if n.role() == Role::Candidate {
            break;
        }
    }
    assert_eq!(
        n.role(),
        Role::Candidate,
        "not leader before its vote is durable"
    );
    let rd = n.ready();
    assert!(rd.messages.is_empty(), "{:?}", rd.messages);
    assert_eq!(
        rd.hard_state.map(|h| (h.term, h.vote)),
        Some((Term(1), Some(NodeId(1))))
    );
    let own: Vec<Message> = rd.messages_after_persist;
    assert_eq!(own.len(), 1);
    assert_eq!(
        (own[0].to, &own[0].body),
        (NodeId(1), &Body::VoteResponse { granted: true }),
        "its own vote, back once durable"
    );
    // The host made the Ready durable and delivers the vote back.
    n.step(own[0].clone()).expect("its own vote");
    assert_eq!(n.role(), Role::Leader);
    let rd = n.ready();
    assert_eq!(
        rd.messages
            .iter()
            .map(|m| m.body.kind())
            .collect::<Vec<_>>(),
        vec!["Append"],
        "its term is durable: appends go out at once"
    );
}

/// §6: a server uses the latest configuration in its log "regardless of
/// whether the entry is committed"; when a new leader's log replaces an
/// uncommitted configuration entry, the server goes back to the
/// configuration before it (thesis §4.1: "a log entry for a configuration
/// change can be removed (if leadership changes); in this case, a server
/// must be prepared to fall back to the previous configuration").
#[test]
fn an_uncommitted_configuration_rolls_back_when_truncated() {
    let mut c = Cluster::members(4, &[1, 2, 3], &[], |_| {});
    c.campaign(1);
    c.isolate(2);
    c.isolate(3);
    let at = change(&mut c, 1, &[1, 2, 3, 4], &[]);
    c.settle();
    let old = simple(&[1, 2, 3], &[]);
    let joint = old.joint_with(&simple(&[1, 2, 3, 4], &[]));
    assert_eq!(c.node(1).membership(), &joint);
    assert_eq!(c.node(1).membership_at(at.prev()), Some(&old));
    // Node 1 is cut off; 2 or 3 leads {1,2,3} in a later term and writes
    // at `at`.
    c.heal();
    c.isolate(1);
    c.isolate(4);
    c.tick_all(25);
    let leaders = c.leaders();
    assert_eq!(leaders.len(), 2, "1 does not know yet: {leaders:?}");
    let new = leaders[1].0;
    c.propose(new, b"theirs");
    c.heal();
    c.isolate(4);
    c.tick_all(3);
    assert_eq!(c.leaders(), vec![NodeId(new)]);
    assert_eq!(c.node(1).log().term(at), c.node(new).log().term(at));
    assert_eq!(c.node(1).membership(), &old, "rolled back");
    assert_eq!(c.node(1).membership_at(at), Some(&old));
    assert_eq!(c.applied_data(1), vec![b"theirs".to_vec()]);
}

/// Thesis §4.3 / §6: one change at a time — a leader appends a new
/// configuration only once the previous one (C_new of the last change) is
/// committed, and a new leader only after committing an entry of its term
/// (before that it cannot know what is committed). A refused or malformed
/// proposal is an error and changes nothing.
#[test]
fn a_second_change_is_refused_while_one_is_in_flight() {
    let mut c = Cluster::members(4, &[1, 2, 3], &[], |_| {});
    c.campaign(1);
    c.isolate(2);
    c.isolate(3);
    change(&mut c, 1, &[1, 2, 3], &[4]);
    let last = c.node(1).log().last_index();
    let membership = c.node(1).membership().clone();
    let second = c.node(1).propose_conf_change(ids(&[1, 2, 3, 4]), vec![]);
    assert!(
        matches!(second, Err(RaftError::ConfChangeInProgress)),
        "{second:?}"
    );
    let bad: [(&[u64], &[u64]); 4] = [
        (&[], &[1]),       // no voters
        (&[1, 2], &[2]),   // a voter and a learner
        (&[1, 1, 2], &[]), // a duplicate
        (&[0, 1, 2], &[]), // id 0
    ];
    for (voters, learners) in bad {
        let r = c.node(1).propose_conf_change(ids(voters), ids(learners));
        assert!(
            matches!(r, Err(RaftError::BadConfChange(_))),
            "{voters:?} {learners:?}: {r:?}"
        );
    }
    assert_eq!(c.node(1).log().last_index(), last, "nothing appended");
    assert_eq!(c.node(1).membership(), &membership);
    let at_follower = c.node(2).propose_conf_change(ids(&[1, 2]), vec![]);
    assert!(matches!(at_follower, Err(RaftError::NotLeader { .. })));
    c.heal();
    c.tick_all(3);
    assert_eq!(c.node(1).membership(), &simple(&[1, 2, 3], &[4]));
    let same = c.node(1).propose_conf_change(ids(&[3, 2, 1]), ids(&[4]));
    assert!(
        matches!(same, Err(RaftError::BadConfChange(_))),
        "unchanged: {same:?}"
    );
    change(&mut c, 1, &[1, 2, 3, 4], &[]);
    c.settle();
    assert_eq!(c.node(1).membership(), &simple(&[1, 2, 3, 4], &[]));
}

/// Thesis §4.3 (as in etcd and the thesis' LogCabin): a new leader may not
/// start a change before an entry of its own term is committed.
#[test]
fn a_new_leader_starts_no_change_before_committing_in_its_term() {
    let mut c = Cluster::new(3);
    c.elect_dropping_appends(1); // the no-op's appends are lost
    let early = c.node(1).propose_conf_change(ids(&[1, 2]), vec![]);
    assert!(
        matches!(early, Err(RaftError::ConfChangeInProgress)),
        "{early:?}"
    );
    c.tick_all(3);
    change(&mut c, 1, &[1, 2], &[]);
}

/// §6/§7: after a restart a server rebuilds its configuration from the
/// snapshot's configuration and the configuration entries of its log, the
/// latest one in force even if uncommitted; a restored log whose
/// configurations skip the joint phase, or hold a malformed one, is refused
/// with an error.
#[test]
fn the_configuration_is_rebuilt_from_snapshot_and_log_after_a_restart() {
    let mut c = Cluster::members(4, &[1, 2, 3], &[], |_| {});
    c.campaign(1);
    c.propose(1, b"a");
    let joint_at = change(&mut c, 1, &[1, 2, 4], &[3]);
    c.settle();
    c.propose(1, b"b");
    c.tick_all(2);
    let current = simple(&[1, 2, 4], &[3]);
    let joint = simple(&[1, 2, 3], &[]).joint_with(&current);
    let cfg = || common::config_with(2, &[1, 2, 3], &[]);
    // The whole log: rebuilt from the bootstrap configuration and the entries.
    let whole = restored_from(&mut c, 2);
    let r = Raft::new(cfg(), whole.clone()).expect("valid restore");
    assert_eq!(r.membership(), &current);
    assert_eq!(r.membership_at(joint_at), Some(&joint));
    // Compacted between the joint entry and C_new: the snapshot's joint
    // configuration plus C_new from the log.
    c.node(2).compact(joint_at);
    let r = Raft::new(cfg(), restored_from(&mut c, 2)).expect("valid restore");
    assert_eq!(r.membership_at(joint_at), Some(&joint));
    assert_eq!(r.membership(), &current);
    // Compacted past both: the snapshot's configuration alone.
    let applied = c.node(2).log().applied();
    c.node(2).compact(applied);
    assert_eq!(c.node(2).log().snapshot_index(), applied);
    let r = Raft::new(cfg(), restored_from(&mut c, 2)).expect("valid restore");
    assert_eq!(r.membership(), &current);
    // An uncommitted joint entry at the end of the log is in force.
    let mut tail = whole.clone();
    tail.entries.truncate((joint_at.0 - 1) as usize + 1);
    tail.hard_state.commit = joint_at.prev();
    let r = Raft::new(cfg(), tail).expect("valid restore");
    assert_eq!(r.membership(), &joint);
    // Bad logs are errors, not panics.
    let mut skipped = whole.clone();
    let at = (joint_at.0 - 1) as usize;
    skipped.entries[at] = conf_entry(joint_at.0, skipped.entries[at].term.0, &current);
    skipped.entries.truncate(at + 1);
    skipped.hard_state.commit = joint_at.prev();
    let err = Raft::new(cfg(), skipped).expect_err("C_old to C_new without the joint phase");
    assert!(matches!(err, RaftError::BadRestore(_)), "{err:?}");
    let mut garbage = whole.clone();
    garbage.entries[at].data = b"garbage".as_slice().into();
    let err = Raft::new(cfg(), garbage).expect_err("malformed configuration");
    assert!(matches!(err, RaftError::BadRestore(_)), "{err:?}");
    let mut bad_snapshot = whole;
    bad_snapshot.membership = Some(Membership::default());
    assert!(matches!(
        Raft::new(cfg(), bad_snapshot),
        Err(RaftError::BadRestore(_))
    ));
}

/// §6: "removed servers (those not in C_new) can disrupt the cluster ...
/// To prevent this problem, servers disregard RequestVote RPCs when they
/// believe a current leader exists ... if a server receives a RequestVote
/// request within the minimum election timeout of hearing from a current
/// leader, it does not update its term or grant its vote." Checked with the
/// paper's algorithm (no pre-vote, no check-quorum) and with both on.
#[test]
fn a_removed_server_does_not_disrupt_the_cluster() {
    for extensions in [false, true] {
        let mut c = Cluster::members(4, &[1, 2, 3, 4], &[], |cfg| {
            cfg.pre_vote = extensions;
            cfg.check_quorum = extensions;
        });
        c.tick_all(30);
        let leader = c.leaders()[0].0;
        let removed = if leader == 4 { 3 } else { 4 };
        let stay: Vec<u64> = (1..=4).filter(|&n| n != removed).collect();
        c.isolate(removed);
        change(&mut c, leader, &stay, &[]);
        c.settle();
        c.tick_all(2);
        assert_eq!(c.node(leader).membership(), &simple(&stay, &[]));
        let stale = c.node(removed).membership().clone();
        assert!(stale.is_voter(NodeId(removed)), "it never learned");
        let term = c.node(leader).term();
        c.heal();
        c.tick_all(100);
        assert_eq!(c.leaders(), vec![NodeId(leader)], "extensions {extensions}");
        assert_eq!(c.node(leader).term(), term, "no term was disturbed");
        if !extensions {
            assert!(c.node(removed).term() > term, "the removed node campaigned");
        }
        c.propose(leader, b"still");
        for id in stay {
            assert_eq!(c.applied_data(id), vec![b"still".to_vec()], "node {id}");
        }
    }
}

/// §6 with §8: while joint, a ReadIndex read is confirmed only by a
/// heartbeat round acknowledged by a majority of each configuration.
#[test]
fn a_read_while_joint_needs_both_majorities() {
    let mut c = Cluster::members(5, &[1, 2, 3], &[], |_| {});
    c.campaign(1);
    c.propose(1, b"x");
    c.isolate(2);
    c.isolate(3);
    change(&mut c, 1, &[1, 4, 5], &[]);
    c.settle();
    c.node(1).read_index(7).expect("leader accepts");
    c.tick_all(2);
    assert!(
        c.read_states.get(&NodeId(1)).is_none_or(|r| r.is_empty()),
        "C_new acknowledged, C_old did not"
    );
    c.heal();
    c.tick_all(2);
    let got: Vec<u64> = c.read_states[&NodeId(1)].iter().map(|r| r.ctx).collect();
    assert_eq!(got, vec![7]);
}

/// §6 with thesis §6.2: while joint, check-quorum needs a majority of each
/// configuration to have answered within an election timeout.
#[test]
fn check_quorum_while_joint_needs_both_majorities() {
    let mut c = Cluster::members(5, &[1, 2, 3], &[], |cfg| cfg.check_quorum = true);
    c.tick_all(30);
    let leader = c.leaders()[0].0;
    let old: Vec<u64> = (1..=3).filter(|&n| n != leader).collect();
    for &id in &old {
        c.isolate(id);
    }
    change(&mut c, leader, &[leader, 4, 5], &[]);
    c.tick_all(25);
    let joint = c.node(leader).membership().clone();
    assert!(joint.is_joint(), "C_old cannot commit it");
    assert_eq!(c.node(4).membership(), &joint);
    assert_ne!(
        c.node(leader).role(),
        Role::Leader,
        "C_new's half answers, C_old's is silent"
    );
}

/// Malformed configurations from a peer are errors and change nothing.
#[test]
fn malformed_configurations_from_a_peer_are_rejected() {
    let mut n =
        Raft::new(common::config_with(2, &[1, 2, 3], &[]), Restored::default()).expect("valid");
    let mut bad = conf_entry(1, 1, &simple(&[1, 2], &[]));
    bad.data = vec![1, 0, 9, 9].into();
    let append = Body::Append {
        prev_index: LogIndex(0),
        prev_term: Term(0),
        entries: vec![bad],
        commit: LogIndex(0),
    };
    let err = n.step(msg(1, 2, 1, append));
    assert!(matches!(err, Err(RaftError::BadMessage { .. })), "{err:?}");
    let snapshot = Body::Snapshot {
        index: LogIndex(5),
        snapshot_term: Term(1),
        membership: Box::default(),
        offset: 0,
        data: b"x".as_slice().into(),
        done: true,
    };
    let err = n.step(msg(1, 2, 1, snapshot));
    assert!(matches!(err, Err(RaftError::BadMessage { .. })), "{err:?}");
    assert_eq!(n.term(), Term(0));
    assert_eq!(n.log().last_index(), LogIndex(0));
    assert_eq!(n.membership(), &simple(&[1, 2, 3], &[]));
}
