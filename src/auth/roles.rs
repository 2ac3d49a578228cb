//! Roles and scopes carried in tokens, and what each role may do by default.

use std::{fmt, str::FromStr};

use serde::{Deserialize, Serialize};

use crate::error::Error;

/// Who the caller is within anchorage.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Serialize,
    Deserialize,
    schemars::JsonSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// An org member: pins and their own tokens.
    Member,
    /// Manages an org's members and tokens.
    Orgadmin,
    /// Cluster-wide administrator.
    Sysadmin,
}

impl Role {
    /// The scopes a token of this role has when it carries no `scopes` claim.
    pub fn default_scopes(self) -> &'static [Scope] {
        use Scope::*;
        match self {
            Role::Member => &[PinRead, PinWrite, TokensRead, TokensWrite],
            Role::Orgadmin => &[
                PinRead,
                PinWrite,
                TokensRead,
                TokensWrite,
                MembersRead,
                MembersWrite,
            ],
            Role::Sysadmin => Scope::ALL,
        }
    }

    /// The lowercase name used in claims and on the command line.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Member => "member",
            Role::Orgadmin => "orgadmin",
            Role::Sysadmin => "sysadmin",
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Role {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self, Error> {
        match s {
            "member" => Ok(Role::Member),
            "orgadmin" => Ok(Role::Orgadmin),
            "sysadmin" => Ok(Role::Sysadmin),
            other => Err(Error::BadRequest(format!(
                "unknown role '{other}' (expected member, orgadmin or sysadmin)"
            ))),
        }
    }
}

/// A permission a token may carry.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Serialize,
    Deserialize,
    schemars::JsonSchema,
)]
pub enum Scope {
    #[serde(rename = "pin:read")]
    PinRead,
    #[serde(rename = "pin:write")]
    PinWrite,
    #[serde(rename = "tokens:read")]
    TokensRead,
    #[serde(rename = "tokens:write")]
    TokensWrite,
    #[serde(rename = "members:read")]
    MembersRead,
    #[serde(rename = "members:write")]
    MembersWrite,
    #[serde(rename = "cluster:read")]
    ClusterRead,
    #[serde(rename = "cluster:write")]
    ClusterWrite,
}

impl Scope {
    /// Every scope there is.
    pub const ALL: &'static [Scope] = &[
        Scope::PinRead,
        Scope::PinWrite,
        Scope::TokensRead,
        Scope::TokensWrite,
        Scope::MembersRead,
        Scope::MembersWrite,
        Scope::ClusterRead,
        Scope::ClusterWrite,
    ];

    /// The name used in claims (`pin:read`).
    pub fn as_str(self) -> &'static str {
        match self {
            Scope::PinRead => "pin:read",
            Scope::PinWrite => "pin:write",
            Scope::TokensRead => "tokens:read",
            Scope::TokensWrite => "tokens:write",
            Scope::MembersRead => "members:read",
            Scope::MembersWrite => "members:write",
            Scope::ClusterRead => "cluster:read",
            Scope::ClusterWrite => "cluster:write",
        }
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Scope {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self, Error> {
        Scope::ALL
            .iter()
            .copied()
            .find(|scope| scope.as_str() == s)
            .ok_or_else(|| {
                let known: Vec<_> = Scope::ALL.iter().map(|s| s.as_str()).collect();
                Error::BadRequest(format!("unknown scope '{s}' (known: {})", known.join(", ")))
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scopes_round_trip() {
        for scope in Scope::ALL {
            assert_eq!(scope.as_str().parse::<Scope>().unwrap(), *scope);
            let json = serde_json::to_string(scope).unwrap();
            assert_eq!(json, format!("\"{}\"", scope.as_str()));
        }
        assert!("pin:admin".parse::<Scope>().is_err());
    }

    #[test]
    fn roles_nest() {
        for scope in Role::Member.default_scopes() {
            assert!(Role::Orgadmin.default_scopes().contains(scope));
        }
        for scope in Role::Orgadmin.default_scopes() {
            assert!(Role::Sysadmin.default_scopes().contains(scope));
        }
        assert!(Role::Member < Role::Orgadmin && Role::Orgadmin < Role::Sysadmin);
    }
}
