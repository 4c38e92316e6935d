//! A refused request, as the core answers it: the kind (for a program) and the one-line
//! reason (for a person), with the "did you mean" every unknown name gets.

use soam_proto::msg::ErrorKind;

/// A refused request: its kind, so a client can act on it without reading the text,
/// and the one-line reason.
#[derive(Debug, Clone)]
pub(crate) struct Failure {
    pub kind: ErrorKind,
    pub message: String,
}

impl Failure {
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Failure {
        Failure {
            kind,
            message: message.into(),
        }
    }

    /// `app` is not registered; `known` are the names that are, for a suggestion.
    pub(super) fn unknown_app<'a>(app: &str, known: impl Iterator<Item = &'a String>) -> Failure {
        let hint = did_you_mean(app, known)
            .map(|m| format!("; did you mean '{m}'?"))
            .unwrap_or_default();
        Failure::new(
            ErrorKind::UnknownApp,
            format!("unknown application '{app}'{hint} (soamview app lists them)"),
        )
    }
}

/// The candidate closest to a misspelt `typed`, if one is close enough to be meant
/// (Jaro-Winkler similarity above 0.8, as clap suggests subcommands).
pub(crate) fn did_you_mean<'a>(typed: &str, candidates: impl Iterator<Item = &'a String>) -> Option<&'a str> {
    candidates
        .map(|c| (strsim::jaro_winkler(typed, c), c))
        .filter(|(score, _)| *score > 0.8)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, c)| c.as_str())
}

/// Text alone: a failure of no particular kind.
impl From<String> for Failure {
    fn from(message: String) -> Failure {
        Failure::new(ErrorKind::Other, message)
    }
}
