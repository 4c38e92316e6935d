//! Man pages and shell completions, generated from the clap definitions so they never
//! drift: `soam-docgen` (crates/lab, which adds soambench's) writes them into `man/`
//! and `completions/`, and a test checks the committed files equal a fresh generation.

use clap::CommandFactory;
use clap_complete::Shell;
use std::collections::HashSet;
use std::path::Path;

/// Every command of this crate, as clap describes it, with its examples.
pub fn commands() -> Vec<clap::Command> {
    [
        crate::soamd::Args::command(),
        crate::soamreg::Args::command(),
        crate::soamunreg::Args::command(),
        crate::soamview::Args::command(),
        crate::soamcontrol::Args::command(),
        crate::session::Args::command(),
    ]
    .into_iter()
    .map(crate::common::with_examples)
    .collect()
}

/// Writes `NAME.1` (and `NAME-SUB.1` for subcommands) of `commands` into `man_dir`, and
/// bash, zsh and fish completions into `completion_dir`.
pub fn generate(commands: Vec<clap::Command>, man_dir: &Path, completion_dir: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(man_dir)?;
    for shell in ["bash", "zsh", "fish"] {
        std::fs::create_dir_all(completion_dir.join(shell))?;
    }
    for cmd in commands {
        let mut c = cmd.clone().disable_help_subcommand(true);
        c.build();
        man_pages(c, man_dir)?;
        for (shell, dir) in [(Shell::Bash, "bash"), (Shell::Zsh, "zsh"), (Shell::Fish, "fish")] {
            let mut c = cmd.clone();
            let name = c.get_name().to_string();
            clap_complete::generate_to(shell, &mut c, name, completion_dir.join(dir))?;
        }
    }
    Ok(())
}

/// What every command reads from its environment (the man pages' ENVIRONMENT).
const ENVIRONMENT: &[(&str, &str)] = &[
    (
        "SOAM_HOME",
        "One folder for everything: socket DIR/run/soamd.sock, store and log under DIR/data/, config DIR/soamd.yaml.",
    ),
    ("SOAM_SOCKET", "The agent's socket (as --socket)."),
    ("SOAM_NO_AUTOSTART", "1: never start an agent when none answers."),
    (
        "SOAM_CONNECT_TIMEOUT",
        "Seconds a connected agent may take to answer (default 60), e.g. a socket systemd holds.",
    ),
    (
        "SOAM_AGENT_BIN",
        "The soamd an autostart runs (default: the one beside the command, then PATH).",
    ),
    (
        "XDG_RUNTIME_DIR, XDG_DATA_HOME, XDG_CONFIG_HOME",
        "Where the socket, the data and the config are without SOAM_HOME.",
    ),
    (
        "COMPLETE",
        "bash, zsh or fish: print the shell's completion script (or answer it) and exit.",
    ),
    ("NO_COLOR", "Non-empty: tables without colour."),
    ("RUST_LOG", "Log filter (as -v): warn, info, debug."),
];

/// Where soam keeps its state (the man pages' FILES).
const FILES: &[(&str, &str)] = &[
    ("$XDG_RUNTIME_DIR/soam/soamd.sock", "The agent's socket (fallback /tmp/soam-$UID/)."),
    (
        "$XDG_DATA_HOME/soam/soam.redb",
        "The store: profiles, sessions, tasks, history (fallback ~/.local/share/soam/).",
    ),
    (
        "$XDG_DATA_HOME/soam/soamd.log",
        "The agent's log, services' stderr included; rotated by size to soamd.log.1 .. .N (soamcontrol agent log).",
    ),
    (
        "$XDG_DATA_HOME/soam/journal.redb",
        "The offline journal: submissions and releases kept while no agent answered (soamsession sync).",
    ),
    ("$XDG_CONFIG_HOME/soam/soamd.yaml", "The agent's config (docs/usage.md)."),
];

/// SYNOPSIS with each option's value name (`[--state S]`, not clap_mangen's bare
/// `[--state]`), required ones without brackets, positionals last.
fn synopsis(cmd: &clap::Command) -> roff::Roff {
    use roff::{Inline, Roff, bold, italic, roman};
    let name = cmd.get_bin_name().unwrap_or(cmd.get_name()).to_string();
    let mut line: Vec<Inline> = vec![bold(name)];
    let args = cmd.get_arguments().filter(|a| !a.is_hide_set());
    let (positionals, options): (Vec<_>, Vec<_>) = args.partition(|a| a.is_positional());
    for a in options {
        let flag = match (a.get_short(), a.get_long()) {
            (Some(s), Some(l)) => format!("-{s}|--{l}"),
            (Some(s), None) => format!("-{s}"),
            (None, Some(l)) => format!("--{l}"),
            (None, None) => continue,
        };
        let (open, close) = if a.is_required_set() { (" ", "") } else { (" [", "]") };
        line.push(roman(open));
        line.push(bold(flag));
        if a.get_action().takes_values() {
            line.push(roman(" "));
            line.push(italic(value_name(a)));
        }
        line.push(roman(close));
    }
    for a in positionals {
        let many = a.get_num_args().is_some_and(|n| n.max_values() > 1);
        let dots = if many { "..." } else { "" };
        let (open, close) = if a.is_required_set() { ("<", ">") } else { ("[", "]") };
        line.push(roman(format!(" {open}")));
        line.push(italic(value_name(a)));
        line.push(roman(format!("{close}{dots}")));
    }
    if cmd.has_subcommands() {
        line.push(roman(" "));
        line.push(italic("COMMAND"));
        line.push(roman(" ..."));
    }
    let mut roff = Roff::default();
    roff.control("SH", ["SYNOPSIS"]);
    roff.text(line);
    roff
}

fn value_name(a: &clap::Arg) -> String {
    match a.get_value_names() {
        Some(names) if !names.is_empty() => names.iter().map(|n| n.as_str()).collect::<Vec<_>>().join(" "),
        _ => a.get_id().as_str().to_uppercase(),
    }
}

/// One page per command and subcommand: clap_mangen's sections, then EXAMPLES and
/// NOTES from the after-help, and EXIT STATUS, ENVIRONMENT and FILES, which every
/// command shares.
fn man_pages(cmd: clap::Command, dir: &Path) -> std::io::Result<()> {
    use roff::{Roff, bold, roman};
    for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()).cloned() {
        man_pages(sub, dir)?;
    }
    let man = clap_mangen::Man::new(cmd.clone());
    let mut out = Vec::new();
    man.render_title(&mut out)?;
    man.render_name_section(&mut out)?;
    synopsis(&cmd).to_writer(&mut out)?;
    man.render_description_section(&mut out)?;
    if cmd.get_arguments().any(|a| !a.is_hide_set()) {
        man.render_options_section(&mut out)?;
    }
    if cmd.has_subcommands() {
        man.render_subcommands_section(&mut out)?;
    }
    let after = cmd.get_after_help().map(|h| h.to_string()).unwrap_or_default();
    let mut roff = Roff::default();
    for block in after.split("\n\n") {
        if block.starts_with("Exit status:") {
            continue;
        }
        if let Some(examples) = block.strip_prefix("Examples:\n") {
            roff.control("SH", ["EXAMPLES"]);
            roff.control("nf", []);
            for line in examples.lines() {
                roff.text([roman(line.trim_start())]);
            }
            roff.control("fi", []);
        } else if !block.trim().is_empty() {
            roff.control("SH", ["NOTES"]);
            roff.text([roman(block.replace('\n', " "))]);
        }
    }
    roff.control("SH", ["EXIT STATUS"]);
    for line in crate::common::exit::HELP.lines().skip(1) {
        if let Some((code, what)) = line.trim().split_once(char::is_whitespace) {
            roff.control("TP", []);
            roff.text([bold(code)]);
            roff.text([roman(what.trim())]);
        }
    }
    for (section, items) in [("ENVIRONMENT", ENVIRONMENT), ("FILES", FILES)] {
        roff.control("SH", [section]);
        for (name, what) in items {
            roff.control("TP", []);
            roff.text([bold(*name)]);
            roff.text([roman(*what)]);
        }
    }
    // The other commands, and for a subcommand's page the command it belongs to.
    let file = man.get_filename();
    let me = file.trim_end_matches(".1");
    let mut see: Vec<String> = Vec::new();
    if let Some((parent, _)) = me.rsplit_once('-') {
        see.push(format!("{parent}(1)"));
    }
    for c in [
        "soamd",
        "soamreg",
        "soamunreg",
        "soamview",
        "soamcontrol",
        "soamsession",
        "soambench",
    ] {
        if c != me && !me.starts_with(&format!("{c}-")) {
            see.push(format!("{c}(1)"));
        }
    }
    roff.control("SH", ["SEE ALSO"]);
    roff.text([roman(format!(
        "{}; docs/usage.md and docs/python.md in the soam checkout",
        see.join(", ")
    ))]);
    roff.to_writer(&mut out)?;
    if cmd.get_version().is_some() {
        man.render_version_section(&mut out)?;
    }
    // Each part starts with roff's quote-string preamble: once is enough.
    let text = String::from_utf8_lossy(&out);
    let mut page = String::new();
    let mut seen = HashSet::new();
    for line in text.lines() {
        if (line.starts_with(".ie \\n(.g .ds Aq") || line.starts_with(".el .ds Aq")) && !seen.insert(line) {
            continue;
        }
        page.push_str(line);
        page.push('\n');
    }
    std::fs::write(dir.join(man.get_filename()), page)
}
