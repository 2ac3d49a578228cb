//! Who acts in a domain operation, as plain data: what the transport (a bearer token, a
//! console session, the CLI on the operator's machine) proved about the caller, the org
//! the operation acts in, and where the request came from. Domain functions decide
//! access from it with `tenancy::access` and write it to the audit log; nothing here
//! knows HTTP.

use std::net::IpAddr;

use super::{Claims, Role, Scope};
use crate::{
    error::{Error, Result},
    ids::{OrgId, TokenId},
};

#[derive(Debug, Clone)]
pub struct Actor {
    /// The verified claims: subject, role, scopes, token id.
    pub claims: Claims,
    /// The org the operation acts in, when the transport resolved one (the token's own,
    /// `X-Anchorage-Org` for a sysadmin, a console page's `?org=`).
    pub org: Option<OrgId>,
    /// The client's address, for the audit log.
    pub ip: Option<IpAddr>,
}

/// The issuer of an [`Actor::operator`]'s claims: no token was ever signed for it.
const OPERATOR: &str = "anchorage-operator";

impl Actor {
    pub fn new(claims: Claims, org: Option<OrgId>, ip: Option<IpAddr>) -> Self {
        Self { claims, org, ip }
    }

    /// The operator at a node's own machine (the CLI, whose access is the machine's):
    /// a sysadmin with every scope, recorded in the audit log as `name`.
    pub fn operator(name: String) -> Self {
        let claims = Claims {
            sub: name,
            org: None,
            role: Role::Sysadmin,
            scopes: None,
            jti: TokenId::from_uuid(uuid::Uuid::nil()),
            iat: 0,
            exp: 0,
            iss: OPERATOR.into(),
            aud: OPERATOR.into(),
        };
        Self::new(claims, None, None)
    }

    /// The name audit entries record: `<subject>:<token id>`, or the operator's name.
    pub fn name(&self) -> String {
        if self.claims.iss == OPERATOR {
            return self.claims.sub.clone();
        }
        format!("{}:{}", self.claims.sub, self.claims.jti)
    }

    /// The role the credential carries (for a person, their standing; per-org roles
    /// are `tenancy::access`'s to resolve).
    pub fn role(&self) -> Role {
        self.claims.role
    }

    /// Fails with 403 unless the credential carries `scope`.
    pub fn require(&self, scope: Scope) -> Result<()> {
        self.claims.require(scope)
    }

    /// The org the operation acts in; 404 when there is none (a person in no org yet).
    pub fn acting_org(&self) -> Result<OrgId> {
        self.org
            .ok_or_else(|| Error::NotFound("you belong to no org yet".into()))
    }
}
