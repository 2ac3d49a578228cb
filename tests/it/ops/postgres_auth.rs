//! `postgres.passwordFile` against a Postgres that checks passwords: the suite's cluster
//! requires SCRAM from members of `password_users` (harness::pg), so only the right
//! file's content gets in.

use crate::harness::{
    bin,
    pg::{APP_ROLE, PASSWORD_USERS},
    TestDb,
};

/// `anchorage migrate status` as `dsn`, with `password_file` when given.
async fn migrate_status(dsn: String, password_file: Option<std::path::PathBuf>) -> (bool, String) {
    let out = tokio::task::spawn_blocking(move || {
        let mut cmd = bin::anchorage();
        cmd.args(["migrate", "status"])
            .env("ANCHORAGE_POSTGRES__DSN", &dsn);
        if let Some(path) = &password_file {
            cmd.env("ANCHORAGE_POSTGRES__PASSWORD_FILE", path);
        }
        cmd.output().unwrap()
    })
    .await
    .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr),
    )
}

#[tokio::test]
async fn the_password_file_is_what_a_password_checking_postgres_gets() {
    let db = TestDb::migrated().await;
    let role = format!("pw_{}", &uuid::Uuid::now_v7().simple().to_string()[20..]);
    // DDL takes no parameters; `role` is a name this test generated.
    db.superuser_exec(&format!(
        "CREATE ROLE {role} LOGIN PASSWORD 'correct horse' IN ROLE {PASSWORD_USERS}, {APP_ROLE}"
    ))
    .await;
    let dir = tempfile::tempdir().unwrap();
    let right = dir.path().join("right");
    let wrong = dir.path().join("wrong");
    // As `openssl rand … > file` or a Swarm secret leaves it: with a trailing newline.
    std::fs::write(&right, "correct horse\n").unwrap();
    std::fs::write(&wrong, "battery staple\n").unwrap();
    let dsn = db.dsn_as(&role);

    let (ok, out) = migrate_status(dsn.clone(), Some(right)).await;
    assert!(ok, "with the right file: {out}");
    assert!(out.contains("[x] 2026-11-23-000001_tenancy"), "{out}");
    for (file, what) in [(Some(wrong), "the wrong file"), (None, "no file")] {
        let (ok, out) = migrate_status(dsn.clone(), file).await;
        assert!(!ok, "{what} got in: {out}");
        assert!(
            out.contains("password authentication failed") || out.contains("password missing"),
            "{what}: {out}"
        );
        assert!(
            !out.contains("correct horse") && !out.contains("battery staple"),
            "{what}: a password in the output: {out}"
        );
    }
    // DDL again: the generated role name, not a value.
    db.superuser_exec(&format!("DROP OWNED BY {role}; DROP ROLE {role}"))
        .await;
}
