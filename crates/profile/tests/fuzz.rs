//! Property tests of the profile parsers (YAML and Symphony XML) against arbitrary
//! and mutated text: what any user may hand `soamreg`. Never a panic; either a
//! profile or one `FILE:LINE: ...` error line.

use proptest::prelude::*;
use std::path::Path;

const GOOD_YAML: &str = "application: a\nconsumer:\n  policy: proportion\n  maxSlots: 4\nservices:\n  - name: s\n    default: true\n    command: [\"python3\", \"x.py\"]\n    env: {K: v}\n    control:\n      invoke: {timeout: 5, onFailure: retry}\nsessionTypes:\n  - name: \"\"\n  - name: T\n    priority: 3\n    recoverable: true\n    persistTaskHistory: error\n";
const GOOD_XML: &str = "<Profile><Consumer applicationName=\"a\" policy=\"proportion\"/><Service name=\"s\" command=\"true\"><Env name=\"K\" value=\"v\"/></Service><SessionTypes><Type name=\"T\" priority=\"2\"/></SessionTypes></Profile>";

fn check(text: &str) -> Result<(), TestCaseError> {
    match soam_profile::parse(text, Path::new("/p/f.yaml")) {
        Ok(p) => {
            // Redaction is total too.
            let _ = soam_profile::redact_env(text, &p);
        }
        Err(e) => {
            let s = e.to_string();
            prop_assert!(s.starts_with("/p/f.yaml:"), "{}", s);
            prop_assert!(!s.contains('\n'), "one line: {:?}", s);
        }
    }
    Ok(())
}

fn mutate(base: &str, cuts: &[(prop::sample::Index, char)]) -> String {
    let mut chars: Vec<char> = base.chars().collect();
    for (i, c) in cuts {
        let i = i.index(chars.len());
        chars[i] = *c;
    }
    chars.into_iter().collect()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: std::env::var("PROPTEST_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(512), ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_text_never_panics(text in ".{0,300}") {
        check(&text)?;
        check(&format!("<{text}"))?;
    }

    #[test]
    fn mutated_yaml_never_panics(cuts in proptest::collection::vec((any::<prop::sample::Index>(), any::<char>()), 1..6), cut in any::<prop::sample::Index>()) {
        let t = mutate(GOOD_YAML, &cuts);
        check(&t)?;
        let end = t.char_indices().nth(cut.index(t.chars().count())).map(|(i, _)| i).unwrap_or(0);
        check(&t[..end])?;
    }

    #[test]
    fn mutated_xml_never_panics(cuts in proptest::collection::vec((any::<prop::sample::Index>(), any::<char>()), 1..6)) {
        check(&mutate(GOOD_XML, &cuts))?;
    }

    #[test]
    fn yaml_structure_soup_never_panics(parts in proptest::collection::vec(prop_oneof![
        Just("application: a\n"), Just("services:\n"), Just("  - name: s\n"), Just("    command: [x]\n"),
        Just("sessionTypes:\n"), Just("  - name: T\n"), Just("    priority: 99999999999999999999\n"),
        Just("&a [*a]\n"), Just("*b\n"), Just("    env: {K: v}\n"), Just("  maxSlots: -1\n"), Just("consumer:\n"),
        Just("!!binary x\n"), Just("? [a]\n: b\n"), Just("\t\n"), Just("'\n"),
    ], 0..20)) {
        check(&parts.concat())?;
    }
}

#[test]
fn alias_bombs_are_refused_not_expanded() {
    // "Billion laughs": nine levels of nine aliases each.
    let mut t = String::from("a0: &a0 [x]\n");
    for i in 1..10 {
        let prev = format!("*a{}", i - 1);
        t.push_str(&format!("a{i}: &a{i} [{}]\n", vec![prev; 9].join(",")));
    }
    t.push_str("application: a\nservices: [{name: s, command: [x]}]\n");
    assert!(soam_profile::parse(&t, Path::new("/p/f.yaml")).is_err());
}
