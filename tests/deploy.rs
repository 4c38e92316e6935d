//! Service packages through the real commands: `soamdeploy add|view|remove`, a profile's
//! `packageName` started from the current version's folder, a new version reaching new
//! instances while a running one finishes, and bad archives refused with one line and
//! nothing left behind.

mod common;
use common::*;
use std::path::PathBuf;

/// A package folder holding `run.sh` (which starts the test service) and `VERSION`.
fn package(env: &Env, name: &str, version: &str) -> PathBuf {
    let dir = service_package(&env.path(&format!("src-{name}-{version}")));
    std::fs::write(dir.join("VERSION"), version).unwrap();
    tar_gz(&env.path(&format!("{name}-{version}.tar.gz")), &dir, &["."])
}

fn profile(env: &Env) {
    env.register(
        "p.yaml",
        "application: a\nservices:\n  - name: s\n    package: pkg\n    command: [\"${SOAM_DEPLOY_DIR}/bin/run.sh\"]\n    env: {DEPLOYED: \"${SOAM_DEPLOY_DIR}\"}\nsessionTypes:\n  - name: Keep\n    onClientDisconnect: continue\n",
    );
}

/// The folder the service says it was started from.
fn deployed(env: &Env) -> PathBuf {
    PathBuf::from(env.ok("soamsession", &["submit", "--app", "a", "--task", "env:DEPLOYED"]).trim())
}

#[test]
fn a_package_is_deployed_updated_and_removed() {
    let env = Env::new();
    profile(&env);
    // Not deployed yet: the instance says why it cannot start.
    let o = env.run("soamsession", &["submit", "--app", "a", "--task", "x"]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("its package 'pkg' is not deployed (soamdeploy add pkg --package FILE)"),
        "{err}"
    );

    let v1 = package(&env, "pkg", "v1");
    let o = env.run("soamdeploy", &["add", "pkg", "--package", v1.to_str().unwrap()]);
    assert!(o.status.success(), "{o:?}");
    let said = String::from_utf8_lossy(&o.stderr);
    assert!(
        said.starts_with("deployed package 'pkg' version ") && said.contains("(5 files,"),
        "{said}"
    );
    let view = env.json("soamdeploy", &["view"]);
    assert_eq!(view.as_array().unwrap().len(), 1);
    let sha1 = view[0]["sha256"].as_str().unwrap().to_string();
    assert_eq!((view[0]["package"].as_str(), view[0]["versions"].as_u64()), (Some("pkg"), Some(1)));
    // Its instances start from this host's unpacked copy of it, named by its checksum.
    let dir1 = deployed(&env);
    assert_eq!(dir1, env.path(&format!("data/deploy/{sha1}")));
    assert_eq!(std::fs::read_to_string(dir1.join("VERSION")).unwrap(), "v1");
    assert!(env.path(&format!("data/packages/{sha1}.pkg")).is_file());

    // A task running on v1 while v2 is deployed finishes there; new sessions get v2.
    let keep = env.ok(
        "soamsession",
        &["submit", "--app", "a", "--type", "Keep", "--task", "nap:1.5:old", "--detach"],
    );
    let keep = format!("a:{}", keep.trim());
    let v2 = package(&env, "pkg", "v2");
    env.ok(
        "soamdeploy",
        &["add", "pkg", "-p", v2.to_str().unwrap(), "-u", "Admin", "-x", "Admin"],
    );
    let dir2 = deployed(&env);
    assert_ne!(dir2, dir1);
    assert_eq!(std::fs::read_to_string(dir2.join("VERSION")).unwrap(), "v2");
    let ended = env.ok("soamsession", &["reopen", &keep]);
    assert_eq!(ended, "old\n");
    assert_eq!(env.json("soamdeploy", &["view", "pkg"])[0]["versions"], 2);

    // Removed: new instances cannot start, and it says so.
    assert!(env.fails("soamdeploy", &["remove", "pkgs"]).contains("did you mean 'pkg'?"));
    env.ok("soamdeploy", &["remove", "pkg"]);
    assert_eq!(
        env.ok("soamdeploy", &["view"]),
        "(no package is deployed; soamdeploy add NAME --package FILE deploys one)\n"
    );
    assert!(!env.path(&format!("data/packages/{sha1}.pkg")).exists());
}

/// An archive written by `python3 -c` with `tarfile`: entries as an attacker names them.
fn crafted(env: &Env, file: &str, script: &str) -> PathBuf {
    let p = env.path(file);
    let o = std::process::Command::new("python3")
        .args(["-c", script, p.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(o.status.success(), "{o:?}");
    p
}

#[test]
fn bad_archives_are_refused_in_one_line_and_leave_nothing() {
    let env = Env::new();
    let text = env.path("notes.txt");
    std::fs::write(&text, "not an archive").unwrap();
    let entry = |name: &str, kind: &str| {
        format!(
            "import io, sys, tarfile\nt = tarfile.open(sys.argv[1], 'w:gz')\ni = tarfile.TarInfo('ok')\ni.size = 1\nt.addfile(i, io.BytesIO(b'1'))\ni = tarfile.TarInfo('{name}')\n{kind}\nt.addfile(i, io.BytesIO(b'x'))\nt.close()\n"
        )
    };
    let empty = env.path("empty.tgz");
    std::fs::write(&empty, "").unwrap();
    let cases = [
        (text, "not an archive (valid: tar.gz or zip)"),
        (empty, "not an archive (valid: tar.gz or zip)"),
        (
            crafted(&env, "dots.tgz", &entry("../../evil", "i.size = 1")),
            "'../../evil' would be written outside the package's folder",
        ),
        (
            crafted(&env, "abs.tgz", &entry("/tmp/evil", "i.size = 1")),
            "'/tmp/evil' would be written outside the package's folder",
        ),
        (
            crafted(
                &env,
                "link.tgz",
                &entry("out", "i.type = tarfile.SYMTYPE; i.linkname = '../../../etc'"),
            ),
            "'out' is a link pointing outside the package's folder",
        ),
        (
            crafted(&env, "dev.tgz", &entry("dev", "i.type = tarfile.CHRTYPE")),
            "'dev' is a device, which a package may not hold",
        ),
    ];
    for (archive, said) in cases {
        let o = env.run("soamdeploy", &["add", "bad", "--package", archive.to_str().unwrap()]);
        assert_eq!(o.status.code(), Some(1), "{said}");
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(err.lines().count(), 1, "{err}");
        assert!(
            err.contains("package 'bad' refused: ") && err.contains(said),
            "{err} (wanted {said})"
        );
        assert!(err.trim_end().ends_with("nothing was deployed"), "{err}");
    }
    // Nothing half unpacked, no upload left, nothing listed.
    let left = |dir: &str| -> Vec<String> {
        std::fs::read_dir(env.path(dir))
            .map(|r| r.map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect())
            .unwrap_or_default()
    };
    assert_eq!(left("data/deploy"), Vec::<String>::new());
    assert_eq!(left("data/packages"), Vec::<String>::new());
    assert_eq!(env.json("soamdeploy", &["view"]), serde_json::json!([]));
    assert_eq!(
        env.fails("soamdeploy", &["view", "bad"]),
        "soamdeploy: no package 'bad' is deployed"
    );
    // A file that cannot be read is the command's own error.
    let o = env.run("soamdeploy", &["add", "x", "-p", "/no/such.tgz"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&o.stderr).contains("cannot read /no/such.tgz"));
}

/// A package index the agent cannot read (a disk error, a hand edit) does not stop it:
/// it starts with no package deployed, says why in its log, and keeps the unreadable
/// file aside for a person rather than letting the next deploy overwrite it.
#[test]
fn an_unreadable_package_index_is_kept_aside_and_the_agent_serves() {
    let mut env = Env::new();
    profile(&env);
    let v1 = package(&env, "pkg", "v1");
    env.ok("soamdeploy", &["add", "pkg", "--package", v1.to_str().unwrap()]);
    env.stop_agent(libc::SIGTERM);
    std::fs::write(env.path("data/packages/index.json"), b"{not json").unwrap();
    env.start_agent();
    assert_eq!(env.json("soamdeploy", &["view"]).as_array().unwrap().len(), 0);
    let log = std::fs::read_to_string(env.path("data/soamd.log")).unwrap();
    assert!(log.contains("the package index cannot be read"), "{log}");
    let kept: Vec<PathBuf> = std::fs::read_dir(env.path("data/packages"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.file_name().unwrap().to_string_lossy().starts_with("index.json.unreadable-"))
        .collect();
    assert_eq!(kept.len(), 1, "{kept:?}");
    assert_eq!(std::fs::read(&kept[0]).unwrap(), b"{not json");
    // Deployed again, it runs.
    env.ok("soamdeploy", &["add", "pkg", "--package", v1.to_str().unwrap()]);
    assert_eq!(std::fs::read_to_string(deployed(&env).join("VERSION")).unwrap(), "v1");
}
