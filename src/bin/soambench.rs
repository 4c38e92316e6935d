//! Thin entry point; the command lives in `soam_cli::soambench`.
fn main() {
    std::process::exit(soam_cli::soambench::main())
}
