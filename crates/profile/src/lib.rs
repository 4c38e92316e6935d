//! Application profiles: what an application runs and how its sessions behave.
//!
//! Data flow: `soamreg` sends a profile's text to the agent, which calls [`parse`]. The
//! text is YAML, or Symphony-style XML when it starts with `<`. Both are read into one
//! located intermediate form (`draft`), where every value remembers its line. One
//! validator turns that into a [`Profile`], so both formats get the same checks and the
//! same `FILE:LINE: ...` messages naming the valid values. Defaults are seed 001's.

mod draft;
mod model;
pub mod reference;
pub mod vars;
mod xml;
mod yaml;

pub use draft::{range_text, slurm_minutes};
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

/// The largest profile text accepted. Real profiles are a few KiB; the bound keeps
/// every application's listing (`soamview app -p`) within one page of a view.
pub const MAX_PROFILE_BYTES: usize = 1024 * 1024;

/// Parses and validates a profile. `path` is the profile file: relative `workDir`s and
/// commands resolve against its folder, and errors name it.
pub fn parse(text: &str, path: &Path) -> Result<Profile, ProfileError> {
    let file = path.display().to_string();
    if text.len() > MAX_PROFILE_BYTES {
        return Err(ProfileError {
            file,
            line: 1,
            message: format!("the profile is {} bytes; the limit is {MAX_PROFILE_BYTES} bytes", text.len()),
        });
    }
    // A byte order mark (editors on Windows write one) says nothing a reader needs.
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let draft = if text.trim_start().starts_with('<') {
        xml::read(text, &file)
    } else {
        yaml::read(text, &file)
    };
    draft
        .and_then(|d| draft::validate(d, &file, path.parent().unwrap_or(Path::new("."))))
        .map_err(|mut e| {
            // Parsers quote the input, line breaks included: an error stays one line.
            if e.message.contains(['\n', '\r']) {
                e.message = e.message.replace('\r', "\\r").replace('\n', "\\n");
            }
            e
        })
}

/// What stands in for an `env` value shown to someone who may not see it.
pub const HIDDEN: &str = "<hidden>";

/// The profile's text with every `env` value replaced by [`HIDDEN`], for users who may
/// see the profile but not its secrets. Each value is masked where it follows its key on
/// a line; if any value cannot be found that way (quoted with escapes, split over
/// lines), nothing of the text is shown, rather than risk showing part of a secret.
pub fn redact_env(text: &str, profile: &Profile) -> String {
    let pairs: Vec<(&str, &str)> = profile
        .services
        .iter()
        .flat_map(|s| s.env.iter())
        .filter(|(_, v)| !v.is_empty())
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    if pairs.is_empty() {
        return text.to_string();
    }
    let mut lines: Vec<String> = text.lines().map(String::from).collect();
    for (key, value) in pairs {
        let mut found = false;
        for line in lines.iter_mut() {
            let Some(k) = line.find(key) else { continue };
            let after = k + key.len();
            if let Some(v) = line[after..].find(value) {
                let at = after + v;
                line.replace_range(at..at + value.len(), HIDDEN);
                found = true;
            }
        }
        if !found {
            return format!("# the profile text is shown to admins only: it sets env values ({HIDDEN} here)\n");
        }
    }
    let mut out = lines.join("\n");
    out.push('\n');
    out
}
