//! Test harness: a real `soamd` in a temporary SOAM_HOME, and the real commands run
//! against it. Every agent a test starts is stopped when its `Env` is dropped.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

pub struct Env {
    pub home: tempfile::TempDir,
    pub agent: Option<Child>,
    pub slots: u32,
}

pub fn bin(name: &str) -> PathBuf {
    match name {
        "soamd" => PathBuf::from(env!("CARGO_BIN_EXE_soamd")),
        "soamreg" => PathBuf::from(env!("CARGO_BIN_EXE_soamreg")),
        "soamdeploy" => PathBuf::from(env!("CARGO_BIN_EXE_soamdeploy")),
        "soamunreg" => PathBuf::from(env!("CARGO_BIN_EXE_soamunreg")),
        "soamview" => PathBuf::from(env!("CARGO_BIN_EXE_soamview")),
        "soamcontrol" => PathBuf::from(env!("CARGO_BIN_EXE_soamcontrol")),
        "soamsession" => PathBuf::from(env!("CARGO_BIN_EXE_soamsession")),
        "soam-echo-service" => PathBuf::from(env!("CARGO_BIN_EXE_soam-echo-service")),
        other => panic!("unknown binary {other}"),
    }
}

pub fn behave_py() -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/services/behave.py")
        .display()
        .to_string()
}

/// Says that a test skipped and why, on one line. Under `SOAM_TEST_NO_SKIP=1` (.ci/run sets
/// it: CI provides root, other uids, a tmpfs and a 3-node Slurm) a skip is a failure
/// instead, so a CI run cannot pass by skipping what it was meant to test.
pub fn skip(why: &str) {
    if std::env::var_os("SOAM_TEST_NO_SKIP").is_some_and(|v| v == "1") {
        panic!("would skip ({why}), but SOAM_TEST_NO_SKIP=1 says every test must run here");
    }
    eprintln!("skipped: {why}");
}

/// The uid the tests borrow for "another user".
pub const NOBODY: u32 = 65534;

/// Whether this test can run processes as other uids: it must be root, and another uid
/// must be able to execute the test binaries and `python3` (the test services). Where `/`
/// is mode 0700 no uid but root reaches any program; the test then says it skipped and
/// how to run it (docs/testing.md). Checked by doing it: running `soamd --version` and
/// `python3 -c pass` as uid 65534.
pub fn other_uids_can_run() -> bool {
    use std::os::unix::process::CommandExt;
    if unsafe { libc::geteuid() } != 0 {
        skip("needs root to run processes as other users");
        return false;
    }
    let tries = [(bin("soamd"), vec!["--version"]), (PathBuf::from("python3"), vec!["-c", "pass"])];
    for (prog, args) in tries {
        let r = Command::new(&prog)
            .args(&args)
            .uid(NOBODY)
            .gid(NOBODY)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .output();
        let why = match r {
            Ok(o) if o.status.success() => continue,
            Ok(o) => format!("exit {:?}: {}", o.status.code(), String::from_utf8_lossy(&o.stderr).trim()),
            Err(e) => e.to_string(),
        };
        let mode = std::fs::metadata("/")
            .map(|m| format!("{:o}", std::os::unix::fs::PermissionsExt::mode(&m.permissions()) & 0o7777))
            .unwrap_or_default();
        skip(&format!(
            "uid {NOBODY} cannot run {} ({}; / is mode {mode}); run these tests through ../shared/tools/ns-run.sh cargo nextest run --workspace",
            prog.display(),
            why.lines().next().unwrap_or_default()
        ));
        return false;
    }
    true
}

/// Polls `f` until it returns Some, or panics after `secs`.
pub fn wait_for<T>(secs: u64, what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    wait_for_or(secs, what, || f().ok_or_else(String::new))
}

/// As [`wait_for`], with `f` saying why not yet: a timeout's panic quotes its last answer.
pub fn wait_for_or<T>(secs: u64, what: &str, mut f: impl FnMut() -> Result<T, String>) -> T {
    let end = Instant::now() + Duration::from_secs(secs);
    loop {
        let why = match f() {
            Ok(v) => return v,
            Err(why) => why,
        };
        assert!(Instant::now() < end, "timed out waiting for {what}; last: {why}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

impl Env {
    /// A fresh home with an agent of 2 slots already serving.
    pub fn new() -> Env {
        Env::with_slots(2)
    }

    pub fn with_slots(slots: u32) -> Env {
        let mut e = Env {
            home: tempfile::tempdir().unwrap(),
            agent: None,
            slots,
        };
        e.start_agent();
        e
    }

    /// A home with no agent running.
    pub fn empty() -> Env {
        Env {
            home: tempfile::tempdir().unwrap(),
            agent: None,
            slots: 2,
        }
    }

    pub fn socket(&self) -> PathBuf {
        self.home.path().join("run/soamd.sock")
    }

    pub fn path(&self, rel: &str) -> PathBuf {
        self.home.path().join(rel)
    }

    /// Starts `soamd` in the foreground and waits until it answers.
    pub fn start_agent(&mut self) {
        static STARTS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = STARTS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let log = std::fs::File::create(self.home.path().join(format!("agent-{n}.log"))).unwrap();
        let child = Command::new(bin("soamd"))
            .args(["--slots", &self.slots.to_string()])
            .env("SOAM_HOME", self.home.path())
            .env("RUST_LOG", "info")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap();
        self.agent = Some(child);
        self.wait_serving();
    }

    /// Waits until the socket takes connections (the agent opens it once it has read
    /// its store). Not through a command: a command would replay the offline journal,
    /// which tests of the journal want to see happen.
    pub fn wait_serving(&self) {
        wait_for(15, "the agent to serve", || {
            std::os::unix::net::UnixStream::connect(self.socket()).ok()
        });
    }

    pub fn agent_pid(&self) -> u32 {
        self.agent.as_ref().unwrap().id()
    }

    /// Stops the agent with a signal and waits for it to exit.
    pub fn stop_agent(&mut self, signal: i32) -> Option<i32> {
        let mut child = self.agent.take()?;
        unsafe { libc::kill(child.id() as i32, signal) };
        let end = Instant::now() + Duration::from_secs(15);
        loop {
            if let Some(s) = child.try_wait().unwrap() {
                return s.code();
            }
            if Instant::now() > end {
                let _ = child.kill();
                let _ = child.wait();
                panic!("agent did not stop on signal {signal}");
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// A command against this agent (never autostarting one).
    pub fn cmd(&self, name: &str) -> Command {
        let mut c = Command::new(bin(name));
        c.env("SOAM_HOME", self.home.path())
            .env("SOAM_NO_AUTOSTART", "1")
            .env("NO_COLOR", "1")
            .env_remove("SOAM_SOCKET");
        c
    }

    pub fn run(&self, name: &str, args: &[&str]) -> Output {
        self.cmd(name).args(args).stdin(Stdio::null()).output().unwrap()
    }

    pub fn run_stdin(&self, name: &str, args: &[&str], input: &str) -> Output {
        use std::io::Write;
        let mut c = self
            .cmd(name)
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        c.stdin.take().unwrap().write_all(input.as_bytes()).unwrap();
        c.wait_with_output().unwrap()
    }

    /// Runs and asserts success; returns stdout.
    pub fn ok(&self, name: &str, args: &[&str]) -> String {
        let o = self.run(name, args);
        assert!(
            o.status.success(),
            "{name} {args:?} failed ({:?}): {}",
            o.status.code(),
            String::from_utf8_lossy(&o.stderr)
        );
        String::from_utf8(o.stdout).unwrap()
    }

    /// Runs and asserts exit code 1 with a one-line reason; returns that line.
    pub fn fails(&self, name: &str, args: &[&str]) -> String {
        self.fails_with(1, name, args)
    }

    /// Runs and asserts exit code `code` with a one-line reason; returns that line.
    pub fn fails_with(&self, code: i32, name: &str, args: &[&str]) -> String {
        let o = self.run(name, args);
        assert_eq!(
            o.status.code(),
            Some(code),
            "{name} {args:?} should fail: {}",
            String::from_utf8_lossy(&o.stdout)
        );
        let err = String::from_utf8(o.stderr).unwrap();
        assert_eq!(err.trim_end().lines().count(), 1, "one-line error expected, got: {err}");
        err.trim_end().to_string()
    }

    pub fn json(&self, name: &str, args: &[&str]) -> serde_json::Value {
        let mut a = args.to_vec();
        a.push("--json");
        serde_json::from_str(&self.ok(name, &a)).unwrap()
    }

    /// Writes a profile into the home and registers it.
    pub fn register(&self, file: &str, yaml: &str) -> PathBuf {
        let p = self.home.path().join(file);
        std::fs::write(&p, yaml).unwrap();
        self.ok("soamreg", &[p.to_str().unwrap()]);
        p
    }

    /// A profile for the behaviour-driven Python test service.
    pub fn behave_profile(app: &str, extra_consumer: &str, types: &str) -> String {
        format!(
            "application: {app}\nconsumer:\n  policy: proportion\n{extra_consumer}services:\n  - name: behave\n    command: [\"python3\", \"{}\"]\nsessionTypes:\n  - name: \"\"\n{types}",
            behave_py()
        )
    }

    /// The session (as soamview shows it), if it is still open.
    pub fn session(&self, app: &str, id: u64) -> Option<serde_json::Value> {
        let v = self.json("soamview", &["session", app]);
        v.as_array().unwrap().iter().find(|s| s["id"] == id).cloned()
    }

    pub fn history(&self, app: &str, id: u64) -> Option<serde_json::Value> {
        let v = self.json("soamview", &["history", app]);
        v.as_array().unwrap().iter().find(|s| s["id"] == id).cloned()
    }
}

impl Drop for Env {
    fn drop(&mut self) {
        if let Some(mut c) = self.agent.take() {
            unsafe { libc::kill(c.id() as i32, libc::SIGTERM) };
            let end = Instant::now() + Duration::from_secs(10);
            while Instant::now() < end {
                if let Ok(Some(_)) = c.try_wait() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(10));
            }
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Env {
    /// `script` running a shell command line on a real terminal (a pty) against this
    /// agent, with the commands under test first in PATH; what the terminal shows
    /// comes out on the child's stdout.
    pub fn script(&self, cmdline: &str) -> Command {
        let mut c = Command::new("script");
        c.args(["-qfec", cmdline, "/dev/null"])
            .env("SOAM_HOME", self.home.path())
            .env("SOAM_NO_AUTOSTART", "1")
            .env("NO_COLOR", "1")
            .env("PATH", path_with_bins())
            .env_remove("SOAM_SOCKET");
        c
    }

    /// Runs a shell command line on a terminal of `cols` columns; returns its exit code
    /// and all it wrote to the terminal (stdout and stderr together, lines ending in
    /// CR LF). Its input is the terminal, which ends at once (script sends EOF).
    pub fn in_terminal(&self, cols: u32, cmdline: &str) -> (Option<i32>, String) {
        let o = self
            .script(&format!("stty cols {cols} rows 40; {cmdline}"))
            .stdin(Stdio::null())
            .output()
            .unwrap();
        (o.status.code(), String::from_utf8_lossy(&o.stdout).into_owned())
    }

    /// Runs `name args` with stdout a pipe nobody reads any more (its read end closed
    /// before the start): the first write fails with EPIPE, every time.
    pub fn to_closed_pipe(&self, name: &str, args: &[&str]) -> Output {
        use std::os::fd::{FromRawFd, OwnedFd};
        let mut fds = [0; 2];
        assert_eq!(unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) }, 0);
        // SAFETY: pipe2 just returned these two descriptors, owned by nothing else.
        let (read, write) = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
        drop(read);
        self.cmd(name).args(args).stdout(Stdio::from(write)).output().unwrap()
    }

    /// Runs `name args`, reads the first line of its stdout and then closes the pipe,
    /// as `| head -1` does; returns that line and how the command ended.
    pub fn first_line_then_close(&self, name: &str, args: &[&str]) -> (String, Output) {
        use std::io::BufRead;
        let mut child = self
            .cmd(name)
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut first = String::new();
        std::io::BufReader::new(child.stdout.take().unwrap()).read_line(&mut first).unwrap();
        (first, child.wait_with_output().unwrap())
    }
}

/// PATH with the directory of the commands under test first.
pub fn path_with_bins() -> String {
    let dir = bin("soamview").parent().unwrap().display().to_string();
    format!("{dir}:{}", std::env::var("PATH").unwrap_or_default())
}

/// What a terminal shows after `raw` was written to it, scrollback included: enough of a
/// VT100 for progress bars (CR, LF, cursor up, erase line, erase below); other escape
/// sequences are dropped.
pub fn screen(raw: &str) -> Vec<String> {
    let mut lines: Vec<Vec<char>> = vec![Vec::new()];
    let (mut row, mut col) = (0usize, 0usize);
    let mut chars = raw.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\r' => col = 0,
            '\n' => {
                row += 1;
                col = 0;
                if lines.len() <= row {
                    lines.push(Vec::new());
                }
            }
            '\x1b' => {
                if chars.peek() != Some(&'[') {
                    chars.next();
                    continue;
                }
                chars.next();
                let mut arg = String::new();
                let mut cmd = ' ';
                for d in chars.by_ref() {
                    if d.is_ascii_alphabetic() || d == '@' || d == '~' {
                        cmd = d;
                        break;
                    }
                    arg.push(d);
                }
                let n: usize = arg.trim_start_matches('?').parse().unwrap_or(0);
                match cmd {
                    'A' => row = row.saturating_sub(n.max(1)),
                    'K' => match n {
                        0 => lines[row].truncate(col),
                        _ => lines[row].clear(),
                    },
                    'J' => {
                        lines[row].truncate(col);
                        lines.truncate(row + 1);
                    }
                    _ => {}
                }
            }
            c if c.is_control() => {}
            c => {
                let line = &mut lines[row];
                while line.len() < col {
                    line.push(' ');
                }
                if col < line.len() {
                    line[col] = c;
                } else {
                    line.push(c);
                }
                col += 1;
            }
        }
    }
    lines
        .into_iter()
        .map(|l| l.into_iter().collect::<String>().trim_end().to_string())
        .collect()
}

/// Registers app `a` on the behave service announcing early invokes (its service given
/// `service_keys` too, each line indented as a service's key), then makes the first
/// SessionEnter of a new session fail while its tasks are sent right behind it. The
/// service refuses those tasks unrun; every task then runs once, on a retried
/// SessionEnter, with no attempt counted for what did not run.
///
/// With `die`, the process whose SessionEnter failed does not answer the first task it
/// refuses, and ends only once a task it was sent is running on another instance (with
/// the same attempt number, since the unrun one was not counted): its end must not
/// count against that task either. `env` then needs two slots.
pub fn tasks_behind_a_failed_early_enter_run_once(env: &Env, service_keys: &str, die: bool) {
    let die_env = if die { ", BEHAVE_DIE_REFUSED: \"1\"" } else { "" };
    let profile = format!(
        "application: a\nservices:\n  - name: behave\n    command: [\"python3\", \"{}\"]\n    env: {{BEHAVE_EARLY: \"1\"{die_env}}}\n{service_keys}sessionTypes:\n  - name: \"\"\n    sessionRetryLimit: 1\n    taskRetryLimit: 0\n",
        behave_py()
    );
    env.register("p.yaml", &profile);
    // An instance exists (its CreateService reply announced the feature) before the
    // session whose first SessionEnter fails.
    assert_eq!(env.ok("soamsession", &["submit", "--app", "a", "--task", "warm"]), "warm\n");
    let marker = env.path("enter-once");
    let log = |ext: &str| -> Vec<String> {
        let text = std::fs::read_to_string(format!("{}.{ext}", marker.display())).unwrap_or_default();
        text.lines().map(String::from).collect()
    };
    let common = format!("enter-fails-once:{}", marker.display());
    let cd = env.path("cd");
    std::fs::write(&cd, &common).unwrap();
    let id = env.ok("soamsession", &["create", "--app", "a", "--common-data", cd.to_str().unwrap()]);
    let sess = format!("a:{}", id.trim());
    // Long enough that a task sent again is still running when the process ends.
    let (inputs, outputs): (Vec<String>, Vec<String>) = (1..=3)
        .map(|i| match die {
            true => (format!("nap:1.5:t{i}"), format!("t{i}")),
            false => (format!("t{i}"), format!("{common}t{i}")),
        })
        .unzip();
    let mut args = vec!["submit", "--session", &sess, "--jsonl"];
    for t in &inputs {
        args.extend(["--task", t]);
    }
    let submit = env
        .cmd("soamsession")
        .args(&args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    if die {
        wait_for(30, "a refused task running elsewhere", || {
            let started = log("started");
            log("refused").iter().any(|t| started.contains(t)).then_some(())
        });
        std::fs::write(format!("{}.die", marker.display()), "").unwrap();
    }
    let o = submit.wait_with_output().unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(marker.exists(), "the first SessionEnter never failed");
    assert!(!log("refused").is_empty(), "no task was sent behind the failed SessionEnter");
    let mut rows: Vec<serde_json::Value> = String::from_utf8_lossy(&o.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    rows.sort_by_key(|r| r["task"].as_u64());
    assert_eq!(rows.len(), outputs.len(), "{rows:?}");
    for (row, out) in rows.iter().zip(&outputs) {
        // taskRetryLimit 0: an unrun attempt counted as a failure would be an error.
        assert_eq!(row["state"], "done", "{row}");
        assert_eq!(row["output"].as_str(), Some(out.as_str()), "{row}");
        assert_eq!(row["attempts"], 1, "a refused, unrun attempt counted: {row}");
    }
}

/// Writes `archive`, a tar.gz (by the system's tar) of `what` (names in `dir`, `.` for
/// all of it): a service package as users make one.
pub fn tar_gz(archive: &Path, dir: &Path, what: &[&str]) -> PathBuf {
    let o = Command::new("tar")
        .arg("-czf")
        .arg(archive)
        .arg("-C")
        .arg(dir)
        .args(what)
        .output()
        .unwrap();
    assert!(o.status.success(), "{o:?}");
    archive.to_path_buf()
}

/// A package's folder `dir`: `bin/run.sh`, which starts the test service (behave.py)
/// copied beside it.
pub fn service_package(dir: &Path) -> PathBuf {
    std::fs::create_dir_all(dir.join("bin")).unwrap();
    let run = dir.join("bin/run.sh");
    std::fs::write(&run, "#!/bin/sh\nexec python3 \"$(dirname \"$0\")/../behave.py\"\n").unwrap();
    std::fs::set_permissions(&run, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    std::fs::copy(behave_py(), dir.join("behave.py")).unwrap();
    dir.to_path_buf()
}

impl Env {
    /// `soamdeploy add NAME --package ARCHIVE`; the version's SHA-256.
    pub fn deploy(&self, name: &str, archive: &Path) -> String {
        self.ok("soamdeploy", &["add", name, "--package", archive.to_str().unwrap()]);
        self.json("soamdeploy", &["view", name])[0]["sha256"].as_str().unwrap().to_string()
    }
}
