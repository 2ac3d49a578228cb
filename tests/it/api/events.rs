//! `/v1/events`: each org sees only its own pin status changes, changes made through
//! another node arrive, and a client that stops reading is dropped while the others
//! keep receiving.

use std::time::{Duration, Instant};

use anchorage::{auth::Role, ids::OrgId};
use futures_util::{SinkExt, StreamExt};
use reqwest::Method;
use serde_json::{json, Value};
use tokio::net::TcpStream;
use tokio_tungstenite::{
    tungstenite::{client::IntoClientRequest, http::Request, Message},
    MaybeTlsStream, WebSocketStream,
};

use crate::harness::{
    cluster::TestCluster,
    fixtures::{app, cid},
    kubo::random_bytes,
    send, sql, TestApp, TestDb,
};

type Ws<S> = WebSocketStream<S>;

fn request(base: &str, token: &str) -> Request<()> {
    let url = format!("{}/v1/events", base.replace("http://", "ws://"));
    let mut req = url.into_client_request().unwrap();
    req.headers_mut()
        .insert("Authorization", format!("Bearer {token}").parse().unwrap());
    req
}

async fn connect(base: &str, token: &str) -> Ws<MaybeTlsStream<TcpStream>> {
    let (ws, response) = tokio_tungstenite::connect_async(request(base, token))
        .await
        .unwrap();
    assert_eq!(response.status(), 101);
    ws
}

/// The next event within `within`, answering pings; `None` on timeout or close.
async fn next_event<S>(ws: &mut Ws<S>, within: Duration) -> Option<Value>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    let deadline = Instant::now() + within;
    loop {
        let left = deadline.checked_duration_since(Instant::now())?;
        match tokio::time::timeout(left, ws.next()).await.ok()?? {
            Ok(Message::Text(text)) => return Some(serde_json::from_str(&text).unwrap()),
            Ok(Message::Ping(p)) => ws.send(Message::Pong(p)).await.ok()?,
            Ok(Message::Close(_)) | Err(_) => return None,
            Ok(_) => {}
        }
    }
}

async fn add_pin(app: &TestApp, token: &str, n: u32) -> String {
    let (status, body) = send(
        app.req(Method::POST, "/v1/pins", token)
            .json(&json!({"cid": cid(n)})),
    )
    .await;
    assert_eq!(status, 202, "{body}");
    body["requestid"].as_str().unwrap().to_string()
}

async fn set_status(app: &TestApp, org: OrgId, id: &str, status: &str) {
    let uuid = id.parse::<anchorage::ids::RequestId>().unwrap().uuid();
    let update = sql::query(
        "UPDATE pins SET status = $1 WHERE id = $2",
        &[status.into(), uuid.into()],
    );
    anchorage::db::org_tx(&app.state.db, org, |conn| {
        use diesel_async::RunQueryDsl;
        use futures_util::FutureExt;
        async move {
            update.execute(conn).await?;
            Ok(())
        }
        .boxed()
    })
    .await
    .unwrap();
}

#[tokio::test]
async fn each_org_receives_only_its_own_changes() {
    let db = TestDb::migrated().await;
    let app = app(&db).await;
    let (a, b) = (app.create_org("a").await, app.create_org("b").await);
    let (token_a, token_b) = (
        app.token(Some(a), Role::Member, None),
        app.token(Some(b), Role::Member, None),
    );
    let mut ws_a = connect(&app.base, &token_a).await;
    let mut ws_b = connect(&app.base, &token_b).await;

    let id = add_pin(&app, &token_a, 1).await;
    let added = next_event(&mut ws_a, Duration::from_secs(5))
        .await
        .expect("a's new pin");
    assert_eq!(added["requestid"], id.as_str(), "{added}");
    assert_eq!(added["cid"], cid(1));
    assert_eq!(added["old_status"], Value::Null);
    assert_eq!(added["new_status"], "queued");
    assert!(added["at"].as_str().unwrap().ends_with('Z'), "{added}");
    set_status(&app, a, &id, "pinned").await;
    let changed = next_event(&mut ws_a, Duration::from_secs(5))
        .await
        .expect("a's change");
    assert_eq!(
        (
            changed["requestid"].as_str(),
            changed["old_status"].as_str(),
            changed["new_status"].as_str()
        ),
        (Some(id.as_str()), Some("queued"), Some("pinned"))
    );

    let id_b = add_pin(&app, &token_b, 2).await;
    let first_b = next_event(&mut ws_b, Duration::from_secs(5))
        .await
        .expect("b's new pin");
    assert_eq!(
        first_b["requestid"],
        id_b.as_str(),
        "b saw something of a's first: {first_b}"
    );
    assert!(
        next_event(&mut ws_a, Duration::from_millis(500))
            .await
            .is_none(),
        "a saw b's pin"
    );

    // Without a valid token there is no stream.
    let refused = tokio_tungstenite::connect_async(request(&app.base, "nope")).await;
    assert!(refused.is_err(), "an unauthenticated upgrade was accepted");
}

#[tokio::test]
async fn a_change_made_through_another_node_arrives() {
    let c = TestCluster::start(2, (1, 1), &[]).await;
    let org = c.create_org("acme").await;
    let token = c.token(Some(org), Role::Member);
    let base = c.url(1, "");
    let mut ws = connect(base.trim_end_matches('/'), &token).await;

    let content = c.add_unpinned(0, random_bytes(4096)).await;
    let (status, body) = send(
        c.req(0, Method::POST, "/v1/pins", &token)
            .json(&json!({"cid": content, "origins": [c.swarm_addr(0)]})),
    )
    .await;
    assert_eq!(status, 202, "{body}");
    let id = body["requestid"].as_str().unwrap();
    let mut statuses = Vec::new();
    while statuses.last().map(String::as_str) != Some("pinned") {
        let event = next_event(&mut ws, Duration::from_secs(30))
            .await
            .unwrap_or_else(|| panic!("events so far: {statuses:?}"));
        assert_eq!(event["requestid"], id, "{event}");
        statuses.push(event["new_status"].as_str().unwrap().to_string());
    }
    assert_eq!(
        statuses.first().map(String::as_str),
        Some("queued"),
        "{statuses:?}"
    );
}

#[tokio::test]
async fn a_client_that_stops_reading_is_dropped_and_others_keep_receiving() {
    const BURST: usize = 20_000;
    let db = TestDb::migrated().await;
    let app = app(&db).await;
    let org = app.create_org("acme").await;
    let token = app.token(Some(org), Role::Member, None);
    let mut fast = connect(&app.base, &token).await;
    // The slow client takes little into its socket and then reads nothing at all.
    let addr = app.base.trim_start_matches("http://").parse().unwrap();
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    let stream = socket.connect(addr).await.unwrap();
    let (mut slow, _) = tokio_tungstenite::client_async(request(&app.base, &token), stream)
        .await
        .unwrap();

    add_pin(&app, &token, 1).await;
    assert!(next_event(&mut fast, Duration::from_secs(5))
        .await
        .is_some());
    // A burst: many new pins in one statement, one event each.
    db.superuser_exec_with(
        "INSERT INTO pins (id, org_id, cid, requested_cid, created) \
         SELECT gen_random_uuid(), $1::text::uuid, 'burst' || i, 'burst' || i, \
                date_trunc('milliseconds', now()) - interval '1 day' - i * interval '1 millisecond' \
         FROM generate_series(1, $2::bigint) i",
        &[&org.uuid().to_string(), &(BURST as i64)],
    )
    .await;
    let mut got = 0;
    while got < BURST {
        next_event(&mut fast, Duration::from_secs(30))
            .await
            .unwrap_or_else(|| panic!("the fast client stopped after {got} events"));
        got += 1;
    }

    // The slow client's next message waits more than the send timeout: it is dropped.
    tokio::time::sleep(anchorage::api::events::SEND_TIMEOUT + Duration::from_secs(1)).await;
    let mut slow_got = 0;
    while next_event(&mut slow, Duration::from_secs(5))
        .await
        .is_some()
    {
        slow_got += 1;
    }
    assert!(
        slow_got < BURST,
        "the slow client was never dropped ({slow_got} events)"
    );

    // Everyone else carries on.
    let next = add_pin(&app, &token, 2).await;
    let event = next_event(&mut fast, Duration::from_secs(5))
        .await
        .expect("still receiving");
    assert_eq!(event["requestid"], next.as_str());
    assert_eq!(
        app.state.events.subscribers(),
        1,
        "only the fast client is left"
    );
}

#[tokio::test]
async fn the_socket_is_kept_alive_with_pings_both_ways() {
    let db = TestDb::migrated().await;
    let app = app(&db).await;
    let org = app.create_org("acme").await;
    let token = app.token(Some(org), Role::Member, None);
    let mut ws = connect(&app.base, &token).await;

    ws.send(Message::Ping(b"are you there".to_vec().into()))
        .await
        .unwrap();
    let pong = tokio::time::timeout(Duration::from_secs(5), ws.next())
        .await
        .expect("a pong")
        .unwrap()
        .unwrap();
    assert_eq!(pong, Message::Pong(b"are you there".to_vec().into()));

    // The server pings on its own within its interval (tungstenite answers it).
    let deadline = anchorage::api::events::PING_EVERY + Duration::from_secs(5);
    let ping = tokio::time::timeout(deadline, ws.next())
        .await
        .expect("a ping from the server")
        .unwrap()
        .unwrap();
    assert!(matches!(ping, Message::Ping(_)), "{ping:?}");
}
