//! The Kubo client against real Kubo cores and against scripted faults: every failure is
//! a classified error, never a panic or a hang.

use std::{
    sync::{
        atomic::{AtomicU64, Ordering},
        Arc,
    },
    time::{Duration, Instant},
};

use anchorage::kubo::{Kubo, KuboClient, KuboError};

use crate::harness::{fake_kubo::FakeKubo, kubo::random_bytes, KuboNode};

fn client(url: &str, stall: Duration) -> KuboClient {
    KuboClient::new(url, Duration::from_secs(2))
        .unwrap()
        .with_stall_timeout(stall)
}

fn no_progress() -> anchorage::kubo::ProgressFn {
    Box::new(|_| {})
}

#[tokio::test]
async fn pins_content_from_another_node_with_progress() {
    let (origin, node) = tokio::task::spawn_blocking(|| (KuboNode::start(), KuboNode::start()))
        .await
        .unwrap();
    let cid = origin.add(random_bytes(2 * 1024 * 1024)).await;
    let kubo = client(node.api(), Duration::from_secs(30));

    assert!(kubo.version().await.unwrap().starts_with("0."));
    assert_eq!(kubo.id().await.unwrap().id, node.node.ready.peer_id);
    kubo.swarm_connect(origin.swarm_addr()).await.unwrap();
    assert!(!kubo.is_pinned(&cid).await.unwrap());

    let seen = Arc::new(AtomicU64::new(0));
    let seen_in = seen.clone();
    let added = kubo
        .pin_add(&cid, Box::new(move |p| seen_in.store(p, Ordering::SeqCst)))
        .await
        .unwrap();
    assert!(added.progress > 0, "{added:?}");
    assert_eq!(
        seen.load(Ordering::SeqCst),
        added.progress,
        "every increase is reported"
    );
    assert!(kubo.is_pinned(&cid).await.unwrap());
    assert!(kubo.pin_ls_recursive().await.unwrap().contains(&cid));

    // pin/update keeps the old pin (unpin=false).
    let other = origin.add(random_bytes(4096)).await;
    kubo.pin_update(&cid, &other).await.unwrap();
    assert!(kubo.is_pinned(&cid).await.unwrap() && kubo.is_pinned(&other).await.unwrap());

    kubo.pin_rm(&cid).await.unwrap();
    assert!(!kubo.is_pinned(&cid).await.unwrap());
    let err = kubo.pin_rm(&cid).await.unwrap_err();
    assert!(matches!(err, KuboError::NotFound(_)), "{err}");
    let err = kubo
        .swarm_connect(
            "/ip4/127.0.0.1/tcp/9/p2p/12D3KooWGRUVh1S3jiwVmGzeoWfxFcNn7MWzL9VXpdKrUZyWH8Qd",
        )
        .await
        .unwrap_err();
    assert!(matches!(err, KuboError::Rejected(_)), "{err}");
}

#[tokio::test]
async fn a_pin_nobody_serves_stalls_on_a_real_node() {
    let (other, node) = tokio::task::spawn_blocking(|| (KuboNode::start(), KuboNode::start()))
        .await
        .unwrap();
    let cid = other.add(random_bytes(1024)).await;
    drop(other);
    let kubo = client(node.api(), Duration::from_secs(2));
    let started = Instant::now();
    let err = kubo.pin_add(&cid, no_progress()).await.unwrap_err();
    assert_eq!(
        err,
        KuboError::Stalled {
            progress: 0,
            after_secs: 2
        }
    );
    assert!(started.elapsed() < Duration::from_secs(10));
    assert!(err.is_transient());
}

#[tokio::test]
async fn scripted_faults_are_classified() {
    let fake = FakeKubo::start();
    let kubo = client(&fake.url, Duration::from_secs(1));
    let pin = |arg: &'static str| {
        let kubo = kubo.clone();
        async move { kubo.pin_add(arg, Box::new(|_| {})).await }
    };

    let err = pin("error500").await.unwrap_err();
    assert!(
        matches!(err, KuboError::Rejected(ref m) if m.contains("disk full")),
        "{err}"
    );
    let err = pin("hang").await.unwrap_err();
    assert!(
        matches!(err, KuboError::Stalled { progress: 0, .. }),
        "{err}"
    );
    let err = pin("malformed").await.unwrap_err();
    assert!(matches!(err, KuboError::Malformed(_)), "{err}");
    let err = pin("truncated").await.unwrap_err();
    assert!(
        matches!(err, KuboError::Malformed(ref m) if m.contains("without a result")),
        "{err}"
    );
    let started = Instant::now();
    let err = pin("flat").await.unwrap_err();
    assert_eq!(
        err,
        KuboError::Stalled {
            progress: 5,
            after_secs: 1
        },
        "lines keep coming but nothing moves"
    );
    assert!(started.elapsed() < Duration::from_secs(5));
    let err = pin("error-line").await.unwrap_err();
    assert!(
        matches!(err, KuboError::Rejected(ref m) if m.contains("merkledag")),
        "{err}"
    );
    // 3 s of wall time with a 1 s stall timeout: it keeps moving, so it is never killed.
    let ok = pin("slow-but-moving").await.unwrap();
    assert_eq!(ok.progress, 12);

    let err = kubo.id().await.unwrap_err();
    assert!(
        matches!(err, KuboError::Unreachable(_)),
        "503 means the daemon cannot serve: {err}"
    );
    let err = kubo.version().await.unwrap_err();
    assert!(matches!(err, KuboError::Timeout(_)), "{err}");
    let dead = client("http://127.0.0.1:9", Duration::from_secs(1));
    let err = dead.id().await.unwrap_err();
    assert!(matches!(err, KuboError::Unreachable(_)), "{err}");
    assert!(err.is_transient());
}
