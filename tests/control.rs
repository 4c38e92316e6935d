//! Symphony's `<Control>` block acted on, through the real commands: control codes a
//! service answers with (`<Return controlCode>`, `<Exception controlCode>`), what an
//! exit does (`<Exit>`), and what each does to the instance (`actionOnSI`: keepAlive,
//! restartService, blockHost). The service is written with soam's Python service
//! library (tests/services/coded.py), which is how a service gives a code.

mod common;
use common::*;

fn coded_py() -> String {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/services/coded.py")
        .display()
        .to_string()
}

/// A Symphony XML profile with the stock `<Control>` block of the real profiles
/// (../shared/symphony-profiles), plus the codes these tests use.
fn profile(env: &Env) -> std::path::PathBuf {
    let text = format!(
        r#"<?xml version="1.0" encoding="UTF-8"?>
<Profile xmlns="http://www.platform.com/Symphony/Profile/Application">
  <Consumer applicationName="coded" consumerId="/Apps"/>
  <SessionTypes>
    <Type name="" taskRetryLimit="2" abortSessionIfClientDisconnect="true"/>
  </SessionTypes>
  <Service name="coded" description="control codes">
    <osTypes>
      <osType name="all" startCmd="python3 {py}" workDir="{dir}"/>
    </osTypes>
    <Control>
      <Method name="Register">
        <Timeout duration="60" actionOnSI="restartService"/>
      </Method>
      <Method name="Invoke">
        <Timeout duration="0" actionOnSI="restartService" actionOnWorkload="retry"/>
        <Exit actionOnSI="restartService" actionOnWorkload="fail"/>
        <Return controlCode="0" actionOnSI="keepAlive" actionOnWorkload="succeed"/>
        <Return controlCode="5" actionOnSI="keepAlive" actionOnWorkload="fail"/>
        <Return controlCode="7" actionOnSI="restartService" actionOnWorkload="succeed"/>
        <Return controlCode="9" actionOnSI="blockHost" actionOnWorkload="succeed"/>
        <Exception type="failure" controlCode="0" actionOnSI="keepAlive" actionOnWorkload="retry"/>
        <Exception type="failure" controlCode="3" actionOnSI="keepAlive" actionOnWorkload="fail"/>
        <Exception type="fatal" controlCode="0" actionOnSI="keepAlive" actionOnWorkload="fail"/>
        <Exception type="fatal" controlCode="4" actionOnSI="keepAlive" actionOnWorkload="retry"/>
      </Method>
    </Control>
  </Service>
</Profile>
"#,
        py = coded_py(),
        dir = env.path("").display()
    );
    let p = env.path("coded.xml");
    std::fs::write(&p, text).unwrap();
    p
}

/// Each task as `--jsonl` gives it: (state, attempts, output or error).
fn run(env: &Env, session: Option<&str>, tasks: &[&str]) -> Vec<(String, u64, String)> {
    let mut args = vec!["submit", "--jsonl", "--ordered"];
    match session {
        Some(s) => args.extend(["--session", s]),
        None => args.extend(["--app", "coded"]),
    }
    for t in tasks {
        args.extend(["--task", t]);
    }
    let o = env.run("soamsession", &args);
    let text = String::from_utf8_lossy(&o.stdout).into_owned();
    text.lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            let said = v["output"].as_str().or(v["error"].as_str()).unwrap_or_default().to_string();
            (v["state"].as_str().unwrap().to_string(), v["attempts"].as_u64().unwrap(), said)
        })
        .collect()
}

#[test]
fn control_codes_decide_what_a_task_and_its_instance_become() {
    let env = Env::with_slots(1);
    let p = profile(&env);
    let out = env.ok("soamreg", &[p.to_str().unwrap()]);
    // The stock block is acted on now: only the Register method is left over.
    let err = String::from_utf8(env.run("soamreg", &[p.to_str().unwrap(), "-f"]).stderr).unwrap();
    assert!(!err.contains("actionOnSI") && !err.contains("controlCode"), "{out}{err}");

    let got = run(
        &env,
        None,
        &["code:0:plain", "code:5:refused", "raise:3", "fatal:4", "raise:1", "code:12:unknown"],
    );
    assert_eq!(got[0], ("done".into(), 1, "plain".into()));
    // <Return controlCode="5" actionOnWorkload="fail">: a success the code fails, at once.
    assert_eq!(got[1].0, "error");
    assert_eq!(got[1].1, 1, "{got:?}");
    assert!(got[1].2.contains("control code 5"), "{got:?}");
    // <Exception type="failure" controlCode="3" actionOnWorkload="fail">: not retried.
    assert_eq!((got[2].0.as_str(), got[2].1), ("error", 1), "{got:?}");
    assert!(got[2].2.contains("raised with code 3"), "{got:?}");
    // <Exception type="fatal" controlCode="4" actionOnWorkload="retry">: retried to the limit.
    assert_eq!((got[3].0.as_str(), got[3].1), ("error", 3), "{got:?}");
    // A failure whose code the profile does not name acts as code 0: retried.
    assert_eq!((got[4].0.as_str(), got[4].1), ("error", 3), "{got:?}");
    // A success with an unnamed code is a success.
    assert_eq!(got[5], ("done".into(), 1, "unknown".into()));

    // keepAlive keeps the instance; restartService (code 7) replaces it once it has
    // answered what it was sent (soam sends an instance several tasks ahead).
    let pid = |env: &Env| run(env, None, &["pid"])[0].2.clone();
    let first = pid(&env);
    assert_eq!(run(&env, None, &["code:0:kept"])[0].2, "kept");
    assert_eq!(pid(&env), first, "keepAlive: the same instance");
    assert_eq!(run(&env, None, &["code:7:restart"])[0], ("done".into(), 1, "restart".into()));
    assert_ne!(pid(&env), first, "restartService: a new instance");

    // <Exit actionOnWorkload="fail">: a task whose process dies fails at once.
    let got = run(&env, None, &["die"]);
    assert_eq!((got[0].0.as_str(), got[0].1), ("error", 1), "{got:?}");
}

#[test]
fn block_host_stops_the_application_here_until_it_is_enabled_again() {
    let env = Env::with_slots(2);
    let p = profile(&env);
    env.ok("soamreg", &[p.to_str().unwrap()]);
    let got = run(&env, None, &["code:9:blocking"]);
    assert_eq!(got[0], ("done".into(), 1, "blocking".into()));
    // `soamview cluster` says which host is blocked for which application, and why.
    let rows = env.json("soamview", &["cluster"]);
    let blocked: Vec<&serde_json::Value> = rows.as_array().unwrap().iter().filter(|r| r["state"] == "blocked").collect();
    assert_eq!(blocked.len(), 1, "{rows}");
    assert_eq!(blocked[0]["app"], "coded");
    let reason = blocked[0]["reason"].as_str().unwrap();
    assert!(
        reason.contains("control code 9") && reason.contains("soamcontrol app enable coded"),
        "{reason}"
    );
    // The instance that answered goes, and no instance of it starts here now: its
    // tasks wait. (The turn that takes a submit starts the instances it can, before any
    // later request is read.)
    let instances = || env.json("soamcontrol", &["agent", "status"])["instances"].as_u64().unwrap();
    wait_for(15, "the blocked instance to go", || (instances() == 0).then_some(()));
    let sid = env.ok("soamsession", &["create", "--app", "coded"]).trim().to_string();
    let session = format!("coded:{sid}");
    env.ok("soamsession", &["submit", "--session", &session, "--task", "after", "--detach"]);
    assert_eq!(instances(), 0);
    let s = env.session("coded", sid.parse().unwrap()).unwrap();
    assert_eq!(s["pending"], 1, "{s}");
    // Enabling it again unblocks the host (as Symphony does), and the task runs.
    env.ok("soamcontrol", &["app", "enable", "coded"]);
    let rows = env.json("soamview", &["cluster"]);
    assert!(rows.as_array().unwrap().iter().all(|r| r["state"] != "blocked"), "{rows}");
    let s = wait_for(30, "the task to run", || {
        env.session("coded", sid.parse().unwrap()).filter(|s| s["done"] == 1)
    });
    assert_eq!(s["pending"], 0);
    env.ok("soamsession", &["close", &session]);
}
