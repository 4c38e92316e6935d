//! Application profiles: what an application runs and how its sessions behave.
//!
//! Data flow: `soamreg` sends a profile's text to the agent, which calls [`parse`]. The
//! text is YAML, or Symphony-style XML when it starts with `<`. Both are read into one
//! located intermediate form (`draft`), where every value remembers its line. One
//! validator turns that into a [`Profile`], so both formats get the same checks and the
//! same `FILE:LINE: ...` messages naming the valid values. Defaults are seed 001's.

mod draft;
mod model;
mod xml;
mod yaml;

pub use model::*;

use std::path::Path;

/// A profile that failed to parse or validate. `Display` is one line: `FILE:LINE: what`.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{file}:{line}: {message}")]
pub struct ProfileError {
    pub file: String,
    pub line: u64,
    pub message: String,
}

/// Parses and validates a profile. `path` is the profile file: relative `workDir`s and
/// commands resolve against its folder, and errors name it.
pub fn parse(text: &str, path: &Path) -> Result<Profile, ProfileError> {
    let file = path.display().to_string();
    let draft = if text.trim_start().starts_with('<') {
        xml::read(text, &file)?
    } else {
        yaml::read(text, &file)?
    };
    draft::validate(draft, &file, path.parent().unwrap_or(Path::new(".")))
}
