//! Thin entry point; the command lives in `soam_cli::soamcontrol`.
fn main() {
    std::process::exit(soam_cli::soamcontrol::main())
}
