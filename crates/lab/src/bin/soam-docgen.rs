//! Regenerates `man/` and `completions/` from the command definitions:
//! `cargo run -p soam-lab --bin soam-docgen` (a test fails when they are out of date).
//! A binary of the lab, so `cargo install --path .` installs only the commands people
//! run.
fn main() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    if let Err(e) = soam_cli::docs::generate(soam_lab::commands(), &root.join("man"), &root.join("completions")) {
        eprintln!("soam-docgen: {e}");
        std::process::exit(1);
    }
}
