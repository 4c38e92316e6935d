//! Regenerates `man/` and `completions/` from the command definitions:
//! `cargo run --bin soam-docgen` (a test fails when they are out of date).
fn main() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    if let Err(e) = soam_cli::docs::generate(&root.join("man"), &root.join("completions")) {
        eprintln!("soam-docgen: {e}");
        std::process::exit(1);
    }
}
