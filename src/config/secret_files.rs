//! Secrets read from files, so container secrets (`/run/secrets/…`) never sit in the
//! environment or the config file: `postgres.passwordFile` and
//! `postgres.migrationPasswordFile` hold the password of the user in `postgres.dsn` and
//! `postgres.migrationDSN`, and `nats.tokenFile` the NATS auth token. (Signing keys and
//! `nats.credsFile` are files already.) Trailing whitespace —
//! the newline `openssl rand -base64 32 > file` leaves — is not part of the password.

use std::path::Path;

use super::{secret::Secret, Config};
use crate::error::Error;

/// Puts each `…File` password into its DSN.
pub(super) fn resolve(mut config: Config) -> Result<Config, Error> {
    let pg = &mut config.postgres;
    if let Some(path) = pg.password_file.clone() {
        let password = read("postgres.passwordFile", &path)?;
        // Without its own migrationDSN the owner is the same user, with this password.
        pg.dsn = Secret::new(with_password("postgres.dsn", pg.dsn.expose(), &password)?);
    }
    if let Some(path) = pg.migration_password_file.clone() {
        let password = read("postgres.migrationPasswordFile", &path)?;
        let dsn = pg
            .migration_dsn
            .as_ref()
            .unwrap_or(&pg.dsn)
            .expose()
            .clone();
        pg.migration_dsn = Some(Secret::new(with_password(
            "postgres.migrationDSN",
            &dsn,
            &password,
        )?));
    }
    if let Some(path) = config.nats.token_file.clone() {
        if config.nats.token.is_some() {
            return Err(Error::config(
                "nats.tokenFile",
                "set nats.token or nats.tokenFile, not both",
            ));
        }
        config.nats.token = Some(Secret::new(read("nats.tokenFile", &path)?));
    }
    Ok(config)
}

fn read(key: &str, path: &Path) -> Result<String, Error> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| Error::config(key, format!("cannot read {}: {e}", path.display())))?;
    let password = text.trim_end().to_string();
    if password.is_empty() {
        return Err(Error::config(key, format!("{} is empty", path.display())));
    }
    Ok(password)
}

/// `dsn` (a `postgres://` URL) with `password` set (percent-encoded as needed).
fn with_password(key: &str, dsn: &str, password: &str) -> Result<String, Error> {
    let mut url = url::Url::parse(dsn).map_err(|e| {
        Error::config(
            key,
            format!("a password file needs a postgres:// URL here ({e})"),
        )
    })?;
    url.set_password(Some(password))
        .map_err(|()| Error::config(key, "this DSN cannot carry a password"))?;
    Ok(url.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_file_password_goes_into_the_dsn_encoded() {
        let got = with_password(
            "postgres.dsn",
            "postgres://anchorage@db:5432/anchorage?sslmode=require",
            "p@ss/w:rd",
        )
        .unwrap();
        assert_eq!(
            got,
            "postgres://anchorage:p%40ss%2Fw%3Ard@db:5432/anchorage?sslmode=require"
        );
        assert!(with_password("postgres.dsn", "host=db user=x", "pw").is_err());
    }

    #[test]
    fn both_files_apply_and_a_missing_one_names_its_key() {
        let dir = tempfile::TempDir::new().unwrap();
        let (app, owner) = (dir.path().join("app"), dir.path().join("owner"));
        std::fs::write(&app, "app-secret\n").unwrap();
        std::fs::write(&owner, "owner-secret").unwrap();
        let mut config = Config::default();
        config.postgres.dsn = Secret::from("postgres://anchorage_app@db/anchorage");
        config.postgres.migration_dsn =
            Some(Secret::from("postgres://anchorage_owner@db/anchorage"));
        config.postgres.password_file = Some(app);
        config.postgres.migration_password_file = Some(owner);
        let config = resolve(config).unwrap();
        assert_eq!(
            config.postgres.dsn.expose(),
            "postgres://anchorage_app:app-secret@db/anchorage"
        );
        assert_eq!(
            config.postgres.migration_dsn.unwrap().expose(),
            "postgres://anchorage_owner:owner-secret@db/anchorage"
        );
        let mut config = Config::default();
        config.postgres.password_file = Some(dir.path().join("absent"));
        let err = resolve(config).unwrap_err();
        assert!(err.to_string().contains("postgres.passwordFile"), "{err}");
    }

    #[test]
    fn the_nats_token_file_becomes_the_token_and_not_beside_one() {
        let dir = tempfile::TempDir::new().unwrap();
        let path = dir.path().join("nats-token");
        std::fs::write(&path, "s3cret-token\n").unwrap();
        let mut config = Config::default();
        config.nats.token_file = Some(path.clone());
        let config = resolve(config).unwrap();
        assert_eq!(config.nats.token.unwrap().expose(), "s3cret-token");
        let mut config = Config::default();
        config.nats.token_file = Some(path);
        config.nats.token = Some(Secret::from("other"));
        let err = resolve(config).unwrap_err();
        assert!(err.to_string().contains("nats.tokenFile"), "{err}");
    }
}
