//! The Python package's tests (crates/python/tests, pytest) against the real agent built
//! here, so that the README's one test command runs them too. The compiled module is
//! built as it is for the wheel (`cargo build -p soam-python`) and laid beside the
//! package's Python files in a folder of its own under target/; pytest runs there with
//! `SOAM_BIN_DIR` naming this build's binaries. Needs pytest (`.ci/run` installs it from
//! PyPI); where it is missing the test says it skipped.

mod common;
use common::*;
use std::path::{Path, PathBuf};
use std::process::Command;

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Copies `from` into `to` (files and folders, no links).
fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let dest = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            if e.file_name() != "__pycache__" {
                copy_tree(&e.path(), &dest);
            }
        } else {
            std::fs::copy(e.path(), dest).unwrap();
        }
    }
}

/// The package as the wheel lays it out, with the module built in this profile.
fn package() -> PathBuf {
    let bins = bin("soamd").parent().unwrap().to_path_buf();
    let profile = bins.file_name().unwrap().to_str().unwrap().to_string();
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut c = Command::new(cargo);
    c.args(["build", "-p", "soam-python"]).current_dir(repo());
    if profile != "debug" {
        c.args(["--profile", &profile]);
    }
    let st = c.status().unwrap();
    assert!(st.success(), "cargo build -p soam-python failed");
    let dir = bins.join("python-test");
    let _ = std::fs::remove_dir_all(&dir);
    copy_tree(&repo().join("crates/python/python"), &dir);
    std::fs::copy(bins.join("lib_native.so"), dir.join("soam/_native.abi3.so")).unwrap();
    dir
}

fn have_pytest() -> bool {
    Command::new("python3")
        .args(["-c", "import pytest"])
        .status()
        .is_ok_and(|s| s.success())
}

#[test]
fn the_python_package_s_tests_pass() {
    if !have_pytest() {
        skip("pytest is not installed for python3 (pip install pytest; .ci/run does)");
        return;
    }
    let dir = package();
    let bins = bin("soamd").parent().unwrap().to_path_buf();
    let st = Command::new("python3")
        .args(["-m", "pytest", "-q", "-p", "no:cacheprovider", "crates/python/tests"])
        .current_dir(repo())
        .env("PYTHONPATH", &dir)
        .env("SOAM_BIN_DIR", &bins)
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .status()
        .unwrap();
    assert!(st.success(), "pytest failed (its output is above)");
}
