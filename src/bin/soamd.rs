//! Thin entry point; the command lives in `soam_cli::soamd`.
fn main() {
    std::process::exit(soam_cli::soamd::main())
}
