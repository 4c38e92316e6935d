//! Thin entry point; the command lives in `soam_lab::soambench`.
fn main() {
    std::process::exit(soam_lab::soambench::main())
}
