//! `anchorage admin rotate-signing-key`: a new key file and the config entry for it.

use std::path::PathBuf;

use clap::Args;

use crate::{auth::keys, error::Result};

#[derive(Debug, Args)]
pub struct RotateArgs {
    /// The new key's id (the JWT `kid`), e.g. 2026-11.
    #[arg(long)]
    id: String,
    /// Where to write the key file (created with mode 0400; never overwritten).
    #[arg(long, value_name = "PATH")]
    out: PathBuf,
}

pub fn run(args: RotateArgs) -> Result<()> {
    if args.id.trim().is_empty() {
        return Err(crate::Error::BadRequest("--id must not be empty".into()));
    }
    keys::write_new_key_file(&args.out)?;
    let path = std::fs::canonicalize(&args.out).unwrap_or(args.out);
    // Verify-only: every node must know the new key before any node mints with it.
    println!(
        "# Step 1: append to auth.apiToken.signingKeys on every node (verify-only) and roll-restart.\n\
         # Step 2: move `primary: true` from the old entry to this one and roll-restart.\n\
         # Step 3: once the old key's tokens have expired, remove its entry and roll-restart.\n\
         - id: \"{}\"\n  path: {}",
        args.id,
        path.display()
    );
    Ok(())
}
