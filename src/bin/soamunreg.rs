//! Thin entry point; the command lives in `soam_cli::soamunreg`.
fn main() {
    std::process::exit(soam_cli::soamunreg::main())
}
