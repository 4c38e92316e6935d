//! Thin entry point; the command lives in `soam_cli::session`.
fn main() {
    std::process::exit(soam_cli::session::main())
}
