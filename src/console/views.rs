//! The console's templates and the plain data they show.

use askama::Template;

use crate::cluster::ops::Maintenance;

/// The header: who is signed in, where, and what they may open.
pub struct Nav {
    pub current: &'static str,
    pub sysadmin: bool,
    pub orgadmin: bool,
    pub who: String,
    pub org_name: Option<String>,
    pub org_query: String,
    pub csrf: String,
}

#[derive(Template)]
#[template(path = "console/message.html")]
pub struct Message {
    pub nav: Option<Nav>,
    pub flash: Option<String>,
    pub heading: String,
    pub text: String,
}

impl Message {
    pub fn new(heading: &str, text: &str) -> Self {
        Self {
            nav: None,
            flash: None,
            heading: heading.into(),
            text: text.into(),
        }
    }
}

#[derive(Template)]
#[template(path = "console/sign_in.html")]
pub struct SignIn {
    pub nav: Option<Nav>,
    pub flash: Option<String>,
    pub provider: bool,
}

pub struct PinsQuery {
    pub cid: String,
    pub name: String,
    pub status: String,
}

pub struct PinRow {
    pub requestid: String,
    pub name: String,
    pub cid: String,
    pub status: String,
    pub created: String,
    /// What a screen reader hears for the row's buttons.
    pub label: String,
}

#[derive(Template)]
#[template(path = "console/pins.html")]
pub struct Pins {
    pub nav: Option<Nav>,
    pub flash: Option<String>,
    pub org: Option<String>,
    pub csrf: String,
    pub query: PinsQuery,
    pub statuses: Vec<&'static str>,
    pub count: i64,
    pub pins: Vec<PinRow>,
    pub next: Option<String>,
}

pub struct NewTokenView {
    pub jwt: String,
    pub endpoint: String,
}

pub struct TokenRow {
    pub jti: String,
    pub label: String,
    pub scopes: String,
    pub expires: String,
    pub state: String,
    pub revocable: bool,
}

#[derive(Template)]
#[template(path = "console/tokens.html")]
pub struct Tokens {
    pub nav: Option<Nav>,
    pub flash: Option<String>,
    pub org: Option<String>,
    pub csrf: String,
    pub created: Option<NewTokenView>,
    pub scopes: Vec<&'static str>,
    pub tokens: Vec<TokenRow>,
}

pub struct MemberRow {
    pub id: String,
    pub email: String,
    pub role: String,
    pub pending: bool,
}

pub struct OrgCard {
    pub id: String,
    pub name: String,
    pub role: String,
    pub manage: bool,
    pub members: Vec<MemberRow>,
}

#[derive(Template)]
#[template(path = "console/orgs.html")]
pub struct Orgs {
    pub nav: Option<Nav>,
    pub flash: Option<String>,
    pub csrf: String,
    pub sysadmin: bool,
    pub orgs: Vec<OrgCard>,
}

pub struct NodeRow {
    pub name: String,
    pub state: String,
    pub live: bool,
    pub leader: bool,
    pub peer: String,
    pub placements: String,
}

pub struct MoveRow {
    pub cid: String,
    pub from: String,
    pub to: String,
}

#[derive(Template)]
#[template(path = "console/cluster.html")]
pub struct Cluster {
    pub nav: Option<Nav>,
    pub flash: Option<String>,
    pub csrf: String,
    pub nodes: Vec<NodeRow>,
    pub maintenance: Maintenance,
    pub maintenance_text: String,
    pub moves: Vec<MoveRow>,
    pub rebalancing: bool,
}

pub struct AuditFilter {
    pub actor: String,
    pub action: String,
    pub target: String,
}

pub struct AuditRow {
    pub at: String,
    pub actor: String,
    pub action: String,
    pub target: String,
    pub ip: String,
}

#[derive(Template)]
#[template(path = "console/audit.html")]
pub struct Audit {
    pub nav: Option<Nav>,
    pub flash: Option<String>,
    pub org: Option<String>,
    pub filter: AuditFilter,
    pub entries: Vec<AuditRow>,
    pub next: Option<String>,
}
