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
        crate::soamdeploy::Args::command(),
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
    file_pages(man_dir)?;
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
    for c in COMMANDS {
        if c != me && !me.starts_with(&format!("{c}-")) {
            see.push(format!("{c}(1)"));
        }
    }
    see.extend(["soam-profile(5)".to_string(), "soamd.yaml(5)".to_string()]);
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

/// The commands every page's SEE ALSO names.
const COMMANDS: [&str; 8] = [
    "soamd",
    "soamreg",
    "soamunreg",
    "soamdeploy",
    "soamview",
    "soamcontrol",
    "soamsession",
    "soambench",
];

/// A profile as a new user writes one, for soam-profile(5)'s EXAMPLES.
const PROFILE_YAML: &str = "application: sampleApp
consumer:
  policy: proportion
  maxSessions: 100
services:
  - name: echo
    command: [\"python3\", \"services/echo.py\"]
    env: {LOG_LEVEL: info}
    control:
      invoke: {timeout: 600, onFailure: retry}
sessionTypes:
  - name: \"\"
  - name: Nightly
    priority: 10
    recoverable: true
    onClientDisconnect: continue
    persistTaskHistory: error";

/// The same in Symphony's form.
const PROFILE_XML: &str = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>
<Profile xmlns=\"http://www.platform.com/Symphony/Profile/Application\">
  <Consumer applicationName=\"sampleApp\" policy=\"R_Proportion\" maxSessions=\"100\"/>
  <SessionTypes>
    <Type name=\"Nightly\" priority=\"10\" recoverable=\"true\"
          abortSessionIfClientDisconnect=\"false\" persistTaskHistory=\"error\"/>
  </SessionTypes>
  <Service name=\"echo\">
    <osTypes>
      <osType name=\"all\" startCmd=\"python3 services/echo.py\">
        <env name=\"LOG_LEVEL\">info</env>
      </osType>
    </osTypes>
    <Control>
      <Method name=\"Invoke\">
        <Timeout duration=\"600\"/>
        <Exception type=\"failure\" actionOnWorkload=\"retry\"/>
      </Method>
    </Control>
  </Service>
</Profile>";

const CONFIG_YAML: &str = "slots: 8
shared: true
adminGroup: soamadm
maxStoredTasks: 10000000
maxRecordBytes: 4294967296
logKeep: 5";

/// The two files' pages: soam-profile(5), from the profile reader's own table of
/// attributes (`soam_profile::reference`), and soamd.yaml(5), from the agent's
/// (`soam_agent::config::KEYS`), so each range and default on them is the one the
/// reader uses.
fn file_pages(dir: &Path) -> std::io::Result<()> {
    use roff::{Roff, bold, italic, roman};
    let version = env!("CARGO_PKG_VERSION");
    let entry = |roff: &mut Roff, key: &str, xml: &str, valid: &str, default: &str, meaning: &str| {
        roff.control("TP", []);
        let mut head = vec![bold(key.to_string())];
        if !xml.is_empty() {
            head.push(roman(" (XML: "));
            head.push(bold(xml.to_string()));
            head.push(roman(")"));
        }
        roff.text(head);
        roff.text([
            roman(format!("{meaning} ")),
            italic("Valid:"),
            roman(format!(" {valid}. ")),
            italic("Default:"),
            roman(format!(" {default}.")),
        ]);
    };
    let see_also = |roff: &mut Roff, other: &str| {
        roff.control("SH", ["SEE ALSO"]);
        let mut see: Vec<String> = COMMANDS.iter().map(|c| format!("{c}(1)")).collect();
        see.push(other.to_string());
        roff.text([roman(format!(
            "{}; docs/usage.md and docs/symphony-xml.md in the soam checkout",
            see.join(", ")
        ))]);
    };
    let example = |roff: &mut Roff, text: &str| {
        roff.control("nf", []);
        for line in text.lines() {
            roff.text([roman(line)]);
        }
        roff.control("fi", []);
    };

    let mut p = Roff::default();
    p.control("TH", ["soam-profile", "5", "", &format!("soam {version}"), "File Formats"]);
    p.control("SH", ["NAME"]);
    p.text([roman("soam-profile - an application profile for soam, in YAML or Symphony XML")]);
    p.control("SH", ["SYNOPSIS"]);
    p.text([bold("soamreg"), roman(" "), italic("FILE")]);
    p.control("SH", ["DESCRIPTION"]);
    p.text([roman(
        "An application profile names an application, the services that run its tasks and the session types \
         its sessions are created with. soamreg reads it as YAML, or as a Symphony application profile when the \
         text starts with <. A Symphony profile registers unchanged: what soam uses is read, what it has no use \
         for is skipped with a warning naming it and its line, and an element soam does not know at all is an \
         error. A value out of range is refused as FILE:LINE: key: 'value' is not valid (valid: RANGE), and \
         nothing is registered. Times are in the units each attribute gives.",
    )]);
    for place in soam_profile::reference::Place::ALL {
        p.control("SH", [place.title()]);
        p.text([roman(place.where_written())]);
        for a in soam_profile::reference::ATTRIBUTES.iter().filter(|a| a.place == place) {
            entry(&mut p, a.key, a.xml, &a.valid(), a.default, a.meaning);
        }
    }
    p.control("SH", ["EXAMPLES"]);
    p.text([roman("A profile in YAML:")]);
    example(&mut p, PROFILE_YAML);
    p.text([roman("The same application as a Symphony profile:")]);
    example(&mut p, PROFILE_XML);
    p.text([roman("Register it, and print it back as registered:")]);
    example(&mut p, "soamreg sampleApp.yaml\nsoamview app sampleApp -p");
    see_also(&mut p, "soamd.yaml(5)");
    std::fs::write(dir.join("soam-profile.5"), p.render())?;

    let mut c = Roff::default();
    c.control("TH", ["soamd.yaml", "5", "", &format!("soam {version}"), "File Formats"]);
    c.control("SH", ["NAME"]);
    c.text([roman("soamd.yaml - the soam agent's configuration file")]);
    c.control("SH", ["SYNOPSIS"]);
    c.text([
        italic("$XDG_CONFIG_HOME/soam/soamd.yaml"),
        roman(", "),
        italic("$SOAM_HOME/soamd.yaml"),
        roman(", or "),
        bold("soamd --config"),
        roman(" "),
        italic("FILE"),
    ]);
    c.control("SH", ["DESCRIPTION"]);
    c.text([roman(
        "A YAML mapping of the keys below, all optional; a missing file is an empty one (unless named by \
         --config). It is read when soamd starts. The environment variables named below win over the file, and \
         soamd's flags over both. An unknown key, or a value out of range, is refused as \
         FILE:LINE: key: 'value' is not valid (valid: RANGE), and the agent does not start. The file and its \
         folder must belong to the agent's user or root and not be writable by others.",
    )]);
    c.control("SH", ["KEYS"]);
    for k in soam_agent::config::KEYS {
        entry(&mut c, k.key, "", k.valid, k.default, k.meaning);
    }
    c.control("SH", ["EXAMPLES"]);
    c.text([roman("A shared agent with eight slots and bounded storage:")]);
    example(&mut c, CONFIG_YAML);
    see_also(&mut c, "soam-profile(5)");
    std::fs::write(dir.join("soamd.yaml.5"), c.render())
}
