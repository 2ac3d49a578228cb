//! The test CA and the certificate the suite's Postgres serves (`ssl=on`), made with the
//! openssl CLI once per target dir. The server certificate names only `localhost`, so a
//! DSN for 127.0.0.1 with `verify-full` must be refused while `verify-ca` passes.

use std::{
    fs,
    os::unix::fs::PermissionsExt,
    path::{Path, PathBuf},
    process::Command,
};

/// Where the test PKI lives.
pub struct TestPki {
    dir: PathBuf,
}

impl TestPki {
    /// The PKI in `dir`, created unless a previous run left a complete one there.
    /// Callers hold the cluster's set-up lock.
    pub fn ensure(dir: &Path) -> Self {
        let pki = Self {
            dir: dir.to_path_buf(),
        };
        if !pki.other_ca().exists() {
            pki.create();
        }
        pki
    }

    /// The PKI the running cluster uses (after [`TestPki::ensure`]).
    pub fn existing(dir: &Path) -> Self {
        Self {
            dir: dir.to_path_buf(),
        }
    }

    /// The CA that signed the server certificate.
    pub fn ca(&self) -> PathBuf {
        self.dir.join("ca.pem")
    }

    /// A CA that signed nothing the server has.
    pub fn other_ca(&self) -> PathBuf {
        self.dir.join("other-ca.pem")
    }

    /// Server settings that turn TLS on with the server certificate.
    pub fn server_settings(&self) -> Vec<(String, String)> {
        vec![
            ("ssl".into(), "on".into()),
            (
                "ssl_cert_file".into(),
                self.dir.join("server.pem").display().to_string(),
            ),
            (
                "ssl_key_file".into(),
                self.dir.join("server.key").display().to_string(),
            ),
        ]
    }

    fn create(&self) {
        let scratch = self.dir.with_extension("build");
        let _ = fs::remove_dir_all(&scratch);
        fs::create_dir_all(&scratch).unwrap();
        let in_scratch = |name: &str| scratch.join(name).display().to_string();
        new_ca(&scratch, "ca", "anchorage test CA");
        new_ca(&scratch, "other-ca", "anchorage unrelated test CA");
        openssl(&[
            "req",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
            "-keyout",
            &in_scratch("server.key"),
            "-out",
            &in_scratch("server.csr"),
            "-subj",
            "/CN=localhost",
        ]);
        let extensions = in_scratch("server.ext");
        fs::write(
            &extensions,
            "subjectAltName=DNS:localhost\nbasicConstraints=critical,CA:FALSE\n\
             keyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\n",
        )
        .unwrap();
        openssl(&[
            "x509",
            "-req",
            "-in",
            &in_scratch("server.csr"),
            "-CA",
            &in_scratch("ca.pem"),
            "-CAkey",
            &in_scratch("ca.key"),
            "-CAcreateserial",
            "-days",
            "3650",
            "-extfile",
            &extensions,
            "-out",
            &in_scratch("server.pem"),
        ]);
        // Postgres refuses a key others can read. The cluster runs in a user namespace
        // that maps us to its user, so our own 0600 file is its own.
        fs::set_permissions(
            scratch.join("server.key"),
            fs::Permissions::from_mode(0o600),
        )
        .unwrap();
        // Postgres reads the files as another uid when not run by root: let it traverse.
        fs::set_permissions(&scratch, fs::Permissions::from_mode(0o755)).unwrap();
        let _ = fs::remove_dir_all(&self.dir);
        fs::rename(&scratch, &self.dir).unwrap();
    }
}

fn new_ca(dir: &Path, name: &str, subject: &str) {
    let path = |ext: &str| dir.join(format!("{name}.{ext}")).display().to_string();
    openssl(&[
        "req",
        "-x509",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-nodes",
        "-keyout",
        &path("key"),
        "-out",
        &path("pem"),
        "-days",
        "3650",
        "-subj",
        &format!("/CN={subject}"),
        "-addext",
        "basicConstraints=critical,CA:TRUE",
        "-addext",
        "keyUsage=critical,keyCertSign,cRLSign",
    ]);
}

fn openssl(args: &[&str]) {
    let out = Command::new("openssl")
        .args(args)
        .output()
        .unwrap_or_else(|e| {
            panic!("the test PKI needs the openssl CLI (apt-get install openssl): {e}")
        });
    assert!(
        out.status.success(),
        "openssl {}: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
}
