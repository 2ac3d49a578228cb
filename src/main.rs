//! The `anchorage` binary; everything lives in the library.

/// The release build's allocator (`--features mimalloc`, see docs/benchmarks.md).
#[cfg(feature = "mimalloc")]
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    anchorage::cli::main()
}
