//! soamreg / soamunreg / soamview app: validation errors, update in place, -f, removal.

mod common;
use common::*;

#[test]
fn bad_profile_is_refused_with_file_and_line_and_changes_nothing() {
    let env = Env::new();
    let p = env.path("bad.yaml");
    std::fs::write(
        &p,
        "application: a\nservices:\n  - name: s\n    command: [x]\nsessionTypes:\n  - name: T\n    priority: 0\n",
    )
    .unwrap();
    let e = env.fails("soamreg", &[p.to_str().unwrap()]);
    assert_eq!(
        e,
        format!("soamreg: {}:7: priority: 0 is out of range (valid: 1 to 10000)", p.display())
    );
    std::fs::write(&p, "application: a\nservices:\n  - name: s\n    command: [x]\n    colour: blue\n").unwrap();
    let e = env.fails("soamreg", &[p.to_str().unwrap()]);
    assert!(e.contains(":5:") && e.contains("colour"), "{e}");
    let e = env.fails("soamreg", &[env.path("missing.yaml").to_str().unwrap()]);
    assert!(e.contains("cannot read"), "{e}");
    assert_eq!(env.json("soamview", &["app"]).as_array().unwrap().len(), 0);
}

#[test]
fn register_view_update_unregister() {
    let env = Env::new();
    let yaml = Env::behave_profile("a", "", "  - name: T\n    priority: 2\n");
    let p = env.register("p.yaml", &yaml);
    let apps = env.json("soamview", &["app", "-l"]);
    assert_eq!(apps[0]["app"], "a");
    assert_eq!(apps[0]["state"], "enabled");
    // Lists are arrays in JSON; the table joins them, the "" type shown quoted.
    assert_eq!(apps[0]["session_types"], serde_json::json!(["", "T"]));
    assert!(apps[0]["registered_ms"].as_u64().unwrap() > 0);
    let table = env.ok("soamview", &["app", "-o", "app,session_types", "--no-header"]);
    assert_eq!(table.split_whitespace().collect::<Vec<_>>(), ["a", "\"\",T"]);
    assert_eq!(apps[0]["source"], p.to_str().unwrap());
    // The profile exactly as registered on stdout; which application it is on stderr.
    let o = env.run("soamview", &["app", "a", "-p"]);
    assert_eq!(String::from_utf8_lossy(&o.stdout), yaml);
    assert_eq!(String::from_utf8_lossy(&o.stderr), format!("# a ({})\n", p.display()));
    // An open session of type T.
    let id = env.ok("soamsession", &["create", "--app", "a", "--type", "T"]).trim().to_string();
    let other = env.ok("soamsession", &["create", "--app", "a"]).trim().to_string();
    // Changing T without -f is refused and names the session; nothing changes.
    std::fs::write(&p, yaml.replace("priority: 2", "priority: 9")).unwrap();
    let e = env.fails("soamreg", &[p.to_str().unwrap()]);
    assert!(e.contains(&format!("a:{id} (type 'T' changed)")) && e.contains("-f"), "{e}");
    assert!(!e.contains(&format!("a:{other} ")), "the default type is unchanged: {e}");
    assert_eq!(env.session("a", id.parse().unwrap()).unwrap()["priority"], 2);
    // With -f: the session of the changed type ends, the other is untouched.
    let o = env.run("soamreg", &["-f", p.to_str().unwrap()]);
    assert!(o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains(&format!("warning: session a:{id}")));
    // The confirmation is on stderr with the warnings; stdout is for what scripts read.
    assert!(err.ends_with("updated application 'a'\n"), "{err}");
    assert_eq!(String::from_utf8_lossy(&o.stdout), "");
    assert!(env.session("a", id.parse().unwrap()).is_none());
    assert!(env.session("a", other.parse().unwrap()).is_some());
    let new_id = env.ok("soamsession", &["create", "--app", "a", "--type", "T"]).trim().to_string();
    assert_eq!(
        env.session("a", new_id.parse().unwrap()).unwrap()["priority"],
        9,
        "new sessions get the new type"
    );
    // Unregister refuses while sessions are open, then -f aborts them.
    let e = env.fails("soamunreg", &["a"]);
    assert!(e.contains("has open sessions") && e.contains(&format!("a:{other}")), "{e}");
    env.ok("soamunreg", &["-f", "a"]);
    assert_eq!(env.json("soamview", &["app"]).as_array().unwrap().len(), 0);
    assert_eq!(
        env.fails("soamunreg", &["a"]),
        "soamunreg: unknown application 'a' (soamview app lists them)"
    );
    // Ids are never reused, even after re-registering.
    env.register("p.yaml", &yaml);
    let next: u64 = env.ok("soamsession", &["create", "--app", "a"]).trim().parse().unwrap();
    assert!(next > new_id.parse().unwrap());
}

#[test]
fn symphony_xml_profile_is_accepted() {
    let env = Env::new();
    let xml = format!(
        "<?xml version=\"1.0\"?>\n<Profile>\n  <Consumer applicationName=\"x\"/>\n  <Service name=\"b\" command=\"python3 {}\"/>\n  <SessionTypes><Type name=\"\" taskRetryLimit=\"0\"/></SessionTypes>\n</Profile>\n",
        behave_py()
    );
    env.register("p.xml", &xml);
    let out = env.run("soamsession", &["submit", "--app", "x", "--task", "hi"]);
    assert_eq!(String::from_utf8_lossy(&out.stdout), "hi\n");
}

/// `profiles/symphony.xml`, a Symphony profile as Symphony users have it, deployed as
/// its comment says: its service package built from profiles/services/echo.py and
/// deployed, the profile registered unchanged (soamreg names what soam skips), and its
/// sessions run from the package's folder.
#[test]
fn the_example_symphony_profile_registers_and_runs() {
    let env = Env::new();
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    env.deploy(
        "EchoServicePackage",
        &tar_gz(&env.path("echo.tgz"), &root.join("profiles/services"), &["echo.py"]),
    );
    let path = root.join("profiles/symphony.xml");
    let o = env.run("soamreg", &[path.to_str().unwrap()]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("soamreg: warning: ") && err.contains("symphony.xml:17: <SOAM>"),
        "{err}"
    );
    let out = env.run_stdin(
        "soamsession",
        // Two slots run both at once: --ordered, or they come as they end.
        &["submit", "--app", "symphonyApp", "--type", "DefaultSession", "--ordered"],
        "a\nb\n",
    );
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(String::from_utf8_lossy(&out.stdout), "a\nb\n");
}

/// A service whose program does not exist registers (it may be installed later), with
/// a warning that says so; before, the first session failed with "service process ended".
#[test]
fn soamreg_warns_when_a_program_cannot_be_found() {
    let env = Env::new();
    let p = env.path("p.yaml");
    std::fs::write(&p, "application: a\nservices:\n  - name: s\n    command: [\"./not-there.py\"]\n").unwrap();
    let o = env.run("soamreg", &[p.to_str().unwrap()]);
    assert!(o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("p.yaml:4: service 's': its program") && err.contains("not-there.py does not exist"),
        "{err}"
    );
}

#[test]
fn profiles_and_session_ids_survive_a_restart() {
    let mut env = Env::new();
    env.register("p.yaml", &Env::behave_profile("a", "", ""));
    env.ok("soamsession", &["create", "--app", "a"]);
    env.ok("soamcontrol", &["app", "disable", "a"]);
    env.stop_agent(libc::SIGTERM);
    env.start_agent();
    let apps = env.json("soamview", &["app"]);
    assert_eq!((apps[0]["app"].as_str(), apps[0]["state"].as_str()), (Some("a"), Some("disabled")));
    // The open non-recoverable session did not survive; it is in history as aborted.
    assert_eq!(env.history("a", 1).unwrap()["state"], "aborted");
    env.ok("soamcontrol", &["app", "enable", "a"]);
    assert_eq!(env.ok("soamsession", &["create", "--app", "a"]).trim(), "2");
}

#[test]
fn control_and_bidi_characters_are_escaped_when_printed() {
    let env = Env::new();
    let p = env.path("esc.yaml");
    // An unknown key that would retitle the terminal and clear the screen.
    std::fs::write(
        &p,
        "application: a\nservices:\n  - name: s\n    command: [x]\n    \"\\e]0;pwned\\a\\e[2J\": 1\n",
    )
    .unwrap();
    let o = env.run("soamreg", &[p.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1));
    assert!(!o.stderr.contains(&0x1b) && !o.stderr.contains(&0x07), "{:?}", o.stderr);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("\\u{1b}]0;pwned\\u{7}"), "{err}");
    // A registered profile whose text holds a bidi override (in a comment; YAML allows
    // no raw controls): shown with it made visible.
    let yaml = format!("{}# evil \u{202e}txt.exe\n", Env::behave_profile("b", "", ""));
    env.register("b.yaml", &yaml);
    let (_, shown) = env.in_terminal(200, "soamview app b -p");
    assert!(shown.contains("# evil \\u{202e}txt.exe"), "{shown}");
    assert!(!shown.contains('\u{202e}'));
    // Into a pipe or a file: the text exactly as registered, so it registers again.
    assert_eq!(env.ok("soamview", &["app", "b", "-p"]), yaml);
}

/// The real Symphony profiles (../shared/symphony-profiles/), as the scripts that
/// deploy them use soam: `-u/-x` accepted, a profile printed by `soamview app -p`
/// registers again unchanged, a byte order mark is read past, `echo Y | soamcontrol app
/// enable` works, and IBM's stock <Control> block is acted on but for its Register method.
#[test]
fn symphony_scripts_run_as_written_with_the_real_profiles() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/symphony-profiles");
    let Ok(list) = std::fs::read_dir(&dir) else {
        skip("../shared/symphony-profiles is not beside this checkout");
        return;
    };
    let mut files: Vec<_> = list
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "xml"))
        .collect();
    files.sort();
    assert!(files.len() >= 5, "{files:?}");
    let env = Env::new();
    for f in &files {
        let name = f.file_name().unwrap().to_str().unwrap();
        let o = env.run("soamreg", &[f.to_str().unwrap(), "-f", "-u", "Admin", "-x", "Admin"]);
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(o.status.success(), "{name}: {err}");
        assert!(
            err.starts_with("soamreg: note: -u/-x (Symphony's user and password) are not used"),
            "{name}: {err}"
        );
        // IBM's stock <Control> block is acted on (tests/control.rs): of it, only the
        // Register method, which soam has no step for, is named.
        for part in ["<Control>", "<Exit>", "<Return>", "<Exception>", "actionOnSI", "controlCode"] {
            assert!(!err.contains(part), "{name}: {part} is acted on: {err}");
        }
        assert_eq!(
            err.matches("method 'Register' has no counterpart in soam").count(),
            1,
            "{name}: {err}"
        );
        let warnings = err.lines().filter(|l| l.starts_with("soamreg: warning:")).count();
        assert!(warnings <= 5, "{name}: {warnings} warnings: {err}");
    }
    // `soamview app NAME -p > f.xml; soamreg f.xml -f`: the printed profile is the file,
    // byte for byte, and registers again.
    let original = std::fs::read_to_string(dir.join("akida-AkidaGenericService.xml")).unwrap();
    let printed = env.ok("soamview", &["app", "AkidaGenericService", "-p", "-u", "Admin", "-x", "Admin"]);
    assert_eq!(printed, original);
    let again = env.path("f.xml");
    std::fs::write(&again, &printed).unwrap();
    env.ok("soamreg", &[again.to_str().unwrap(), "-f"]);
    assert_eq!(env.ok("soamview", &["app", "AkidaGenericService", "-p"]), original);
    // A byte order mark (a profile saved by a Windows editor) is read past, in XML and YAML.
    let bom = env.path("bom.xml");
    std::fs::write(&bom, format!("\u{feff}{original}")).unwrap();
    env.ok("soamreg", &[bom.to_str().unwrap(), "-f"]);
    let yaml = env.path("bom.yaml");
    std::fs::write(&yaml, format!("\u{feff}{}", Env::behave_profile("b", "", ""))).unwrap();
    env.ok("soamreg", &[yaml.to_str().unwrap()]);
    // Symphony's scripts answer a prompt soam never asks.
    env.ok("soamcontrol", &["app", "disable", "b", "-u", "Admin", "-x", "Admin"]);
    let o = env.run_stdin("soamcontrol", &["app", "enable", "b", "-u", "Admin", "-x", "Admin"], "Y\n");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(env.json("soamview", &["app", "b"])[0]["state"], "enabled");
    let o = env.run("soamunreg", &["b", "-u", "Admin", "-x", "Admin"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(String::from_utf8_lossy(&o.stderr).contains("-u/-x (Symphony's user and password) are not used"));
}

/// The real Symphony profiles run as their authors wrote them: `${SOAM_DEPLOY_DIR}` in
/// their command is their service package's folder (deployed with soamdeploy), `${SOAM_HOME}/work` is a folder made
/// for the instance, variables in `env` values are expanded, and a name nothing defines
/// is warned of at registration and named in the failure, never passed on.
#[test]
fn real_symphony_profiles_run_with_their_variables() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/symphony-profiles");
    if !dir.is_dir() {
        skip("../shared/symphony-profiles is not beside this checkout");
        return;
    }
    let env = Env::new();
    let deploy = env.path("deploy");
    std::fs::create_dir_all(&deploy).unwrap();
    // The scripts the akida profiles start, here starting the test service.
    for script in ["run_cpu_service.sh", "run_akida_service.sh"] {
        let p = deploy.join(script);
        std::fs::write(&p, format!("#!/bin/sh\nexec python3 {}\n", behave_py())).unwrap();
        std::fs::set_permissions(&p, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    }
    std::fs::copy(behave_py(), deploy.join("svc.py")).unwrap();
    // Their service package, deployed under each name their packageName gives.
    let archive = tar_gz(&env.path("package.tar.gz"), &deploy, &["."]);
    for name in [
        "AkidaGenericServicePackage.v1",
        "ShardInferenceServicePackage.v1",
        "ShardSegmentServicePackage.v1",
        "ShardStitchServicePackage.v1",
        "ScalerService",
    ] {
        env.ok("soamdeploy", &["add", name, "-p", archive.to_str().unwrap()]);
    }
    let sha = env.json("soamdeploy", &["view", "ScalerService"])[0]["sha256"]
        .as_str()
        .unwrap()
        .to_string();
    let unpacked = env.path(&format!("data/deploy/{sha}"));
    let mut apps = Vec::new();
    for e in std::fs::read_dir(&dir).unwrap() {
        let p = e.unwrap().path();
        let name = p.file_name().unwrap().to_str().unwrap().to_string();
        if !name.ends_with(".xml") {
            continue;
        }
        let mut text = std::fs::read_to_string(&p).unwrap();
        if name.starts_with("scaler") {
            // A template: its setup script fills these in before soamreg.
            for (k, v) in [
                ("@APPLICATION@", "scaler"),
                ("@SERVICE@", "ScalerService"),
                ("@PYTHON@", "python3"),
                ("@SERVICE_MODULE@", "svc.py"),
                ("@LIBRARY_DIRECTORY@", "/opt/scaler/lib"),
                ("@BYTECODE_DIRECTORY@", "/opt/scaler/bytecode"),
                ("@CONSUMER@", "/scaler"),
                ("@SOAM_VERSION@", "7.3.2"),
            ] {
                text = text.replace(k, v);
            }
        }
        let copy = deploy.join(&name);
        std::fs::write(&copy, &text).unwrap();
        let o = env.run("soamreg", &[copy.to_str().unwrap()]);
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(o.status.success(), "{name}: {err}");
        assert!(!err.contains("program") && !err.contains("not defined"), "{name}: {err}");
        apps.push(err.lines().last().unwrap().split('\'').nth(1).unwrap().to_string());
    }
    assert_eq!(apps.len(), 5, "{apps:?}");
    for app in &apps {
        let out = env.ok("soamsession", &["submit", "--app", app, "--task", "hello"]);
        assert_eq!(out, "hello\n", "{app}");
    }
    // The scaler profile: workDir ${SOAM_HOME}/work made for it, PYTHONPATH expanded.
    let out = env.ok(
        "soamsession",
        &[
            "submit",
            "--app",
            "scaler",
            "--task",
            "cwd",
            "--task",
            "env:PYTHONPATH",
            "--ordered",
        ],
    );
    let work = env.path("data/home/work");
    assert!(work.is_dir(), "{out}");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], work.display().to_string());
    // The agent puts soam's own Python package first (docs/python.md).
    assert!(
        lines[1].ends_with(&format!(":{}:/opt/scaler/lib:/opt/scaler/bytecode", unpacked.display())),
        "{out}"
    );
    // A name nothing defines: a warning at registration, the instance's failure names it.
    let p = env.path("u.yaml");
    std::fs::write(
        &p,
        format!(
            "application: u\nservices:\n  - name: s\n    command: [\"python3\", \"{}\"]\n    env: {{X: \"${{NOT_DEFINED_ANYWHERE}}\"}}\n",
            behave_py()
        ),
    )
    .unwrap();
    let o = env.run("soamreg", &[p.to_str().unwrap()]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("service 's': ${NOT_DEFINED_ANYWHERE} in its env is not defined"),
        "{err}"
    );
    let o = env.run("soamsession", &["submit", "--app", "u", "--task", "x"]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        !o.status.success() && err.contains("${NOT_DEFINED_ANYWHERE} in its env X is not defined"),
        "{err}"
    );
    // A workDir that cannot be made: said so.
    std::fs::write(
        &p,
        format!(
            "application: w\nservices:\n  - name: s\n    command: [\"python3\", \"{}\"]\n    workDir: /proc/no/such\n",
            behave_py()
        ),
    )
    .unwrap();
    env.ok("soamreg", &[p.to_str().unwrap()]);
    let o = env.run("soamsession", &["submit", "--app", "w", "--task", "x"]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("its workDir /proc/no/such does not exist and cannot be created"),
        "{err}"
    );
}
