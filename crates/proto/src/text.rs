//! Text from profiles and clients, made safe to print on a terminal.
//!
//! Names, messages and profile text reach a terminal from sources that may not be the
//! reader's own (another user's session name, a profile error quoting its input, the
//! client name a peer announced). Control characters could move the cursor, retitle the
//! window or hide text, and bidirectional overrides can make text read differently
//! from what it is (a listing that shows one command and holds another). Every such
//! character is written as a visible `\u{..}` escape instead; all other text, non-ASCII
//! letters included, is left as it is.

use std::borrow::Cow;

/// True for what must not reach a terminal raw: C0 and C1 controls, DEL, bidi
/// embeddings, overrides, isolates and marks, and the Unicode line separators.
fn unsafe_char(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{061c}' | '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}' | '\u{2028}' | '\u{2029}'
        )
}

fn escape_with(s: &str, keep: impl Fn(char) -> bool) -> Cow<'_, str> {
    // Printable ASCII, as most names are: a byte test the compiler runs on whole words.
    if s.bytes().all(|b| (b' '..=b'~').contains(&b)) {
        return Cow::Borrowed(s);
    }
    if !s.chars().any(|c| unsafe_char(c) && !keep(c)) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        if unsafe_char(c) && !keep(c) {
            out.push_str(&format!("\\u{{{:x}}}", c as u32));
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

/// For one-line output (errors, table cells): every unsafe character escaped, newlines
/// and tabs included.
pub fn escape(s: &str) -> Cow<'_, str> {
    escape_with(s, |_| false)
}

/// For multi-line text shown as such (a profile): newlines and tabs kept.
pub fn escape_lines(s: &str) -> Cow<'_, str> {
    escape_with(s, |c| c == '\n' || c == '\t')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn controls_and_bidi_become_visible() {
        assert!(matches!(escape("plain état 日本"), Cow::Borrowed(_)));
        assert!(matches!(escape(" every printable ASCII ~"), Cow::Borrowed(_)));
        assert_eq!(escape("ab\u{7f}"), "ab\\u{7f}");
        assert_eq!(escape("\u{1f}ab"), "\\u{1f}ab");
        assert_eq!(escape("a\x1b[2Jb"), "a\\u{1b}[2Jb");
        assert_eq!(escape("x\ny\tz\u{7f}\u{9b}"), "x\\u{a}y\\u{9}z\\u{7f}\\u{9b}");
        assert_eq!(escape("abc\u{202e}fed"), "abc\\u{202e}fed");
        assert_eq!(escape("\u{2066}i\u{2069}"), "\\u{2066}i\\u{2069}");
        assert_eq!(escape_lines("a\n\tb\x07"), "a\n\tb\\u{7}");
    }
}
