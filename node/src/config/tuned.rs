//! The device settings of a node — `io_depth`, `background_shares`,
//! `compaction_bytes_per_sec` — and where they come from: a value set in
//! the file, the environment or a flag wins; otherwise the value
//! `ferrisdb tune config` would derive from an io_properties.toml
//! (`ferrisdb_tuning::derive::device_knobs`); otherwise the default.
//!
//! The io_properties.toml is the one named by `io_properties` (it must
//! exist), else `DATA_DIR/io_properties.toml` if there is one.

use super::{
    BACKGROUND_SHARES_DEFAULT, BACKGROUND_SHARES_MAX, COMPACTION_BYTES_PER_SEC_MAX,
    COMPACTION_BYTES_PER_SEC_MIN, IO_DEPTH_DEFAULT, IO_DEPTH_MAX, NodeConfig,
};
use anyhow::bail;
use ferrisdb_tuning::{IO_PROPERTIES_FILE, IoProperties};
use std::path::{Path, PathBuf};

/// Reads the io_properties.toml at a path: `None` if there is no such file.
pub type IoReader<'a> = dyn Fn(&Path) -> anyhow::Result<Option<IoProperties>> + 'a;

/// The real [`IoReader`]: a missing file (or a parent that is not a
/// directory: a data directory the start checks will refuse with their own
/// message) is `None`; an unreadable or malformed one is an error naming it.
pub fn read_io_properties(path: &Path) -> anyhow::Result<Option<IoProperties>> {
    match std::fs::metadata(path) {
        Err(e)
            if matches!(
                e.kind(),
                std::io::ErrorKind::NotFound | std::io::ErrorKind::NotADirectory
            ) =>
        {
            Ok(None)
        }
        _ => Ok(Some(IoProperties::read(path)?)),
    }
}

/// The device keys as the merged layers set them.
#[derive(Debug, Default)]
pub(super) struct DeviceLayer {
    pub io_depth: Option<u32>,
    pub background_shares: Option<u32>,
    pub compaction_bytes_per_sec: Option<u64>,
    pub io_properties: Option<PathBuf>,
}

/// The device settings a node runs with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Device {
    pub io_depth: u32,
    pub background_shares: u32,
    pub compaction_bytes_per_sec: u64,
    /// The file at least one setting came from.
    pub io_properties: Option<PathBuf>,
}

impl DeviceLayer {
    pub fn resolve(
        self,
        data_dir: &Path,
        cores: usize,
        read: &IoReader<'_>,
    ) -> anyhow::Result<Device> {
        let all_set = self.io_depth.is_some()
            && self.background_shares.is_some()
            && self.compaction_bytes_per_sec.is_some();
        let (path, named) = match &self.io_properties {
            Some(path) => (path.clone(), true),
            None => (data_dir.join(IO_PROPERTIES_FILE), false),
        };
        // A named file must exist even when nothing is taken from it: a
        // typo in its path should not go unnoticed.
        let props = if all_set && !named {
            None
        } else {
            read(&path)?
        };
        if named && props.is_none() {
            bail!(
                "io_properties {}: no such file; write it with `ferrisdb tune disk DIR --out {}`",
                path.display(),
                path.display()
            );
        }
        let knobs = props
            .as_ref()
            .map(|p| ferrisdb_tuning::derive::device_knobs(p, cores.max(1)));
        Ok(Device {
            io_depth: self
                .io_depth
                .or(knobs.map(|k| k.io_depth))
                .unwrap_or(IO_DEPTH_DEFAULT),
            background_shares: self
                .background_shares
                .or(knobs.map(|k| k.background_shares))
                .unwrap_or(BACKGROUND_SHARES_DEFAULT),
            compaction_bytes_per_sec: self
                .compaction_bytes_per_sec
                .or(knobs.map(|k| k.compaction_bytes_per_sec))
                .unwrap_or(0),
            io_properties: (knobs.is_some() && !all_set).then_some(path),
        })
    }
}

/// The bounds of the device settings.
pub(super) fn validate(c: &NodeConfig) -> anyhow::Result<()> {
    if !(1..=IO_DEPTH_MAX).contains(&c.io_depth) {
        bail!(
            "io_depth is {}; it must be between 1 and {IO_DEPTH_MAX}",
            c.io_depth
        );
    }
    if !(1..=BACKGROUND_SHARES_MAX).contains(&c.background_shares) {
        bail!(
            "background_shares is {}; it must be between 1 and {BACKGROUND_SHARES_MAX}",
            c.background_shares
        );
    }
    let rate = c.compaction_bytes_per_sec;
    if rate != 0 && !(COMPACTION_BYTES_PER_SEC_MIN..=COMPACTION_BYTES_PER_SEC_MAX).contains(&rate) {
        bail!(
            "compaction_bytes_per_sec is {rate}; it must be 0 (no limit) or between 1 MiB and 1 TiB"
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::super::{ConfigArgs, ConfigFile, resolve_with};
    use super::*;

    fn props() -> IoProperties {
        let text = include_str!("../../../tuning/profiles/nvme-server.io_properties.toml");
        IoProperties::parse(Path::new("nvme"), text).expect("shipped file parses")
    }

    fn args(dir: &str) -> ConfigArgs {
        ConfigArgs {
            data_dir: Some(dir.into()),
            insecure: true,
            cores: Some(2),
            ..ConfigArgs::default()
        }
    }

    fn no_env(_: &str) -> Option<String> {
        None
    }

    #[test]
    fn io_properties_in_the_data_dir_fill_what_is_not_set() {
        let asked = std::cell::RefCell::new(Vec::new());
        let reader = |p: &Path| {
            asked.borrow_mut().push(p.to_path_buf());
            Ok(Some(props()))
        };
        let c = resolve_with(None, &no_env, &args("/d"), &reader).expect("valid");
        let k = ferrisdb_tuning::derive::device_knobs(&props(), 2);
        assert_eq!(
            (c.io_depth, c.background_shares, c.compaction_bytes_per_sec),
            (k.io_depth, k.background_shares, k.compaction_bytes_per_sec)
        );
        assert_eq!(
            c.io_properties,
            Some(PathBuf::from("/d/io_properties.toml"))
        );
        assert_eq!(
            *asked.borrow(),
            vec![PathBuf::from("/d/io_properties.toml")]
        );

        // An explicit value wins over the file, key by key.
        let file = ConfigFile {
            path: Path::new("/etc/f.toml"),
            text: "io_depth = 3\n",
        };
        let c = resolve_with(Some(file), &no_env, &args("/d"), &reader).expect("valid");
        assert_eq!(c.io_depth, 3);
        assert_eq!(c.background_shares, k.background_shares);
    }

    #[test]
    fn without_io_properties_the_defaults_hold() {
        let c = resolve_with(None, &no_env, &args("/d"), &|_| Ok(None)).expect("valid");
        assert_eq!(
            (c.io_depth, c.background_shares, c.compaction_bytes_per_sec),
            (IO_DEPTH_DEFAULT, BACKGROUND_SHARES_DEFAULT, 0)
        );
        assert_eq!(c.io_properties, None);
    }

    #[test]
    fn a_named_file_must_exist_and_a_bad_one_is_an_error() {
        let named = ConfigArgs {
            io_properties: Some("/x/props.toml".into()),
            ..args("/d")
        };
        let e = format!(
            "{:#}",
            resolve_with(None, &no_env, &named, &|_| Ok(None)).expect_err("missing")
        );
        assert!(
            e.starts_with("io_properties /x/props.toml: no such file"),
            "{e}"
        );
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join(IO_PROPERTIES_FILE);
        std::fs::write(&path, "format_version = 7\n").expect("write");
        let e = format!(
            "{:#}",
            resolve_with(
                None,
                &no_env,
                &args(dir.path().to_str().expect("utf-8")),
                &read_io_properties
            )
            .expect_err("malformed")
        );
        assert!(
            e.contains("io_properties.toml: ") && e.contains("missing field"),
            "{e}"
        );
        assert_eq!(
            read_io_properties(&dir.path().join("none")).expect("absent"),
            None
        );
        let file = dir.path().join("file");
        std::fs::write(&file, b"x").expect("write");
        assert_eq!(
            read_io_properties(&file.join(IO_PROPERTIES_FILE)).expect("under a file"),
            None,
            "a data directory under a file is refused by the data-directory checks"
        );
    }

    #[test]
    fn out_of_range_device_settings_are_rejected() {
        for (change, want) in [
            (
                ConfigArgs {
                    io_depth: Some(0),
                    ..args("/d")
                },
                "io_depth is 0; it must be between 1 and 1024",
            ),
            (
                ConfigArgs {
                    background_shares: Some(5000),
                    ..args("/d")
                },
                "background_shares is 5000",
            ),
            (
                ConfigArgs {
                    compaction_bytes_per_sec: Some(1000),
                    ..args("/d")
                },
                "compaction_bytes_per_sec is 1000",
            ),
        ] {
            let e = format!(
                "{:#}",
                resolve_with(None, &no_env, &change, &|_| Ok(None)).expect_err(want)
            );
            assert!(e.starts_with(want), "{e}");
        }
    }
}
