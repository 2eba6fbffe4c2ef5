use super::*;

fn tiny(dir: &Path) -> DiskOptions {
    DiskOptions {
        file_bytes: 2 << 20,
        secs_per_test: 0.05,
        seq_block_bytes: 256 << 10,
        seq_depth: 2,
        random_depths: vec![1, 4],
        ..DiskOptions::new(dir)
    }
}

/// A tiny run in a fresh, empty directory (the glommio O_DIRECT pitfall of
/// DESIGN.md §9 shows up exactly there) measures every figure, reports each
/// step, leaves no test file behind, and its io_properties.toml reads back.
#[test]
fn tiny_run_measures_everything_and_writes_a_readable_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut steps = Vec::new();
    let props = measure(&tiny(dir.path()), |s| steps.push(s)).expect("measure");
    assert_eq!(props.file_bytes, 2 << 20);
    assert!(props.sequential.write_bytes_per_sec > 0);
    assert!(props.sequential.read_bytes_per_sec > 0);
    assert_eq!(
        props
            .random_read
            .iter()
            .map(|r| r.depth)
            .collect::<Vec<_>>(),
        vec![1, 4]
    );
    for r in &props.random_read {
        assert!(
            r.iops > 0 && r.p99_us >= r.p50_us && r.p50_us > 0.0,
            "{r:?}"
        );
    }
    let f = &props.fdatasync;
    assert!(f.ops_per_sec > 0, "{f:?}");
    assert!(f.sync_p50_us <= f.sync_p99_us && f.sync_p99_us <= f.sync_p999_us);
    assert!(f.sync_p999_us <= f.sync_max_us + 0.1, "{f:?}");
    let d = props.dsync_write.as_ref().expect("O_DSYNC writes measured");
    assert!(d.ops_per_sec > 0 && d.p50_us > 0.0, "{d:?}");
    assert!(d.p50_us <= d.p99_us && d.p99_us <= d.p999_us && d.p999_us <= d.max_us + 0.1);
    let r = props
        .runtime_fdatasync
        .as_ref()
        .expect("fdatasync through the runtime measured");
    assert!(r.ops_per_sec > 0 && r.sync_p50_us > 0.0, "{r:?}");
    assert!(r.sync_p50_us <= r.sync_p99_us, "{r:?}");
    assert_eq!(steps.len(), 1 + 2 + 2 + 1 + 1 + 1, "{steps:?}");
    assert!(
        matches!(steps.last(), Some(Step::RuntimeFdatasync(_))),
        "{steps:?}"
    );
    let left: Vec<_> = std::fs::read_dir(dir.path())
        .expect("list")
        .map(|e| e.expect("entry").file_name())
        .collect();
    assert!(left.is_empty(), "test and probe files removed: {left:?}");

    let path = dir.path().join(crate::IO_PROPERTIES_FILE);
    props.write(&path).expect("write");
    assert_eq!(IoProperties::read(&path).expect("read back"), props);
}

/// A test file left by a killed run (its pid is gone) is removed and
/// reported; one of a live process (this one's pid) is left alone.
#[test]
fn test_files_of_dead_runs_are_removed() {
    let dir = tempfile::tempdir().expect("tempdir");
    // Pids are below 2^22 on Linux, so this one is never running.
    let stale = dir.path().join(format!("{TEST_FILE_PREFIX}4294967295"));
    let live = dir
        .path()
        .join(format!("{TEST_FILE_PREFIX}{}", std::process::id()));
    let other = dir.path().join(format!("{TEST_FILE_PREFIX}x"));
    for f in [&stale, &live, &other] {
        std::fs::write(f, b"old").expect("write");
    }
    assert_eq!(remove_stale_test_files(dir.path()), vec![stale.clone()]);
    assert!(!stale.exists() && live.exists() && other.exists());
}

#[test]
fn missing_directories_and_files_are_refused_before_any_io() {
    let dir = tempfile::tempdir().expect("tempdir");
    let missing = dir.path().join("nope");
    let e = measure(&tiny(&missing), |_| {}).expect_err("missing");
    assert!(matches!(e, Error::NoSuchDirectory { .. }), "{e}");
    assert!(e.to_string().contains("does not exist"), "{e}");

    let file = dir.path().join("file");
    std::fs::write(&file, b"x").expect("write");
    for path in [file.clone(), file.join("below")] {
        let e = measure(&tiny(&path), |_| {}).expect_err("not a directory");
        assert!(matches!(e, Error::NotADirectory { .. }), "{path:?}: {e}");
    }
}

#[test]
fn options_out_of_bounds_are_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    type Change = fn(&mut DiskOptions);
    let cases: [(Change, &str); 6] = [
        (|o| o.secs_per_test = 0.0, "--secs is 0"),
        (|o| o.secs_per_test = 1e-6, "must be at least 0.01"),
        (|o| o.secs_per_test = f64::NAN, "--secs is NaN"),
        (|o| o.file_bytes = 4096, "--size is 4096 bytes"),
        (|o| o.random_depths = vec![4, 1], "increasing"),
        (|o| o.random_depths = vec![1, 100_000], "between 1 and 256"),
    ];
    for (change, want) in cases {
        let mut o = tiny(dir.path());
        change(&mut o);
        let e = measure(&o, |_| {}).expect_err(want).to_string();
        assert!(e.contains(want), "{want}: {e}");
    }
    assert_eq!(std::fs::read_dir(dir.path()).expect("list").count(), 0);
}

#[test]
fn os_errors_an_operator_can_act_on_get_their_own_message() {
    let dir = Path::new("/data");
    let os = |op, code| ferrisdb_io::Error::Os {
        op,
        path: "/data/f".into(),
        source: std::io::Error::from_raw_os_error(code),
    };
    let e = classify(os("fallocate", libc::ENOSPC), dir, "ext4", 1 << 30).to_string();
    assert!(e.starts_with("no space left on the device of /data"), "{e}");
    let e = classify(os("open", libc::EINVAL), dir, "fuse", 1).to_string();
    assert!(e.contains("(fuse) does not support direct I/O"), "{e}");
    let e = classify(os("read", libc::EOPNOTSUPP), dir, "ext4", 1).to_string();
    assert!(
        e.contains("does not support direct I/O") && e.contains("read failed"),
        "{e}"
    );
    let e = classify(os("write probe file", libc::EROFS), dir, "ext4", 1).to_string();
    assert!(e.starts_with("/data is not writable"), "{e}");
    let e = classify(os("write", libc::EIO), dir, "ext4", 1).to_string();
    assert!(e.starts_with("write /data/f: "), "{e}");
}

#[test]
fn splitmix_spreads_offsets_over_the_file() {
    let mut rng = SplitMix(1);
    let mut seen = [false; 64];
    for _ in 0..1000 {
        seen[(rng.next() % 64) as usize] = true;
    }
    assert!(seen.iter().all(|s| *s));
}
