//! Thin entry point; the command lives in `soam_cli::soamworker`.
fn main() {
    std::process::exit(soam_cli::soamworker::main())
}
