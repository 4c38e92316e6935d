use soam_profile::*;
use std::path::Path;

fn p(text: &str) -> Result<Profile, ProfileError> {
    parse(text, Path::new("/p/app.yaml"))
}

fn err(text: &str) -> String {
    p(text).unwrap_err().to_string()
}

const MIN: &str = "application: a\nservices:\n  - name: s\n    command: [\"./svc\"]\n";

#[test]
fn defaults_follow_seed_001() {
    let prof = p(MIN).unwrap();
    let t = prof.session_type("").unwrap();
    assert_eq!(t.service_name, "s");
    assert_eq!((t.priority, t.task_retry_limit, t.session_retry_limit), (1, 3, 3));
    assert_eq!(
        (t.task_grace_period_ms, t.suspend_grace_period_ms, t.task_cleanup_period_ms),
        (100, 100, 250)
    );
    assert_eq!(t.reclaim_grace_period_ms, None);
    assert_eq!(t.on_client_disconnect, DisconnectAction::Abort);
    assert!(t.discard_results_on_delivery && t.persist_session_history && !t.recoverable);
    assert_eq!(prof.consumer.transient_disconnection_timeout_s, 30);
    assert_eq!(prof.services[0].command[0], "/p/./svc");
    assert_eq!(prof.services[0].work_dir, Path::new("/p/."));
}

#[test]
fn errors_name_file_line_and_valid_values() {
    let e = err(&format!("{MIN}sessionTypes:\n  - name: T\n    priority: 0\n"));
    assert_eq!(e, "/p/app.yaml:7: priority: 0 is out of range (valid: 1 to 10000)");
    let e = err(&format!("{MIN}consumer:\n  policy: fastest\n"));
    assert!(
        e.starts_with("/p/app.yaml:6: policy: 'fastest' is not valid (valid: proportion | minimumServices | priority"),
        "{e}"
    );
    let e = err(&format!("{MIN}sessionTypes:\n  - name: T\n    serviceName: nope\n"));
    assert_eq!(e, "/p/app.yaml:7: serviceName: 'nope' names no service (valid: s)");
    let e = err(&format!("{MIN}sessionTypes:\n  - name: T\n    persistSessionHistory: none\n"));
    assert!(e.contains("needs persistSessionHistory: all"), "{e}");
    let e = err(&format!(
        "{MIN}sessionTypes:\n  - name: T\n    abortSessionIfClientDisconnect: false\n    onClientDisconnect: abort\n"
    ));
    assert!(e.contains("disagrees"), "{e}");
    let e = err(&format!("{MIN}  - name: t\n    command: [x]\n"));
    assert!(e.contains("several services and none is default"), "{e}");
    let e = err(&format!(
        "{MIN}    default: true\n  - name: t\n    command: [x]\n    default: true\n"
    ));
    assert!(e.contains("both default"), "{e}");
    let e = err("application: all\nservices:\n  - name: s\n    command: [x]\n");
    assert!(e.contains("reserved"), "{e}");
    assert!(!e.contains('\n'));
}

#[test]
fn unknown_key_is_refused_with_its_line() {
    let e = err(&format!("{MIN}sessionTypes:\n  - name: T\n    priorty: 3\n"));
    assert!(e.starts_with("/p/app.yaml:7:"), "{e}");
    assert!(e.contains("priorty"), "{e}");
    assert!(!e.contains('\n'));
}

#[test]
fn disconnect_spellings() {
    let prof = p(&format!(
        "{MIN}sessionTypes:\n  - name: A\n    abortSessionIfClientDisconnect: false\n  - name: B\n    onClientDisconnect: suspend\n"
    ))
    .unwrap();
    assert_eq!(prof.session_type("A").unwrap().on_client_disconnect, DisconnectAction::Continue);
    assert_eq!(prof.session_type("B").unwrap().on_client_disconnect, DisconnectAction::Suspend);
}

#[test]
fn xml_profile_reads_like_yaml() {
    let xml = r#"<?xml version="1.0"?>
<Profile>
  <Consumer applicationName="x" policy="R_Proportion" maxSessions="2"/>
  <Service name="svc" mode="exec" command="/bin/cat -">
    <Env name="A" value="b"/>
    <Control><Method name="invoke" timeout="5" onFailure="fail"/></Control>
  </Service>
  <SessionTypes>
    <Type name="Long" priority="7" taskRetryLimit="1" discardResultsOnDelivery="false"/>
  </SessionTypes>
</Profile>"#;
    let prof = parse(xml, Path::new("/q/p.xml")).unwrap();
    assert_eq!(prof.application, "x");
    assert_eq!(prof.consumer.max_sessions, 2);
    assert_eq!(prof.services[0].mode, Mode::Exec);
    assert_eq!(prof.services[0].command, vec!["/bin/cat", "-"]);
    // soam's own onFailure: a failure, an exit and a timeout alike.
    let invoke = &prof.services[0].control.invoke;
    assert_eq!(invoke.timeout_s, 5);
    for ev in [MethodEvent::Failure, MethodEvent::Exit, MethodEvent::Timeout] {
        assert_eq!(invoke.action(ev, 0).workload, FailureAction::Fail, "{ev:?}");
    }
    assert_eq!(invoke.action(MethodEvent::Fatal, 0).workload, FailureAction::Fail);
    assert_eq!(invoke.action(MethodEvent::Return, 0).workload, FailureAction::Succeed);
    let t = prof.session_type("Long").unwrap();
    assert_eq!((t.priority, t.task_retry_limit, t.discard_results_on_delivery), (7, 1, false));
    let bad = xml.replace("priority=\"7\"", "priority=\"70000\"");
    let e = parse(&bad, Path::new("/q/p.xml")).unwrap_err().to_string();
    assert_eq!(e, "/q/p.xml:9: priority: 70000 is out of range (valid: 1 to 10000)");
    let bad = xml.replace("priority=\"7\"", "priority=\"high\"");
    let e = parse(&bad, Path::new("/q/p.xml")).unwrap_err().to_string();
    assert_eq!(e, "/q/p.xml:9: priority: 'high' is not valid (valid: 1 to 10000)");
    let bad = xml.replace("<Env", "<Envv");
    let e = parse(&bad, Path::new("/q/p.xml")).unwrap_err().to_string();
    assert!(e.starts_with("/q/p.xml:5: unknown element <Envv>"), "{e}");
}

#[test]
fn env_values_are_redacted_or_the_text_withheld() {
    let text = "application: r\nservices:\n  - name: s\n    command: [\"true\"]\n    env: {TOKEN: s3cr3t, MODE: fast}\n    workDir: .\n";
    let p = soam_profile::parse(text, std::path::Path::new("/tmp/r.yaml")).unwrap();
    let shown = soam_profile::redact_env(text, &p);
    assert!(!shown.contains("s3cr3t") && !shown.contains("fast"), "{shown}");
    assert!(shown.contains("TOKEN: <hidden>, MODE: <hidden>"), "{shown}");
    assert!(shown.contains("application: r"));
    // Block style, and a value that also occurs before its key on the line.
    let text = "application: r\nservices:\n  - name: s\n    command: [\"true\"]\n    env:\n      PASS: PASS\n";
    let p = soam_profile::parse(text, std::path::Path::new("/tmp/r.yaml")).unwrap();
    assert!(soam_profile::redact_env(text, &p).contains("PASS: <hidden>"));
    // A value written with escapes cannot be found as such: nothing is shown.
    let text = "application: r\nservices:\n  - name: s\n    command: [\"true\"]\n    env: {K: \"a\\u0062c\"}\n";
    let p = soam_profile::parse(text, std::path::Path::new("/tmp/r.yaml")).unwrap();
    let shown = soam_profile::redact_env(text, &p);
    assert!(
        !shown.contains("a\\u0062c") && !shown.contains("abc") && shown.contains("admins only"),
        "{shown}"
    );
    // XML.
    let text =
        "<Profile><Consumer applicationName=\"x\"/><Service name=\"s\" command=\"true\"><Env name=\"K\" value=\"v1\"/></Service></Profile>";
    if let Ok(p) = soam_profile::parse(text, std::path::Path::new("/tmp/x.xml")) {
        assert!(!soam_profile::redact_env(text, &p).contains("\"v1\""));
    }
}

#[test]
fn slurm_keys_are_checked_with_their_lines() {
    let base = "application: c\nservices:\n  - name: s\n    command: [\"true\"]\n";
    let parse = |extra: &str| soam_profile::parse(&format!("{base}{extra}"), std::path::Path::new("/p/c.yaml"));
    let ok = parse("    launcher: slurm\n    slurm:\n      partition: local\n      account: a1\n      qos: normal\n      timeLimit: 1-02:03\n      nodes: 3\n      cpusPerNode: 2\n      memory: 4G\n      maxAllocations: 2\n      idleRelease: 30\n      extraArgs: [\"--constraint=x\"]\n").unwrap();
    let soam_profile::Launcher::Slurm(o) = &ok.services[0].launcher else {
        panic!("not slurm")
    };
    assert_eq!((o.nodes, o.cpus_per_node, o.max_allocations, o.idle_release_s), (3, Some(2), 2, 30));
    assert_eq!(o.time_limit_min, Some(24 * 60 + 2 * 60 + 3));
    assert_eq!(o.memory.as_deref(), Some("4G"));
    let defaults = parse("    launcher: slurm\n").unwrap();
    let soam_profile::Launcher::Slurm(d) = &defaults.services[0].launcher else {
        panic!()
    };
    assert_eq!(
        (d.nodes, d.cpus_per_node, d.max_allocations, d.idle_release_s, d.time_limit_min),
        (1, None, 4, 60, None)
    );
    for (extra, want) in [
        (
            "    launcher: slurm\n    slurm:\n      timeLimit: 90 minutes\n",
            "c.yaml:7: timeLimit: '90 minutes' is not a Slurm time",
        ),
        (
            "    launcher: slurm\n    slurm:\n      timeLimit: 1:2:3:4\n",
            "c.yaml:7: timeLimit: '1:2:3:4' is not a Slurm time",
        ),
        (
            "    launcher: slurm\n    slurm:\n      partition: debug\n      colour: blue\n",
            "c.yaml:8",
        ),
        (
            "    slurm:\n      partition: debug\n",
            "c.yaml:6: slurm: only for a service with launcher: slurm",
        ),
        (
            "    launcher: local\n    slurm: {nodes: 2}\n",
            "c.yaml:6: slurm: only for a service with launcher: slurm",
        ),
        (
            "    launcher: slurm\n    slurm:\n      nodes: 0\n",
            "c.yaml:7: nodes: 0 is out of range (valid: 1 to 10000)",
        ),
        (
            "    launcher: slurm\n    slurm:\n      memory: 4 GB\n",
            "c.yaml:7: memory: '4 GB' is not valid",
        ),
        (
            "    launcher: slurm\n    slurm:\n      partition: \"a b\"\n",
            "c.yaml:7: partition: 'a b' is not valid",
        ),
        (
            "    launcher: slurm\n    slurm:\n      extraArgs: [\"constraint=x\"]\n",
            "c.yaml:7: extraArgs: 'constraint=x' is not an option",
        ),
    ] {
        let e = parse(extra).unwrap_err().to_string();
        assert!(e.contains(want), "{extra}: {e}");
    }
    for (t, min) in [
        ("30", Some(30)),
        ("30:30", Some(31)),
        ("1:00:00", Some(60)),
        ("2-0", Some(2880)),
        ("UNLIMITED", None),
    ] {
        assert_eq!(soam_profile::slurm_minutes(t), Some(min), "{t}");
    }
    // XML carries them as service attributes, and refuses them on a local service.
    let xml = "<Profile>\n<Consumer applicationName=\"x\"/>\n<Service name=\"s\" command=\"true\" partition=\"p\"/>\n</Profile>";
    let e = soam_profile::parse(xml, std::path::Path::new("/p/x.xml")).unwrap_err().to_string();
    assert!(e.contains("x.xml:3: slurm: only for"), "{e}");
}

/// The example Symphony profile in `profiles/`, as a Symphony user would have it.
#[test]
fn a_symphony_profile_registers_with_what_soam_skips_named() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../profiles/symphony.xml");
    let text = std::fs::read_to_string(&path).unwrap();
    let prof = parse(&text, &path).unwrap();
    assert_eq!(prof.application, "symphonyApp");
    assert_eq!(prof.consumer.policy, Policy::Proportion);
    let s = &prof.services[0];
    assert_eq!(s.name, "EchoService");
    assert_eq!(s.command, vec!["python3", "${SOAM_DEPLOY_DIR}/echo.py"]);
    assert_eq!(s.work_dir, Path::new("${SOAM_HOME}/work"));
    assert_eq!(s.package.as_deref(), Some("EchoServicePackage"));
    assert_eq!(s.env.get("ECHO_GREETING").map(String::as_str), Some("hello from symphony.xml"));
    assert_eq!(s.control.invoke.timeout_s, 300);
    assert_eq!(s.control.invoke.action(MethodEvent::Failure, 0).workload, FailureAction::Retry);
    let t = prof.session_type("RecoverableSession").unwrap();
    assert!(t.recoverable && t.priority == 10);
    let w = prof.warnings.join("\n");
    for skipped in [
        "'consumerId'",
        "<SOAM>",
        "symphony.xml:45: method 'Register' has no counterpart in soam (ignored)",
    ] {
        assert!(w.contains(skipped), "{skipped} not in:\n{w}");
    }
    // The rest of the stock <Control> block is acted on: nothing else of it is left over.
    assert_eq!(prof.warnings.len(), 3, "{w}");
    assert!(prof.notes.is_empty(), "{:?}", prof.notes);
    let invoke = &s.control.invoke;
    assert_eq!(
        invoke.action(MethodEvent::Fatal, 0),
        Action {
            workload: FailureAction::Fail,
            instance: InstanceAction::KeepAlive
        }
    );
    assert_eq!(invoke.action(MethodEvent::Exit, 0).instance, InstanceAction::RestartService);
    // One warning per element, each at its line.
    assert!(
        w.contains("symphony.xml:13: <Consumer> attributes 'consumerId', 'taskHighWaterMark'"),
        "{w}"
    );
    assert!(!w.contains("description"), "{w}");
}

#[test]
fn symphony_os_types_pick_this_system_and_env_text_is_read() {
    let xml = r#"<Profile>
  <Consumer applicationName="x"/>
  <Service name="s">
    <osTypes>
      <osType name="NTX64" startCmd="C:\svc.exe" workDir="C:\work"/>
      <osType name="LINUX64" startCmd="/bin/cat -u" workDir="/tmp">
        <env name="A">a &amp; b</env>
        <env name="B" value="2"/>
      </osType>
      <osType name="SOL64" startCmd="/opt/svc"><env name="C">c</env></osType>
    </osTypes>
  </Service>
</Profile>"#;
    let prof = parse(xml, Path::new("/q/p.xml")).unwrap();
    let s = &prof.services[0];
    assert_eq!(s.command, vec!["/bin/cat", "-u"]);
    assert_eq!(s.work_dir, Path::new("/tmp"));
    assert_eq!(s.env.get("A").map(String::as_str), Some("a & b"));
    assert_eq!(s.env.get("B").map(String::as_str), Some("2"));
    assert!(!s.env.contains_key("C"));
    let w = prof.warnings.join("\n");
    assert!(w.contains("p.xml:5: <osType name=\"NTX64\"> is for another system"), "{w}");
    assert!(w.contains("p.xml:10: <osType name=\"SOL64\">"), "{w}");
    // Skipped whole, so nothing inside it is an error; a misspelt element elsewhere is.
    let bad = xml.replace("<osTypes>", "<osTypez>").replace("</osTypes>", "</osTypez>");
    let e = parse(&bad, Path::new("/q/p.xml")).unwrap_err().to_string();
    assert!(e.starts_with("/q/p.xml:4: unknown element <osTypez> in <Service>"), "{e}");
}

#[test]
fn a_program_that_cannot_be_found_is_a_warning() {
    let warn = |cmd: &str| {
        let prof = p(&format!("application: a\nservices:\n  - name: s\n    command: [{cmd}]\n")).unwrap();
        prof.warnings.join("\n")
    };
    assert!(warn("\"/no/such/prog\"").contains("/p/app.yaml:4: service 's': its program /no/such/prog does not exist"));
    assert!(warn("\"/etc/passwd\"").contains("/etc/passwd is not an executable file"));
    assert!(warn("\"no-such-program-anywhere\"").contains("'no-such-program-anywhere' is on no folder of the agent's PATH"));
    assert_eq!(warn("\"sh\", \"-c\", \"true\""), "");
    assert_eq!(warn("\"/bin/sh\""), "");
}

/// A value of the wrong type names its key, its value and what is valid, at one line,
/// not the YAML library's Rust types ("invalid i64 at line 7, column 15").
#[test]
fn wrongly_typed_values_name_the_key_and_what_is_valid() {
    let e = err(&format!("{MIN}sessionTypes:\n  - name: T\n    priority: high\n"));
    // The range is the attribute's own, as an out-of-range number gets it.
    assert_eq!(e, "/p/app.yaml:7: priority: 'high' is not valid (valid: 1 to 10000)");
    let e = err(&format!("{MIN}sessionTypes:\n  - name: T\n    taskRetryLimit: lots\n"));
    assert_eq!(e, "/p/app.yaml:7: taskRetryLimit: 'lots' is not valid (valid: 0 or more)");
    let e = err("application: a\nservices:\n  - name: s\n    default: maybe   # not a bool\n    command: [\"sh\"]\n");
    assert_eq!(e, "/p/app.yaml:4: default: 'maybe' is not valid (valid: true | false)");
    let e = err("application: a\nservices:\n  - name: s\n    command: sh\n");
    assert_eq!(
        e,
        "/p/app.yaml:4: command: 'sh' is not a list (valid: a list, e.g. [\"python3\", \"echo.py\"])"
    );
    let e = err("application: a\nconsumer:\n  maxSessions: [1]\n");
    assert_eq!(
        e,
        "/p/app.yaml:3: maxSessions: '[1]' is not a single value (valid: one value, not a list or map)"
    );
}

/// A method's `on:` list (YAML) says what Symphony's <Return>, <Exception>, <Exit> and
/// <Timeout> say, with the same names; what cannot be is refused at its line.
#[test]
fn control_codes_and_instance_actions_in_yaml_and_their_errors() {
    let yaml = |on: &str| {
        format!(
            "application: a\nservices:\n  - name: s\n    command: [\"/bin/true\"]\n    control:\n      invoke:\n        onFailure: fail\n        on:\n{on}"
        )
    };
    let text = yaml(
        "          - {event: return, controlCode: 5, actionOnWorkload: fail}\n          - {event: failure, controlCode: 3, actionOnSI: blockHost}\n          - {event: exit, actionOnSI: blockHost}\n",
    );
    let p = parse(&text, Path::new("/p.yaml")).unwrap();
    let inv = &p.services[0].control.invoke;
    let act = |workload, instance| Action { workload, instance };
    assert_eq!(
        inv.action(MethodEvent::Return, 5),
        act(FailureAction::Fail, InstanceAction::KeepAlive)
    );
    assert_eq!(
        inv.action(MethodEvent::Return, 6),
        act(FailureAction::Succeed, InstanceAction::KeepAlive)
    );
    // A part left out is what the event does so far: onFailure's fail here.
    assert_eq!(
        inv.action(MethodEvent::Failure, 3),
        act(FailureAction::Fail, InstanceAction::BlockHost)
    );
    assert_eq!(
        inv.action(MethodEvent::Exit, 0),
        act(FailureAction::Fail, InstanceAction::BlockHost)
    );
    assert!(!inv.success_is_the_reply(), "code 5 fails a success");
    assert!(p.services[0].control.session_enter.success_is_the_reply());

    let refused = |on: &str| parse(&yaml(on), Path::new("/p.yaml")).unwrap_err().to_string();
    assert_eq!(
        refused("          - {event: exit, actionOnSI: keepAlive}\n"),
        "/p.yaml:9: actionOnSI: an instance cannot be kept after its process exited (valid: restartService | blockHost)"
    );
    assert_eq!(
        refused("          - {event: timeout, controlCode: 2}\n"),
        "/p.yaml:9: controlCode: timeout carries no control code (valid: only return, failure and fatal)"
    );
    assert_eq!(
        refused("          - {event: return, controlCode: 2}\n          - {event: return, controlCode: 2, actionOnWorkload: fail}\n"),
        "/p.yaml:10: return with control code 2 is given twice for invoke (valid: once)"
    );
    assert_eq!(
        refused("          - {event: returned}\n"),
        "/p.yaml:9: event: 'returned' is not valid (valid: return | failure | fatal | exit | timeout)"
    );
    assert_eq!(
        refused("          - {event: fatal, actionOnSI: reboot}\n"),
        "/p.yaml:9: actionOnSI: 'reboot' is not valid (valid: keepAlive | restartService | blockHost)"
    );
    // XML: the same elements, and a workload action for a method that serves none is
    // named, not acted on.
    let xml = r#"<Profile><Consumer applicationName="x"/><Service name="s" command="/bin/true"><Control>
      <Method name="SessionLeave"><Exit actionOnSI="blockHost" actionOnWorkload="retry"/></Method>
      <Method name="Invoke"><Exception type="oops"/></Method>
    </Control></Service></Profile>"#;
    let e = parse(xml, Path::new("/p.xml")).unwrap_err().to_string();
    assert_eq!(e, "/p.xml:3: <Exception type>: 'oops' is not valid (valid: failure | fatal)");
    let ok = parse(
        &xml.replace("type=\"oops\"", "type=\"fatal\" controlCode=\"8\" actionOnWorkload=\"retry\""),
        Path::new("/p.xml"),
    )
    .unwrap();
    let s = &ok.services[0];
    assert_eq!(
        s.control.session_leave.action(MethodEvent::Exit, 0).instance,
        InstanceAction::BlockHost
    );
    assert_eq!(s.control.invoke.action(MethodEvent::Fatal, 8).workload, FailureAction::Retry);
    assert!(
        ok.warnings
            .iter()
            .any(|w| w.contains("/p.xml:2: <Exit> of SessionLeave attribute 'actionOnWorkload' is not used by soam")),
        "{:?}",
        ok.warnings
    );
}

/// Several warnings from inside <Control> blocks are folded into one, each kept as a
/// note (`soamreg -v`); a single one stays as it is (see the real profiles' Register).
#[test]
fn several_control_warnings_fold_into_one_with_notes() {
    let xml = r#"<Profile><Consumer applicationName="x"/><Service name="s" command="/bin/true">
    <Control>
      <Method name="Register"><Timeout duration="60"/></Method>
      <Method name="Invoke" retries="2"><Exit actionOnSI="restartService" when="always"/></Method>
    </Control></Service></Profile>"#;
    let p = parse(xml, Path::new("/p.xml")).unwrap();
    let control: Vec<&String> = p.warnings.iter().filter(|w| w.contains("<Control>")).collect();
    assert_eq!(control.len(), 1, "{:?}", p.warnings);
    assert!(
        control[0].starts_with("/p.xml:3: <Control> (lines 3-5): 3 settings soam has no counterpart for ignored"),
        "{}",
        control[0]
    );
    assert!(control[0].ends_with("soamreg -v lists them"), "{}", control[0]);
    assert_eq!(p.notes.len(), 3, "{:?}", p.notes);
    assert!(p.notes.iter().any(|n| n.contains("method 'Register'")), "{:?}", p.notes);
    assert!(p.notes.iter().any(|n| n.contains("'when'")), "{:?}", p.notes);
}
