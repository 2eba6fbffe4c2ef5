//! `ferrisdb cert`: make a CA and node/client certificates (rcgen), and check
//! the node's TLS files (loaded by [`ferrisdb_proto::tls`]) against each other.
//!
//! Trust model (mutual TLS): one CA signs every node and client certificate.
//! A node accepts clients whose certificate chains to the CA (extended key
//! usage clientAuth); a client accepts a node whose certificate chains to the
//! CA and names the address or host it dialled (serverAuth, SAN). Node
//! certificates carry clientAuth too, so nodes can dial each other.
//!
//! Keys are ECDSA P-256 in PKCS#8 PEM, written with mode 0600.

mod der;

use anyhow::{Context, bail};
use ferrisdb_proto::tls;
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose, SanType,
};
use rustls_pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use std::io::Write;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

pub const CA_CERT_FILE: &str = "ca.pem";
pub const CA_KEY_FILE: &str = "ca.key";
pub const NODE_CERT_FILE: &str = "node.pem";
pub const NODE_KEY_FILE: &str = "node.key";
pub const CLIENT_CERT_FILE: &str = "client.pem";
pub const CLIENT_KEY_FILE: &str = "client.key";

pub const CA_NAME_DEFAULT: &str = "FerrisDB CA";
pub const CA_DAYS_DEFAULT: u32 = 3650;
pub const LEAF_DAYS_DEFAULT: u32 = 365;
pub const DAYS_MAX: u32 = 36_500;
/// X.520 upper bound of a common name.
pub const NAME_CHARS_MAX: usize = 64;

const DAY: Duration = Duration::from_secs(86_400);
const KEY_MODE: u32 = 0o600;
const CERT_MODE: u32 = 0o644;

#[derive(Debug, clap::Subcommand)]
#[expect(
    clippy::enum_variant_names,
    reason = "the subcommands are create-ca, create-node, create-client"
)]
pub enum CertCommand {
    /// Make a certificate authority: OUT/ca.pem and OUT/ca.key.
    CreateCa(CaArgs),
    /// Make a node certificate signed by the CA: OUT/node.pem and OUT/node.key.
    ///
    /// The certificate is valid for 127.0.0.1, ::1 and localhost, plus every
    /// --ip and --dns given.
    CreateNode(NodeArgs),
    /// Make a client certificate signed by the CA: OUT/client.pem and OUT/client.key.
    CreateClient(ClientArgs),
}

#[derive(Debug, clap::Args)]
pub struct CaArgs {
    /// Directory to write ca.pem and ca.key into (created if missing).
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
    /// Common name of the CA.
    #[arg(long, default_value = CA_NAME_DEFAULT)]
    pub name: String,
    /// Days the certificate is valid.
    #[arg(long, default_value_t = CA_DAYS_DEFAULT, value_parser = clap::value_parser!(u32).range(1..=i64::from(DAYS_MAX)))]
    pub days: u32,
    /// Replace existing files.
    #[arg(long)]
    pub force: bool,
}

#[derive(Debug, clap::Args)]
pub struct NodeArgs {
    /// Directory holding the CA's ca.pem and ca.key.
    #[arg(long, value_name = "DIR")]
    pub ca: PathBuf,
    /// Directory to write node.pem and node.key into (created if missing).
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
    /// Common name of the node.
    #[arg(long)]
    pub name: String,
    /// An IP address clients dial this node at (repeatable).
    #[arg(long = "ip", value_name = "IP")]
    pub ips: Vec<IpAddr>,
    /// A DNS name clients dial this node at (repeatable).
    #[arg(long = "dns", value_name = "NAME")]
    pub dns_names: Vec<String>,
    /// Days the certificate is valid.
    #[arg(long, default_value_t = LEAF_DAYS_DEFAULT, value_parser = clap::value_parser!(u32).range(1..=i64::from(DAYS_MAX)))]
    pub days: u32,
    /// Replace existing files.
    #[arg(long)]
    pub force: bool,
}

#[derive(Debug, clap::Args)]
pub struct ClientArgs {
    /// Directory holding the CA's ca.pem and ca.key.
    #[arg(long, value_name = "DIR")]
    pub ca: PathBuf,
    /// Directory to write client.pem and client.key into (created if missing).
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
    /// Common name of the client (its identity in the node's logs).
    #[arg(long)]
    pub name: String,
    /// Days the certificate is valid.
    #[arg(long, default_value_t = LEAF_DAYS_DEFAULT, value_parser = clap::value_parser!(u32).range(1..=i64::from(DAYS_MAX)))]
    pub days: u32,
    /// Replace existing files.
    #[arg(long)]
    pub force: bool,
}

pub fn run(cmd: CertCommand) -> anyhow::Result<ExitCode> {
    let written = match cmd {
        CertCommand::CreateCa(a) => create_ca(&a.out, &a.name, a.days, a.force)?,
        CertCommand::CreateNode(a) => create_node(
            &a.ca,
            &a.out,
            &a.name,
            &a.ips,
            &a.dns_names,
            a.days,
            a.force,
        )?,
        CertCommand::CreateClient(a) => create_client(&a.ca, &a.out, &a.name, a.days, a.force)?,
    };
    println!("wrote {}", written.cert.display());
    println!("wrote {} (private key, mode 0600)", written.key.display());
    Ok(ExitCode::SUCCESS)
}

/// A certificate and its private key, as written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Written {
    pub cert: PathBuf,
    pub key: PathBuf,
}

/// A complete set for a single-machine cluster: CA, node, client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertSet {
    pub ca: Written,
    pub node: Written,
    pub client: Written,
}

/// Makes a CA, a node certificate (valid for 127.0.0.1, ::1 and localhost)
/// and a client certificate named "client", all in `dir`.
pub fn create_all(dir: &Path, force: bool) -> anyhow::Result<CertSet> {
    let ca = create_ca(dir, CA_NAME_DEFAULT, CA_DAYS_DEFAULT, force)?;
    let node = create_node(dir, dir, "node", &[], &[], LEAF_DAYS_DEFAULT, force)?;
    let client = create_client(dir, dir, "client", LEAF_DAYS_DEFAULT, force)?;
    Ok(CertSet { ca, node, client })
}

/// Writes `out/ca.pem` and `out/ca.key`: a CA that signs end-entity
/// certificates only (path length 0).
pub fn create_ca(out: &Path, name: &str, days: u32, force: bool) -> anyhow::Result<Written> {
    let mut params = leaf_or_ca_params(name, days)?;
    params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    let key = KeyPair::generate().context("generate the CA key")?;
    let cert = params
        .self_signed(&key)
        .context("sign the CA certificate")?;
    write_pair(
        out,
        CA_CERT_FILE,
        CA_KEY_FILE,
        &cert.pem(),
        &key.serialize_pem(),
        force,
    )
}

/// Writes `out/node.pem` and `out/node.key`, signed by the CA in `ca_dir`.
pub fn create_node(
    ca_dir: &Path,
    out: &Path,
    name: &str,
    ips: &[IpAddr],
    dns_names: &[String],
    days: u32,
    force: bool,
) -> anyhow::Result<Written> {
    let mut params = leaf_or_ca_params(name, days)?;
    params.extended_key_usages = vec![
        ExtendedKeyUsagePurpose::ServerAuth,
        ExtendedKeyUsagePurpose::ClientAuth,
    ];
    params.subject_alt_names = node_sans(ips, dns_names)?;
    sign_leaf(ca_dir, out, params, NODE_CERT_FILE, NODE_KEY_FILE, force)
}

/// Writes `out/client.pem` and `out/client.key`, signed by the CA in `ca_dir`.
pub fn create_client(
    ca_dir: &Path,
    out: &Path,
    name: &str,
    days: u32,
    force: bool,
) -> anyhow::Result<Written> {
    let mut params = leaf_or_ca_params(name, days)?;
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
    sign_leaf(
        ca_dir,
        out,
        params,
        CLIENT_CERT_FILE,
        CLIENT_KEY_FILE,
        force,
    )
}

/// A throwaway self-signed certificate for 127.0.0.1, ::1 and localhost, for
/// a node started with `--insecure` (clients do not verify it).
pub fn self_signed_node() -> anyhow::Result<(CertificateDer<'static>, PrivateKeyDer<'static>)> {
    let mut params = leaf_or_ca_params("ferrisdb insecure node", 1)?;
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    params.subject_alt_names = node_sans(&[], &[])?;
    let key = KeyPair::generate().context("generate a key")?;
    let cert = params
        .self_signed(&key)
        .context("sign a self-signed certificate")?;
    let key_der = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der()));
    Ok((cert.der().clone(), key_der))
}

/// Fails unless `key` is the private key of the first certificate of `chain`.
pub fn check_key_matches(
    chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
) -> anyhow::Result<()> {
    let provider = rustls::crypto::ring::default_provider();
    let signing_key = provider
        .key_provider
        .load_private_key(key)
        .map_err(|e| anyhow::anyhow!("unusable private key: {e}"))?;
    rustls::sign::CertifiedKey::new(chain, signing_key)
        .keys_match()
        .map_err(|_| anyhow::anyhow!("the private key does not belong to the certificate"))
}

/// Fails unless the first certificate of `chain` (the rest being
/// intermediates) chains to `roots`, is valid now and may serve TLS.
pub fn check_issued_by(
    chain: &[CertificateDer<'static>],
    roots: &rustls::RootCertStore,
) -> anyhow::Result<()> {
    let (leaf, intermediates) = chain.split_first().context("no certificate")?;
    let parsed = rustls::server::ParsedCertificate::try_from(leaf)
        .map_err(|e| anyhow::anyhow!("unusable certificate: {e}"))?;
    let algorithms = rustls::crypto::ring::default_provider().signature_verification_algorithms;
    rustls::client::verify_server_cert_signed_by_trust_anchor(
        &parsed,
        roots,
        intermediates,
        rustls_pki_types::UnixTime::now(),
        algorithms.all,
    )
    .map_err(|e| {
        use rustls::CertificateError as E;
        let why = match &e {
            rustls::Error::InvalidCertificate(E::UnknownIssuer) => {
                "not signed by this CA".to_string()
            }
            rustls::Error::InvalidCertificate(E::BadSignature) => {
                "its signature does not verify with this CA's key (another CA of the same name?)"
                    .to_string()
            }
            rustls::Error::InvalidCertificate(E::Expired | E::ExpiredContext { .. }) => {
                "expired".to_string()
            }
            rustls::Error::InvalidCertificate(E::NotValidYet | E::NotValidYetContext { .. }) => {
                "not valid yet (check the clock)".to_string()
            }
            other => other.to_string(),
        };
        anyhow::anyhow!("{why}")
    })
}

/// Subject `O=FerrisDB, CN=name`, valid from yesterday (clock skew) for `days` days.
fn leaf_or_ca_params(name: &str, days: u32) -> anyhow::Result<CertificateParams> {
    if name.trim().is_empty()
        || name.chars().count() > NAME_CHARS_MAX
        || name.chars().any(char::is_control)
    {
        bail!("invalid name {name:?}: 1 to {NAME_CHARS_MAX} printable characters");
    }
    if !(1..=DAYS_MAX).contains(&days) {
        bail!("invalid validity of {days} days: 1 to {DAYS_MAX}");
    }
    let mut params = CertificateParams::default();
    params.distinguished_name = DistinguishedName::new();
    params
        .distinguished_name
        .push(DnType::OrganizationName, "FerrisDB");
    params.distinguished_name.push(DnType::CommonName, name);
    let (y, m, d) = today_utc();
    params.not_before = rcgen::date_time_ymd(y, m, d) - DAY;
    params.not_after = params.not_before + DAY * (days + 1);
    params.is_ca = IsCa::ExplicitNoCa;
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.use_authority_key_identifier_extension = true;
    Ok(params)
}

/// 127.0.0.1, ::1 and localhost, then `ips` and `dns_names` (duplicates dropped).
fn node_sans(ips: &[IpAddr], dns_names: &[String]) -> anyhow::Result<Vec<SanType>> {
    let mut all_ips = vec![
        IpAddr::V4(Ipv4Addr::LOCALHOST),
        IpAddr::V6(Ipv6Addr::LOCALHOST),
    ];
    for ip in ips {
        if !all_ips.contains(ip) {
            all_ips.push(*ip);
        }
    }
    let mut names = vec!["localhost".to_string()];
    for name in dns_names {
        rustls_pki_types::DnsName::try_from(name.as_str())
            .map_err(|_| anyhow::anyhow!("invalid DNS name {name:?}"))?;
        let name = name.to_ascii_lowercase();
        if !names.contains(&name) {
            names.push(name);
        }
    }
    let mut sans: Vec<SanType> = all_ips.into_iter().map(SanType::IpAddress).collect();
    for name in names {
        let ia5 = name
            .as_str()
            .try_into()
            .map_err(|_| anyhow::anyhow!("invalid DNS name {name:?}"))?;
        sans.push(SanType::DnsName(ia5));
    }
    Ok(sans)
}

fn sign_leaf(
    ca_dir: &Path,
    out: &Path,
    params: CertificateParams,
    cert_file: &str,
    key_file: &str,
    force: bool,
) -> anyhow::Result<Written> {
    let (issuer, issuer_key) = load_issuer(ca_dir)?;
    let key = KeyPair::generate().context("generate a key")?;
    let cert = params
        .signed_by(&key, &issuer, &issuer_key)
        .context("sign the certificate")?;
    write_pair(
        out,
        cert_file,
        key_file,
        &cert.pem(),
        &key.serialize_pem(),
        force,
    )
}

/// The CA of `ca_dir` in the form rcgen signs with. rcgen (without its
/// x509-parser feature) cannot read a certificate, so the CA's subject is
/// decoded here, the CA re-signed in memory with its own key, and the
/// rebuilt subject compared byte for byte with the file's: a leaf's issuer
/// must equal the CA's subject exactly, or chains would not verify.
fn load_issuer(ca_dir: &Path) -> anyhow::Result<(rcgen::Certificate, KeyPair)> {
    let cert_path = ca_dir.join(CA_CERT_FILE);
    let key_path = ca_dir.join(CA_KEY_FILE);
    let ca_der = tls::load_certs(&cert_path)?.swap_remove(0);
    let key_pem = std::fs::read_to_string(&key_path)
        .with_context(|| format!("read CA key {}", key_path.display()))?;
    let key = KeyPair::from_pem(&key_pem)
        .map_err(|e| anyhow::anyhow!("{}: not a usable private key: {e}", key_path.display()))?;
    let parts = der::CertParts::parse(&ca_der)
        .with_context(|| format!("{}: not an X.509 certificate", cert_path.display()))?;
    if parts.spki != key.public_key_der().as_slice() {
        bail!(
            "{} is not the key of {}",
            key_path.display(),
            cert_path.display()
        );
    }
    let mut params = CertificateParams::default();
    params.distinguished_name = der::distinguished_name(parts.subject)
        .with_context(|| format!("{}: unsupported subject", cert_path.display()))?;
    params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let rebuilt = params
        .self_signed(&key)
        .context("rebuild the CA certificate")?;
    let rebuilt_parts = der::CertParts::parse(rebuilt.der()).context("parse the rebuilt CA")?;
    if rebuilt_parts.subject != parts.subject {
        bail!(
            "{}: the subject name uses an encoding this tool cannot reproduce; make the CA with `ferrisdb cert create-ca`",
            cert_path.display()
        );
    }
    Ok((rebuilt, key))
}

/// Writes the certificate (0644) and the key (0600). Without `force`, fails
/// before writing anything if either exists; with it, replaces each file
/// atomically (temporary file, then rename).
fn write_pair(
    out: &Path,
    cert_file: &str,
    key_file: &str,
    cert_pem: &str,
    key_pem: &str,
    force: bool,
) -> anyhow::Result<Written> {
    std::fs::create_dir_all(out)
        .with_context(|| format!("create output directory {}", out.display()))?;
    let written = Written {
        cert: out.join(cert_file),
        key: out.join(key_file),
    };
    if !force {
        for path in [&written.cert, &written.key] {
            if path.symlink_metadata().is_ok() {
                bail!(
                    "{} already exists; pass --force to replace it",
                    path.display()
                );
            }
        }
    }
    write_file(&written.key, key_pem, KEY_MODE, force)?;
    write_file(&written.cert, cert_pem, CERT_MODE, force)?;
    Ok(written)
}

fn write_file(path: &Path, text: &str, mode: u32, replace: bool) -> anyhow::Result<()> {
    let target = if replace {
        let mut name = path
            .file_name()
            .expect("joined from a file name")
            .to_os_string();
        name.push(".tmp");
        path.with_file_name(name)
    } else {
        path.to_path_buf()
    };
    if replace {
        // A leftover from a crash could have another mode; create_new below needs it gone.
        match std::fs::remove_file(&target) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                return Err(e).with_context(|| format!("remove {}", target.display()));
            }
            _ => {}
        }
    }
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(&target)
        .with_context(|| format!("create {}", target.display()))?;
    file.write_all(text.as_bytes())
        .and_then(|()| file.sync_all())
        .with_context(|| format!("write {}", target.display()))?;
    if replace {
        std::fs::rename(&target, path)
            .with_context(|| format!("rename {} to {}", target.display(), path.display()))?;
    }
    Ok(())
}

/// Today's date in UTC (proleptic Gregorian), from the system clock.
fn today_utc() -> (i32, u8, u8) {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    civil_from_days(i64::try_from(secs / 86_400).expect("days since 1970 fit in i64"))
}

/// Howard Hinnant's `civil_from_days`: days since 1970-01-01 to (year, month, day).
fn civil_from_days(days: i64) -> (i32, u8, u8) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    (
        i32::try_from(year).expect("year of the system clock fits in i32"),
        u8::try_from(month).expect("month is 1..=12"),
        u8::try_from(day).expect("day is 1..=31"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use rustls::client::danger::ServerCertVerifier;
    use rustls::server::danger::ClientCertVerifier;
    use rustls_pki_types::{ServerName, UnixTime};
    use std::os::unix::fs::PermissionsExt;
    use std::sync::Arc;

    fn provider() -> Arc<rustls::crypto::CryptoProvider> {
        Arc::new(rustls::crypto::ring::default_provider())
    }

    fn server_verifier(ca: &Path) -> Arc<rustls::client::WebPkiServerVerifier> {
        rustls::client::WebPkiServerVerifier::builder_with_provider(
            Arc::new(tls::load_roots(ca).expect("roots")),
            provider(),
        )
        .build()
        .expect("verifier")
    }

    fn client_verifier(ca: &Path) -> Arc<dyn ClientCertVerifier> {
        rustls::server::WebPkiClientVerifier::builder_with_provider(
            Arc::new(tls::load_roots(ca).expect("roots")),
            provider(),
        )
        .build()
        .expect("verifier")
    }

    fn leaf(path: &Path) -> CertificateDer<'static> {
        tls::load_certs(path).expect("cert").swap_remove(0)
    }

    fn verify_as_server(ca: &Path, cert: &Path, name: &str) -> Result<(), rustls::Error> {
        let name = ServerName::try_from(name.to_string()).expect("server name");
        server_verifier(ca)
            .verify_server_cert(&leaf(cert), &[], &name, &[], UnixTime::now())
            .map(|_| ())
    }

    fn verify_as_client(ca: &Path, cert: &Path) -> Result<(), rustls::Error> {
        client_verifier(ca)
            .verify_client_cert(&leaf(cert), &[], UnixTime::now())
            .map(|_| ())
    }

    #[test]
    fn a_full_set_verifies_against_its_ca() {
        let dir = tempfile::tempdir().expect("tempdir");
        let set = create_all(dir.path(), false).expect("create");
        let ca = &set.ca.cert;
        for name in ["localhost", "127.0.0.1", "::1"] {
            verify_as_server(ca, &set.node.cert, name).expect("node is valid for loopback");
        }
        verify_as_client(ca, &set.client.cert).expect("client verifies");
        verify_as_client(ca, &set.node.cert).expect("nodes can dial nodes");
        assert!(
            verify_as_server(ca, &set.node.cert, "evil.example").is_err(),
            "SAN is checked"
        );
        assert!(
            verify_as_server(ca, &set.client.cert, "localhost").is_err(),
            "client cert is no server cert"
        );

        for written in [&set.ca, &set.node, &set.client] {
            let mode = std::fs::metadata(&written.key)
                .expect("stat")
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600, "{}", written.key.display());
            let chain = tls::load_certs(&written.cert).expect("cert");
            check_key_matches(chain, tls::load_private_key(&written.key).expect("key"))
                .expect("pair matches");
        }
        let roots = tls::load_roots(&set.ca.cert).expect("roots");
        check_issued_by(&tls::load_certs(&set.node.cert).expect("cert"), &roots)
            .expect("issued by CA");
        let other = tempfile::tempdir().expect("tempdir");
        let other_ca = create_ca(other.path(), CA_NAME_DEFAULT, 10, false).expect("other CA");
        let other_roots = tls::load_roots(&other_ca.cert).expect("roots");
        let e = check_issued_by(
            &tls::load_certs(&set.node.cert).expect("cert"),
            &other_roots,
        )
        .expect_err("another CA with the same name");
        assert!(
            e.to_string().contains("does not verify with this CA's key"),
            "{e}"
        );
        let wrong = check_key_matches(
            tls::load_certs(&set.node.cert).expect("cert"),
            tls::load_private_key(&set.client.key).expect("key"),
        );
        assert!(wrong.is_err());
    }

    #[test]
    fn extra_sans_and_a_foreign_ca() {
        let dir = tempfile::tempdir().expect("tempdir");
        let ca_dir = dir.path().join("ca");
        let other_ca = dir.path().join("other");
        create_ca(&ca_dir, "Test CA", 10, false).expect("ca");
        create_ca(&other_ca, "Test CA", 10, false).expect("other ca");
        let node = create_node(
            &ca_dir,
            &dir.path().join("n1"),
            "n1",
            &[
                "10.0.0.7".parse().expect("ip"),
                "10.0.0.7".parse().expect("ip"),
            ],
            &["N1.example.com".to_string(), "n1.example.com".to_string()],
            30,
            false,
        )
        .expect("node");
        let ca = ca_dir.join(CA_CERT_FILE);
        for name in ["10.0.0.7", "n1.example.com", "localhost"] {
            verify_as_server(&ca, &node.cert, name).expect("valid SAN");
        }
        let other = other_ca.join(CA_CERT_FILE);
        assert!(
            verify_as_server(&other, &node.cert, "localhost").is_err(),
            "same name, other key"
        );
    }

    #[test]
    fn existing_files_are_refused_unless_forced() {
        let dir = tempfile::tempdir().expect("tempdir");
        let first = create_ca(dir.path(), "A", 10, false).expect("ca");
        let before = std::fs::read(&first.cert).expect("read");
        let e = format!(
            "{:#}",
            create_ca(dir.path(), "A", 10, false).expect_err("exists")
        );
        assert!(
            e.ends_with("ca.pem already exists; pass --force to replace it"),
            "{e}"
        );
        assert_eq!(
            std::fs::read(&first.cert).expect("read"),
            before,
            "untouched"
        );
        std::fs::set_permissions(&first.key, std::fs::Permissions::from_mode(0o644))
            .expect("chmod");
        create_ca(dir.path(), "A", 10, true).expect("forced");
        assert_ne!(
            std::fs::read(&first.cert).expect("read"),
            before,
            "replaced"
        );
        let mode = std::fs::metadata(&first.key)
            .expect("stat")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600, "a replaced key is private again");
    }

    #[test]
    fn bad_inputs_are_clear_errors() {
        let dir = tempfile::tempdir().expect("tempdir");
        let e = format!(
            "{:#}",
            create_node(dir.path(), dir.path(), "n", &[], &[], 10, false).expect_err("no CA")
        );
        assert!(e.contains("ca.pem") && e.contains("No such file"), "{e}");
        create_ca(dir.path(), "A", 10, false).expect("ca");
        let e = format!(
            "{:#}",
            create_node(
                dir.path(),
                dir.path(),
                "n",
                &[],
                &["bad name!".into()],
                10,
                false
            )
            .expect_err("dns")
        );
        assert_eq!(e, "invalid DNS name \"bad name!\"");
        let e = format!(
            "{:#}",
            create_client(dir.path(), dir.path(), "", 10, false).expect_err("name")
        );
        assert!(e.starts_with("invalid name"), "{e}");
        let e = format!(
            "{:#}",
            create_client(dir.path(), dir.path(), "c", 0, false).expect_err("days")
        );
        assert!(e.starts_with("invalid validity"), "{e}");
        // A CA key that does not belong to the CA certificate.
        let other = tempfile::tempdir().expect("tempdir");
        create_ca(other.path(), "B", 10, false).expect("ca");
        std::fs::copy(other.path().join(CA_KEY_FILE), dir.path().join(CA_KEY_FILE)).expect("copy");
        let e = format!(
            "{:#}",
            create_client(dir.path(), dir.path(), "c", 10, false).expect_err("mismatch")
        );
        assert!(e.contains("is not the key of"), "{e}");
        std::fs::write(dir.path().join("junk.pem"), "hello").expect("write");
        let e = format!(
            "{:#}",
            tls::load_certs(&dir.path().join("junk.pem")).expect_err("junk")
        );
        assert!(e.ends_with("junk.pem holds no PEM certificates"), "{e}");
    }

    #[test]
    fn node_sans_are_loopback_plus_given_without_duplicates() {
        let ip: IpAddr = "10.0.0.7".parse().expect("ip");
        let sans = node_sans(
            &[ip, ip, "::1".parse().expect("ip")],
            &["A.example".into(), "a.example".into()],
        )
        .expect("sans");
        let shown: Vec<String> = sans.iter().map(|s| format!("{s:?}")).collect();
        assert_eq!(shown.len(), 5, "{shown:?}");
        assert!(
            shown[2].contains("10.0.0.7") && shown[4].contains("a.example"),
            "{shown:?}"
        );
    }

    #[test]
    fn self_signed_node_cert_parses() {
        let (cert, key) = self_signed_node().expect("self-signed");
        check_key_matches(vec![cert.clone()], key).expect("pair matches");
        let parts = der::CertParts::parse(&cert).expect("parse");
        assert!(!parts.subject.is_empty());
    }

    #[test]
    fn civil_dates() {
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(19_782), (2024, 2, 29));
        assert_eq!(civil_from_days(-1), (1969, 12, 31));
        assert_eq!(civil_from_days(20_000), (2024, 10, 4));
    }
}
