//! Cluster mode against a real multi-node Slurm: `../shared/tools/slurm-local.sh start
//! --nodes 3` (nodes n1..n3, 2 CPUs each, partition `local`). Where no such cluster
//! answers, each test says it skipped. The tests share the cluster, so nextest runs
//! them one at a time (`.config/nextest.toml`, group `slurm`).

mod common;
use common::*;
use std::collections::BTreeMap;
use std::process::Command;
use std::time::Duration;

fn slurm_up() -> bool {
    let o = Command::new("sinfo").args(["-h", "-N", "-o", "%N %T"]).output();
    let ok = o.as_ref().is_ok_and(|o| {
        let text = String::from_utf8_lossy(&o.stdout);
        ["n1", "n2", "n3"]
            .iter()
            .all(|n| text.lines().any(|l| l.starts_with(&format!("{n} "))))
    });
    if !ok {
        skip("no 3-node Slurm (start one with ../shared/tools/slurm-local.sh start --nodes 3)");
    }
    ok
}

/// An agent with app `c` registered on these `slurm:` keys, or `None` (said) when no
/// 3-node Slurm answers.
fn cluster_env(slurm: &str) -> Option<Env> {
    if !slurm_up() {
        return None;
    }
    let env = Env::new();
    env.register("c.yaml", &profile("c", slurm));
    Some(env)
}

/// A cluster profile: a persistent service answering "NODE input" and an exec one that
/// sleeps, then says its node.
fn profile(app: &str, slurm: &str) -> String {
    format!(
        "application: {app}\nservices:\n  - name: echo\n    default: true\n    command: [\"{echo}\", \"--node\"]\n    launcher: slurm\n    slurm: {slurm}\n  - name: where\n    mode: exec\n    command: [\"sh\", \"-c\", \"sleep $(cat); echo $SLURMD_NODENAME\"]\n    launcher: slurm\n    slurm: {slurm}\nsessionTypes:\n  - name: \"\"\n    taskRetryLimit: 0\n  - name: Exec\n    serviceName: where\n    taskRetryLimit: 0\n",
        echo = bin("soam-echo-service").display()
    )
}

/// Jobs of this test's agent that Slurm still lists.
fn our_jobs(env: &Env) -> Vec<String> {
    let o = Command::new("squeue").args(["-h", "-o", "%i %j"]).output().unwrap();
    let name = job_name(env);
    String::from_utf8_lossy(&o.stdout)
        .lines()
        .filter(|l| l.split_whitespace().nth(1) == Some(name.as_str()))
        .map(|l| l.split_whitespace().next().unwrap_or("").to_string())
        .collect()
}

/// The job name the agent gives its allocations (shown by soamview cluster's jobs in
/// squeue); read from Slurm by the job ids the agent reports.
fn job_name(env: &Env) -> String {
    let v = env.json("soamview", &["cluster"]);
    let Some(job) = v.as_array().and_then(|a| a.iter().find_map(|r| r["job_id"].as_u64())) else {
        return "<none>".into();
    };
    let o = Command::new("squeue")
        .args(["-h", "-j", &job.to_string(), "-o", "%j"])
        .output()
        .unwrap();
    String::from_utf8_lossy(&o.stdout).trim().to_string()
}

fn count_nodes(out: &str) -> BTreeMap<String, usize> {
    let mut m = BTreeMap::new();
    for l in out.lines() {
        *m.entry(l.split_whitespace().next().unwrap_or("").to_string()).or_insert(0) += 1;
    }
    m
}

#[test]
fn tasks_spread_over_every_node_and_allocations_are_visible() {
    let Some(env) = cluster_env("{partition: local, nodes: 3, cpusPerNode: 2, timeLimit: \"10\", maxAllocations: 1, idleRelease: 600}")
    else {
        return;
    };
    // Exec tasks of 0.3 s each on 6 CPUs: every node runs some.
    let input: String = (0..18).map(|_| "0.3\n").collect();
    let o = env.run_stdin("soamsession", &["submit", "--app", "c", "--type", "Exec"], &input);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let nodes = count_nodes(&String::from_utf8_lossy(&o.stdout));
    assert_eq!(nodes.values().sum::<usize>(), 18, "{nodes:?}");
    assert_eq!(nodes.keys().cloned().collect::<Vec<_>>(), ["n1", "n2", "n3"], "{nodes:?}");
    // Task views say where each task ran.
    let id = env
        .ok("soamsession", &["create", "--app", "c", "--type", "Exec"])
        .trim()
        .to_string();
    env.run_stdin("soamsession", &["submit", "--session", &format!("c:{id}"), "--detach"], "0\n0\n");
    let v = wait_for(30, "two tasks done", || {
        let v = env.json("soamview", &["task", &format!("c:{id}")]);
        v.as_array()?.iter().all(|t| t["state"] == "done").then_some(v.clone())
    });
    for t in v.as_array().unwrap() {
        assert!(["n1", "n2", "n3"].contains(&t["node"].as_str().unwrap_or("")), "{t}");
    }
    env.ok("soamsession", &["close", &format!("c:{id}")]);
    // Persistent instances answer from the nodes too.
    let o = env.run_stdin("soamsession", &["submit", "--app", "c"], "a\nb\nc\n");
    let out = String::from_utf8_lossy(&o.stdout);
    assert_eq!(out.lines().count(), 3, "{out}");
    assert!(out.lines().all(|l| l.starts_with('n') && l.ends_with(['a', 'b', 'c'])), "{out}");
    // The allocations, as scripts see them (once every worker has said hello).
    let v = wait_for(30, "every worker up", || {
        let v = env.json("soamview", &["cluster"]);
        let rows = v.as_array()?;
        (!rows.is_empty() && rows.iter().all(|r| r["slots"] == 6)).then_some(v.clone())
    });
    let rows = v.as_array().unwrap();
    for r in rows {
        assert_eq!(r["state"], "running", "{r}");
        assert!(r["job_id"].is_u64() && r["slots"] == 6, "{r}");
        assert_eq!(r["nodes"], serde_json::json!(["n1", "n2", "n3"]), "{r}");
        for key in ["reason", "busy", "time_left_s"] {
            assert!(r.get(key).is_some(), "{key} in {r}");
        }
    }
    // An admin gives one back; Slurm no longer lists it.
    let job = rows[0]["job_id"].as_u64().unwrap().to_string();
    env.ok("soamcontrol", &["cluster", "release", &job]);
    wait_for(30, "the released job to end", || {
        let o = Command::new("squeue").args(["-h", "-j", &job]).output().unwrap();
        String::from_utf8_lossy(&o.stdout).trim().is_empty().then_some(())
    });
}

/// One-node allocations (up to 3): a node lost takes only its own tasks with it.
const ONE_NODE: &str = "{partition: local, nodes: 1, cpusPerNode: 2, timeLimit: \"10\", maxAllocations: 3, idleRelease: 600}";

/// A detached exec session of `n` tasks that each sleep `secs`, already submitted.
/// Returns its address.
fn busy_session(env: &Env, n: usize, secs: &str) -> String {
    let id = env
        .ok("soamsession", &["create", "--app", "c", "--type", "Exec"])
        .trim()
        .to_string();
    let addr = format!("c:{id}");
    let input: String = (0..n).map(|_| format!("{secs}\n")).collect();
    let o = env.run_stdin("soamsession", &["submit", "--session", &addr, "--detach"], &input);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    addr
}

/// A field of the first allocation row with a busy instance, once there is one.
fn busy_allocation(env: &Env, field: impl Fn(&serde_json::Value) -> Option<String>) -> String {
    wait_for(60, "a busy allocation", || {
        let v = env.json("soamview", &["cluster"]);
        v.as_array()?.iter().find(|r| r["busy"].as_u64() > Some(0)).and_then(&field)
    })
}

/// Collects the session and checks that every one of its `n` tasks ended done, once.
/// The profile's taskRetryLimit is 0, so a retry counted for lost work would have put
/// a task in error.
fn all_done_once(env: &Env, addr: &str, n: u64) {
    let o = env.run("soamsession", &["reopen", addr, "--jsonl"]);
    assert!(
        o.status.success(),
        "{}\n{}\n{}",
        String::from_utf8_lossy(&o.stderr),
        String::from_utf8_lossy(&o.stdout),
        std::fs::read_to_string(env.path("agent-0.log")).unwrap_or_default()
    );
    let lines: Vec<serde_json::Value> = String::from_utf8_lossy(&o.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let mut ids: Vec<u64> = lines.iter().map(|l| l["task"].as_u64().unwrap()).collect();
    ids.sort();
    assert_eq!(ids, (1..=n).collect::<Vec<_>>(), "every task done once");
    assert!(lines.iter().all(|l| l["state"] == "done"), "{lines:?}");
}

/// Early invokes through a worker: tasks sent right behind a SessionEnter that fails
/// are put back uncounted, and the end of the process that was sent them, while they
/// run again on another instance of the allocation, costs none of them an attempt.
#[test]
fn tasks_behind_a_failed_early_enter_on_a_node_run_once() {
    if !slurm_up() {
        return;
    }
    let env = Env::new();
    let slurm = "    launcher: slurm\n    slurm: {partition: local, nodes: 1, cpusPerNode: 2, timeLimit: \"10\", maxAllocations: 1, idleRelease: 600}\n";
    tasks_behind_a_failed_early_enter_run_once(&env, slurm, true);
    let v = env.json("soamview", &["cluster"]);
    assert!(
        v.as_array().is_some_and(|a| a.iter().any(|r| r["job_id"].is_u64())),
        "the tasks did not run in an allocation: {v}"
    );
}

#[test]
fn a_cancelled_allocation_requeues_its_tasks_without_a_retry() {
    let Some(env) = cluster_env(ONE_NODE) else { return };
    let addr = busy_session(&env, 6, "3");
    let job = busy_allocation(&env, |r| r["job_id"].as_u64().map(|j| j.to_string()));
    assert!(Command::new("scancel").arg(&job).status().unwrap().success());
    all_done_once(&env, &addr, 6);
}

/// Sets a node's state; puts it back in service however the test ends, so later
/// tests have it.
struct NodeState(String);
impl NodeState {
    fn set(node: &str, state: &str) -> NodeState {
        // Slurm refuses some changes while a node is between states (an earlier
        // test's job still completing on it): asked again until it takes.
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        let ok = loop {
            let ok = Command::new("scontrol")
                .args(["update", &format!("nodename={node}"), &format!("state={state}"), "reason=soam-test"])
                .status()
                .unwrap()
                .success();
            if ok || std::time::Instant::now() > deadline {
                break ok;
            }
            std::thread::sleep(Duration::from_millis(200));
        };
        assert!(ok, "scontrol update {node} {state}");
        NodeState(node.to_string())
    }
}
impl Drop for NodeState {
    fn drop(&mut self) {
        // Slurm may already have returned it by itself; then this just fails.
        let _ = Command::new("scontrol")
            .args(["update", &format!("nodename={}", self.0), "state=resume"])
            .status();
    }
}

/// The hard case, as an oversubscribed partition gives it: every allocation of the
/// session on one node (the others drained meanwhile), that node goes down, the others
/// come back. Nothing is lost, no task is charged a retry, and the workers dying as they
/// start on the failing node are not taken for workers that cannot start.
#[test]
fn a_node_taken_down_mid_session_loses_no_task() {
    let Some(env) = cluster_env(ONE_NODE) else { return };
    let n2 = NodeState::set("n2", "drain");
    let n3 = NodeState::set("n3", "drain");
    let addr = busy_session(&env, 12, "2");
    let node = busy_allocation(&env, |r| r["nodes"][0].as_str().map(String::from));
    assert_eq!(node, "n1");
    let _n1 = NodeState::set("n1", "down");
    drop((n2, n3));
    all_done_once(&env, &addr, 12);
}

#[test]
fn agent_killed_leaves_no_job_and_slurm_errors_reach_the_user() {
    let Some(mut env) = cluster_env("{partition: local, nodes: 2, cpusPerNode: 1, timeLimit: \"10\", idleRelease: 600}") else {
        return;
    };
    let o = env.run_stdin("soamsession", &["submit", "--app", "c"], "x\n");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let jobs = wait_for(30, "our allocation", || Some(our_jobs(&env)).filter(|j| !j.is_empty()));
    env.stop_agent(libc::SIGKILL);
    // The workers notice their agent is gone and end their job.
    wait_for(30, "no job left", || {
        let o = Command::new("squeue").args(["-h", "-j", &jobs.join(",")]).output().unwrap();
        let text = String::from_utf8_lossy(&o.stdout);
        (!o.status.success() || text.trim().is_empty()).then_some(())
    });

    env.start_agent();
    env.register("bad.yaml", &profile("bad", "{partition: nosuch, timeLimit: \"5\"}"));
    let o = env.run_stdin("soamsession", &["submit", "--app", "bad"], "x\n");
    assert_eq!(o.status.code(), Some(1));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("Slurm refused an allocation") && err.contains("invalid partition"),
        "{err}"
    );
}

#[test]
fn an_idle_allocation_is_released_after_idle_release() {
    let Some(env) = cluster_env("{partition: local, nodes: 1, cpusPerNode: 1, timeLimit: \"10\", idleRelease: 1}") else {
        return;
    };
    let o = env.run_stdin("soamsession", &["submit", "--app", "c"], "x\n");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let job = wait_for(30, "the allocation", || {
        let v = env.json("soamview", &["cluster"]);
        v.as_array()?.first()?["job_id"].as_u64()
    });
    // Nothing more to run: after idleRelease it goes, from the agent's view and Slurm's.
    wait_for(30, "the idle allocation released", || {
        let v = env.json("soamview", &["cluster"]);
        let o = Command::new("squeue").args(["-h", "-j", &job.to_string()]).output().unwrap();
        (v.as_array()?.is_empty() && String::from_utf8_lossy(&o.stdout).trim().is_empty()).then_some(())
    });
}

#[test]
fn workers_that_cannot_start_do_not_spin_through_allocations() {
    // A "worker" that exits at once, as a missing or broken soam-worker on the nodes would.
    // SAFETY: nextest runs this test alone in its process; nothing else reads the
    // environment concurrently.
    unsafe { std::env::set_var("SOAM_WORKER_BIN", "/bin/true") };
    let Some(env) = cluster_env("{partition: local, nodes: 1, cpusPerNode: 1, timeLimit: \"5\"}") else {
        return;
    };
    let o = env.run_stdin("soamsession", &["submit", "--app", "c"], "x\n");
    assert_eq!(o.status.code(), Some(1));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("keep ending as they start"), "{err}");
    // Three tries, backing off, not hundreds.
    let log = std::fs::read_to_string(env.path("agent-0.log")).unwrap();
    let asked = log.matches("asking Slurm for an allocation").count();
    assert!((3..=4).contains(&asked), "{asked} allocations asked for");
}

/// An allocation about to reach its time limit drains: the task running there finishes,
/// no new task goes there, the backlog gets another allocation, and every task is done
/// once with no retry counted. (Slurm's time limits are in minutes: this test waits
/// about 30 s for the one-minute allocation to come within the drain margin.)
#[test]
fn an_allocation_about_to_end_drains_and_the_work_moves_on() {
    let Some(env) = cluster_env("{partition: local, nodes: 1, cpusPerNode: 1, timeLimit: \"1\", maxAllocations: 2, idleRelease: 600}")
    else {
        return;
    };
    let addr = busy_session(&env, 12, "4");
    let first = busy_allocation(&env, |r| r["job_id"].as_u64().map(|j| j.to_string()));
    wait_for(90, "the first allocation draining", || {
        let v = env.json("soamview", &["cluster"]);
        v.as_array()?
            .iter()
            .find(|r| r["job_id"].as_u64().map(|j| j.to_string()).as_deref() == Some(first.as_str()) && r["state"] == "draining")
            .map(|_| ())
    });
    all_done_once(&env, &addr, 12);
    let log = std::fs::read_to_string(env.path("agent-0.log")).unwrap();
    assert!(log.contains("drains: its allocation is about to end"), "{log}");
}

/// Cancels a job however the test ends.
struct Job(String);
impl Drop for Job {
    fn drop(&mut self) {
        let _ = Command::new("scancel").arg(&self.0).status();
    }
}

/// A job left by an earlier life of the agent (its name; the agent died holding it)
/// is cancelled by the restarted agent before it asks for capacity again.
#[test]
fn a_restarted_agent_cancels_its_leftover_jobs() {
    let Some(mut env) = cluster_env("{partition: local, nodes: 1, cpusPerNode: 1, timeLimit: \"10\", idleRelease: 600}") else {
        return;
    };
    let o = env.run_stdin("soamsession", &["submit", "--app", "c"], "x\n");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let name = wait_for(30, "the agent's job name", || {
        Some(job_name(&env)).filter(|n| n.starts_with("soam-"))
    });
    env.stop_agent(libc::SIGTERM);
    let o = Command::new("sbatch")
        .args([
            "--parsable",
            "-p",
            "local",
            "-N1",
            "-n1",
            &format!("--job-name={name}"),
            // Its cancellation notice would otherwise land in slurm-JOB.out in the
            // test's working directory, which is the checkout.
            "--output=/dev/null",
            "--wrap",
            "sleep 300",
        ])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let leftover = Job(String::from_utf8_lossy(&o.stdout)
        .trim()
        .split(';')
        .next()
        .unwrap_or("")
        .to_string());
    let listed = |job: &str| {
        let o = Command::new("squeue").args(["-h", "-j", job, "-o", "%T"]).output().unwrap();
        let state = String::from_utf8_lossy(&o.stdout).trim().to_string();
        o.status.success() && (state == "RUNNING" || state == "PENDING")
    };
    assert!(listed(&leftover.0), "the leftover job is queued");

    env.start_agent();
    let o = env.run_stdin("soamsession", &["submit", "--app", "c"], "y\n");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    wait_for(30, "the leftover job cancelled", || (!listed(&leftover.0)).then_some(()));
}

/// A worker that cannot reach the address it is told (a wrong `workerHost`) gives up
/// after its connect deadline and says why; that reaches the agent's log (and, after
/// three such ends, the sessions: see the test above).
#[test]
fn a_worker_that_cannot_connect_back_says_why() {
    // SAFETY: nextest runs this test alone in its process; nothing else reads the
    // environment concurrently. The agent started below inherits it.
    unsafe { std::env::set_var("SOAM_WORKER_HOST", "nosuch.invalid") };
    let Some(env) = cluster_env("{partition: local, nodes: 1, cpusPerNode: 1, timeLimit: \"5\"}") else {
        return;
    };
    busy_session(&env, 1, "0");
    wait_for(60, "the worker's reason in the agent's log", || {
        let log = std::fs::read_to_string(env.path("agent-0.log")).ok()?;
        log.contains("cannot connect back to the agent at nosuch.invalid:").then_some(())
    });
}

/// On a node, `${SOAM_HOME}` is the node's (the worker fills it in: a workDir under it
/// is made there), and `${SOAM_DEPLOY_DIR}` the folder the agent says the service's
/// files are in.
#[test]
fn variables_are_filled_in_on_the_node() {
    if !slurm_up() {
        return;
    }
    let env = Env::new();
    let p = env.register(
        "v.yaml",
        &format!(
            "application: v\nservices:\n  - name: s\n    command: [\"python3\", \"{}\"]\n    workDir: \"${{SOAM_HOME}}/node-work\"\n    env: {{WHERE: \"${{SOAM_DEPLOY_DIR}}/x\"}}\n    launcher: slurm\n    slurm: {{partition: local, nodes: 1, cpusPerNode: 1, timeLimit: \"10\", maxAllocations: 1}}\n",
            behave_py()
        ),
    );
    let out = env.ok(
        "soamsession",
        &["submit", "--app", "v", "--task", "cwd", "--task", "env:WHERE", "--ordered"],
    );
    let lines: Vec<&str> = out.lines().collect();
    // The nodes of slurm-local.sh share this host's files, and the worker its environment.
    let work = env.path("data/home/node-work");
    assert_eq!(lines, [work.display().to_string(), format!("{}/x", p.parent().unwrap().display())]);
    assert!(work.is_dir());
}

/// A service package on Slurm: each node's worker is sent the package over its
/// connection and starts the service from its own copy (its node's cache, on its own
/// disk), not from the agent's folder.
#[test]
fn a_package_reaches_each_node_over_the_worker_connection() {
    if !slurm_up() {
        return;
    }
    let env = Env::new();
    let src = service_package(&env.path("pkg"));
    let archive = env.path("pkg.tgz");
    let sha = env.deploy("pkg", &tar_gz(&archive, &src, &["."]));
    env.register(
        "k.yaml",
        "application: k\nservices:\n  - name: s\n    package: pkg\n    command: [\"${SOAM_DEPLOY_DIR}/bin/run.sh\"]\n    env: {DEPLOYED: \"${SOAM_DEPLOY_DIR}\"}\n    launcher: slurm\n    slurm: {partition: local, nodes: 3, cpusPerNode: 1, timeLimit: \"10\", maxAllocations: 1}\n",
    );
    let input: String = (0..6).map(|_| "env:DEPLOYED\n").collect();
    let o = env.run_stdin("soamsession", &["submit", "--app", "k"], &input);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let out = String::from_utf8_lossy(&o.stdout).into_owned();
    // SAFETY: getuid has no preconditions.
    let cache = std::env::temp_dir().join(format!("soam-deploy-{}", unsafe { libc::getuid() }));
    let mut nodes = std::collections::BTreeSet::new();
    for line in out.lines() {
        let dir = std::path::Path::new(line);
        let node = dir
            .strip_prefix(&cache)
            .ok()
            .and_then(|r| r.components().next())
            .map(|c| c.as_os_str().to_string_lossy().into_owned());
        assert!(
            node.is_some() && dir.ends_with(format!("deploy/{sha}")),
            "{line} is not a node's own copy"
        );
        assert!(dir.join("bin/run.sh").is_file(), "{line}");
        nodes.insert(node.unwrap());
    }
    assert!(nodes.iter().all(|n| ["n1", "n2", "n3"].contains(&n.as_str())), "{nodes:?}");
    // A new version reaches the next session: the idle instances on the nodes, started
    // from the first, take none of it.
    std::fs::write(src.join("VERSION"), "2").unwrap();
    let sha2 = env.deploy("pkg", &tar_gz(&archive, &src, &["."]));
    assert_ne!(sha2, sha);
    let out = env.ok("soamsession", &["submit", "--app", "k", "--task", "env:DEPLOYED"]);
    assert!(out.trim().ends_with(&format!("deploy/{sha2}")), "{out}");
    for n in &nodes {
        for v in [&sha, &sha2] {
            let _ = std::fs::remove_dir_all(cache.join(n).join("deploy").join(v));
        }
    }
}

/// The example deployment, profiles/symphony.xml, on Slurm: its package built and
/// deployed, the profile registered with its service moved to the cluster (Slurm
/// settings as attributes of <Service>, as docs/symphony-xml.md allows), and its tasks
/// answered from the nodes' own copies of the package.
#[test]
fn the_example_deployment_runs_on_the_cluster() {
    if !slurm_up() {
        return;
    }
    let env = Env::new();
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    env.deploy(
        "EchoServicePackage",
        &tar_gz(&env.path("echo.tgz"), &root.join("profiles/services"), &["echo.py"]),
    );
    let xml = std::fs::read_to_string(root.join("profiles/symphony.xml")).unwrap().replace(
        "<Service name=\"EchoService\"",
        "<Service name=\"EchoService\" launcher=\"slurm\" partition=\"local\" nodes=\"3\" cpusPerNode=\"1\" timeLimit=\"10\" maxAllocations=\"1\"",
    );
    assert!(xml.contains("launcher=\"slurm\""));
    let p = env.path("symphony.xml");
    std::fs::write(&p, xml).unwrap();
    env.ok("soamreg", &[p.to_str().unwrap()]);
    let o = env.run_stdin(
        "soamsession",
        &["submit", "--app", "symphonyApp", "--type", "DefaultSession", "--ordered"],
        "a\nb\nc\n",
    );
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(String::from_utf8_lossy(&o.stdout), "a\nb\nc\n");
    // Served by the allocation's instances (the service runs nowhere else).
    let rows = env.json("soamview", &["cluster"]);
    assert_eq!(rows.as_array().map(Vec::len), Some(1), "{rows}");
    assert_eq!(rows[0]["app"], "symphonyApp");
}

/// `actionOnSI="blockHost"` on a Slurm node: the node is listed as blocked, the
/// application's work goes to another node (its next allocation leaves the node out),
/// and enabling the application lifts the block.
#[test]
fn a_blocked_node_is_left_out_until_the_application_is_enabled_again() {
    if !slurm_up() {
        return;
    }
    let env = Env::new();
    let coded = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/services/coded.py");
    env.register(
        "b.yaml",
        &format!(
            "application: b\nservices:\n  - name: s\n    command: [\"python3\", \"{}\"]\n    launcher: slurm\n    slurm: {{partition: local, nodes: 1, cpusPerNode: 1, timeLimit: \"10\", maxAllocations: 2}}\n    control:\n      invoke:\n        on:\n          - {{event: return, controlCode: 9, actionOnSI: blockHost}}\n",
            coded.display()
        ),
    );
    let first = env.ok("soamsession", &["submit", "--app", "b", "--task", "code:9:node"]);
    let first = first.trim();
    assert!(first.starts_with('n'), "{first}");
    let blocked = |env: &Env| -> Vec<String> {
        let v = env.json("soamview", &["cluster"]);
        v.as_array()
            .unwrap()
            .iter()
            .filter(|r| r["state"] == "blocked" && r["app"] == "b")
            .flat_map(|r| r["nodes"].as_array().unwrap().iter().map(|n| n.as_str().unwrap().to_string()))
            .collect()
    };
    assert_eq!(blocked(&env), [first.to_string()]);
    for _ in 0..3 {
        let next = env.ok("soamsession", &["submit", "--app", "b", "--task", "node"]);
        assert_ne!(next.trim(), first, "a blocked node ran the application's work");
    }
    env.ok("soamcontrol", &["app", "enable", "b"]);
    assert!(blocked(&env).is_empty());
}
