//! Roles and scopes carried in tokens, and what each role may do by default.

use serde::{Deserialize, Serialize};

crate::text_enum! {
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
    pub enum Role ("role") {
        /// An org member: pins and their own tokens.
        Member = "member",
        /// Manages an org's members and tokens.
        Orgadmin = "orgadmin",
        /// Cluster-wide administrator.
        Sysadmin = "sysadmin",
    }
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
            Role::Sysadmin => &Scope::ALL,
        }
    }
}

crate::text_enum! {
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
    pub enum Scope ("scope") {
        #[serde(rename = "pin:read")]
        PinRead = "pin:read",
        #[serde(rename = "pin:write")]
        PinWrite = "pin:write",
        #[serde(rename = "tokens:read")]
        TokensRead = "tokens:read",
        #[serde(rename = "tokens:write")]
        TokensWrite = "tokens:write",
        #[serde(rename = "members:read")]
        MembersRead = "members:read",
        #[serde(rename = "members:write")]
        MembersWrite = "members:write",
        #[serde(rename = "cluster:read")]
        ClusterRead = "cluster:read",
        #[serde(rename = "cluster:write")]
        ClusterWrite = "cluster:write",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scopes_round_trip() {
        for scope in Scope::ALL {
            assert_eq!(scope.as_str().parse::<Scope>().unwrap(), scope);
            let json = serde_json::to_string(&scope).unwrap();
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
