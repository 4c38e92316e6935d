//! Thin entry point; the command lives in `soam_cli::soamreg`.
fn main() {
    std::process::exit(soam_cli::soamreg::main())
}
