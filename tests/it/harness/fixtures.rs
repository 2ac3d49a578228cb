//! Small fixtures that tests of every area share: an API-only app, distinct CIDs, and the
//! peer its delegates name.

use serde_json::json;

use super::{TestApp, TestDb};

/// The peer id in the API-only app's delegates (and in test origins).
pub const PEER: &str = "12D3KooWGRUVh1S3jiwVmGzeoWfxFcNn7MWzL9VXpdKrUZyWH8Qd";

/// An app whose delegates are configured, so no Kubo is needed to accept pins, and whose
/// placements never move (no pin workers), so tests may set statuses themselves.
pub async fn app(db: &TestDb) -> TestApp {
    TestApp::spawn_api_only(
        db,
        "http://127.0.0.1:9",
        vec![(
            "ipfs.delegates".into(),
            json!([format!("/ip4/198.51.99.7/tcp/4001/p2p/{PEER}")]),
        )],
    )
    .await
}

/// A distinct valid CID per `n` (identity multihash of the number).
pub fn cid(n: u32) -> String {
    let digest = n.to_be_bytes();
    let mh = cid::multihash::Multihash::<64>::wrap(0x00, &digest).unwrap();
    cid::Cid::new_v1(0x55, mh).to_string()
}
