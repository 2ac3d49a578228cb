//! Running the `anchorage` binary the way a user would, without this shell's config.

use std::process::Command;

/// The binary, with every `ANCHORAGE_*` variable of the test process removed so only what
/// the test sets applies.
pub fn anchorage() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_anchorage"));
    for (k, _) in std::env::vars() {
        if k.starts_with("ANCHORAGE_") {
            cmd.env_remove(k);
        }
    }
    cmd
}
