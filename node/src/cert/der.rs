//! Just enough DER to find a certificate's subject and public key and to
//! turn a subject into an rcgen [`DistinguishedName`]. Input is untrusted:
//! every length is checked, nothing panics.

use anyhow::{Context, bail};
use rcgen::{DistinguishedName, DnType, DnValue};

const SEQUENCE: u8 = 0x30;
const SET: u8 = 0x31;
const INTEGER: u8 = 0x02;
const OID: u8 = 0x06;
const VERSION: u8 = 0xa0;
const UTF8_STRING: u8 = 0x0c;
const PRINTABLE_STRING: u8 = 0x13;
const IA5_STRING: u8 = 0x16;

/// One element: its tag, its content and the whole encoding (header included).
struct Element<'a> {
    tag: u8,
    content: &'a [u8],
    whole: &'a [u8],
}

/// Splits the first element off `input`.
fn element(input: &[u8]) -> anyhow::Result<(Element<'_>, &[u8])> {
    let (&tag, rest) = input.split_first().context("truncated element")?;
    let (&first, rest) = rest.split_first().context("truncated length")?;
    let (len, rest) = if first < 0x80 {
        (usize::from(first), rest)
    } else {
        let n = usize::from(first & 0x7f);
        if n == 0 || n > 4 || rest.len() < n {
            bail!("bad length");
        }
        let (bytes, rest) = rest.split_at(n);
        (
            bytes
                .iter()
                .fold(0usize, |acc, &b| (acc << 8) | usize::from(b)),
            rest,
        )
    };
    if rest.len() < len {
        bail!("element longer than its input");
    }
    let header = input.len() - rest.len();
    let element = Element {
        tag,
        content: &rest[..len],
        whole: &input[..header + len],
    };
    Ok((element, &rest[len..]))
}

fn expect<'a>(input: &'a [u8], tag: u8, what: &str) -> anyhow::Result<(Element<'a>, &'a [u8])> {
    let (e, rest) = element(input).with_context(|| format!("read {what}"))?;
    if e.tag != tag {
        bail!("{what}: tag {:#04x}, expected {tag:#04x}", e.tag);
    }
    Ok((e, rest))
}

/// The parts of an X.509 certificate this tool needs, as encoded.
pub struct CertParts<'a> {
    /// The subject `Name` (a SEQUENCE), header included.
    pub subject: &'a [u8],
    /// The `SubjectPublicKeyInfo`, header included.
    pub spki: &'a [u8],
}

impl<'a> CertParts<'a> {
    pub fn parse(der: &'a [u8]) -> anyhow::Result<CertParts<'a>> {
        let (cert, _) = expect(der, SEQUENCE, "certificate")?;
        let (tbs, _) = expect(cert.content, SEQUENCE, "tbsCertificate")?;
        let mut rest = tbs.content;
        let (first, after) = element(rest).context("read version")?;
        if first.tag == VERSION {
            rest = after;
        }
        let (_, rest) = expect(rest, INTEGER, "serial number")?;
        let (_, rest) = expect(rest, SEQUENCE, "signature algorithm")?;
        let (_, rest) = expect(rest, SEQUENCE, "issuer")?;
        let (_, rest) = expect(rest, SEQUENCE, "validity")?;
        let (subject, rest) = expect(rest, SEQUENCE, "subject")?;
        let (spki, _) = expect(rest, SEQUENCE, "subject public key info")?;
        Ok(CertParts {
            subject: subject.whole,
            spki: spki.whole,
        })
    }
}

/// Decodes a `Name` of single-valued RDNs holding UTF8, Printable or IA5 strings.
pub fn distinguished_name(name: &[u8]) -> anyhow::Result<DistinguishedName> {
    let (name, _) = expect(name, SEQUENCE, "name")?;
    let mut dn = DistinguishedName::new();
    let mut rdns = name.content;
    while !rdns.is_empty() {
        let (set, rest) = expect(rdns, SET, "relative distinguished name")?;
        rdns = rest;
        let (atv, after) = expect(set.content, SEQUENCE, "attribute")?;
        if !after.is_empty() {
            bail!("multi-valued relative distinguished name");
        }
        let (oid, rest) = expect(atv.content, OID, "attribute type")?;
        let (value, _) = element(rest).context("read attribute value")?;
        let text = std::str::from_utf8(value.content).context("attribute value is not text")?;
        let value = match value.tag {
            UTF8_STRING => DnValue::Utf8String(text.to_string()),
            PRINTABLE_STRING => DnValue::PrintableString(text.try_into()?),
            IA5_STRING => DnValue::Ia5String(text.try_into()?),
            tag => bail!("attribute value of string type {tag:#04x}"),
        };
        dn.push(DnType::from_oid(&oid_arcs(oid.content)?), value);
    }
    Ok(dn)
}

fn oid_arcs(bytes: &[u8]) -> anyhow::Result<Vec<u64>> {
    let mut subids = Vec::new();
    let mut value: u64 = 0;
    for (i, &b) in bytes.iter().enumerate() {
        if value > (u64::MAX >> 7) {
            bail!("object identifier arc too large");
        }
        value = (value << 7) | u64::from(b & 0x7f);
        if b & 0x80 == 0 {
            subids.push(value);
            value = 0;
        } else if i + 1 == bytes.len() {
            bail!("truncated object identifier");
        }
    }
    let Some((&first, rest)) = subids.split_first() else {
        bail!("empty object identifier");
    };
    let (a, b) = match first {
        0..40 => (0, first),
        40..80 => (1, first - 40),
        _ => (2, first - 80),
    };
    Ok([a, b].into_iter().chain(rest.iter().copied()).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn oids_decode() {
        // 2.5.4.3 (commonName) and 1.2.840.113549 (rsadsi).
        assert_eq!(
            oid_arcs(&[0x55, 0x04, 0x03]).expect("oid"),
            vec![2, 5, 4, 3]
        );
        assert_eq!(
            oid_arcs(&[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d]).expect("oid"),
            vec![1, 2, 840, 113_549]
        );
        assert!(oid_arcs(&[0x55, 0x84]).is_err());
        assert!(oid_arcs(&[]).is_err());
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        for bytes in [
            &[][..],
            &[0x30],
            &[0x30, 0x85, 1, 2, 3, 4, 5],
            &[0x30, 0x82, 0xff, 0xff],
            &[0x30, 0x03, 0x30, 0x01],
            &[0x31, 0x00],
        ] {
            assert!(CertParts::parse(bytes).is_err());
            assert!(distinguished_name(bytes).is_err());
        }
    }
}
