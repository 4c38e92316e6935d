//! Man pages and shell completions, generated from the clap definitions so they never
//! drift: `soam-docgen` writes them into `man/` and `completions/`, and a test checks
//! the committed files equal a fresh generation.

use clap::CommandFactory;
use clap_complete::Shell;
use std::path::Path;

/// Every command, as clap describes it.
pub fn commands() -> Vec<clap::Command> {
    vec![
        crate::soamd::Args::command(),
        crate::soamreg::Args::command(),
        crate::soamunreg::Args::command(),
        crate::soamview::Args::command(),
        crate::soamcontrol::Args::command(),
        crate::session::Args::command(),
        crate::soambench::Args::command(),
    ]
}

/// Writes `NAME.1` (and `NAME-SUB.1` for subcommands) into `man_dir`, and bash, zsh and
/// fish completions into `completion_dir`.
pub fn generate(man_dir: &Path, completion_dir: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(man_dir)?;
    for shell in ["bash", "zsh", "fish"] {
        std::fs::create_dir_all(completion_dir.join(shell))?;
    }
    for cmd in commands() {
        clap_mangen::generate_to(cmd.clone(), man_dir)?;
        for (shell, dir) in [(Shell::Bash, "bash"), (Shell::Zsh, "zsh"), (Shell::Fish, "fish")] {
            let mut c = cmd.clone();
            let name = c.get_name().to_string();
            clap_complete::generate_to(shell, &mut c, name, completion_dir.join(dir))?;
        }
    }
    Ok(())
}
