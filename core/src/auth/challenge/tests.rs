use proptest::prelude::*;

use super::*;

fn params(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(n, v)| (n.to_string(), v.to_string()))
        .collect()
}

fn ch(scheme: &str, pairs: &[(&str, &str)]) -> Challenge {
    Challenge {
        scheme: scheme.into(),
        token68: None,
        params: params(pairs),
    }
}

#[test]
fn basic_challenge_with_realm_and_charset() {
    let got = parse_challenges(r#"Basic realm="simple", charset="UTF-8""#).unwrap();
    assert_eq!(
        got,
        vec![ch("Basic", &[("realm", "simple"), ("charset", "UTF-8")])]
    );
    assert_eq!(got[0].param("CHARSET"), Some("UTF-8"));
    assert!(got[0].is_scheme("basic"));
}

#[test]
fn rfc7616_challenge_pair_in_one_field_value() {
    let value = r#"Digest
        realm="http-auth@example.org",
        qop="auth, auth-int",
        algorithm=SHA-256,
        nonce="7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v",
        opaque="FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS", Digest
        realm="http-auth@example.org",
        qop="auth, auth-int",
        algorithm=MD5,
        nonce="7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v",
        opaque="FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS""#
        .replace("\n        ", " ");
    let got = parse_challenges(&value).unwrap();
    assert_eq!(got.len(), 2);
    assert_eq!(got[0].param("algorithm"), Some("SHA-256"));
    assert_eq!(got[1].param("algorithm"), Some("MD5"));
    assert_eq!(got[1].param("qop"), Some("auth, auth-int"));
    assert_eq!(got[0].params.len(), 5);
}

#[test]
fn token68_challenges_and_bare_schemes() {
    let got = parse_challenges("Negotiate, NTLM TlRMTVNTUAACAAAA==, Basic realm=x").unwrap();
    assert_eq!(got.len(), 3);
    assert_eq!(got[0], ch("Negotiate", &[]));
    assert_eq!(got[1].token68.as_deref(), Some("TlRMTVNTUAACAAAA=="));
    assert!(got[1].params.is_empty());
    assert_eq!(got[2], ch("Basic", &[("realm", "x")]));
}

#[test]
fn quoted_strings_unescape_and_may_hold_commas_and_equals() {
    let got = parse_challenges(r#"Custom a="x\"y\\z", b="1,2=3", c=tok"#).unwrap();
    assert_eq!(
        got,
        vec![ch(
            "Custom",
            &[("a", r#"x"y\z"#), ("b", "1,2=3"), ("c", "tok")]
        )]
    );
}

#[test]
fn extra_commas_and_whitespace_are_empty_elements() {
    let got = parse_challenges(" ,, Basic realm = \"a\" ,  , Digest nonce=n ,, ").unwrap();
    assert_eq!(
        got,
        vec![
            ch("Basic", &[("realm", "a")]),
            ch("Digest", &[("nonce", "n")])
        ]
    );
    assert_eq!(parse_challenges("").unwrap(), vec![]);
    assert_eq!(parse_challenges(" , ").unwrap(), vec![]);
}

#[test]
fn non_ascii_inside_quotes_is_kept() {
    let got = parse_challenges("Basic realm=\"Zürich ☃\"").unwrap();
    assert_eq!(got[0].param("realm"), Some("Zürich ☃"));
}

#[test]
fn malformed_values_name_the_problem_and_the_offset() {
    let cases: &[(&str, ChallengeProblem)] = &[
        (r#"Basic realm="open"#, ChallengeProblem::UnterminatedQuote),
        (r#"Basic realm="x", b="#, ChallengeProblem::MissingValue),
        ("Basic=x", ChallengeProblem::ExpectedSeparator('=')),
        (r#"Basic realm="a" junk"#, ChallengeProblem::Trailing('j')),
        ("Basic realm=\"a\u{1}\"", ChallengeProblem::ControlCharacter),
        ("\"Basic\"", ChallengeProblem::ExpectedToken('"')),
        ("Basic @x", ChallengeProblem::ExpectedToken('@')),
    ];
    for (value, problem) in cases {
        let err = parse_challenges(value).expect_err(value);
        assert_eq!(&err.problem, problem, "{value}");
        assert!(err.offset <= value.len(), "{value}: {err}");
        assert!(err
            .to_string()
            .starts_with("malformed authentication challenge"));
    }
}

#[test]
fn basic_realm_without_value_reads_as_a_token68() {
    // `realm=` is a valid token68 (RFC 9110 §11.2), so the grammar reads it that way; the
    // Basic answer ignores the realm anyway.
    let got = parse_challenges("Basic realm=").unwrap();
    assert_eq!(got[0].token68.as_deref(), Some("realm="));
}

#[test]
fn parse_fields_skips_a_malformed_field_but_keeps_the_others() {
    let got = parse_fields([r#"Digest realm="unterminated"#, "Basic realm=ok", "NTLM"]);
    assert_eq!(got, vec![ch("Basic", &[("realm", "ok")]), ch("NTLM", &[])]);
}

// --- properties -----------------------------------------------------------------------------

fn token() -> impl Strategy<Value = String> {
    "[A-Za-z0-9!#$%&'*+.^_`|~-]{1,12}"
}

fn param_value() -> impl Strategy<Value = String> {
    // Any printable text, including quotes, backslashes, commas and non-ASCII.
    "[ -~\u{a0}-\u{2fff}]{0,16}"
}

fn challenge() -> impl Strategy<Value = Challenge> {
    let token68 = "[A-Za-z0-9._~+/-]{1,20}={0,2}";
    prop_oneof![
        (token(), token68).prop_map(|(scheme, t)| Challenge {
            scheme,
            token68: Some(t),
            params: Vec::new(),
        }),
        (
            token(),
            proptest::collection::vec((token(), param_value()), 0..5)
        )
            .prop_map(|(scheme, params)| Challenge {
                scheme,
                token68: None,
                params,
            }),
    ]
}

/// Renders `c` the way a server might: quoted or bare values, odd spacing.
fn render(c: &Challenge, quote_all: bool, spacing: &str) -> String {
    let mut out = c.scheme.clone();
    if let Some(t) = &c.token68 {
        out.push(' ');
        out.push_str(t);
        return out;
    }
    for (i, (name, value)) in c.params.iter().enumerate() {
        out.push_str(if i == 0 { " " } else { spacing });
        out.push_str(name);
        out.push('=');
        let bare = !value.is_empty() && value.chars().all(is_tchar);
        if bare && !quote_all {
            out.push_str(value);
        } else {
            out.push('"');
            for ch in value.chars() {
                if ch == '"' || ch == '\\' {
                    out.push('\\');
                }
                out.push(ch);
            }
            out.push('"');
        }
    }
    out
}

fn render_list(list: &[Challenge], quote_all: bool, spacing: &str) -> String {
    list.iter()
        .map(|c| render(c, quote_all, spacing))
        .collect::<Vec<_>>()
        .join(spacing)
}

proptest! {
    #[test]
    fn parsing_never_panics_on_arbitrary_text(chars in proptest::collection::vec(any::<char>(), 0..64)) {
        let value: String = chars.into_iter().collect();
        if let Err(e) = parse_challenges(&value) {
            prop_assert!(e.offset <= value.len());
        }
        let _ = parse_fields([value.as_str(), "Basic realm=x"]);
    }

    #[test]
    fn parsing_never_panics_on_challenge_like_text(
        value in "[A-Za-z =,\"\\\\\t\u{1}é-]{0,48}"
    ) {
        let _ = parse_challenges(&value);
    }

    #[test]
    fn rendered_challenges_parse_back(
        list in proptest::collection::vec(challenge(), 0..4),
        quote_all in any::<bool>(),
        spacing in prop_oneof![Just(", "), Just(","), Just(" ,  ,"), Just(" , ")],
    ) {
        let value = render_list(&list, quote_all, spacing);
        prop_assert_eq!(parse_challenges(&value).unwrap(), list, "{}", value);
    }

    #[test]
    fn two_fields_joined_by_comma_parse_as_the_union(
        a in proptest::collection::vec(challenge(), 0..3),
        b in proptest::collection::vec(challenge(), 0..3),
        noise in "[A-Za-z =,\"]{0,12}",
        noise_first in any::<bool>(),
    ) {
        // Also mix in arbitrary text: whenever both parts parse on their own, so does the
        // joined value, into the concatenation.
        let mut a = render_list(&a, false, ", ");
        let mut b = render_list(&b, true, ",");
        if noise_first { a.push_str(&noise) } else { b.insert_str(0, &noise) }
        if let (Ok(left), Ok(right)) = (parse_challenges(&a), parse_challenges(&b)) {
            let joined = format!("{a}, {b}");
            let mut union = left;
            union.extend(right);
            prop_assert_eq!(parse_challenges(&joined).unwrap(), union, "{}", joined);
        }
    }
}
