//! Every `anchorage …` command line and `/v1/…` request in the seed's runbooks
//! (`tests/data/seed-commands.tsv`, one row each, with the seed file and line), run in
//! order against a real stack: Postgres as the server's role, a real IPFS node, the
//! server, and the `anchorage` binary with the seed's configuration. Paths under
//! `/etc/anchorage` and the placeholders (`org_...`, `<email>`, `bafybeig...`) are
//! substituted; everything else runs as written. A row with no assertion fails.

use std::{collections::HashMap, process::Output, time::Duration};

use anchorage::auth::Role;
use reqwest::Method;
use serde_json::json;
use tempfile::TempDir;

use crate::{
    auth::security_signin::{person, token_for},
    auth::signin::{sign_in, SITE},
    harness::{
        fixtures::cid,
        oidc::{Account, OidcProvider},
        KuboNode, TestApp, TestDb,
    },
};

const TSV: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/seed-commands.tsv");
const ISSUER: &str = "https://auth.example.com/application/o/anchorage/";

struct Row {
    seed: String,
    kind: String,
    command: String,
    request: String,
    expect: Vec<(String, String)>,
}

fn rows() -> Vec<Row> {
    std::fs::read_to_string(TSV)
        .unwrap()
        .lines()
        .filter(|l| !l.starts_with('#') && !l.starts_with("seed\t") && !l.trim().is_empty())
        .map(|line| {
            let cols: Vec<&str> = line.split('\t').collect();
            assert_eq!(cols.len(), 5, "five columns: {line}");
            let expect = cols[4]
                .split(';')
                .filter(|a| !a.trim().is_empty())
                .map(|a| {
                    let at = a
                        .find(['=', '~'])
                        .unwrap_or_else(|| panic!("{}: assertion without a value: {a}", cols[0]));
                    let (key, value) = a.split_at(at);
                    (key.to_string(), value.to_string())
                })
                .collect();
            Row {
                seed: cols[0].into(),
                kind: cols[1].into(),
                command: cols[2].into(),
                request: cols[3].into(),
                expect,
            }
        })
        .collect()
}

/// Splits a shell command line into words (quotes, no expansion).
fn words(line: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut word = String::new();
    let (mut quote, mut any) = (None, false);
    for c in line.chars() {
        match (quote, c) {
            (None, '"' | '\'') => {
                quote = Some(c);
                any = true;
            }
            (Some(q), c) if c == q => quote = None,
            (None, c) if c.is_whitespace() => {
                if any {
                    out.push(std::mem::take(&mut word));
                }
                any = false;
            }
            (_, c) => {
                word.push(c);
                any = true;
            }
        }
    }
    if any {
        out.push(word);
    }
    out
}

/// The stack and what earlier rows produced.
struct Stack {
    app: TestApp,
    dir: TempDir,
    env: Vec<(String, String)>,
    vars: HashMap<String, String>,
    /// `/etc/anchorage/...` → where it is here.
    paths: Vec<(String, String)>,
}

impl Stack {
    fn substitute(&self, text: &str) -> String {
        let mut out = text.to_string();
        for (from, to) in &self.paths {
            out = out.replace(from, to);
        }
        for (name, value) in &self.vars {
            out = out.replace(&format!("${name}"), value);
        }
        out.replace("org_...", &self.vars["ORG"])
            .replace("<email>", &self.vars["EMAIL"])
    }

    fn run_cli(&self, command: &str) -> Output {
        let line = command.split(" # ").next().unwrap();
        let line = self.substitute(line);
        let mut words = words(&line);
        assert!(
            words[0] == "anchorage" || words[0] == "/usr/bin/anchorage",
            "not an anchorage command: {line}"
        );
        words.remove(0);
        crate::harness::bin::anchorage()
            .args(&words)
            .envs(self.env.iter().cloned())
            .output()
            .unwrap()
    }

    async fn send(&self, request: &str) -> (u16, String, reqwest::header::HeaderMap) {
        let request = self.substitute(request);
        let mut parts = request.splitn(3, ' ');
        let method = Method::from_bytes(parts.next().unwrap().as_bytes()).unwrap();
        let path = parts.next().unwrap().to_string();
        let mut req = crate::auth::signin::no_redirects().request(method, self.app.url(&path));
        for option in parts
            .next()
            .unwrap_or_default()
            .split(' ')
            .filter(|o| !o.is_empty())
        {
            let (key, value) = option.split_once('=').unwrap();
            match key {
                "as" => {
                    req = match value {
                        "session" => req
                            .header("Cookie", &self.vars["SESSION"])
                            .header("Origin", SITE),
                        token => req.bearer_auth(self.vars.get(token).map_or(token, |t| t)),
                    }
                }
                "body" => req = req.header("Content-Type", "application/json"),
                other => panic!("unknown request option {other}"),
            }
        }
        if let Some(body) = request.split(" body=").nth(1) {
            req = req.body(body.to_string());
        }
        let res = req.send().await.unwrap();
        let status = res.status().as_u16();
        let headers = res.headers().clone();
        (status, res.text().await.unwrap_or_default(), headers)
    }
}

#[tokio::test]
async fn every_seed_command_works_as_written_or_says_what_to_do_instead() {
    let rows = rows();
    let db = TestDb::migrated().await;
    let kubo = tokio::task::spawn_blocking(KuboNode::start).await.unwrap();
    let dir = TempDir::new().unwrap();
    let key = dir.path().join("jwt.key");
    crate::harness::app::seed_key_file(&key);
    let keys = json!([{ "id": "2026-04", "path": key, "primary": true }]);
    // The walkthrough's auth section: a real OpenID provider with the walkthrough's
    // client and redirect URI stands in for Authentik; API tokens carry the issuer and
    // audience the deploy guide mints with.
    let email = "admin@example.com";
    let idp = OidcProvider::start(
        &[("anchorage-web", vec![format!("{SITE}/")])],
        &[Account::new("admin-sub", email, &["anchorage-users"]).verified()],
    );
    let app = TestApp::spawn_api_only(
        &db,
        kubo.api(),
        vec![
            ("auth.apiToken.signingKeys".into(), keys.clone()),
            ("auth.apiToken.issuer".into(), json!(ISSUER)),
            ("auth.apiToken.audience".into(), json!("anchorage")),
            ("auth.authentik.issuer".into(), json!(idp.issuer())),
            ("auth.authentik.clientID".into(), json!("anchorage-web")),
            ("server.publicURL".into(), json!(SITE)),
            ("cluster.nodeID".into(), json!("anchor-2")),
        ],
    )
    .await;
    let config_file = dir.path().join("anchorage.yaml");
    std::fs::write(
        &config_file,
        format!(
            "postgres:\n  dsn: {}\n  migrationDSN: {}\nauth:\n  apiToken:\n    issuer: {ISSUER}\n    audience: anchorage\n    signingKeys:\n      - id: \"2026-04\"\n        path: {}\n        primary: true\n",
            db.app_dsn(),
            db.owner_dsn(),
            key.display()
        ),
    )
    .unwrap();
    let env = vec![
        ("ANCHORAGE_POSTGRES__DSN".to_string(), db.app_dsn()),
        (
            "ANCHORAGE_AUTH__API_TOKEN__SIGNING_KEYS".into(),
            keys.to_string(),
        ),
        ("ANCHORAGE_AUTH__API_TOKEN__ISSUER".into(), ISSUER.into()),
        (
            "ANCHORAGE_AUTH__API_TOKEN__AUDIENCE".into(),
            "anchorage".into(),
        ),
        ("RUST_LOG".into(), "warn".into()),
    ];
    let org = app.create_org("acme").await;
    let admin = person(&app, email, org, Role::Orgadmin, false).await;
    let (admin_token, _) = token_for(
        &app,
        admin,
        Some(org),
        Role::Orgadmin,
        None,
        Duration::from_secs(9000 * 3600),
    );
    // Signed in through the provider, as the walkthrough's browser flow does.
    let (_, session) = sign_in(&app, &idp, "admin-sub").await;
    let dir_path = dir.path().to_path_buf();
    let mut stack = Stack {
        vars: HashMap::from([
            ("ORG".to_string(), org.to_string()),
            ("EMAIL".into(), email.into()),
            ("SESSION".into(), session),
            ("CID".into(), cid(42)),
            ("sysadmin".into(), app.token(None, Role::Sysadmin, None)),
            ("orgadmin".into(), admin_token),
        ]),
        paths: vec![
            (
                "/etc/anchorage/anchorage.yaml".into(),
                config_file.display().to_string(),
            ),
            (
                "/etc/anchorage/jwt.key.2026-10".into(),
                dir_path.join("jwt.key.2026-10").display().to_string(),
            ),
            ("/etc/anchorage/jwt.key".into(), key.display().to_string()),
        ],
        app,
        dir,
        env,
    };
    // A standalone token for the revocation row.
    let minted = stack.run_cli("anchorage admin mint-token --role member --org org_... -v");
    let jti = String::from_utf8_lossy(&minted.stderr)
        .split_whitespace()
        .find_map(|w| w.strip_prefix("jti=").map(str::to_string))
        .expect("mint-token -v prints the jti");
    stack.vars.insert("MINTED_JTI".into(), jti);

    let mut asserted = 0;
    for row in &rows {
        let at = format!("{} `{}`", row.seed, row.command);
        assert!(!row.expect.is_empty(), "{at}: no assertion");
        match row.kind.as_str() {
            "other" => {
                let (key, value) = &row.expect[0];
                assert!(
                    key == "other" && value.len() > 2,
                    "{at}: another tool's line must say where it is covered"
                );
                if value.contains("seed-differences.md") {
                    let doc = std::fs::read_to_string(concat!(
                        env!("CARGO_MANIFEST_DIR"),
                        "/docs/seed-differences.md"
                    ))
                    .unwrap();
                    let tool = row.command.split_whitespace().next().unwrap();
                    let named = match tool {
                        "docker" => "NATS",
                        "psql" => "oidc_subject",
                        other => other,
                    };
                    assert!(
                        doc.contains(named),
                        "{at}: seed-differences.md does not cover it"
                    );
                }
            }
            "key" => {
                // The file was made as written (seed_key); the server runs with it and the
                // mint-token rows sign with it.
                assert_eq!(row.expect[0].0, "key", "{at}");
            }
            "cli" => {
                let command = row
                    .command
                    .strip_prefix("TOKEN=$(")
                    .and_then(|c| c.strip_suffix(')'))
                    .unwrap_or(&row.command);
                let out = stack.run_cli(command);
                let (stdout, stderr) = (
                    String::from_utf8_lossy(&out.stdout).to_string(),
                    String::from_utf8_lossy(&out.stderr).to_string(),
                );
                for (key, value) in &row.expect {
                    let value = stack.substitute(value.trim_start_matches(['=', '~']));
                    match key.as_str() {
                        "exit" => assert_eq!(
                            out.status.code(),
                            Some(value.parse().unwrap()),
                            "{at}\nstdout: {stdout}\nstderr: {stderr}"
                        ),
                        "stdout" => assert!(
                            stdout.contains(&value),
                            "{at}: stdout lacks {value:?}: {stdout}"
                        ),
                        "stdout!" => assert!(
                            !stdout.contains(&value),
                            "{at}: stdout has {value:?}: {stdout}"
                        ),
                        "stderr" => assert!(
                            stderr.contains(&value),
                            "{at}: stderr lacks {value:?}: {stderr}"
                        ),
                        "token-works" => {
                            let token = stdout.trim().to_string();
                            stack.vars.insert("TOKEN".into(), token.clone());
                            let (status, body, _) =
                                stack.send(&format!("{value} as={token}")).await;
                            assert_eq!(status, 200, "{at}: the minted token on {value}: {body}");
                        }
                        other => panic!("{at}: unknown assertion {other}"),
                    }
                    asserted += 1;
                }
            }
            "http" => {
                let (status, body, headers) = stack.send(&row.request).await;
                for (key, value) in &row.expect {
                    let value = stack.substitute(value.trim_start_matches(['=', '~']));
                    match key.as_str() {
                        "status" => assert_eq!(status.to_string(), value, "{at}: {body}"),
                        "body" => {
                            assert!(body.contains(&value), "{at}: body lacks {value:?}: {body}")
                        }
                        header if header.starts_with("header:") => assert_eq!(
                            headers
                                .get(&header["header:".len()..])
                                .map(|v| v.to_str().unwrap().to_string()),
                            Some(value.clone()),
                            "{at}"
                        ),
                        other => panic!("{at}: unknown assertion {other}"),
                    }
                    asserted += 1;
                }
            }
            other => panic!("{at}: unknown kind {other}"),
        }
    }
    println!(
        "{} seed rows run, {asserted} assertions on anchorage's answers",
        rows.len()
    );
    drop(stack.dir);
}
