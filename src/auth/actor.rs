//! Who acts in a domain operation, as plain data: what the transport (a bearer token, a
//! console session, the CLI on the operator's machine) proved about the caller, the org
//! the operation acts in, and where the request came from. Domain functions decide
//! access from it with `tenancy::access` and write it to the audit log; nothing here
//! knows HTTP.

use std::net::IpAddr;

use super::{Claims, Role, Scope};
use crate::{
    error::{Error, Result},
    ids::OrgId,
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

impl Actor {
    pub fn new(claims: Claims, org: Option<OrgId>, ip: Option<IpAddr>) -> Self {
        Self { claims, org, ip }
    }

    /// The name audit entries record: `<subject>:<token id>`.
    pub fn name(&self) -> String {
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
