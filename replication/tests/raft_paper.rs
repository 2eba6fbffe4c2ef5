//! Protocol tests: each restates the rule it checks and cites the section of
//! the Raft paper (Ongaro & Ousterhout 2014) or of Ongaro's thesis.

mod common;

use common::{Cluster, msg};
use ferrisdb_replication::raft::PlantedBug;
use ferrisdb_replication::raft::ReadState;
use ferrisdb_replication::{
    Body, Entry, HardState, LogIndex, Message, NodeId, Raft, RaftError, Restored, Role, Snapshot,
    Term,
};

fn entry(index: u64, term: u64) -> Entry {
    Entry::normal(
        LogIndex(index),
        Term(term),
        format!("e{index}t{term}").into_bytes().into(),
    )
}

/// A node of a `n`-voter group restored with a log of the given terms.
fn restored(id: u64, n: u64, terms: &[u64], term: u64) -> Raft {
    restored_planting(id, n, terms, term, None)
}

/// [`restored`] with a protocol bug planted (feature `planted-bugs`, on for
/// tests), to show that a test catches it.
fn restored_planting(id: u64, n: u64, terms: &[u64], term: u64, bug: Option<PlantedBug>) -> Raft {
    let entries: Vec<Entry> = terms
        .iter()
        .enumerate()
        .map(|(i, &t)| entry(i as u64 + 1, t))
        .collect();
    let hs = HardState {
        term: Term(term),
        vote: None,
        commit: LogIndex(0),
    };
    let restored = Restored {
        hard_state: hs,
        before: (LogIndex(0), Term(0)),
        entries,
        membership: None,
    };
    let mut cfg = common::config(id, n);
    cfg.planted_bug = bug;
    Raft::new(cfg, restored).expect("valid restore")
}

/// §5.2: "If a follower receives no communication over a period of time
/// called the election timeout, then it ... begins an election": it
/// increments its term, votes for itself and requests votes from all others.
#[test]
fn follower_times_out_and_starts_an_election() {
    let mut c = Cluster::new(3);
    let n = c.node(1);
    for _ in 0..2 * n.config().election_ticks {
        n.tick();
    }
    assert_eq!(n.role(), Role::Candidate);
    assert_eq!(n.term(), Term(1));
    assert_eq!(n.hard_state().vote, Some(NodeId(1)));
    let rd = n.ready();
    let asked: Vec<_> = rd
        .messages_after_persist
        .iter()
        .filter(|m| matches!(m.body, Body::Vote { .. }))
        .map(|m| m.to)
        .collect();
    assert_eq!(asked, vec![NodeId(2), NodeId(3)]);
    // Its own vote comes back to it once durable (counted like the others).
    let own: Vec<_> = rd
        .messages_after_persist
        .iter()
        .filter(|m| !matches!(m.body, Body::Vote { .. }))
        .map(|m| (m.to, m.body.clone()))
        .collect();
    assert_eq!(own, vec![(NodeId(1), Body::VoteResponse { granted: true })]);
    assert_eq!(
        rd.hard_state.map(|h| h.vote),
        Some(Some(NodeId(1))),
        "the self-vote is persisted"
    );
}

/// §5.2: "Raft uses randomized election timeouts ... chosen randomly from a
/// fixed interval": different seeds fire after different numbers of ticks,
/// all within [election_ticks, 2 * election_ticks).
#[test]
fn election_timeouts_are_randomized_within_bounds() {
    let mut fired = std::collections::BTreeSet::new();
    for seed in 0..40 {
        let mut cfg = common::config(1, 3);
        cfg.seed = seed;
        let e = cfg.election_ticks;
        let mut n = Raft::new(cfg, Restored::default()).expect("valid");
        let mut ticks = 0;
        while n.role() == Role::Follower {
            n.tick();
            ticks += 1;
            assert!(ticks < 2 * e, "timeout beyond 2 * election_ticks");
        }
        assert!(ticks >= e, "timeout below election_ticks");
        fired.insert(ticks);
    }
    assert!(fired.len() > 3, "timeouts vary: {fired:?}");
}

/// §5.2: "A candidate wins an election if it receives votes from a majority
/// of the servers in the full cluster for the same term."
#[test]
fn candidate_with_a_majority_becomes_leader() {
    let mut c = Cluster::new(5);
    c.isolate(4);
    c.isolate(5);
    c.campaign(1);
    assert_eq!(c.node(1).role(), Role::Leader, "3 of 5 votes");
    assert_eq!(c.leaders(), vec![NodeId(1)]);
}

/// §5.2: without a majority a candidate stays candidate (and retries).
#[test]
fn candidate_without_a_majority_does_not_lead() {
    let mut c = Cluster::new(5);
    c.isolate(3);
    c.isolate(4);
    c.isolate(5);
    c.campaign(1);
    assert_eq!(c.node(1).role(), Role::Candidate);
}

/// §5.2: "Each server will vote for at most one candidate in a given term, on
/// a first-come-first-served basis."
#[test]
fn a_node_votes_once_per_term() {
    let mut n = restored(3, 3, &[], 0);
    let vote = |from| {
        msg(
            from,
            3,
            1,
            Body::Vote {
                last_index: LogIndex(0),
                last_term: Term(0),
                transfer: false,
            },
        )
    };
    n.step(vote(1)).expect("ok");
    n.step(vote(2)).expect("ok");
    n.step(vote(1)).expect("ok");
    let rd = n.ready();
    let grants: Vec<(NodeId, bool)> = rd
        .messages_after_persist
        .iter()
        .map(|m| match m.body {
            Body::VoteResponse { granted } => (m.to, granted),
            _ => panic!("unexpected {m:?}"),
        })
        .collect();
    assert_eq!(
        grants,
        vec![(NodeId(1), true), (NodeId(2), false), (NodeId(1), true)]
    );
    assert_eq!(rd.hard_state.and_then(|h| h.vote), Some(NodeId(1)));
}

/// §5.2: "If the AppendEntries RPC is from a leader whose term is at least as
/// large as the candidate's current term, then the candidate recognizes the
/// leader as legitimate and returns to follower state."
#[test]
fn candidate_yields_to_a_leader_of_its_term() {
    let mut c = Cluster::new(3);
    c.isolate(1);
    c.campaign(1);
    assert_eq!(c.node(1).role(), Role::Candidate);
    let term = c.node(1).term().0;
    let append = Body::Append {
        prev_index: LogIndex(0),
        prev_term: Term(0),
        entries: vec![],
        commit: LogIndex(0),
    };
    c.node(1).step(msg(2, 1, term, append)).expect("ok");
    assert_eq!(c.node(1).role(), Role::Follower);
    assert_eq!(c.node(1).leader(), Some(NodeId(2)));
}

/// §5.1: "If a server receives a request with a stale term number, it rejects
/// the request", and "if one server's current term is smaller than the
/// other's, then it updates its current term to the larger value".
#[test]
fn stale_terms_are_rejected_and_newer_terms_adopted() {
    let mut n = restored(1, 3, &[1], 5);
    let vote = Body::Vote {
        last_index: LogIndex(9),
        last_term: Term(4),
        transfer: false,
    };
    n.step(msg(2, 1, 4, vote)).expect("ok");
    let rd = n.ready();
    let answers: Vec<(Term, Body)> = rd
        .messages
        .iter()
        .chain(&rd.messages_after_persist)
        .map(|m| (m.term, m.body.clone()))
        .collect();
    assert_eq!(
        answers,
        vec![(Term(5), Body::VoteResponse { granted: false })],
        "a stale vote request is refused with our term (Figure 2)"
    );
    assert_eq!(n.term(), Term(5));
    let hb = Body::Heartbeat {
        commit: LogIndex(0),
        read_ctx: 0,
        sent_tick: 1,
    };
    n.step(msg(3, 1, 7, hb)).expect("ok");
    assert_eq!(n.term(), Term(7));
    assert_eq!(n.leader(), Some(NodeId(3)));
}

/// §5.4.1: "the voter denies its vote if its own log is more up-to-date than
/// that of the candidate": later last term wins, then longer log.
#[test]
fn votes_are_denied_to_candidates_with_stale_logs() {
    let cases = [
        // (voter log terms, candidate last index, last term, granted)
        (&[1u64, 2][..], 2, 1, false), // candidate's last term is older
        (&[1, 2], 1, 2, false),        // same last term, shorter log
        (&[1, 2], 2, 2, true),         // identical
        (&[1, 2], 1, 3, true),         // newer last term, even if shorter
        (&[1, 1, 1], 4, 1, true),      // same term, longer
    ];
    for (terms, last_index, last_term, want) in cases {
        let mut n = restored(1, 3, terms, 3);
        let body = Body::Vote {
            last_index: LogIndex(last_index),
            last_term: Term(last_term),
            transfer: false,
        };
        n.step(msg(2, 1, 4, body)).expect("ok");
        let rd = n.ready();
        let granted = rd
            .messages_after_persist
            .iter()
            .any(|m| matches!(m.body, Body::VoteResponse { granted: true }));
        assert_eq!(
            granted, want,
            "voter {terms:?} candidate {last_index}/{last_term}"
        );
    }
}

/// §5.3: "Once a leader has been elected ... it appends the command to its
/// log as a new entry, then issues AppendEntries RPCs in parallel"; "a log
/// entry is committed once the leader that created the entry has replicated
/// it on a majority of the servers", and followers apply it after learning
/// the commit index.
#[test]
fn leader_replicates_commits_at_quorum_and_followers_apply() {
    let mut c = Cluster::new(3);
    c.isolate(3);
    c.campaign(1);
    c.propose(1, b"x");
    let applied = |c: &Cluster, id| -> Vec<Vec<u8>> {
        c.applied.get(&NodeId(id)).map_or(vec![], |v| {
            v.iter()
                .filter(|e| !e.data.is_empty())
                .map(|e| e.data.to_vec())
                .collect()
        })
    };
    assert_eq!(applied(&c, 1), vec![b"x".to_vec()], "committed with 2 of 3");
    c.tick_all(3); // a heartbeat or append carries the commit index
    assert_eq!(applied(&c, 2), vec![b"x".to_vec()]);
    assert!(applied(&c, 3).is_empty(), "the cut-off node has nothing");
    c.heal();
    c.tick_all(3);
    assert_eq!(
        applied(&c, 3),
        vec![b"x".to_vec()],
        "the leader catches it up"
    );
}

/// §5.3: "If a follower's log is inconsistent with the leader's, the
/// AppendEntries consistency check will fail ... After a rejection, the
/// leader decrements nextIndex and retries"; with the conflicting term in
/// the rejection it skips a whole term per round trip. Figure 7's follower
/// (f): extra entries of terms 2 and 3 are replaced by the leader's.
#[test]
fn divergent_follower_is_repaired_with_few_round_trips() {
    let mut leader = restored(1, 2, &[1, 1, 1, 4, 4, 5, 5, 6, 6, 6], 7);
    let mut follower = restored(2, 2, &[1, 1, 1, 2, 2, 2, 3, 3, 3, 3, 3], 7);
    // Make node 1 leader of term 8 with node 2's vote.
    for _ in 0..20 {
        leader.tick();
    }
    let mut round_trips = 0;
    let mut queue: Vec<Message> = Vec::new();
    loop {
        for rd in [leader.ready(), follower.ready()] {
            queue.extend(rd.messages);
            queue.extend(rd.messages_after_persist);
        }
        // Persist immediately.
        let (li, lt) = (leader.log().last_index(), leader.log().last_term());
        leader.persisted(li, lt);
        let (fi, ft) = (follower.log().last_index(), follower.log().last_term());
        follower.persisted(fi, ft);
        if queue.is_empty() {
            break;
        }
        round_trips += 1;
        assert!(round_trips < 30, "did not converge");
        for m in std::mem::take(&mut queue) {
            let to = if m.to == NodeId(1) {
                &mut leader
            } else {
                &mut follower
            };
            to.step(m).expect("ok");
        }
    }
    assert_eq!(leader.role(), Role::Leader);
    let terms = |r: &Raft| -> Vec<u64> {
        (1..=r.log().last_index().0)
            .map(|i| r.log().term(LogIndex(i)).expect("held").0)
            .collect()
    };
    assert_eq!(terms(&follower), terms(&leader), "logs identical");
    assert_eq!(follower.log().committed(), leader.log().committed());
    assert_eq!(
        leader.log().committed(),
        LogIndex(11),
        "the new leader's no-op committed"
    );
    // One entry per round trip would take > 20 messages each way; backtracking
    // by term needs far fewer.
    assert!(round_trips <= 14, "took {round_trips} message rounds");
}

/// §5.4.2 (Figure 8): "Raft never commits log entries from previous terms by
/// counting replicas. Only log entries from the leader's current term are
/// committed by counting replicas."
#[test]
fn entries_of_earlier_terms_are_not_committed_by_counting_replicas() {
    let (after_old, after_own) = figure_8(None);
    assert_eq!(
        after_old,
        LogIndex(0),
        "index 2 is of term 2: not committed"
    );
    assert_eq!(after_own, LogIndex(3), "the term-4 entry commits both");
}

/// The test above can fail: with the rule planted away, the leader commits
/// the term-2 entry as soon as a majority holds it.
#[test]
fn counting_replicas_of_an_earlier_term_is_caught_when_planted() {
    let (after_old, _) = figure_8(Some(PlantedBug::CommitPreviousTermByCount));
    assert_eq!(after_old, LogIndex(2));
}

/// Figure 8's setup: node 1 holds an entry of term 2 that nobody else has;
/// it becomes leader in term 4 and replicates it to node 2 (a majority of
/// 3), but its no-op of term 4 does not reach anyone yet. Returns the
/// leader's commit index after node 2 acknowledges index 2, then index 3.
fn figure_8(bug: Option<PlantedBug>) -> (LogIndex, LogIndex) {
    let mut c = Cluster::new(3);
    *c.node(1) = restored_planting(1, 3, &[1, 2], 3, bug);
    *c.node(2) = restored(2, 3, &[1], 3);
    *c.node(3) = restored(3, 3, &[1], 3);
    // Deliver the votes, hold back every append: the leader persists its
    // own no-op; the appends it sent are lost.
    c.elect_dropping_appends(1);
    assert_eq!(c.node(1).term(), Term(4));
    let ack = |index| Body::AppendResponse {
        success: true,
        index: LogIndex(index),
        hint_index: LogIndex(0),
        hint_term: Term(0),
    };
    c.node(1).step(msg(2, 1, 4, ack(2))).expect("ok");
    let after_old = c.node(1).log().committed();
    c.node(1).step(msg(2, 1, 4, ack(3))).expect("ok");
    (after_old, c.node(1).log().committed())
}

/// Thesis §9.6 (pre-vote): a node cut off from the cluster keeps failing
/// pre-votes and never raises its term, so it cannot disrupt the leader when
/// it comes back.
#[test]
fn pre_vote_keeps_a_partitioned_node_from_raising_its_term() {
    let mut c = Cluster::with(3, |cfg| {
        cfg.pre_vote = true;
        cfg.check_quorum = true;
    });
    c.tick_all(30);
    let leader = c.leaders()[0];
    let lone = (1..=3)
        .map(NodeId)
        .find(|&n| n != leader)
        .expect("a follower");
    let term = c.node(leader.0).term();
    c.isolate(lone.0);
    c.tick_all(100);
    assert_eq!(
        c.node(lone.0).term(),
        term,
        "no term inflation behind a partition"
    );
    c.heal();
    c.tick_all(30);
    assert_eq!(c.leaders(), vec![leader], "the leader kept its office");
    assert_eq!(c.node(leader.0).term(), term);
}

/// Thesis §6.2 (check-quorum): "a leader steps down if an election timeout
/// elapses without a successful round of heartbeats to a majority"; its
/// pending reads fail at once and the host is told the term was lost.
#[test]
fn leader_without_a_quorum_steps_down_and_fails_pending_requests() {
    let mut c = Cluster::with(3, |cfg| cfg.check_quorum = true);
    c.tick_all(30);
    let leader = c.leaders()[0].0;
    c.isolate(leader);
    c.node(leader).read_index(42).expect("leader accepts");
    c.tick_all(25);
    assert_ne!(c.node(leader).role(), Role::Leader);
    assert_eq!(c.failed_reads.get(&NodeId(leader)).cloned(), Some(vec![42]));
    assert!(!c.lost.get(&NodeId(leader)).is_none_or(|t| t.is_empty()));
    let err = c.node(leader).propose(vec![b"late".to_vec().into()]);
    assert!(
        matches!(err, Err(RaftError::NotLeader { .. })),
        "immediate retryable error"
    );
}

/// §8: "a leader must check whether it has been deposed before processing a
/// read-only request ... by exchanging heartbeat messages with a majority";
/// the read is served at the commit index recorded when it arrived.
#[test]
fn read_index_waits_for_a_quorum_round() {
    let mut c = Cluster::new(3);
    c.campaign(1);
    c.propose(1, b"x");
    let commit = c.node(1).log().committed();
    c.isolate(2);
    c.isolate(3);
    c.node(1).read_index(7).expect("leader accepts");
    c.settle();
    assert!(
        c.read_states.get(&NodeId(1)).is_none_or(|r| r.is_empty()),
        "no quorum yet"
    );
    c.heal();
    c.tick_all(2);
    let got = c.read_states.get(&NodeId(1)).cloned().unwrap_or_default();
    assert_eq!(
        got,
        vec![ReadState {
            ctx: 7,
            index: commit
        }]
    );
}

/// Thesis §6.4.1 (leases): with a lease the leader answers at once after a
/// quorum acknowledged a recent heartbeat, and stops once the lease lapses.
#[test]
fn lease_reads_skip_the_round_only_while_the_lease_holds() {
    let mut c = Cluster::with(3, |cfg| {
        cfg.check_quorum = true;
        cfg.lease_reads = true;
    });
    c.tick_all(30);
    let leader = c.leaders()[0].0;
    c.node(leader).read_index(1).expect("ok");
    c.flush();
    assert_eq!(
        c.read_states[&NodeId(leader)].last().map(|r| r.ctx),
        Some(1),
        "served by lease"
    );
    c.isolate(leader);
    for _ in 0..9 {
        c.node(leader).tick();
    }
    c.settle();
    c.node(leader).read_index(2).expect("still leader");
    c.flush();
    assert_ne!(
        c.read_states[&NodeId(leader)].last().map(|r| r.ctx),
        Some(2),
        "lease lapsed after election_ticks - drift_ticks"
    );
}

/// §5.3 (pipelining, flow control): a leader keeps at most
/// `inflight_msgs_max` appends unacknowledged per follower.
#[test]
fn appends_in_flight_are_bounded_per_follower() {
    let mut c = Cluster::with(3, |cfg| {
        cfg.inflight_msgs_max = 3;
        cfg.msg_bytes_max = 1;
    });
    c.campaign(1);
    c.isolate(2);
    c.isolate(3);
    // Followers are in replicate state after the election round; now they
    // stop answering.
    for i in 0..20 {
        c.node(1)
            .propose(vec![format!("p{i}").into_bytes().into()])
            .expect("leader");
    }
    let rd = c.node(1).ready();
    let appends = |to| {
        rd.messages
            .iter()
            .filter(|m| m.to == NodeId(to) && matches!(m.body, Body::Append { .. }))
            .count()
    };
    assert_eq!(appends(2), 3);
    assert_eq!(appends(3), 3);
}

/// §5.1 / Figure 2: votes and log entries are persisted before a node answers
/// for them: responses come only in `messages_after_persist`.
#[test]
fn answers_wait_for_persistence() {
    let mut n = restored(2, 3, &[], 1);
    let vote = Body::Vote {
        last_index: LogIndex(0),
        last_term: Term(0),
        transfer: false,
    };
    n.step(msg(1, 2, 2, vote)).expect("ok");
    let append = Body::Append {
        prev_index: LogIndex(0),
        prev_term: Term(0),
        entries: vec![entry(1, 2)],
        commit: LogIndex(0),
    };
    n.step(msg(1, 2, 2, append)).expect("ok");
    let rd = n.ready();
    assert!(rd.messages.is_empty());
    assert_eq!(rd.messages_after_persist.len(), 2);
    assert_eq!(rd.entries, vec![entry(1, 2)]);
    assert_eq!(
        rd.hard_state.map(|h| (h.term, h.vote)),
        Some((Term(2), Some(NodeId(1))))
    );
}

/// Malformed peer input is an error and changes nothing (never a panic).
#[test]
fn malformed_appends_are_rejected_without_a_state_change() {
    let mut n = restored(2, 3, &[1], 1);
    let bad = [
        Body::Append {
            prev_index: LogIndex(1),
            prev_term: Term(1),
            entries: vec![entry(3, 1)],
            commit: LogIndex(0),
        },
        Body::Append {
            prev_index: LogIndex(1),
            prev_term: Term(1),
            entries: vec![entry(2, 9)],
            commit: LogIndex(0),
        },
    ];
    for body in bad {
        let err = n.step(msg(1, 2, 2, body));
        assert!(matches!(err, Err(RaftError::BadMessage { .. })), "{err:?}");
        assert_eq!(n.term(), Term(1));
        assert_eq!(n.log().last_index(), LogIndex(1));
    }
    let misrouted = msg(1, 3, 2, Body::TimeoutNow);
    assert!(matches!(
        n.step(misrouted),
        Err(RaftError::Misrouted { .. })
    ));
}

/// Thesis §3.10 (leadership transfer): "the prior leader sends its log
/// entries to the target server ... then sends a TimeoutNow request", the
/// target starts an election at once and wins even though voters heard from
/// the old leader recently; the old leader refuses proposals meanwhile.
#[test]
fn leadership_transfer_hands_over_to_an_up_to_date_target() {
    let mut c = Cluster::with(3, |cfg| {
        cfg.pre_vote = true;
        cfg.check_quorum = true;
    });
    c.tick_all(30);
    let old = c.leaders()[0];
    let target = (1..=3).map(NodeId).find(|&n| n != old).expect("a follower");
    c.isolate(target.0);
    c.propose(old.0, b"behind");
    c.heal();
    c.node(old.0)
        .transfer_leader(target)
        .expect("leader accepts");
    let refused = c.node(old.0).propose(vec![b"during".to_vec().into()]);
    assert!(
        matches!(refused, Err(RaftError::TransferInProgress)),
        "{refused:?}"
    );
    c.settle();
    c.tick_all(1);
    assert_eq!(c.leaders(), vec![target], "the target leads");
    let t = c.node(target.0).term();
    assert!(t > c.node(old.0).term() || c.node(old.0).role() == Role::Follower);
    c.propose(target.0, b"after");
    c.tick_all(3);
    for id in 1..=3 {
        let applied: Vec<Vec<u8>> = c.applied[&NodeId(id)]
            .iter()
            .filter(|e| !e.data.is_empty())
            .map(|e| e.data.to_vec())
            .collect();
        assert_eq!(
            applied,
            vec![b"behind".to_vec(), b"after".to_vec()],
            "node {id}"
        );
    }
    let bad = c.node(target.0).transfer_leader(target);
    assert!(matches!(bad, Err(RaftError::BadTransfer { .. })));
}

/// §7: "the leader must occasionally send snapshots to followers that lag
/// behind ... when the leader has already discarded the next log entry that
/// it needs to send to a follower". The snapshot goes in chunks; a lost
/// chunk is resent from the last acknowledged byte; the follower's log then
/// starts after the snapshot and replication continues from there.
#[test]
fn a_lagging_follower_gets_a_chunked_snapshot_and_resumes_after_a_loss() {
    let mut c = Cluster::new(3);
    c.campaign(1);
    c.isolate(3);
    for i in 0..20 {
        c.propose(1, format!("x{i}").as_bytes());
    }
    let applied = c.node(1).log().applied();
    c.node(1).compact(applied);
    c.node(2).compact(applied);
    assert_eq!(c.node(1).log().snapshot_index(), applied);
    c.heal();
    // The leader finds node 3 needs compacted entries and asks for a snapshot.
    c.tick_all(2);
    assert_eq!(c.snapshot_needed.get(&NodeId(1)), Some(&vec![NodeId(3)]));
    let image = vec![7u8; 10_000]; // three chunks of at least 4096 bytes
    let term = c.node(1).log().term(applied).expect("snapshot point");
    let membership = c.node(1).membership_at(applied).expect("held").clone();
    let snap = Snapshot {
        index: applied,
        term,
        membership,
        data: image.clone().into(),
    };
    c.node(1)
        .send_snapshot(NodeId(3), snap)
        .expect("node 3 waits for one");
    // Lose the first chunk on the wire.
    let rd = c.node(1).ready();
    let chunks = rd
        .messages
        .iter()
        .filter(|m| matches!(m.body, Body::Snapshot { .. }))
        .count();
    assert_eq!(chunks, 1, "one chunk in flight");
    // A heartbeat round resumes it.
    c.tick_all(4);
    let got = c.snapshots.get(&NodeId(3)).cloned().unwrap_or_default();
    assert_eq!(got.len(), 1, "node 3 installed one snapshot");
    assert_eq!(got[0].index, applied);
    assert_eq!(&got[0].data[..], &image[..], "all chunks in order");
    assert_eq!(c.node(3).log().snapshot_index(), applied);
    c.propose(1, b"after");
    c.tick_all(3);
    let last = c.applied[&NodeId(3)].last().map(|e| e.data.to_vec());
    assert_eq!(
        last,
        Some(b"after".to_vec()),
        "replication continues after the snapshot"
    );
}
