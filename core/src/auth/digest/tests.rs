use super::*;
use crate::auth::parse_challenges;

const RFC7616_NONCE: &str = "7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v";
const RFC7616_OPAQUE: &str = "FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS";
const RFC7616_CNONCE: &str = "f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ";

fn challenge(value: &str) -> Challenge {
    parse_challenges(value).expect("challenge parses").remove(0)
}

fn rfc7616_challenge(algorithm: &str) -> Challenge {
    challenge(&format!(
        r#"Digest realm="http-auth@example.org", qop="auth, auth-int", algorithm={algorithm}, nonce="{RFC7616_NONCE}", opaque="{RFC7616_OPAQUE}""#
    ))
}

/// The parameters of an `Authorization` value, parsed with the challenge parser (the grammar is
/// the same).
fn answer_params(value: &Secret) -> Challenge {
    challenge(value.expose())
}

fn mufasa() -> Secret {
    Secret::from("Circle of Life")
}

#[test]
fn rfc7616_md5_example_response() {
    let mut state = DigestState::from_challenge(&rfc7616_challenge("MD5")).unwrap();
    let value = state.authorization(
        "GET",
        "/dir/index.html",
        "Mufasa",
        &mufasa(),
        RFC7616_CNONCE,
    );
    let answer = answer_params(&value);
    assert_eq!(
        answer.param("response"),
        Some("8ca523f5e9506fed4657c9700eebdbec")
    );
    assert_eq!(answer.param("nc"), Some("00000001"));
    assert_eq!(answer.param("qop"), Some("auth"));
    assert_eq!(answer.param("algorithm"), Some("MD5"));
    assert_eq!(answer.param("opaque"), Some(RFC7616_OPAQUE));
    assert_eq!(answer.param("username"), Some("Mufasa"));
    assert_eq!(answer.param("uri"), Some("/dir/index.html"));
}

#[test]
fn rfc7616_sha256_example_response() {
    let mut state = DigestState::from_challenge(&rfc7616_challenge("SHA-256")).unwrap();
    let value = state.authorization(
        "GET",
        "/dir/index.html",
        "Mufasa",
        &mufasa(),
        RFC7616_CNONCE,
    );
    assert_eq!(
        answer_params(&value).param("response"),
        Some("753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1")
    );
}

#[test]
fn rfc2617_example_response_and_exact_header() {
    let c = challenge(
        r#"Digest realm="testrealm@host.com", qop="auth,auth-int", nonce="dcd98b7102dd2f0e8b11d0f600bfb0c093", opaque="5ccc069c403ebaf9f0171e9517f40e41""#,
    );
    let mut state = DigestState::from_challenge(&c).unwrap();
    assert_eq!(state.algorithm(), DigestAlgorithm::Md5);
    // RFC 2617 §3.5 spells the password "Circle Of Life".
    let password = Secret::from("Circle Of Life");
    let value = state.authorization("GET", "/dir/index.html", "Mufasa", &password, "0a4f113b");
    assert_eq!(
        value.expose(),
        r#"Digest username="Mufasa", realm="testrealm@host.com", uri="/dir/index.html", nonce="dcd98b7102dd2f0e8b11d0f600bfb0c093", nc=00000001, cnonce="0a4f113b", qop=auth, response="6629fae49393a05397450978507c4ef1", opaque="5ccc069c403ebaf9f0171e9517f40e41""#
    );
}

#[test]
fn rfc7616_userhash_example_username_is_hashed() {
    // RFC 7616 §3.9.2's inputs: SHA-512-256, userhash, a non-ASCII user name. The hashes the
    // RFC prints are wrong (errata 4897 and later reports); these were computed independently
    // with Python's hashlib over the same UTF-8 inputs.
    let c = challenge(
        r#"Digest realm="api@example.org", qop="auth", algorithm=SHA-512-256, nonce="5TsQWLVdgBdmrQ0XsxbDODV+57QdFR34I9HAbC/RVvkK", opaque="HRPCssKJSGjCrkzDg8OhwpzCiGPChXYjwrI2QmXDnsOS", charset=UTF-8, userhash=true"#,
    );
    let mut state = DigestState::from_challenge(&c).unwrap();
    let value = state.authorization(
        "GET",
        "/doe.json",
        "J\u{e4}s\u{f8}n Doe",
        &Secret::from("Secret, or not?"),
        "NTg6RKcb9boFIAS3KrFK9BGeh+iDa/sm6jUMp2wds69v",
    );
    let answer = answer_params(&value);
    assert_eq!(
        answer.param("username"),
        Some("793263caabb707a56211940d90411ea4a575adeccb7e360aeb624ed06ece9b0b")
    );
    assert_eq!(answer.param("userhash"), Some("true"));
    assert_eq!(
        answer.param("response"),
        Some("3798d4131c277846293534c3edc11bd8a5e4cdcbff78b05db9d95eeb1cec68a5")
    );
}

#[test]
fn non_ascii_user_without_userhash_goes_in_username_star() {
    let c = challenge(r#"Digest realm="r", nonce="n", qop=auth, charset=UTF-8"#);
    let mut state = DigestState::from_challenge(&c).unwrap();
    let value = state.authorization("GET", "/", "J\u{e4}s\u{f8}n Doe", &mufasa(), "c");
    let answer = answer_params(&value);
    assert_eq!(
        answer.param("username*"),
        Some("UTF-8''J%C3%A4s%C3%B8n%20Doe")
    );
    assert_eq!(answer.param("username"), None);
}

#[test]
fn nonce_count_increases_with_every_answer() {
    let mut state = DigestState::from_challenge(&rfc7616_challenge("SHA-256")).unwrap();
    for expected in ["00000001", "00000002", "00000003"] {
        let value = state.authorization("GET", "/f", "u", &mufasa(), "c");
        assert_eq!(answer_params(&value).param("nc"), Some(expected));
    }
    assert_eq!(state.nonce_count(), 3);
}

#[test]
fn sess_algorithm_keeps_the_first_cnonce_for_the_nonce() {
    let mut state = DigestState::from_challenge(&rfc7616_challenge("MD5-sess")).unwrap();
    let first = state.authorization("GET", "/f", "u", &mufasa(), "first");
    let second = state.authorization("GET", "/f", "u", &mufasa(), "second");
    assert_eq!(answer_params(&first).param("cnonce"), Some("first"));
    assert_eq!(answer_params(&second).param("cnonce"), Some("first"));
    // Without -sess the caller's cnonce is used each time.
    let mut plain = DigestState::from_challenge(&rfc7616_challenge("MD5")).unwrap();
    plain.authorization("GET", "/f", "u", &mufasa(), "first");
    let value = plain.authorization("GET", "/f", "u", &mufasa(), "second");
    assert_eq!(answer_params(&value).param("cnonce"), Some("second"));
}

#[test]
fn md5_sess_response_matches_a_hand_computed_value() {
    // HA1 = MD5(MD5("Mufasa:testrealm@host.com:Circle of Life"):nonce:cnonce), as RFC 2617
    // §3.2.2.2 defines it; computed independently below.
    let c = challenge(
        r#"Digest realm="testrealm@host.com", nonce="abc", qop=auth, algorithm=MD5-sess"#,
    );
    let mut state = DigestState::from_challenge(&c).unwrap();
    let value = state.authorization("GET", "/x", "Mufasa", &mufasa(), "cn");
    let h = |s: String| -> String {
        let d = Md5::digest(s.as_bytes());
        d.iter().map(|b| format!("{b:02x}")).collect()
    };
    let ha1 = h(format!(
        "{}:abc:cn",
        h("Mufasa:testrealm@host.com:Circle of Life".into())
    ));
    let ha2 = h("GET:/x".into());
    let expected = h(format!("{ha1}:abc:00000001:cn:auth:{ha2}"));
    assert_eq!(
        answer_params(&value).param("response"),
        Some(expected.as_str())
    );
    assert_eq!(answer_params(&value).param("algorithm"), Some("MD5-sess"));
}

#[test]
fn rfc2069_challenge_without_qop_gets_the_legacy_answer() {
    let c = challenge(
        r#"Digest realm="testrealm@host.com", nonce="dcd98b7102dd2f0e8b11d0f600bfb0c093", opaque="5ccc069c403ebaf9f0171e9517f40e41""#,
    );
    let mut state = DigestState::from_challenge(&c).unwrap();
    assert_eq!(state.qop(), DigestQop::Legacy);
    // RFC 2069 §2.4's example: the password there is "CircleOfLife".
    let password = Secret::from("CircleOfLife");
    let value = state.authorization("GET", "/dir/index.html", "Mufasa", &password, "ignored");
    let answer = answer_params(&value);
    assert_eq!(
        answer.param("response"),
        Some("1949323746fe6a43ef61f9606e7febea")
    );
    assert_eq!(answer.param("nc"), None);
    assert_eq!(answer.param("cnonce"), None);
    assert_eq!(answer.param("qop"), None);
}

#[test]
fn auth_int_only_challenge_hashes_the_empty_body() {
    let c = challenge(r#"Digest realm="r", nonce="n", qop="auth-int""#);
    let mut state = DigestState::from_challenge(&c).unwrap();
    assert_eq!(state.qop(), DigestQop::AuthInt);
    let value = state.authorization("GET", "/p", "u", &mufasa(), "c");
    let h = |s: &str| -> String {
        Md5::digest(s.as_bytes())
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    };
    let ha2 = h(&format!("GET:/p:{}", h("")));
    let expected = h(&format!(
        "{}:n:00000001:c:auth-int:{ha2}",
        h("u:r:Circle of Life")
    ));
    let answer = answer_params(&value);
    assert_eq!(answer.param("qop"), Some("auth-int"));
    assert_eq!(answer.param("response"), Some(expected.as_str()));
}

#[test]
fn unusable_challenges_are_refused_with_the_reason() {
    let cases: &[(&str, DigestError)] = &[
        ("Basic realm=x", DigestError::NotDigest("Basic".into())),
        ("Digest nonce=n", DigestError::Missing("realm")),
        ("Digest realm=r", DigestError::Missing("nonce")),
        (
            "Digest realm=r, nonce=n, algorithm=SHA-1",
            DigestError::UnsupportedAlgorithm("SHA-1".into()),
        ),
        (
            r#"Digest realm=r, nonce=n, qop="auth-conf""#,
            DigestError::UnsupportedQop("auth-conf".into()),
        ),
        (
            "Digest realm=r, nonce=n, algorithm=SHA-256-sess",
            DigestError::SessionWithoutQop("SHA-256-sess"),
        ),
    ];
    for (value, expected) in cases {
        assert_eq!(
            DigestState::from_challenge(&challenge(value)).as_ref(),
            Err(expected),
            "{value}"
        );
    }
}

#[test]
fn algorithm_and_param_names_are_case_insensitive() {
    let c = challenge(r#"DIGEST REALM="r", NONCE="n", QOP="AUTH", ALGORITHM=sha-256-SESS"#);
    let state = DigestState::from_challenge(&c).unwrap();
    assert_eq!(state.algorithm(), DigestAlgorithm::Sha256Sess);
    assert_eq!(state.qop(), DigestQop::Auth);
}

#[test]
fn digest_stale_nonce_rechallenges_without_failing() {
    let mut state = DigestState::from_challenge(&rfc7616_challenge("SHA-256")).unwrap();
    state.authorization("GET", "/f", "u", &mufasa(), "c1");
    state.authorization("GET", "/f", "u", &mufasa(), "c2");
    let stale = challenge(
        r#"Digest realm="http-auth@example.org", qop=auth, algorithm=SHA-256, nonce="fresh", stale=TRUE"#,
    );
    assert!(is_stale(&stale));
    assert_eq!(state.update(&stale), Update::Stale);
    assert_eq!(state.nonce_count(), 0);
    let value = state.authorization("GET", "/f", "u", &mufasa(), "c3");
    let answer = answer_params(&value);
    assert_eq!(answer.param("nonce"), Some("fresh"));
    assert_eq!(answer.param("nc"), Some("00000001"));
}

#[test]
fn a_new_challenge_without_stale_means_rejected_credentials() {
    let mut state = DigestState::from_challenge(&rfc7616_challenge("MD5")).unwrap();
    state.authorization("GET", "/f", "u", &mufasa(), "c");
    let before = state.clone();
    let again = rfc7616_challenge("MD5");
    assert!(!is_stale(&again));
    assert_eq!(state.update(&again), Update::Rejected);
    assert_eq!(state, before, "a rejection leaves the state alone");
    let other_realm = challenge(r#"Digest realm="elsewhere", nonce="n2", qop=auth, stale=true"#);
    assert_eq!(state.update(&other_realm), Update::Rejected);
    let broken = challenge(
        r#"Digest realm="http-auth@example.org", nonce="n2", algorithm=SHA-1, stale=true"#,
    );
    assert_eq!(state.update(&broken), Update::Rejected);
}

#[test]
fn quotes_in_values_are_escaped_in_the_answer() {
    let c = challenge(r#"Digest realm="a \"quoted\" realm", nonce="n", qop=auth"#);
    let mut state = DigestState::from_challenge(&c).unwrap();
    let value = state.authorization("GET", "/p?q=\"x\"", "us\"er", &mufasa(), "c");
    let answer = answer_params(&value);
    assert_eq!(answer.param("realm"), Some(r#"a "quoted" realm"#));
    assert_eq!(answer.param("username"), Some("us\"er"));
    assert_eq!(answer.param("uri"), Some("/p?q=\"x\""));
}

#[test]
fn the_answer_is_a_secret_and_the_state_debug_holds_no_password() {
    let mut state = DigestState::from_challenge(&rfc7616_challenge("MD5")).unwrap();
    let value = state.authorization("GET", "/f", "u", &mufasa(), "c");
    assert_eq!(format!("{value:?}"), "***");
    assert!(!format!("{state:?}").contains("Circle"));
}
