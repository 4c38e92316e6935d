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
    assert_eq!(
        env.ok("soamview", &["app", "a", "-p"])
            .lines()
            .skip(1)
            .collect::<Vec<_>>()
            .join("\n"),
        yaml.trim_end()
    );
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

/// `profiles/symphony.xml`, a Symphony profile as Symphony users have it, registers
/// unchanged: soamreg names what soam skips, and its sessions run.
#[test]
fn the_example_symphony_profile_registers_and_runs() {
    let env = Env::new();
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("profiles/symphony.xml");
    let o = env.run("soamreg", &[path.to_str().unwrap()]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("soamreg: warning: ") && err.contains("symphony.xml:13: <SOAM>"),
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
    let shown = env.ok("soamview", &["app", "b", "-p"]);
    assert!(shown.contains("# evil \\u{202e}txt.exe"), "{shown}");
    assert!(!shown.contains('\u{202e}'));
}
