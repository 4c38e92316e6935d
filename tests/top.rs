//! `soamview top` in a real terminal: tmux runs it, keys are sent with `send-keys`, and
//! what is on the screen is read with `capture-pane`. Needs tmux (.ci/run installs it).

mod common;
use common::*;
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};

/// A tmux server of this test's own (its socket in the test's home), stopped on drop.
struct Tmux {
    socket: PathBuf,
}

impl Tmux {
    fn run(&self, args: &[&str]) -> Output {
        Command::new("tmux")
            .arg("-S")
            .arg(&self.socket)
            .args(args)
            .stdin(Stdio::null())
            .output()
            .unwrap()
    }

    /// `soamview top` on a terminal of `cols` x `rows`, with `env`'s agent.
    fn start(env: &Env, cols: u32, rows: u32, extra_env: &str) -> Tmux {
        let t = Tmux {
            socket: env.path("tmux.sock"),
        };
        let cmd = format!(
            "env SOAM_HOME={} SOAM_NO_AUTOSTART=1 TERM=xterm-256color {extra_env} {} top",
            env.path("").display(),
            bin("soamview").display()
        );
        let o = t.run(&[
            "new-session",
            "-d",
            "-s",
            "top",
            "-x",
            &cols.to_string(),
            "-y",
            &rows.to_string(),
            &cmd,
        ]);
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        t
    }

    fn screen(&self, escapes: bool) -> String {
        let mut args = vec!["capture-pane", "-p", "-t", "top"];
        if escapes {
            args.push("-e");
        }
        String::from_utf8_lossy(&self.run(&args).stdout).into_owned()
    }

    /// Waits until the screen shows `text`; returns the screen.
    fn wait(&self, text: &str) -> String {
        let mut last = String::new();
        for _ in 0..500 {
            last = self.screen(false);
            if last.contains(text) {
                return last;
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        panic!("the screen never showed {text:?}:\n{last}");
    }

    /// `q` ends the program: its terminal goes.
    fn quits(&self) {
        self.keys(&["q"]);
        wait_for(15, "soamview top to quit", || {
            (!self.run(&["has-session", "-t", "top"]).status.success()).then_some(())
        });
    }

    fn keys(&self, keys: &[&str]) {
        for k in keys {
            let o = self.run(&["send-keys", "-t", "top", k]);
            assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        }
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = self.run(&["kill-server"]);
    }
}

fn have_tmux() -> bool {
    let ok = Command::new("tmux").arg("-V").output().is_ok_and(|o| o.status.success());
    if !ok {
        skip("tmux is not installed (.ci/run installs it)");
    }
    ok
}

/// A foreground colour is set somewhere (SGR 30-37, 90-97, or 38;...; 39 is the reset).
fn colored(screen: &str) -> bool {
    let codes = (30..38)
        .chain(90..98)
        .map(|c| format!("\u{1b}[{c}m"))
        .chain(["\u{1b}[38;".to_string()]);
    codes.into_iter().any(|c| screen.contains(&c))
}

fn state(env: &Env, id: u64) -> String {
    env.session("a", id)
        .map_or("gone".into(), |s| s["state"].as_str().unwrap().to_string())
}

#[test]
fn top_shows_sessions_and_acts_on_keys_in_a_real_terminal() {
    if !have_tmux() {
        return;
    }
    let env = Env::with_slots(2);
    env.register("p.yaml", &Env::behave_profile("a", "", "    taskRetryLimit: 0\n"));
    let alpha = env
        .ok("soamsession", &["create", "--app", "a", "--name", "alpha"])
        .trim()
        .parse::<u64>()
        .unwrap();
    env.ok(
        "soamsession",
        &[
            "submit",
            "--session",
            &format!("a:{alpha}"),
            "--task",
            "nap:60:x",
            "--task",
            "y",
            "--detach",
        ],
    );
    let beta = env
        .ok("soamsession", &["create", "--app", "a", "--name", "beta"])
        .trim()
        .parse::<u64>()
        .unwrap();
    env.ok(
        "soamsession",
        &[
            "submit",
            "--session",
            &format!("a:{beta}"),
            "--task",
            "fail",
            "--task",
            "z",
            "--detach",
        ],
    );
    wait_for(30, "beta's tasks to end", || {
        env.session("a", beta).filter(|s| s["error"] == 1 && s["done"] == 1)
    });

    let t = Tmux::start(&env, 140, 40, "NO_COLOR=1");
    let screen = t.wait("beta");
    for part in ["alpha", "applications and instances", "SESSION", "PROGRESS", "store ok", "q quit"] {
        assert!(screen.contains(part), "{part} not on the screen:\n{screen}");
    }
    // NO_COLOR: no colours, only reverse video for the selection and the key line.
    let raw = t.screen(true);
    assert!(!colored(&raw), "colours under NO_COLOR:\n{raw:?}");

    // ? lists the keys; any key closes it.
    t.keys(&["?"]);
    t.wait("kill the session (y confirms)");
    t.keys(&["x"]);
    // Down to beta, Enter: its tasks, the error first.
    t.keys(&["j", "Enter"]);
    let tasks = t.wait(&format!("tasks of a:{beta}, errors first"));
    let first_task = tasks.lines().skip_while(|l| !l.contains("TASK")).nth(1).unwrap_or("");
    assert!(first_task.contains("error"), "{tasks}");
    t.keys(&["Escape"]);
    t.wait("PROGRESS");
    // s and r on the selected session (beta).
    t.keys(&["s"]);
    wait_for(15, "beta suspended", || (state(&env, beta) == "suspended").then_some(()));
    t.keys(&["r"]);
    wait_for(15, "beta resumed", || (state(&env, beta) == "open").then_some(()));
    // K asks first: anything but y keeps it; y kills it.
    t.keys(&["K"]);
    t.wait(&format!("kill a:{beta}? y to kill"));
    t.keys(&["n"]);
    t.wait("not killed");
    assert_eq!(state(&env, beta), "open");
    t.keys(&["K", "y"]);
    wait_for(15, "beta killed", || (state(&env, beta) != "open").then_some(()));
    // / filters: only what matches stays.
    let gamma = env
        .ok("soamsession", &["create", "--app", "a", "--name", "gamma"])
        .trim()
        .to_string();
    t.wait("gamma");
    t.keys(&["/", "g", "a", "m", "Enter"]);
    let filtered = t.wait("filter: gam");
    assert!(!filtered.contains("alpha"), "{filtered}");
    // q quits: the terminal's program ends.
    t.quits();
    env.ok("soamsession", &["close", &format!("a:{alpha}")]);
    env.ok("soamsession", &["close", &format!("a:{gamma}")]);
}

#[test]
fn a_small_terminal_is_told_so_and_colours_come_without_no_color() {
    if !have_tmux() {
        return;
    }
    let env = Env::new();
    env.register("p.yaml", &Env::behave_profile("a", "", ""));
    env.run("soamsession", &["submit", "--app", "a", "--task", "fail"]);
    let t = Tmux::start(&env, 50, 10, "");
    let small = t.wait("needs 60x12 at least");
    assert!(small.contains("50x10"), "{small}");
    // Larger: drawn, in colour (the failed count is red).
    t.run(&["resize-window", "-t", "top", "-x", "120", "-y", "30"]);
    t.wait("applications and instances");
    let raw = t.screen(true);
    assert!(colored(&raw), "no colour without NO_COLOR:\n{raw:?}");
    t.quits();
}
