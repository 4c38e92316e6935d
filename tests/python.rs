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

/// The package as a user gets it: `pip install` of the checkout into a fresh venv (the
/// build backend, maturin, comes from PyPI as pip does it), then a session run from that
/// venv's Python with nothing on PYTHONPATH or LD_LIBRARY_PATH. Built in the dev profile
/// (MATURIN_PEP517_ARGS), which reuses this build's target folder.
#[test]
fn pip_installs_the_checkout_into_a_venv_as_one_abi3_wheel() {
    if !have_pytest() {
        skip("pytest is not installed for python3, so neither is what the Python tests need (.ci/run installs it)");
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let venv = tmp.path().join("venv");
    let st = Command::new("python3").args(["-m", "venv"]).arg(&venv).status().unwrap();
    assert!(st.success(), "python3 -m venv failed");
    let pip = Command::new(venv.join("bin/pip"))
        .args(["install", "-q", "--disable-pip-version-check"])
        .arg(repo())
        .env("MATURIN_PEP517_ARGS", "--profile dev")
        .env_remove("PYTHONPATH")
        .output()
        .unwrap();
    assert!(pip.status.success(), "pip install failed: {}", String::from_utf8_lossy(&pip.stderr));
    let mut env = Env::empty();
    env.start_agent();
    env.ok("soamreg", &[repo().join("profiles/sample.yaml").to_str().unwrap()]);
    let script = r#"
import glob, os, sys
import soam, soamapi, soamapiversion
assert "LD_LIBRARY_PATH" not in os.environ
site = os.path.dirname(os.path.dirname(soam.__file__))
wheel = open(glob.glob(os.path.join(site, "soam-*.dist-info", "WHEEL"))[0]).read()
assert "Tag: cp39-abi3-" in wheel, wheel
assert os.path.exists(os.path.join(os.path.dirname(soam.__file__), "py.typed"))
assert soam.__file__.startswith(sys.prefix), (soam.__file__, sys.prefix)
with soam.connect().create_session("sampleApp", common_data=b"venv ") as s:
    s.submit(["ok"])
    print([o.data.decode() for o in s.outputs()])
"#;
    let o = Command::new(venv.join("bin/python"))
        .args(["-c", script])
        .env("SOAM_HOME", env.home.path())
        .env("SOAM_NO_AUTOSTART", "1")
        .env_remove("PYTHONPATH")
        .env_remove("LD_LIBRARY_PATH")
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(String::from_utf8_lossy(&o.stdout).trim(), "['venv ok']");
}

/// Every CPython 3.9 or later on this machine (on PATH as python3.N, or under pyenv),
/// as (version, interpreter).
fn cpythons() -> Vec<(String, PathBuf)> {
    let mut found: Vec<(String, PathBuf)> = Vec::new();
    let mut candidates: Vec<PathBuf> = (9..=15).map(|m| PathBuf::from(format!("python3.{m}"))).collect();
    let pyenv = std::env::var_os("PYENV_ROOT")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| Path::new(&h).join(".pyenv")));
    if let Some(versions) = pyenv.map(|p| p.join("versions"))
        && let Ok(rd) = std::fs::read_dir(versions)
    {
        candidates.extend(rd.flatten().map(|e| e.path().join("bin/python3")));
    }
    for c in candidates {
        let Ok(o) = Command::new(&c)
            .args([
                "-c",
                "import sys, venv; print('%d.%d' % sys.version_info[:2], sys.implementation.name)",
            ])
            .output()
        else {
            continue;
        };
        let out = String::from_utf8_lossy(&o.stdout).trim().to_string();
        let Some((v, imp)) = out.split_once(' ') else { continue };
        let minor: u32 = v.strip_prefix("3.").and_then(|m| m.parse().ok()).unwrap_or(0);
        if o.status.success() && imp == "cpython" && minor >= 9 && !found.iter().any(|(f, _)| f == v) {
            found.push((v.to_string(), c));
        }
    }
    found.sort_by_key(|(v, _)| v.strip_prefix("3.").and_then(|m| m.parse::<u32>().ok()));
    found
}

/// One wheel for every supported CPython: maturin builds it once (abi3), and it is
/// installed into a venv of each CPython 3.9+ found here, each running a session and
/// importing soamapi. Says which versions it ran on.
#[test]
fn one_wheel_serves_every_cpython_found_here() {
    let maturin_ok = Command::new("maturin").arg("--version").output().is_ok_and(|o| o.status.success());
    if !maturin_ok {
        skip("maturin is not installed (pip install maturin; .ci/run does)");
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let wheels = tmp.path().join("wheels");
    let o = Command::new("maturin")
        .args(["build", "--profile", "dev", "-q", "-o"])
        .arg(&wheels)
        .current_dir(repo())
        .output()
        .unwrap();
    assert!(o.status.success(), "maturin build failed: {}", String::from_utf8_lossy(&o.stderr));
    let built: Vec<PathBuf> = std::fs::read_dir(&wheels).unwrap().flatten().map(|e| e.path()).collect();
    assert_eq!(built.len(), 1, "one wheel: {built:?}");
    let wheel = &built[0];
    let name = wheel.file_name().unwrap().to_string_lossy().into_owned();
    assert!(name.contains("-cp39-abi3-"), "{name} is not an abi3 wheel for CPython 3.9+");
    let mut env = Env::empty();
    env.start_agent();
    env.ok("soamreg", &[repo().join("profiles/sample.yaml").to_str().unwrap()]);
    let pythons = cpythons();
    assert!(!pythons.is_empty(), "no CPython 3.9+ found");
    for (v, py) in &pythons {
        let venv = tmp.path().join(format!("venv{v}"));
        let st = Command::new(py).args(["-m", "venv"]).arg(&venv).status().unwrap();
        assert!(st.success(), "venv for {v}");
        let pip = Command::new(venv.join("bin/python"))
            .args(["-m", "pip", "install", "-q", "--disable-pip-version-check", "--no-index"])
            .arg(wheel)
            .env_remove("PYTHONPATH")
            .output()
            .unwrap();
        assert!(pip.status.success(), "pip install on {v}: {}", String::from_utf8_lossy(&pip.stderr));
        let script = "import soam, soamapi\nwith soam.connect().create_session('sampleApp') as s:\n    s.submit(['x'])\n    print([o.data.decode() for o in s.outputs()])\n";
        let o = Command::new(venv.join("bin/python"))
            .args(["-c", script])
            .env("SOAM_HOME", env.home.path())
            .env("SOAM_NO_AUTOSTART", "1")
            .env_remove("PYTHONPATH")
            .output()
            .unwrap();
        assert!(o.status.success(), "CPython {v}: {}", String::from_utf8_lossy(&o.stderr));
        assert_eq!(String::from_utf8_lossy(&o.stdout).trim(), "['x']", "CPython {v}");
    }
    let versions: Vec<&str> = pythons.iter().map(|(v, _)| v.as_str()).collect();
    eprintln!("{name} ran a session on CPython {}", versions.join(", "));
}
