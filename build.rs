//! Stamps the git commit the binary is built from into `anchorage --version`
//! (`ANCHORAGE_GIT_COMMIT`; `unknown` outside a git checkout, e.g. from a source tarball,
//! unless the variable is set for the build).

use std::process::Command;

fn main() {
    println!("cargo:rerun-if-env-changed=ANCHORAGE_GIT_COMMIT");
    println!("cargo:rerun-if-changed=.git/HEAD");
    println!("cargo:rerun-if-changed=.git/refs/heads");
    let commit = std::env::var("ANCHORAGE_GIT_COMMIT")
        .ok()
        .filter(|c| !c.is_empty())
        .or_else(|| {
            let out = Command::new("git")
                .args(["rev-parse", "--short=12", "HEAD"])
                .output()
                .ok()?;
            out.status
                .success()
                .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
        })
        .unwrap_or_else(|| "unknown".into());
    println!("cargo:rustc-env=ANCHORAGE_GIT_COMMIT={commit}");
}
