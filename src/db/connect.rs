//! Connecting to Postgres the way libpq does: `sslmode` and `sslrootcert` in the DSN
//! decide whether the connection is encrypted and what the server's certificate must
//! prove. The diesel pool, the LISTEN connection and the job queue (sqlx) all take their
//! TLS settings from here, so one DSN means the same thing to all three.

use std::{fmt, path::PathBuf, str::FromStr, sync::Arc};

use diesel::ConnectionError;
use diesel_async::AsyncPgConnection;
use rustls::{
    client::{
        danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier},
        WebPkiServerVerifier,
    },
    crypto::{verify_tls12_signature, verify_tls13_signature, CryptoProvider},
    pki_types::{pem::PemObject, CertificateDer, ServerName, UnixTime},
    ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme,
};
use tokio_postgres::{
    config::SslMode as WireSslMode, tls::MakeTlsConnect, Client, Connection, Socket,
};
use tokio_postgres_rustls::MakeRustlsConnect;

use crate::error::{Error, Result};

/// libpq's `sslmode` values, less `allow` (plaintext first is never what we want).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SslMode {
    /// Never encrypt.
    Disable,
    /// Encrypt when the server offers it, without checking its certificate (libpq's
    /// default, and ours when the DSN says nothing).
    Prefer,
    /// Always encrypt; check the certificate only when `sslrootcert` is given (libpq).
    Require,
    /// Always encrypt; the certificate must chain to the trusted roots.
    VerifyCa,
    /// As `VerifyCa`, and the certificate must name the host connected to.
    VerifyFull,
}

impl SslMode {
    fn parse(value: &str) -> Result<Self> {
        Ok(match value {
            "disable" => Self::Disable,
            "prefer" => Self::Prefer,
            "require" => Self::Require,
            "verify-ca" => Self::VerifyCa,
            "verify-full" => Self::VerifyFull,
            other => {
                return Err(Error::config(
                    "postgres DSN",
                    format!(
                        "sslmode={other:?} is not one of disable, prefer, require, \
                         verify-ca, verify-full"
                    ),
                ))
            }
        })
    }

    fn as_str(self) -> &'static str {
        match self {
            Self::Disable => "disable",
            Self::Prefer => "prefer",
            Self::Require => "require",
            Self::VerifyCa => "verify-ca",
            Self::VerifyFull => "verify-full",
        }
    }
}

/// The stream under a connection (TLS or not, as negotiated).
pub type PgStream = <MakeRustlsConnect as MakeTlsConnect<Socket>>::Stream;

/// A parsed DSN: where to connect and how to secure it.
#[derive(Clone)]
pub struct Target {
    config: tokio_postgres::Config,
    mode: SslMode,
    root_cert: Option<PathBuf>,
    tls: MakeRustlsConnect,
    /// The DSN as sqlx reads it (the same `sslmode` and `sslrootcert`).
    job_queue_url: String,
}

impl fmt::Debug for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The config holds the password: show only what decides the connection's security.
        f.debug_struct("Target")
            .field("mode", &self.mode)
            .field("root_cert", &self.root_cert)
            .finish_non_exhaustive()
    }
}

impl Target {
    /// Parses a `postgres://` URL, reading `sslrootcert` now so a missing or unreadable
    /// CA file is reported before anything tries to connect.
    pub fn parse(dsn: &str) -> Result<Self> {
        let mut url = url::Url::parse(dsn).map_err(|e| {
            Error::config(
                "postgres DSN",
                format!("must be a postgres:// URL ({e}); key=value connection strings are not supported"),
            )
        })?;
        if !matches!(url.scheme(), "postgres" | "postgresql") {
            return Err(Error::config(
                "postgres DSN",
                format!("must be a postgres:// URL, not {}://", url.scheme()),
            ));
        }
        let mut mode = None;
        let mut root_cert = None;
        let mut rest = Vec::new();
        for (key, value) in url.query_pairs() {
            match key.as_ref() {
                "sslmode" => mode = Some(SslMode::parse(&value)?),
                "sslrootcert" => root_cert = Some(PathBuf::from(value.as_ref())),
                "sslcert" | "sslkey" | "sslpassword" | "sslcrl" => {
                    return Err(Error::config(
                        "postgres DSN",
                        format!("{key} is not supported (client certificates)"),
                    ))
                }
                _ => rest.push((key.into_owned(), value.into_owned())),
            }
        }
        let mut mode = mode.unwrap_or(SslMode::Prefer);
        // libpq: with a root certificate at hand, `require` checks the chain.
        if mode == SslMode::Require && root_cert.is_some() {
            mode = SslMode::VerifyCa;
        }

        if rest.is_empty() {
            url.set_query(None);
        } else {
            url.query_pairs_mut().clear().extend_pairs(&rest);
        }
        let mut config = tokio_postgres::Config::from_str(url.as_str())
            .map_err(|e| Error::config("postgres DSN", format!("{}", ErrorChain(&e))))?;
        config.ssl_mode(match mode {
            SslMode::Disable => WireSslMode::Disable,
            SslMode::Prefer => WireSslMode::Prefer,
            _ => WireSslMode::Require,
        });

        let mut job_queue = url.clone();
        {
            let mut pairs = job_queue.query_pairs_mut();
            pairs.append_pair("sslmode", mode.as_str());
            if let Some(path) = &root_cert {
                pairs.append_pair("sslrootcert", &path.to_string_lossy());
            }
        }
        let tls = MakeRustlsConnect::new(client_config(mode, root_cert.as_ref())?);
        Ok(Self {
            config,
            mode,
            root_cert,
            tls,
            job_queue_url: job_queue.into(),
        })
    }

    /// The `sslmode` in effect.
    pub fn mode(&self) -> SslMode {
        self.mode
    }

    /// The DSN for sqlx (the job queue), with the same TLS settings spelled its way.
    pub fn job_queue_url(&self) -> &str {
        &self.job_queue_url
    }

    /// Opens a raw client; the caller drives `Connection`.
    pub async fn connect(&self) -> Result<(Client, Connection<Socket, PgStream>), ConnectFailure> {
        self.config
            .connect(self.tls.clone())
            .await
            .map_err(|e| ConnectFailure::new(&e, self))
    }

    /// Opens a diesel-async connection.
    pub async fn establish(&self) -> std::result::Result<AsyncPgConnection, ConnectionError> {
        let (client, connection) = self
            .connect()
            .await
            .map_err(|e| ConnectionError::BadConnection(e.to_string()))?;
        AsyncPgConnection::try_from_client_and_connection(client, connection).await
    }
}

/// Opens a diesel-async connection to `dsn`.
pub async fn establish(dsn: &str) -> Result<AsyncPgConnection> {
    let target = Target::parse(dsn)?;
    target
        .establish()
        .await
        .map_err(|e| Error::Unavailable(format!("cannot connect to Postgres: {e}")))
}

/// Why a connection could not be opened, with the whole cause chain (tokio-postgres's
/// own text is only "error performing TLS handshake") and, for TLS failures, the
/// settings that decided the check.
#[derive(Debug)]
pub struct ConnectFailure(String);

impl ConnectFailure {
    fn new(e: &tokio_postgres::Error, target: &Target) -> Self {
        let mut text = ErrorChain(e).to_string();
        if text.contains("TLS") || text.contains("certificate") {
            text.push_str(&format!(" (sslmode={}", target.mode.as_str()));
            if let Some(path) = &target.root_cert {
                text.push_str(&format!(", sslrootcert={}", path.display()));
            }
            text.push(')');
        }
        Self(text)
    }
}

impl fmt::Display for ConnectFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ConnectFailure {}

/// An error followed by each of its sources: "a: b: c".
struct ErrorChain<'a>(&'a (dyn std::error::Error + 'static));

impl fmt::Display for ErrorChain<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)?;
        let mut source = self.0.source();
        while let Some(e) = source {
            write!(f, ": {e}")?;
            source = e.source();
        }
        Ok(())
    }
}

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn client_config(mode: SslMode, root_cert: Option<&PathBuf>) -> Result<ClientConfig> {
    let provider = provider();
    let builder = ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| Error::Internal(format!("TLS set-up: {e}")))?;
    let config = match mode {
        SslMode::Disable | SslMode::Prefer | SslMode::Require => builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(EncryptOnly(provider)))
            .with_no_client_auth(),
        SslMode::VerifyCa | SslMode::VerifyFull => {
            let roots = Arc::new(roots(root_cert)?);
            let webpki = WebPkiServerVerifier::builder_with_provider(roots, provider)
                .build()
                .map_err(|e| Error::Internal(format!("TLS set-up: {e}")))?;
            let verifier: Arc<dyn ServerCertVerifier> = if mode == SslMode::VerifyCa {
                Arc::new(ChainOnly(webpki))
            } else {
                webpki
            };
            builder
                .dangerous()
                .with_custom_certificate_verifier(verifier)
                .with_no_client_auth()
        }
    };
    Ok(config)
}

/// The CAs a certificate must chain to: `sslrootcert`'s PEM file, or the bundled Mozilla
/// roots (managed Postgres services with public certificates) when none is named.
fn roots(root_cert: Option<&PathBuf>) -> Result<RootCertStore> {
    let mut store = RootCertStore::empty();
    let Some(path) = root_cert else {
        store.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
        return Ok(store);
    };
    let key = "postgres DSN";
    let pem = std::fs::read(path)
        .map_err(|e| Error::config(key, format!("sslrootcert {}: {e}", path.display())))?;
    let certs = CertificateDer::pem_slice_iter(&pem)
        .collect::<std::result::Result<Vec<_>, _>>()
        .map_err(|e| Error::config(key, format!("sslrootcert {}: {e}", path.display())))?;
    if certs.is_empty() {
        return Err(Error::config(
            key,
            format!("sslrootcert {}: no PEM certificate in it", path.display()),
        ));
    }
    for cert in certs {
        store
            .add(cert)
            .map_err(|e| Error::config(key, format!("sslrootcert {}: {e}", path.display())))?;
    }
    Ok(store)
}

/// `prefer` and `require` without a root certificate: encrypted, but anyone may be on
/// the other end (libpq's meaning). Handshake signatures are still checked.
#[derive(Debug)]
struct EncryptOnly(Arc<CryptoProvider>);

impl ServerCertVerifier for EncryptOnly {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> std::result::Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// `verify-ca`: the chain must reach a trusted root; the name in it is not checked.
#[derive(Debug)]
struct ChainOnly(Arc<WebPkiServerVerifier>);

impl ServerCertVerifier for ChainOnly {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> std::result::Result<ServerCertVerified, rustls::Error> {
        match self
            .0
            .verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now)
        {
            Err(rustls::Error::InvalidCertificate(rustls::CertificateError::NotValidForName))
            | Err(rustls::Error::InvalidCertificate(
                rustls::CertificateError::NotValidForNameContext { .. },
            )) => Ok(ServerCertVerified::assertion()),
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.supported_verify_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(dsn: &str) -> Result<Target> {
        Target::parse(dsn)
    }

    #[test]
    fn no_sslmode_means_prefer_like_libpq() {
        let t = parse("postgres://u@db/x").unwrap();
        assert_eq!(t.mode(), SslMode::Prefer);
        assert_eq!(t.job_queue_url(), "postgres://u@db/x?sslmode=prefer");
    }

    #[test]
    fn the_tls_keys_are_taken_out_and_the_rest_kept() {
        let t = parse("postgres://u:pw@db:5433/x?application_name=a&sslmode=disable").unwrap();
        assert_eq!(t.mode(), SslMode::Disable);
        assert_eq!(t.config.get_application_name(), Some("a"));
        assert_eq!(t.config.get_ports(), &[5433]);
        assert_eq!(
            t.job_queue_url(),
            "postgres://u:pw@db:5433/x?application_name=a&sslmode=disable"
        );
    }

    #[test]
    fn require_with_a_root_certificate_checks_the_chain() {
        let dir = tempfile::tempdir().unwrap();
        let ca = dir.path().join("ca.pem");
        std::fs::write(&ca, TEST_CA).unwrap();
        let t = parse(&format!(
            "postgres://u@db/x?sslmode=require&sslrootcert={}",
            ca.display()
        ))
        .unwrap();
        assert_eq!(t.mode(), SslMode::VerifyCa);
        assert!(t.job_queue_url().contains("sslmode=verify-ca"));
    }

    #[test]
    fn bad_tls_settings_name_what_is_wrong() {
        let cases = [
            ("postgres://u@db/x?sslmode=allow", "sslmode=\"allow\""),
            (
                "postgres://u@db/x?sslmode=verify-full&sslrootcert=/nonexistent/ca.pem",
                "sslrootcert /nonexistent/ca.pem",
            ),
            (
                "postgres://u@db/x?sslcert=/c.pem",
                "sslcert is not supported",
            ),
            ("host=db user=u", "must be a postgres:// URL"),
            ("mysql://u@db/x", "must be a postgres:// URL"),
        ];
        for (dsn, want) in cases {
            let e = parse(dsn).unwrap_err().to_string();
            assert!(e.contains(want), "{dsn}: {e}");
            assert!(e.starts_with("configuration: postgres DSN"), "{dsn}: {e}");
        }
    }

    #[test]
    fn the_debug_form_shows_no_password() {
        let t = parse("postgres://u:hunter2@db/x").unwrap();
        assert!(!format!("{t:?}").contains("hunter2"));
    }

    /// A throwaway self-signed CA (only parsed, never trusted by anything).
    const TEST_CA: &str = include_str!("../../tests/data/tls/unit-test-ca.pem");
}
