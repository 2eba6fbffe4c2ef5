//! The per-core raft log on the simulated disk (crash images, torn tails,
//! segment reclaim) and on the real one.

use ferrisdb_io::executor::run_local;
use ferrisdb_io::{RealDisk, SimDisk, SimFaults};
use ferrisdb_replication::core_log::{CoreLog, CoreLogOptions};
use ferrisdb_replication::raft::Restored;
use ferrisdb_replication::rng::Rng;
use ferrisdb_replication::{Entry, GroupId, HardState, LogIndex, NodeId, Term};
use std::collections::BTreeMap;
use std::path::Path;

fn opts() -> CoreLogOptions {
    CoreLogOptions {
        segment_bytes_max: 64 << 10,
        chunk_bytes_max: 16 << 10,
        preallocate: false,
    }
}

fn entry(index: u64, term: u64, len: usize) -> Entry {
    Entry::normal(
        LogIndex(index),
        Term(term),
        vec![(index % 251) as u8; len].into(),
    )
}

fn hs(term: u64, vote: Option<u64>, commit: u64) -> HardState {
    HardState {
        term: Term(term),
        vote: vote.map(NodeId),
        commit: LogIndex(commit),
    }
}

/// What a group's log should hold, kept beside the real one.
#[derive(Debug, Clone, Default, PartialEq)]
struct Model {
    hard_state: HardState,
    entries: Vec<Entry>,
}

impl Model {
    fn append(&mut self, entries: &[Entry], hard_state: Option<HardState>) {
        if let Some(first) = entries.first() {
            self.entries.truncate((first.index.0 - 1) as usize);
            self.entries.extend_from_slice(entries);
        }
        if let Some(h) = hard_state {
            self.hard_state = h;
        }
    }
}

#[test]
fn groups_round_trip_with_truncated_suffixes_and_votes() {
    run_local(|| async {
        let disk = SimDisk::new(1);
        let dir = Path::new("/raft");
        let (log, restored) = CoreLog::open(disk.clone(), dir, opts())
            .await
            .expect("open");
        assert!(restored.is_empty());
        let (a, b) = (GroupId(1), GroupId(2));
        let es: Vec<Entry> = (1..=5).map(|i| entry(i, 1, 10)).collect();
        let t = log
            .append(a, &es, Some(hs(1, Some(1), 3)), true)
            .expect("append");
        log.sync(t).await.expect("sync");
        // A new leader replaces 4..5 with its own entries.
        let t = log.append(
            a,
            &[entry(4, 2, 7), entry(5, 2, 7), entry(6, 2, 7)],
            Some(hs(2, None, 4)),
            true,
        );
        log.sync(t.expect("append")).await.expect("sync");
        let t = log
            .append(b, &[entry(1, 3, 100)], Some(hs(3, Some(2), 0)), true)
            .expect("append");
        log.sync(t).await.expect("sync");
        let t = log
            .append(b, &[], Some(hs(4, Some(3), 0)), false)
            .expect("vote only");
        log.sync(t).await.expect("sync");
        log.close().await.expect("close");

        let (_log, restored) = CoreLog::open(disk, dir, opts()).await.expect("reopen");
        let ra = &restored[&a];
        let terms: Vec<u64> = ra.entries.iter().map(|e| e.term.0).collect();
        assert_eq!(terms, vec![1, 1, 1, 2, 2, 2]);
        assert_eq!(ra.hard_state, hs(2, None, 4));
        let rb = &restored[&b];
        assert_eq!(rb.entries, vec![entry(1, 3, 100)]);
        assert_eq!(rb.hard_state, hs(4, Some(3), 0));
    });
}

/// A vote is durable without waiting for bulk entries buffered before it:
/// it lives on its own log.
#[test]
fn a_vote_does_not_queue_behind_bulk_entries() {
    run_local(|| async {
        let disk = SimDisk::new(2);
        let (log, _) = CoreLog::open(disk.clone(), Path::new("/raft"), opts())
            .await
            .expect("open");
        let bulk: Vec<Entry> = (1..=200).map(|i| entry(i, 1, 200)).collect();
        log.append(GroupId(1), &bulk, Some(hs(1, Some(1), 0)), true)
            .expect("append");
        let vote = log
            .append(GroupId(2), &[], Some(hs(5, Some(2), 0)), false)
            .expect("vote");
        log.sync(vote).await.expect("sync the vote");
        assert_eq!(
            log.entries_durable_lsn(),
            0,
            "the bulk entries were not written first"
        );
        let crashed = disk.crash_image();
        let (_log, restored) = CoreLog::open(crashed, Path::new("/raft"), opts())
            .await
            .expect("reopen");
        assert_eq!(restored[&GroupId(2)].hard_state.vote, Some(NodeId(2)));
    });
}

/// Crash at random points of a workload on the simulated disk (torn writes
/// on): everything synced survives, and each group recovers to some state
/// the writes passed through (a prefix of them), never anything else.
#[test]
fn crash_images_keep_synced_writes_and_a_prefix_of_the_rest() {
    for seed in 0..30 {
        run_local(move || async move {
            let faults = SimFaults {
                tear_on_crash: std::env::var("NO_TEAR").is_err(),
                ..SimFaults::default()
            };
            let disk = SimDisk::with_faults(seed, faults);
            let dir = Path::new("/raft");
            let (log, _) = CoreLog::open(disk.clone(), dir, opts())
                .await
                .expect("open");
            let mut rng = Rng::new(seed);
            let groups = [GroupId(1), GroupId(2), GroupId(3)];
            // Per group: every state the log passed through, and how many of
            // them are known durable.
            let mut history: BTreeMap<GroupId, Vec<Model>> = groups
                .iter()
                .map(|&g| (g, vec![Model::default()]))
                .collect();
            let mut synced: BTreeMap<GroupId, usize> = groups.iter().map(|&g| (g, 0)).collect();
            let steps = 20 + rng.below(60);
            for _ in 0..steps {
                let g = groups[rng.below(3) as usize];
                let states = history.get_mut(&g).expect("group");
                let mut model = states.last().expect("a state").clone();
                let last = model.entries.len() as u64;
                let term = model.hard_state.term.0.max(1) + rng.below(2);
                let from = if last > 0 && rng.chance(0.2) {
                    last - rng.below(last.min(3))
                } else {
                    last + 1
                };
                let from = from.max(model.hard_state.commit.0 + 1);
                let n = rng.below(6);
                let es: Vec<Entry> = (from..from + n)
                    .map(|i| entry(i, term, rng.below(300) as usize))
                    .collect();
                let new_last = if n > 0 { from + n - 1 } else { last };
                let commit = model
                    .hard_state
                    .commit
                    .0
                    .max(new_last.saturating_sub(rng.below(3)).min(new_last));
                let vote = if rng.chance(0.5) {
                    Some(1 + rng.below(3))
                } else {
                    model.hard_state.vote.map(|v| v.0)
                };
                let h = hs(term, vote, commit);
                model.append(&es, Some(h));
                let t = log.append(g, &es, Some(h), true).expect("append");
                states.push(model);
                if rng.chance(0.4) {
                    log.sync(t).await.expect("sync");
                    synced.insert(g, states.len() - 1);
                }
            }
            let crashed = disk.crash_image();
            let (_log, restored) = CoreLog::open(crashed, dir, opts()).await.expect("recover");
            for g in groups {
                let got = restored.get(&g).cloned().unwrap_or_else(Restored::default);
                let got = Model {
                    hard_state: got.hard_state,
                    entries: got.entries,
                };
                let states = &history[&g];
                let pos = states[synced[&g]..].iter().position(|m| {
                    // Entries recover as of some state at or after the synced one;
                    // the term and vote may be from a later state (their own log).
                    m.entries == got.entries && m.hard_state.commit == got.hard_state.commit
                });
                let brief = |m: &Model| {
                    let terms: Vec<u64> = m.entries.iter().map(|e| e.term.0).collect();
                    (m.hard_state.commit.0, terms)
                };
                let candidates: Vec<_> = states[synced[&g]..].iter().map(brief).collect();
                assert!(
                    pos.is_some(),
                    "seed {seed} group {g}: recovered {:?} is none of the states from the \
                     synced one on: {candidates:?}",
                    brief(&got)
                );
                let later_terms: Vec<Term> = states[synced[&g]..]
                    .iter()
                    .map(|m| m.hard_state.term)
                    .collect();
                assert!(
                    later_terms.contains(&got.hard_state.term),
                    "seed {seed}: term from nowhere"
                );
            }
        });
    }
}

/// Segments are reclaimed only once every group has compacted past them,
/// and what remains recovers each group from its compaction point.
#[test]
fn segments_are_reclaimed_once_every_group_moved_past_them() {
    run_local(|| async {
        let disk = SimDisk::new(3);
        let dir = Path::new("/raft");
        let (log, _) = CoreLog::open(disk.clone(), dir, opts())
            .await
            .expect("open");
        let (a, b) = (GroupId(1), GroupId(2));
        // Group b writes a little early on, then group a writes a lot.
        let t = log
            .append(b, &[entry(1, 1, 50)], Some(hs(1, Some(1), 1)), true)
            .expect("append");
        log.sync(t).await.expect("sync");
        for i in 1..=400 {
            let t = log
                .append(a, &[entry(i, 1, 1000)], Some(hs(1, Some(1), i)), true)
                .expect("append");
            log.sync(t).await.expect("sync");
        }
        let before = log.segment_count();
        assert!(before > 4, "the workload spans segments ({before})");
        log.compact(a, LogIndex(390), Term(1)).expect("compact a");
        let removed = log.reclaim().await.expect("reclaim");
        assert_eq!(removed, 0, "group b still needs the first segment");
        assert!(log.segment_count() >= before);
        log.compact(b, LogIndex(1), Term(1)).expect("compact b");
        let removed = log.reclaim().await.expect("reclaim");
        assert!(
            removed > 0 && log.segment_count() < before,
            "removed {removed}"
        );
        log.close().await.expect("close");
        let (_log, restored) = CoreLog::open(disk, dir, opts()).await.expect("reopen");
        let ra = &restored[&a];
        assert_eq!(ra.before, (LogIndex(390), Term(1)));
        assert_eq!(ra.entries.first().map(|e| e.index), Some(LogIndex(391)));
        assert_eq!(ra.entries.len(), 10);
        assert_eq!(ra.hard_state.commit, LogIndex(400));
        let rb = &restored[&b];
        assert_eq!(rb.before, (LogIndex(1), Term(1)));
        assert!(rb.entries.is_empty());
        assert_eq!(rb.hard_state, hs(1, Some(1), 1));
    });
}

#[test]
fn round_trip_on_the_real_disk() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join("raft");
    let dir2 = dir.clone();
    run_local(move || async move {
        let (log, _) = CoreLog::open(RealDisk::new(), &dir, opts())
            .await
            .expect("open");
        let mut next = [1u64; 3];
        for i in 0..100 {
            let g = (i % 3) as usize;
            let e = entry(next[g], 1, 64);
            next[g] += 1;
            let t = log.append(GroupId(g as u64), &[e], Some(hs(1, Some(1), 0)), true);
            log.sync(t.expect("append")).await.expect("sync");
        }
        log.close().await.expect("close");
    });
    run_local(move || async move {
        let (_log, restored) = CoreLog::open(RealDisk::new(), &dir2, opts())
            .await
            .expect("reopen");
        assert_eq!(restored.len(), 3);
        let total: usize = restored.values().map(|r| r.entries.len()).sum();
        assert_eq!(total, 100);
        assert!(
            restored
                .values()
                .all(|r| r.hard_state.vote == Some(NodeId(1)))
        );
    });
}
