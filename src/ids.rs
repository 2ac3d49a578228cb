//! TypeIDs at the edge (`org_01h…`), UUIDv7 in the database. Each kind of id is its own
//! type so an org id can never be passed where a pin request id is expected.

use std::{fmt, str::FromStr};

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use type_safe_id::{StaticType, TypeSafeId};
use uuid::Uuid;

use crate::error::Error;

macro_rules! typed_id {
    ($(#[$doc:meta])* $name:ident, $marker:ident, $prefix:literal) => {
        #[derive(Default)]
        #[doc(hidden)]
        pub struct $marker;

        impl StaticType for $marker {
            const TYPE: &'static str = $prefix;
        }

        $(#[$doc])*
        #[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(Uuid);

        impl $name {
            /// The TypeID prefix, without the underscore.
            pub const PREFIX: &'static str = $prefix;

            /// A fresh, time-ordered id.
            pub fn new() -> Self {
                Self(Uuid::now_v7())
            }

            /// Wraps a UUID read from the database.
            pub fn from_uuid(uuid: Uuid) -> Self {
                Self(uuid)
            }

            /// The UUID stored in the database.
            pub fn uuid(&self) -> Uuid {
                self.0
            }
        }

        impl Default for $name {
            fn default() -> Self {
                Self::new()
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Display::fmt(&TypeSafeId::<$marker>::from_uuid(self.0), f)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Display::fmt(self, f)
            }
        }

        impl FromStr for $name {
            type Err = Error;

            fn from_str(s: &str) -> Result<Self, Error> {
                TypeSafeId::<$marker>::from_str(s)
                    .map(|id| Self(id.uuid()))
                    .map_err(|_| {
                        Error::BadRequest(format!(
                            "'{s}' is not a valid {} id (expected {}_ followed by 26 base32 characters)",
                            $prefix, $prefix
                        ))
                    })
            }
        }

        impl From<$name> for Uuid {
            fn from(id: $name) -> Uuid {
                id.0
            }
        }

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.collect_str(self)
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = String::deserialize(d)?;
                s.parse().map_err(serde::de::Error::custom)
            }
        }
    };
}

typed_id!(
    /// An organisation (tenant).
    OrgId, OrgPrefix, "org"
);
typed_id!(
    /// A user: a person who signs in, or a principal named in a CLI-minted token.
    UserId, UserPrefix, "usr"
);
typed_id!(
    /// An API token's `jti`.
    TokenId, TokenPrefix, "tok"
);
typed_id!(
    /// A cluster node's row key (its operator-facing name is `cluster.nodeID`).
    NodeId, NodePrefix, "nod"
);
typed_id!(
    /// A pin request id (`requestid` in the Pinning Services API).
    RequestId, RequestPrefix, "pin"
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_through_its_text_form() {
        let id = OrgId::new();
        let text = id.to_string();
        assert!(text.starts_with("org_"), "{text}");
        assert_eq!(text.len(), 4 + 26);
        assert_eq!(text.parse::<OrgId>().unwrap(), id);
    }

    #[test]
    fn rejects_another_kind_of_id() {
        let pin = RequestId::new().to_string();
        let err = pin.parse::<OrgId>().unwrap_err();
        assert!(err.to_string().contains("not a valid org id"), "{err}");
        assert!("org_nonsense".parse::<OrgId>().is_err());
        assert!("".parse::<TokenId>().is_err());
    }

    #[test]
    fn ids_are_time_ordered() {
        let a = NodeId::new();
        std::thread::sleep(std::time::Duration::from_millis(2));
        let b = NodeId::new();
        assert!(a.to_string() < b.to_string());
        assert_eq!(a.uuid().get_version_num(), 7);
    }

    #[test]
    fn serde_uses_the_text_form() {
        let id = UserId::new();
        let json = serde_json::to_string(&id).unwrap();
        assert_eq!(json, format!("\"{id}\""));
        let back: UserId = serde_json::from_str(&json).unwrap();
        assert_eq!(back, id);
    }
}
