//! Serde helpers for [`Duration`] fields written the humantime way
//! (`30s`, `2m`, `24h`, `720h`).
//!
//! Used as `#[serde(with = "duration")]`. Serialization picks the largest
//! whole unit among `h`, `m`, `s` and `ms` rather than humantime's own
//! formatter, because that one turns `720h` into `30days` and the written
//! form should match what an operator typed and what the example file shows.

use std::fmt;
use std::time::Duration;

use serde::de::{self, Visitor};
use serde::{Deserializer, Serializer};

/// Parses a humantime duration such as `30s`, `1h 30m` or `720h`.
pub fn parse(text: &str) -> Result<Duration, String> {
    humantime::parse_duration(text.trim())
        .map_err(|err| format!("invalid duration {text:?}: {err} (write e.g. \"30s\" or \"24h\")"))
}

/// Formats a duration in the largest whole unit (`h`, `m`, `s`, `ms`), so
/// that [`parse`] reads it back to the same value.
pub fn format(d: Duration) -> String {
    let secs = d.as_secs();
    if d.subsec_nanos() == 0 {
        match secs {
            0 => "0s".to_owned(),
            s if s % 3600 == 0 => format!("{}h", s / 3600),
            s if s % 60 == 0 => format!("{}m", s / 60),
            s => format!("{s}s"),
        }
    } else if d.subsec_nanos() % 1_000_000 == 0 {
        format!("{}ms", d.as_millis())
    } else {
        // Sub-millisecond precision: humantime's form still round-trips.
        humantime::format_duration(d).to_string()
    }
}

/// Serializes a duration as a humantime string.
pub fn serialize<S: Serializer>(d: &Duration, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_str(&format(*d))
}

/// Deserializes a duration from a humantime string.
pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Duration, D::Error> {
    struct DurationVisitor;

    impl Visitor<'_> for DurationVisitor {
        type Value = Duration;

        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("a duration with a unit, such as \"30s\" or \"24h\"")
        }

        fn visit_str<E: de::Error>(self, v: &str) -> Result<Duration, E> {
            parse(v).map_err(E::custom)
        }
    }

    deserializer.deserialize_str(DurationVisitor)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse_humantime() {
        assert_eq!(parse("30s").unwrap(), Duration::from_secs(30));
        assert_eq!(parse("24h").unwrap(), Duration::from_secs(24 * 3600));
        assert_eq!(parse("2m").unwrap(), Duration::from_secs(120));
        assert!(parse("30").is_err(), "a bare number has no unit");
        assert!(parse("soon").is_err());
    }

    #[test]
    fn durations_format_in_largest_whole_unit() {
        for text in [
            "0s", "30s", "90s", "2m", "5m", "24h", "720h", "8760h", "1500ms",
        ] {
            assert_eq!(format(parse(text).unwrap()), text);
        }
    }
}
