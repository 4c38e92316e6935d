//! man/ and completions/ must equal a fresh generation from the clap definitions
//! (regenerate with `cargo run --bin soam-docgen`).

use std::collections::BTreeMap;
use std::path::Path;

fn files(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    let mut out = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.insert(p.strip_prefix(dir).unwrap().display().to_string(), std::fs::read(&p).unwrap());
            }
        }
    }
    out
}

#[test]
fn man_pages_and_completions_are_current() {
    let fresh = tempfile::tempdir().unwrap();
    soam_cli::docs::generate(&fresh.path().join("man"), &fresh.path().join("completions")).unwrap();
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    for dir in ["man", "completions"] {
        let want = files(&fresh.path().join(dir));
        let have = files(&root.join(dir));
        let want_names: Vec<&String> = want.keys().collect();
        let have_names: Vec<&String> = have.keys().collect();
        assert_eq!(
            have_names, want_names,
            "{dir}/ has other files than a fresh generation; run cargo run --bin soam-docgen"
        );
        for (name, bytes) in &want {
            assert!(have[name] == *bytes, "{dir}/{name} is out of date; run cargo run --bin soam-docgen");
        }
    }
}
