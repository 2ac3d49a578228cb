//! The `anchorage` binary; everything lives in the library.

fn main() -> std::process::ExitCode {
    anchorage::cli::main()
}
