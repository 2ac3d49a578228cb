//! CIDs parsed once at the edge: any multibase, CIDv0 or CIDv1, normalised to CIDv1
//! base32 so that every spelling of one CID matches the same pins and shares one Kubo pin.

use std::fmt;

use crate::error::{Error, Result};

/// A parsed CID: its canonical form plus the text the client sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cid {
    canonical: String,
    given: String,
}

impl Cid {
    /// Parses `text`; errors name the offending value.
    pub fn parse(text: &str) -> Result<Self> {
        let trimmed = text.trim();
        if trimmed.is_empty() {
            return Err(Error::BadRequest("cid must not be empty".into()));
        }
        let parsed = cid::Cid::try_from(trimmed).map_err(|e| {
            Error::BadRequest(format!("'{}' is not a valid CID: {e}", truncate(trimmed)))
        })?;
        let v1 = parsed.into_v1().map_err(|e| {
            Error::BadRequest(format!(
                "'{}' cannot be expressed as CIDv1: {e}",
                truncate(trimmed)
            ))
        })?;
        Ok(Self {
            canonical: v1.to_string(),
            given: trimmed.to_string(),
        })
    }

    /// Rebuilds a CID read back from the database (already validated).
    pub fn from_stored(canonical: String, given: String) -> Self {
        Self { canonical, given }
    }

    /// CIDv1 in base32: the form stored, matched and sent to Kubo.
    pub fn canonical(&self) -> &str {
        &self.canonical
    }

    /// The text the client sent, echoed in responses.
    pub fn given(&self) -> &str {
        &self.given
    }
}

/// Other spellings under which Kubo may hold the same DAG: Kubo keys pins by CID, so a
/// DAG pinned as CIDv0 is not pinned "as" its CIDv1. Returns the CIDv0 form of a dag-pb,
/// sha2-256 CID.
pub fn other_forms(canonical: &str) -> Vec<String> {
    const DAG_PB: u64 = 0x70;
    const SHA2_256: u64 = 0x12;
    match cid::Cid::try_from(canonical) {
        Ok(c) if c.codec() == DAG_PB && c.hash().code() == SHA2_256 && c.hash().size() == 32 => {
            cid::Cid::new_v0(*c.hash())
                .map(|v0| vec![v0.to_string()])
                .unwrap_or_default()
        }
        _ => Vec::new(),
    }
}

impl fmt::Display for Cid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.canonical)
    }
}

/// Keeps error messages short when someone sends a megabyte of garbage.
fn truncate(s: &str) -> String {
    if s.chars().count() > 100 {
        format!("{}…", s.chars().take(100).collect::<String>())
    } else {
        s.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const V0: &str = "QmY7Yh4UquoXHLPFo2XbhXkhBvFoPwmQUSa92pxnxjQuPU";
    // Computed independently: base32("\x01\x70" + base58decode(V0)).
    const V1: &str = "bafybeierhgbz4zp2x2u67urqrgfnrnlukciupzenpqpipiz5nwtq7uxpx4";

    #[test]
    fn v0_normalises_to_its_v1_form() {
        let a = Cid::parse(V0).unwrap();
        let b = Cid::parse(V1).unwrap();
        assert_eq!(a.canonical(), b.canonical());
        assert_eq!(a.canonical(), V1);
        assert_eq!(a.given(), V0);
    }

    #[test]
    fn the_v0_form_is_offered_for_dag_pb() {
        assert_eq!(other_forms(V1), vec![V0.to_string()]);
        let raw = cid::Cid::new_v1(0x55, *cid::Cid::try_from(V1).unwrap().hash()).to_string();
        assert!(other_forms(&raw).is_empty());
    }

    #[test]
    fn other_multibases_normalise_to_base32() {
        let v1 = cid::Cid::try_from(V1).unwrap();
        let b58 = v1
            .to_string_of_base(cid::multibase::Base::Base58Btc)
            .unwrap();
        assert!(b58.starts_with('z'));
        assert_eq!(Cid::parse(&b58).unwrap().canonical(), V1);
    }

    #[test]
    fn garbage_is_a_bad_request_naming_it() {
        for bad in ["", "  ", "not-a-cid", "Qm123", "bafy!!"] {
            let err = Cid::parse(bad).unwrap_err();
            assert!(matches!(err, Error::BadRequest(_)), "{bad}");
        }
        let err = Cid::parse("not-a-cid").unwrap_err();
        assert!(err.to_string().contains("not-a-cid"));
    }
}
