//! The operator's commands end to end through the built binary:
//! `ferrisdb config print` (file < environment < flags, one-line errors,
//! exit status 1) and `ferrisdb cert create-*` (files a rustls peer accepts).
//!
//! Every run starts from an empty environment, so variables of the test
//! runner never leak into the configuration under test.

use rustls::client::danger::ServerCertVerifier;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Output};
use std::sync::Arc;

fn ferrisdb(args: &[&str], env: &[(&str, &str)]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_ferrisdb"))
        .args(args)
        .env_clear()
        .envs(env.iter().copied())
        .output()
        .expect("run ferrisdb")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn s(p: &Path) -> &str {
    p.to_str().expect("utf-8 path")
}

/// Asserts the run failed with status 1 and exactly one line
/// `error: <prefix>...`; returns that line.
fn one_line_error(o: &Output, prefix: &str) -> String {
    let err = stderr(o);
    assert_eq!(o.status.code(), Some(1), "stderr: {err}");
    assert!(!err.contains("panicked"), "{err}");
    assert_eq!(err.lines().count(), 1, "one line: {err}");
    let want = format!("error: {prefix}");
    assert!(err.starts_with(&want), "want `{want}...`, got: {err}");
    err.trim_end().to_string()
}

fn printed(o: &Output) -> toml::Table {
    assert!(o.status.success(), "stderr: {}", stderr(o));
    toml::from_str(&stdout(o)).expect("config print writes TOML")
}

#[test]
fn config_print_merges_file_env_and_flags_in_that_order() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let file = tmp.path().join("ferrisdb.toml");
    std::fs::write(
        &file,
        "data_dir = \"/file\"\ninsecure = true\ncores = 1\nshards_per_core = 2\n\
         memtable_bytes = \"1MiB\"\nlog_format = \"json\"\n",
    )
    .expect("write config");
    let f = s(&file);

    let t = printed(&ferrisdb(&["config", "print", "--config", f], &[]));
    assert_eq!(t["data_dir"].as_str(), Some("/file"));
    assert_eq!(t["shards_per_core"].as_integer(), Some(2));
    assert_eq!(t["memtable_bytes"].as_integer(), Some(1 << 20));
    assert_eq!(t["log_format"].as_str(), Some("json"));
    assert_eq!(t["listen"].as_str(), Some("127.0.0.1:7400"), "default");
    assert_eq!(t["admin"].as_str(), Some("127.0.0.1:7480"), "default");
    assert_eq!(
        t["block_cache_bytes"].as_integer(),
        Some(256 << 20),
        "default"
    );
    assert_eq!(
        t["request_timeout_ms"].as_integer(),
        Some(10_000),
        "default"
    );

    let env = [
        ("FERRISDB_DATA_DIR", "/env"),
        ("FERRISDB_SHARDS_PER_CORE", "3"),
        ("FERRISDB_LOG_FORMAT", "pretty"),
        ("FERRISDB_MODEL_CASES", "not ours, ignored"),
    ];
    let t = printed(&ferrisdb(&["config", "print", "--config", f], &env));
    assert_eq!(t["data_dir"].as_str(), Some("/env"));
    assert_eq!(t["shards_per_core"].as_integer(), Some(3));
    assert_eq!(t["log_format"].as_str(), Some("pretty"));
    assert_eq!(t["memtable_bytes"].as_integer(), Some(1 << 20), "file kept");

    let t = printed(&ferrisdb(
        &[
            "config",
            "print",
            "--config",
            f,
            "--data-dir",
            "/flag",
            "--shards-per-core",
            "5",
            "--listen",
            "[::1]:9000",
            "--memtable-bytes",
            "2MiB",
            "--request-timeout-ms",
            "250",
        ],
        &env,
    ));
    assert_eq!(t["data_dir"].as_str(), Some("/flag"));
    assert_eq!(t["shards_per_core"].as_integer(), Some(5));
    assert_eq!(t["listen"].as_str(), Some("[::1]:9000"));
    assert_eq!(t["memtable_bytes"].as_integer(), Some(2 << 20));
    assert_eq!(t["request_timeout_ms"].as_integer(), Some(250));
    assert_eq!(t["log_format"].as_str(), Some("pretty"), "env kept");

    // FERRISDB_CONFIG names the file when --config is absent.
    let t = printed(&ferrisdb(&["config", "print"], &[("FERRISDB_CONFIG", f)]));
    assert_eq!(t["data_dir"].as_str(), Some("/file"));
}

#[test]
fn malformed_config_is_one_line_naming_file_and_line_with_status_1() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let file = tmp.path().join("bad.toml");
    std::fs::write(&file, "data_dir = \"/d\"\ninsecure = true\ncores = = 1\n").expect("write");
    let prefix = format!("config file {}: line 3, column ", file.display());
    for cmd in [&["config", "print"][..], &["start"][..]] {
        let mut args = cmd.to_vec();
        args.extend(["--config", s(&file)]);
        one_line_error(&ferrisdb(&args, &[]), &prefix);
    }

    std::fs::write(
        &file,
        "data_dir = \"/d\"\n\n[tls]\nca_cert = \"x\"\ncrt = \"y\"\n",
    )
    .expect("write");
    let line = one_line_error(
        &ferrisdb(&["start", "--config", s(&file)], &[]),
        &format!(
            "config file {}: line 5, column 1: unknown field `crt`",
            file.display()
        ),
    );
    assert!(line.contains("expected one of"), "{line}");

    let missing = tmp.path().join("missing.toml");
    one_line_error(
        &ferrisdb(&["start", "--config", s(&missing)], &[]),
        &format!("read config file {}: No such file", missing.display()),
    );
}

#[test]
fn bad_settings_are_one_clear_line_with_status_1() {
    one_line_error(
        &ferrisdb(&["start", "--insecure"], &[]),
        "no data directory: pass --data-dir DIR, set FERRISDB_DATA_DIR",
    );
    one_line_error(
        &ferrisdb(
            &[
                "start",
                "--data-dir",
                "/d",
                "--insecure",
                "--listen",
                "0.0.0.0:7400",
            ],
            &[],
        ),
        "insecure mode binds loopback only, but listen is 0.0.0.0:7400",
    );
    one_line_error(
        &ferrisdb(
            &["config", "print", "--data-dir", "/d"],
            &[
                ("FERRISDB_INSECURE", "true"),
                ("FERRISDB_ADMIN", "0.0.0.0:7480"),
            ],
        ),
        "insecure mode binds loopback only, but admin is 0.0.0.0:7480",
    );
    one_line_error(
        &ferrisdb(
            &["config", "print", "--data-dir", "/d", "--insecure"],
            &[("FERRISDB_CORES", "two")],
        ),
        "environment variable FERRISDB_CORES=\"two\": invalid digit",
    );
    one_line_error(
        &ferrisdb(
            &[
                "config",
                "print",
                "--data-dir",
                "/d",
                "--insecure",
                "--cores",
                "0",
            ],
            &[],
        ),
        "cores is 0; it must be between 1 and 64",
    );
    let too_many = (std::thread::available_parallelism().map_or(1, |n| n.get()) + 1).to_string();
    if too_many.parse::<usize>().expect("number") <= 64 {
        one_line_error(
            &ferrisdb(
                &[
                    "config",
                    "print",
                    "--data-dir",
                    "/d",
                    "--insecure",
                    "--cores",
                    &too_many,
                ],
                &[],
            ),
            &format!("cores is {too_many} but only"),
        );
    }
    one_line_error(
        &ferrisdb(&["config", "print", "--data-dir", "/d"], &[]),
        "mutual TLS needs tls.ca_cert (--ca-cert), tls.cert (--cert), tls.key (--key)",
    );
    one_line_error(
        &ferrisdb(
            &[
                "config",
                "print",
                "--data-dir",
                "/d",
                "--ca-cert",
                "/nope/ca.pem",
                "--cert",
                "/nope/n.pem",
                "--key",
                "/nope/n.key",
            ],
            &[],
        ),
        "tls.ca_cert: read PEM certificates from /nope/ca.pem: I/O error: No such file",
    );
    // A flag clap cannot parse is a usage error (status 2), not a crash.
    let o = ferrisdb(&["config", "print", "--memtable-bytes", "lots"], &[]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("invalid size \"lots\""),
        "{}",
        stderr(&o)
    );
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn roots(ca: &Path) -> Arc<rustls::RootCertStore> {
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_file_iter(ca).expect("open CA") {
        roots
            .add(cert.expect("CA parses"))
            .expect("CA is a trust anchor");
    }
    Arc::new(roots)
}

fn leaf(path: &Path) -> CertificateDer<'static> {
    CertificateDer::from_pem_file(path).expect("certificate parses")
}

fn verify_server(ca: &Path, cert: &Path, name: &str) -> Result<(), rustls::Error> {
    let verifier =
        rustls::client::WebPkiServerVerifier::builder_with_provider(roots(ca), provider())
            .build()
            .expect("server verifier");
    let name = ServerName::try_from(name.to_string()).expect("name");
    verifier
        .verify_server_cert(&leaf(cert), &[], &name, &[], UnixTime::now())
        .map(|_| ())
}

fn verify_client(ca: &Path, cert: &Path) -> Result<(), rustls::Error> {
    let verifier =
        rustls::server::WebPkiClientVerifier::builder_with_provider(roots(ca), provider())
            .build()
            .expect("client verifier");
    verifier
        .verify_client_cert(&leaf(cert), &[], UnixTime::now())
        .map(|_| ())
}

#[test]
fn cert_commands_make_a_ca_node_and_client_that_rustls_accepts() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let ca = tmp.path().join("ca");
    let node = tmp.path().join("node1");
    let client = tmp.path().join("app");
    let ok = |o: Output| assert!(o.status.success(), "stderr: {}", stderr(&o));
    ok(ferrisdb(
        &[
            "cert",
            "create-ca",
            "--out",
            s(&ca),
            "--name",
            "Ops CA",
            "--days",
            "30",
        ],
        &[],
    ));
    ok(ferrisdb(
        &[
            "cert",
            "create-node",
            "--ca",
            s(&ca),
            "--out",
            s(&node),
            "--name",
            "node1",
            "--ip",
            "10.1.2.3",
            "--dns",
            "db1.example.com",
        ],
        &[],
    ));
    ok(ferrisdb(
        &[
            "cert",
            "create-client",
            "--ca",
            s(&ca),
            "--out",
            s(&client),
            "--name",
            "app",
        ],
        &[],
    ));

    for key in [
        ca.join("ca.key"),
        node.join("node.key"),
        client.join("client.key"),
    ] {
        PrivateKeyDer::from_pem_file(&key).expect("key parses");
        let mode = std::fs::metadata(&key).expect("stat").permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "{}", key.display());
    }
    let ca_pem = ca.join("ca.pem");
    for name in [
        "127.0.0.1",
        "::1",
        "localhost",
        "10.1.2.3",
        "db1.example.com",
    ] {
        verify_server(&ca_pem, &node.join("node.pem"), name)
            .unwrap_or_else(|e| panic!("{name}: {e}"));
    }
    assert!(
        verify_server(&ca_pem, &node.join("node.pem"), "10.9.9.9").is_err(),
        "SAN checked"
    );
    verify_client(&ca_pem, &client.join("client.pem")).expect("client accepted by the node");
    assert!(verify_server(&ca_pem, &client.join("client.pem"), "localhost").is_err());

    // Existing files are refused without --force, replaced with it.
    let before = std::fs::read(node.join("node.pem")).expect("read");
    let o = ferrisdb(
        &[
            "cert",
            "create-node",
            "--ca",
            s(&ca),
            "--out",
            s(&node),
            "--name",
            "node1",
        ],
        &[],
    );
    one_line_error(
        &o,
        &format!(
            "{} already exists; pass --force",
            node.join("node.pem").display()
        ),
    );
    assert_eq!(std::fs::read(node.join("node.pem")).expect("read"), before);
    ok(ferrisdb(
        &[
            "cert",
            "create-node",
            "--ca",
            s(&ca),
            "--out",
            s(&node),
            "--name",
            "node1",
            "--force",
        ],
        &[],
    ));
    assert_ne!(std::fs::read(node.join("node.pem")).expect("read"), before);

    // The files make a valid secure configuration; a wrong key does not.
    let tls = |key: &Path| {
        ferrisdb(
            &[
                "config",
                "print",
                "--data-dir",
                "/d",
                "--listen",
                "0.0.0.0:7400",
                "--ca-cert",
                s(&ca_pem),
                "--cert",
                s(&node.join("node.pem")),
                "--key",
                s(key),
            ],
            &[],
        )
    };
    let t = printed(&tls(&node.join("node.key")));
    assert_eq!(t["insecure"].as_bool(), Some(false));
    assert_eq!(t["tls"]["key"].as_str(), Some(s(&node.join("node.key"))));
    one_line_error(&tls(&client.join("client.key")), "tls.key ");
    assert!(
        stderr(&tls(&client.join("client.key"))).contains("does not belong to the certificate")
    );

    // A node certificate from another CA is caught before the node starts.
    let other = tmp.path().join("other-ca");
    ok(ferrisdb(&["cert", "create-ca", "--out", s(&other)], &[]));
    let o = ferrisdb(
        &[
            "config",
            "print",
            "--data-dir",
            "/d",
            "--ca-cert",
            s(&other.join("ca.pem")),
            "--cert",
            s(&node.join("node.pem")),
            "--key",
            s(&node.join("node.key")),
        ],
        &[],
    );
    let line = one_line_error(
        &o,
        &format!(
            "tls.cert {} is not valid under tls.ca_cert",
            node.join("node.pem").display()
        ),
    );
    assert!(line.ends_with("not signed by this CA"), "{line}");

    // Signing with a CA directory that lacks the CA is a clear error.
    let o = ferrisdb(
        &[
            "cert",
            "create-client",
            "--ca",
            s(&node),
            "--out",
            s(&client),
            "--name",
            "x",
        ],
        &[],
    );
    one_line_error(
        &o,
        &format!(
            "read PEM certificates from {}: I/O error: No such file",
            node.join("ca.pem").display()
        ),
    );
}
