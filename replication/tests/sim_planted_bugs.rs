//! The checkers can fail: planted protocol bugs (compiled only with the
//! `planted-bugs` feature, which this crate's tests enable) are caught by
//! the simulator within a bounded number of seeds — all but the Figure 8
//! one, whose search is an ignored test (see docs/testing.md).

use ferrisdb_replication::raft::PlantedBug;
use ferrisdb_replication::sim::{SimOptions, run_catching};

/// Runs seeds from `first` until one fails; returns (seed, failure text).
fn first_failure(bug: PlantedBug, first: u64, seeds_max: u64) -> Option<(u64, String)> {
    let opts = SimOptions {
        planted_bug: Some(bug),
        churn: std::env::var("FERRISDB_CHURN").is_ok(),
        ..SimOptions::default()
    };
    (first..first + seeds_max).find_map(|seed| {
        run_catching(seed, &opts)
            .err()
            .map(|f| (seed, f.to_string()))
    })
}

/// §5.4.1 planted away: votes granted without the up-to-date check let a
/// node with a stale log lead and drop committed entries.
#[test]
fn vote_without_log_check_is_caught() {
    let (seed, what) = first_failure(PlantedBug::VoteWithoutLogCheck, 0, 300)
        .expect("the simulator catches a vote granted to a stale log within 300 seeds");
    println!("caught at seed {seed}: {what}");
}

/// §5.4.2 planted away: a leader that commits an entry of an earlier term by
/// counting replicas (Figure 8) lets a committed entry be overwritten. Not
/// shown caught on the current code: the churn profile caught it at seed
/// 38 062 until stale RequestVotes got an answer and candidates counted
/// their own vote once durable; since then seeds 0..150 000 of the churn
/// profile pass with the bug planted (see docs/testing.md). The search:
/// `FERRISDB_CHURN=1 FERRISDB_PLANTED_SEEDS=150000 cargo test -p
/// ferrisdb-replication --test sim_planted_bugs -- --ignored --nocapture
/// --exact commit_of_previous_term_by_counting_is_caught`. Leader
/// completeness catches this bug during the run, so the linearizability
/// budget is lowered (a register that exhausts the full budget costs
/// seconds); progress goes to stderr every 1 000 seeds.
#[test]
#[ignore = "a long search"]
fn commit_of_previous_term_by_counting_is_caught() {
    let seeds: u64 = std::env::var("FERRISDB_PLANTED_SEEDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(100_000);
    let opts = SimOptions {
        planted_bug: Some(PlantedBug::CommitPreviousTermByCount),
        churn: std::env::var("FERRISDB_CHURN").is_ok(),
        linearizability_budget: 10_000,
        ..SimOptions::default()
    };
    let started = std::time::Instant::now();
    for seed in 0..seeds {
        if let Err(f) = run_catching(seed, &opts) {
            println!(
                "caught at seed {seed} ({:.0} s): {f}",
                started.elapsed().as_secs_f64()
            );
            return;
        }
        if (seed + 1) % 1000 == 0 {
            eprintln!(
                "  seeds 0..={seed} clean ({:.0} s)",
                started.elapsed().as_secs_f64()
            );
        }
    }
    panic!("not caught in seeds 0..{seeds}");
}

/// §8 planted away ("read-only operations can be handled without writing
/// anything into the log. However, with no additional measures, this would
/// run the risk of returning stale data"): a follower answering reads from
/// its own state is caught by the linearizability checker.
#[test]
fn follower_reading_locally_is_caught() {
    let (seed, what) = first_failure(PlantedBug::FollowerReadsLocally, 0, 500)
        .expect("the simulator catches stale follower reads within 500 seeds");
    assert!(what.contains("linearizability"), "{what}");
    println!("caught at seed {seed}: {what}");
}

/// Whether a failure is a safety checker's verdict (not a core assertion,
/// not a liveness timeout).
fn is_safety_violation(what: &str) -> bool {
    [
        "election safety",
        "log matching",
        "leader completeness",
        "state machine safety",
        "linearizability",
    ]
    .iter()
    .any(|checker| what.contains(checker))
}

/// Finds the first seed a planted membership bug fails within `seeds_max`,
/// checks a safety checker caught it, and that the seed is clean without
/// the bug.
fn assert_membership_bug_caught(bug: PlantedBug, seeds_max: u64) {
    let (seed, what) = first_failure(bug, 0, seeds_max)
        .unwrap_or_else(|| panic!("{bug:?} not caught within {seeds_max} seeds"));
    println!("{bug:?} caught at seed {seed}: {what}");
    assert!(is_safety_violation(&what), "{what}");
    run_catching(seed, &SimOptions::default()).expect("the same seed is clean without the bug");
}

/// §6 planted away ("it isn't possible to atomically switch all of the
/// servers at once, so the cluster can potentially split into two
/// independent majorities"): a leader that switches from C_old straight to
/// C_new lets a majority of C_old and a majority of C_new decide apart.
/// First caught at seed 41 (leader completeness).
#[test]
fn conf_change_without_joint_phase_is_caught() {
    assert_membership_bug_caught(PlantedBug::ConfChangeWithoutJoint, 300);
}

/// §6 planted away ("agreement (for elections and entry commitment)
/// requires separate majorities from both the old and new
/// configurations"): counting only C_new's majority while joint. First
/// caught at seed 423 (leader completeness).
#[test]
fn joint_quorum_of_c_new_only_is_caught() {
    assert_membership_bug_caught(PlantedBug::JointQuorumNewOnly, 1000);
}
