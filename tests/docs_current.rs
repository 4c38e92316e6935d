//! man/ and completions/ must equal a fresh generation from the clap definitions
//! (regenerate with `cargo run -p soam-lab --bin soam-docgen`).

use std::collections::BTreeMap;
use std::path::Path;

fn files(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    let mut out = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.insert(p.strip_prefix(dir).unwrap().display().to_string(), std::fs::read(&p).unwrap());
            }
        }
    }
    out
}

#[test]
fn man_pages_and_completions_are_current() {
    let fresh = tempfile::tempdir().unwrap();
    soam_cli::docs::generate(soam_lab::commands(), &fresh.path().join("man"), &fresh.path().join("completions")).unwrap();
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    for dir in ["man", "completions"] {
        let want = files(&fresh.path().join(dir));
        let have = files(&root.join(dir));
        let want_names: Vec<&String> = want.keys().collect();
        let have_names: Vec<&String> = have.keys().collect();
        assert_eq!(
            have_names, want_names,
            "{dir}/ has other files than a fresh generation; run cargo run -p soam-lab --bin soam-docgen"
        );
        for (name, bytes) in &want {
            assert!(
                have[name] == *bytes,
                "{dir}/{name} is out of date; run cargo run -p soam-lab --bin soam-docgen"
            );
        }
    }
}

/// Every page says where soam looks (ENVIRONMENT) and what it keeps (FILES).
#[test]
fn man_pages_have_environment_and_files() {
    let page = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/man/soamview.1")).unwrap();
    for needle in [".SH ENVIRONMENT", "SOAM_SOCKET", ".SH FILES", "soam.redb", ".SH \"EXIT STATUS\""] {
        assert!(page.contains(needle), "{needle} missing from soamview.1");
    }
}

/// Synopses name what each option takes (`--state S`), not bare flags.
#[test]
fn man_synopses_name_option_values() {
    let page = |name: &str| std::fs::read_to_string(format!("{}/man/{name}.1", env!("CARGO_MANIFEST_DIR"))).unwrap();
    let synopsis = |name: &str| {
        let p = page(name);
        p.split(".SH SYNOPSIS\n").nth(1).and_then(|r| r.lines().next()).unwrap().to_string()
    };
    assert!(
        synopsis("soamview-task").contains("[\\fB\\-\\-state\\fR \\fIS\\fR]"),
        "{}",
        synopsis("soamview-task")
    );
    let update = synopsis("soamsession-update");
    // Required: no brackets; the positional last.
    assert!(update.contains(" \\fB\\-\\-common\\-data\\fR \\fIFILE\\fR ["), "{update}");
    assert!(update.ends_with("<\\fISESSION\\fR>"), "{update}");
    assert!(synopsis("soamcontrol-agent-log").contains("[\\fB\\-n|\\-\\-lines\\fR \\fIN\\fR]"));
}

/// `cargo install --path .` installs the bin targets of the `soam` package: the
/// commands people run (the agent, the commands, the cluster worker and the example
/// service), never the lab's benchmark or docs generator (`cargo install --path
/// crates/lab` installs those).
#[test]
fn cargo_install_installs_only_the_user_facing_commands() {
    let o = std::process::Command::new(env!("CARGO"))
        .args(["metadata", "--no-deps", "--format-version", "1", "--offline"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let meta: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let soam = meta["packages"].as_array().unwrap().iter().find(|p| p["name"] == "soam").unwrap();
    let mut bins: Vec<&str> = soam["targets"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|t| t["kind"].as_array().unwrap().iter().any(|k| k == "bin"))
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    bins.sort_unstable();
    assert_eq!(
        bins,
        [
            "soam-echo-service",
            "soam-worker",
            "soamcontrol",
            "soamd",
            "soamdeploy",
            "soamreg",
            "soamsession",
            "soamunreg",
            "soamview"
        ]
    );
}

/// Every subcommand and every argument a user can see says what it is for (clap shows an
/// empty line otherwise, and the man page an empty paragraph).
#[test]
fn no_command_or_argument_has_an_empty_description() {
    fn walk(cmd: &clap::Command, path: &str, missing: &mut Vec<String>) {
        let here = format!("{path} {}", cmd.get_name()).trim().to_string();
        if !cmd.is_hide_set() && cmd.get_about().is_none() && cmd.get_long_about().is_none() {
            missing.push(here.clone());
        }
        for a in cmd.get_arguments() {
            let builtin = matches!(a.get_id().as_str(), "help" | "version");
            if !a.is_hide_set() && !builtin && a.get_help().is_none() && a.get_long_help().is_none() {
                missing.push(format!("{here} {}", a.get_id()));
            }
        }
        for s in cmd.get_subcommands() {
            if s.get_name() != "help" {
                walk(s, &here, missing);
            }
        }
    }
    let mut missing = Vec::new();
    for mut c in soam_lab::commands() {
        c.build();
        walk(&c, "", &mut missing);
    }
    assert!(missing.is_empty(), "no description: {missing:#?}");
}

/// README's "Using it" runs as written on a fresh machine: its first block, in a scratch
/// folder and SOAM_HOME, with this build's binaries where it puts target/release on PATH
/// (the `cargo build` is this test's own build).
#[test]
fn the_readme_s_using_it_runs_as_written() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let readme = std::fs::read_to_string(root.join("README.md")).unwrap();
    let section = &readme[readme.find("## Using it").expect("a Using it section")..];
    let start = section.find("```sh\n").expect("a sh block") + 6;
    let block = &section[start..start + section[start..].find("```").unwrap()];
    assert!(block.contains("export PATH=\"$PWD/target/release:$PATH\""), "{block}");
    let bins = Path::new(env!("CARGO_BIN_EXE_soamd")).parent().unwrap();
    let script = block
        .replace("cargo build --release && ", "")
        .replace("$PWD/target/release", &bins.display().to_string());
    let dir = tempfile::tempdir().unwrap();
    std::os::unix::fs::symlink(root.join("profiles"), dir.path().join("profiles")).unwrap();
    let home = dir.path().join("home");
    let o = std::process::Command::new("sh")
        .args(["-ec", &script])
        .current_dir(dir.path())
        .env("SOAM_HOME", &home)
        .env_remove("SOAM_NO_AUTOSTART")
        .env_remove("SOAM_SOCKET")
        .env("SOAM_AGENT_BIN", bins.join("soamd"))
        .output()
        .unwrap();
    // An agent the block started and did not stop (it failed midway) is stopped here.
    let _ = std::process::Command::new(bins.join("soamcontrol"))
        .args(["agent", "shutdown"])
        .env("SOAM_HOME", &home)
        .env_remove("SOAM_SOCKET")
        .output();
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "the README's block failed: {err}");
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(out.lines().any(|l| l == "100"), "{out}");
    let results = std::fs::read_to_string(dir.path().join("results.jsonl")).unwrap();
    assert_eq!(results.lines().count(), 20, "{results}");
    assert!(err.contains("agent stopped"), "{err}");
}

/// Every subcommand's --help (and man page) has examples of its own, and every man page
/// names the others (SEE ALSO).
#[test]
fn every_subcommand_has_examples_and_every_page_see_also() {
    fn walk(cmd: &clap::Command, path: &str, missing: &mut Vec<String>) {
        let here = format!("{path} {}", cmd.get_name()).trim().to_string();
        let after = cmd.get_after_help().map(|h| h.to_string()).unwrap_or_default();
        if !after.contains("Examples:\n") && !path.is_empty() {
            missing.push(here.clone());
        }
        for s in cmd.get_subcommands().filter(|s| s.get_name() != "help") {
            walk(s, &here, missing);
        }
    }
    let mut missing = Vec::new();
    for c in soam_lab::commands() {
        walk(&c, "", &mut missing);
    }
    assert!(missing.is_empty(), "no examples: {missing:#?}");
    let man = Path::new(env!("CARGO_MANIFEST_DIR")).join("man");
    for e in std::fs::read_dir(&man).unwrap() {
        let p = e.unwrap().path();
        let text = std::fs::read_to_string(&p).unwrap();
        assert!(text.contains(".SH \"SEE ALSO\""), "{}", p.display());
        assert!(
            text.contains(".SH EXAMPLES") || !p.file_name().unwrap().to_str().unwrap().contains('-'),
            "{}",
            p.display()
        );
    }
}
