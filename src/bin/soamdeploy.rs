//! Thin entry point; the command lives in `soam_cli::soamdeploy`.
fn main() {
    std::process::exit(soam_cli::soamdeploy::main())
}
