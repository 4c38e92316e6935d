//! A full disk, for real: the data folder is a small tmpfs, filled and freed while
//! recoverable work is submitted. Needs root (mount); says it skipped elsewhere.

mod common;
use common::*;
use std::process::Command;

/// A tmpfs mounted on a folder, unmounted however the test ends.
struct Tmpfs(std::path::PathBuf);
impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

fn tmpfs(dir: &std::path::Path, size: &str) -> Option<Tmpfs> {
    if unsafe { libc::geteuid() } != 0 {
        skip("mounting a small tmpfs needs root");
        return None;
    }
    std::fs::create_dir_all(dir).unwrap();
    let ok = Command::new("mount")
        .args(["-t", "tmpfs", "-o", &format!("size={size},mode=0700"), "tmpfs"])
        .arg(dir)
        .status()
        .unwrap()
        .success();
    if !ok {
        skip("could not mount a tmpfs");
        return None;
    }
    Some(Tmpfs(dir.to_path_buf()))
}

fn status_store(env: &Env) -> String {
    env.json("soamcontrol", &["agent", "status"])["store"]
        .as_str()
        .unwrap_or("")
        .to_string()
}

#[test]
fn a_full_disk_refuses_writes_keeps_what_was_acknowledged_and_recovers_without_a_restart() {
    let mut env = Env::empty();
    let Some(_mount) = tmpfs(&env.path("data"), "16m") else { return };
    env.start_agent();
    env.register(
        "p.yaml",
        &Env::behave_profile("a", "", "  - name: Rec\n    recoverable: true\n    onClientDisconnect: continue\n"),
    );
    env.ok("soamsession", &["create", "--app", "a", "--type", "Rec"]);
    env.ok("soamcontrol", &["session", "suspend", "a:1"]);
    let filler = env.path("data/filler");
    // Leaves about 1.5 MB free: the store file has to grow into it.
    let fill = || {
        let used: u64 = std::fs::read_dir(env.path("data"))
            .unwrap()
            .map(|e| e.unwrap().metadata().unwrap().len())
            .sum();
        let free = 16 * 1024 * 1024 - used as usize;
        std::fs::write(&filler, vec![0u8; free.saturating_sub(1536 * 1024)]).unwrap();
    };
    let task = env.path("task.txt");
    std::fs::write(&task, format!("{}\n", "x".repeat(100 * 1024)).repeat(5)).unwrap();
    let submit = || {
        env.run(
            "soamsession",
            &["submit", "--session", "a:1", "--input-file", task.to_str().unwrap(), "--detach"],
        )
    };
    let mut accepted = 0u64;
    // Submits until one is refused for the disk; returns its error.
    let until_full = |accepted: &mut u64| loop {
        let o = submit();
        if !o.status.success() {
            break String::from_utf8_lossy(&o.stderr).trim().to_string();
        }
        *accepted += 5;
        assert!(*accepted < 500, "the disk never filled");
    };
    // Fills what is left to the last byte: a small write may still fit after a large one
    // failed, and the store would (rightly) work again at once.
    let fill_all = || {
        use std::io::Write;
        let mut f = std::fs::OpenOptions::new().append(true).open(&filler).unwrap();
        while f.write_all(&[0u8; 4096]).is_ok() {}
        let _ = f.write_all(&[0u8; 1]);
    };
    fill();
    let first_err = until_full(&mut accepted);
    // Refused by the failing commit itself ("not saved"), or, if one of the agent's own
    // writes hit the full disk first, before it was tried.
    let full = |e: &str| e.contains("not saved") || e.contains("the store cannot be written");
    assert!(full(&first_err), "{first_err}");
    fill_all();
    assert!(!submit().status.success());
    // Degraded, and said so; every write is refused with the reason, nothing changes.
    wait_for(10, "the agent to say its store fails", || {
        status_store(&env).contains("DEGRADED").then_some(())
    });
    // Refused before it is tried; or, if a small probe commit fit in the file's free
    // pages meanwhile and the agent took the store for working, failed by its commit.
    // Either way the client is told, and nothing changes (checked below).
    let refused = String::from_utf8_lossy(&submit().stderr).trim().to_string();
    assert!(refused.contains("the store cannot be written"), "{refused}");
    // A small write such as a resume is refused the same way, unless a probe commit
    // fit in the store file's free pages meanwhile: then the store works again and the
    // resume rightly goes through; filled again and suspended, the test goes on.
    let mut tries = 0;
    loop {
        let o = env.run("soamcontrol", &["session", "resume", "a:1"]);
        let e = String::from_utf8_lossy(&o.stderr).trim().to_string();
        if !o.status.success() {
            assert!(e.contains("the store cannot be written"), "{e}");
            break;
        }
        tries += 1;
        assert!(tries < 5, "the store kept taking writes on a full disk");
        env.ok("soamcontrol", &["session", "suspend", "a:1"]);
        fill_all();
        assert!(!submit().status.success());
        wait_for(10, "the agent to say its store fails", || {
            status_store(&env).contains("DEGRADED").then_some(())
        });
    }
    // Nothing was lost or added: tasks that ran during a resume that went through are
    // done, the rest pending again once the suspension requeued them.
    let s = wait_for(10, "the session suspended with nothing running", || {
        env.session("a", 1).filter(|s| s["running"].as_u64() == Some(0))
    });
    assert_eq!(s["state"].as_str(), Some("suspended"), "{s}");
    assert_eq!(s["pending"].as_u64().unwrap() + s["done"].as_u64().unwrap(), accepted, "{s}");

    // Space comes back: the agent reopens the store by itself and takes writes again.
    std::fs::remove_file(&filler).unwrap();
    wait_for(20, "the store to work again", || {
        (!status_store(&env).contains("DEGRADED")).then_some(())
    });
    assert!(submit().status.success());
    accepted += 5;

    // Full again, and the agent killed while it cannot write: a restart once there is
    // room finds every acknowledged task, and no id was given twice (refused submits'
    // ids stay used: canceled, never run).
    fill();
    let err = until_full(&mut accepted);
    assert!(full(&err), "{err}");
    fill_all();
    assert!(!submit().status.success());
    wait_for(10, "the agent to say its store fails", || {
        status_store(&env).contains("DEGRADED").then_some(())
    });
    env.stop_agent(libc::SIGKILL);
    std::fs::remove_file(&filler).unwrap();
    env.start_agent();
    let tasks = env.json("soamview", &["task", "a:1"]);
    let pending: Vec<u64> = tasks
        .as_array()
        .unwrap()
        .iter()
        .filter(|t| t["state"] == "pending")
        .map(|t| t["task"].as_u64().unwrap())
        .collect();
    let done = tasks.as_array().unwrap().iter().filter(|t| t["state"] == "done").count();
    assert_eq!((pending.len() + done) as u64, accepted, "{tasks}");
    let mut ids: Vec<u64> = tasks.as_array().unwrap().iter().map(|t| t["task"].as_u64().unwrap()).collect();
    let n = ids.len();
    ids.dedup();
    assert_eq!(ids.len(), n);
    // The refused batch never ran: resuming runs only the accepted ones.
    env.ok("soamcontrol", &["session", "resume", "a:1"]);
    wait_for(60, "the accepted tasks to run", || {
        let s = env.session("a", 1)?;
        (s["done"].as_u64() == Some(accepted)).then_some(())
    });
    let new = env.ok("soamsession", &["create", "--app", "a"]);
    assert_eq!(new.trim(), "2", "session ids go on");
}

/// A service package on a full disk: an upload that does not fit, and an archive that
/// fits but does not unpack, are refused in one line with nothing left on disk; once
/// there is room, a package deploys.
#[test]
fn a_package_that_does_not_fit_is_refused_and_leaves_nothing() {
    let mut env = Env::empty();
    let Some(_mount) = tmpfs(&env.path("data"), "16m") else { return };
    env.start_agent();
    let src = env.path("src");
    std::fs::create_dir_all(&src).unwrap();
    let tar = |name: &str| tar_gz(&env.path(name), &src, &["."]);
    // 20 MB that does not compress: the upload itself does not fit.
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    let noise: Vec<u8> = (0..20 * 1024 * 1024)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect();
    std::fs::write(src.join("noise.bin"), &noise).unwrap();
    let big = tar("big.tgz");
    std::fs::remove_file(src.join("noise.bin")).unwrap();
    // 20 MB of zeros: a small archive that does not fit once unpacked.
    std::fs::write(src.join("zeros.bin"), vec![0u8; 20 * 1024 * 1024]).unwrap();
    let bomb = tar("zeros.tgz");
    std::fs::remove_file(src.join("zeros.bin")).unwrap();
    let left = |dir: &str| -> Vec<String> {
        std::fs::read_dir(env.path(dir))
            .map(|r| r.map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect())
            .unwrap_or_default()
    };
    for archive in [&big, &bomb] {
        let o = env.run("soamdeploy", &["add", "p", "--package", archive.to_str().unwrap()]);
        assert_eq!(o.status.code(), Some(1));
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(err.lines().count(), 1, "{err}");
        assert!(
            err.contains("package 'p' refused: ") && err.contains("No space left on device"),
            "{err}"
        );
        assert!(
            left("data/packages").iter().all(|f| f == "index.json"),
            "{:?}",
            left("data/packages")
        );
        assert_eq!(left("data/deploy"), Vec::<String>::new());
    }
    assert_eq!(env.json("soamdeploy", &["view"]), serde_json::json!([]));
    // Room enough for a small one.
    std::fs::write(src.join("run.sh"), "#!/bin/sh\n").unwrap();
    let small = tar("small.tgz");
    env.ok("soamdeploy", &["add", "p", "--package", small.to_str().unwrap()]);
    assert_eq!(env.json("soamdeploy", &["view"])[0]["files"], 2);
}
