//! Thin entry point; the command lives in `soam_cli::soamview`.
fn main() {
    std::process::exit(soam_cli::soamview::main())
}
