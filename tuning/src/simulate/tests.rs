use super::*;

fn tiny_policy() -> Policy {
    Policy {
        memtable_bytes: 100 * 100,
        l0_trigger: 4,
        level1_bytes: 400 * 100,
        multiplier: 10,
        sst_bytes: 100 * 100,
        levels: 7,
    }
}

fn load(keys: u64) -> Workload {
    Workload {
        keys,
        update_ratio: 0.0,
        distribution: Distribution::Uniform,
        entry_bytes: 100,
        seed: 42,
    }
}

fn same_but_time(mut a: Outcome, b: &Outcome) -> Outcome {
    a.elapsed = b.elapsed;
    a
}

#[test]
fn a_load_has_every_amplification_at_least_one() {
    let o = simulate(&load(20_000), &tiny_policy());
    assert!(o.write_amp >= 1.0, "every byte is flushed once: {o:?}");
    assert!(o.write_amp < 30.0, "{o:?}");
    assert!(o.read_tables >= 1.0, "sampled right after flushes: {o:?}");
    assert!(
        o.read_blocks >= 1.0 && o.read_blocks <= o.read_tables,
        "{o:?}"
    );
    assert!(
        (o.space_amp - 1.0).abs() < 1e-9,
        "a load has no stale entries: {o:?}"
    );
    assert!(o.deepest_level >= 2 && o.compactions > 0, "{o:?}");
    assert!(o.l0_max <= 4, "compaction keeps up: {o:?}");
}

#[test]
fn updates_leave_stale_entries_and_skew_is_absorbed_by_the_memtable() {
    let uniform = Workload {
        update_ratio: 0.5,
        ..load(20_000)
    };
    let zipf = Workload {
        distribution: Distribution::Zipf(0.99),
        ..uniform.clone()
    };
    let u = simulate(&uniform, &tiny_policy());
    let z = simulate(&zipf, &tiny_policy());
    assert!(u.space_amp_max > 1.0, "{u:?}");
    assert!(u.space_amp >= 1.0 && z.space_amp >= 1.0);
    assert!(
        z.write_amp < u.write_amp,
        "hot keys merge in the memtable before they reach disk: zipf {z:?} uniform {u:?}"
    );
}

/// Larger level multipliers hold the same data in fewer levels; a higher
/// L0 trigger rewrites L1 less often but leaves more L0 tables to read.
#[test]
fn settings_move_amplification_the_expected_way() {
    let w = load(40_000);
    let run = |change: fn(&mut Policy)| {
        let mut p = tiny_policy();
        change(&mut p);
        simulate(&w, &p)
    };
    let m4 = run(|p| p.multiplier = 4);
    let m16 = run(|p| p.multiplier = 16);
    assert!(
        m4.deepest_level > m16.deepest_level,
        "m4 {m4:?} m16 {m16:?}"
    );
    let t2 = run(|p| p.l0_trigger = 2);
    let t8 = run(|p| p.l0_trigger = 8);
    assert!(t8.write_amp < t2.write_amp, "t8 {t8:?} t2 {t2:?}");
    assert!(t8.read_tables > t2.read_tables, "t8 {t8:?} t2 {t2:?}");
    assert!(t8.l0_max > t2.l0_max);
}

#[test]
fn a_seed_replays_exactly() {
    let w = Workload {
        update_ratio: 0.3,
        distribution: Distribution::Zipf(0.99),
        ..load(5_000)
    };
    let a = simulate(&w, &tiny_policy());
    let b = simulate(&w, &tiny_policy());
    assert_eq!(same_but_time(a, &b), b);
}

#[test]
fn the_grid_varies_one_setting_at_a_time_around_the_defaults() {
    let base = Policy::from_options(&Options::default());
    assert_eq!(base.multiplier, 10);
    let v = one_at_a_time(&base, &[4, 10], &[2, 4], &[16 << 20], &[]);
    let names: Vec<&str> = v.iter().map(|v| v.name.as_str()).collect();
    assert_eq!(
        names,
        ["defaults", "multiplier 4", "l0 trigger 2", "sst 16.0 MiB"]
    );
    assert_eq!(
        v[1].policy,
        Policy {
            multiplier: 4,
            ..base.clone()
        }
    );
    let scaled = base.scaled(64);
    assert_eq!(scaled.memtable_bytes, 1 << 20);
    assert_eq!(scaled.level1_bytes, 4 << 20);
}

#[test]
fn compare_stops_when_the_budget_is_spent() {
    let v = one_at_a_time(&tiny_policy(), &[4], &[], &[], &[]);
    let none = compare(&[load(100)], &v, 1, Duration::ZERO, |_, _, _| {});
    assert!(none.is_empty());
    let mut rows = Vec::new();
    let all = compare(&[load(1000)], &v, 1, Duration::from_secs(60), |_, v, o| {
        rows.push(table_row(v, o));
    });
    assert_eq!(all.len(), 2);
    assert!(rows[0].starts_with("defaults "), "{rows:?}");
    assert_eq!(table_header().len(), rows[0].len(), "columns line up");
}

#[test]
fn bad_workloads_are_refused() {
    for (w, want) in [
        (Workload { keys: 0, ..load(1) }, "--keys"),
        (
            Workload {
                update_ratio: 0.99,
                ..load(1)
            },
            "--update-ratio",
        ),
        (
            Workload {
                entry_bytes: 0,
                ..load(1)
            },
            "--entry-bytes",
        ),
        (
            Workload {
                distribution: Distribution::Zipf(-1.0),
                ..load(1)
            },
            "Zipf",
        ),
    ] {
        let e = w.validate().expect_err(want);
        assert!(e.contains(want), "{e}");
    }
    assert_eq!(
        Workload {
            update_ratio: 0.5,
            ..load(1000)
        }
        .updates(),
        1000
    );
}
