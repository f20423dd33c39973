use super::*;
use crate::codes::{BG_E_INVALID_AUTH_SCHEME, BG_E_INVALID_AUTH_TARGET};

fn explicit(target: AuthTarget, scheme: AuthScheme, user: &str, password: &str) -> Credentials {
    Credentials::new(
        target,
        scheme,
        Some(user.to_string()),
        Some(Secret::from(password)),
    )
    .expect("valid credentials")
}

fn refusal(scheme: AuthScheme, user: Option<&str>, password: Option<&str>) -> BitsError {
    Credentials::new(
        AuthTarget::Server,
        scheme,
        user.map(str::to_string),
        password.map(Secret::from),
    )
    .expect_err("refused")
}

#[test]
fn set_credentials_unknown_target_number_is_bg_e_invalid_auth_target() {
    assert_eq!(
        AuthTarget::from_u32(3).unwrap_err().code(),
        BG_E_INVALID_AUTH_TARGET
    );
}

#[test]
fn set_credentials_unknown_scheme_number_is_bg_e_invalid_auth_scheme() {
    assert_eq!(
        AuthScheme::from_u32(6).unwrap_err().code(),
        BG_E_INVALID_AUTH_SCHEME
    );
}

#[test]
fn set_credentials_user_name_of_301_characters_is_bg_e_username_too_large() {
    let ok = "u".repeat(300);
    assert!(Credentials::new(
        AuthTarget::Server,
        AuthScheme::Basic,
        Some(ok),
        Some(Secret::from("p"))
    )
    .is_ok());
    let err = refusal(AuthScheme::Basic, Some(&"u".repeat(301)), Some("p"));
    assert_eq!(err.code(), BG_E_USERNAME_TOO_LARGE);
    assert_eq!(err.code().0, 0x8020_0025);
    assert!(err.detail().contains("301"), "{err}");
}

#[test]
fn user_name_length_counts_utf16_units_as_windows_does() {
    // U+1F600 is two UTF-16 units: 150 of them are 300 characters for Windows.
    let at_limit = "\u{1F600}".repeat(150);
    assert!(Credentials::new(
        AuthTarget::Proxy,
        AuthScheme::Ntlm,
        Some(at_limit.clone()),
        Some(Secret::from("p"))
    )
    .is_ok());
    let over = format!("{at_limit}x");
    assert_eq!(
        refusal(AuthScheme::Ntlm, Some(&over), Some("p")).code(),
        BG_E_USERNAME_TOO_LARGE
    );
}

#[test]
fn set_credentials_password_of_65536_characters_is_bg_e_password_too_large() {
    let ok = "p".repeat(MAX_PASSWORD);
    assert!(Credentials::new(
        AuthTarget::Server,
        AuthScheme::Digest,
        Some("u".into()),
        Some(Secret::from(ok))
    )
    .is_ok());
    let long = "p".repeat(65_536);
    let err = refusal(AuthScheme::Digest, Some("u"), Some(&long));
    assert_eq!(err.code(), BG_E_PASSWORD_TOO_LARGE);
    assert_eq!(err.code().0, 0x8020_0026);
    assert!(!err.to_string().contains("ppppp"), "{err}");
}

#[test]
fn set_credentials_basic_or_digest_without_user_or_password_is_e_invalidarg() {
    for scheme in [AuthScheme::Basic, AuthScheme::Digest, AuthScheme::Passport] {
        for (user, password) in [(None, Some("p")), (Some("u"), None), (None, None)] {
            let err = refusal(scheme, user, password);
            assert_eq!(err.code(), E_INVALIDARG, "{scheme} {user:?}");
            assert!(err.detail().contains(&scheme.to_string()), "{err}");
        }
    }
}

#[test]
fn empty_user_and_password_are_values_not_absence() {
    assert!(Credentials::new(
        AuthTarget::Server,
        AuthScheme::Basic,
        Some(String::new()),
        Some(Secret::from(""))
    )
    .is_ok());
}

#[test]
fn ntlm_and_negotiate_without_user_and_password_are_implicit() {
    for scheme in [AuthScheme::Ntlm, AuthScheme::Negotiate] {
        for target in AuthTarget::ALL {
            let c = Credentials::implicit(target, scheme).expect("implicit is allowed");
            assert!(c.is_implicit());
            assert_eq!(c.user(), None);
        }
    }
    assert_eq!(
        Credentials::implicit(AuthTarget::Server, AuthScheme::Basic)
            .unwrap_err()
            .code(),
        E_INVALIDARG
    );
}

#[test]
fn ntlm_with_a_user_but_no_password_is_e_invalidarg() {
    for (user, password) in [(Some("u"), None), (None, Some("p"))] {
        let err = refusal(AuthScheme::Negotiate, user, password);
        assert_eq!(err.code(), E_INVALIDARG);
        assert!(err.detail().contains("or neither"), "{err}");
    }
}

#[test]
fn basic_user_with_colon_is_refused_with_the_reason() {
    let err = refusal(AuthScheme::Basic, Some("dom:user"), Some("p"));
    assert_eq!(err.code(), E_INVALIDARG);
    assert!(err.detail().contains("':'"), "{err}");
    // A colon in the password is fine (the first colon splits), and Digest takes any name.
    assert!(Credentials::new(
        AuthTarget::Server,
        AuthScheme::Basic,
        Some("u".into()),
        Some(Secret::from("a:b"))
    )
    .is_ok());
    assert!(Credentials::new(
        AuthTarget::Server,
        AuthScheme::Digest,
        Some("dom:user".into()),
        Some(Secret::from("p"))
    )
    .is_ok());
}

#[test]
fn control_characters_and_nul_are_refused_without_echoing_the_password() {
    let err = refusal(AuthScheme::Basic, Some("u"), Some("sec\nret"));
    assert_eq!(err.code(), E_INVALIDARG);
    assert!(err.detail().contains("password"), "{err}");
    assert!(!err.to_string().contains("sec"), "{err}");
    let err = refusal(AuthScheme::Digest, Some("u\0"), Some("p"));
    assert_eq!(err.code(), E_INVALIDARG);
    assert!(err.detail().contains("NUL"), "{err}");
}

#[test]
fn set_replaces_the_slot_of_the_same_target_and_scheme() {
    let mut set = CredentialSet::new();
    set.set(explicit(AuthTarget::Server, AuthScheme::Basic, "a", "1"));
    set.set(explicit(AuthTarget::Proxy, AuthScheme::Basic, "b", "2"));
    set.set(explicit(AuthTarget::Server, AuthScheme::Basic, "c", "3"));
    assert_eq!(set.len(), 2);
    let server = set.get(AuthTarget::Server, AuthScheme::Basic).unwrap();
    assert_eq!(server.user(), Some("c"));
    assert_eq!(server.password().unwrap().expose(), "3");
    assert_eq!(
        set.get(AuthTarget::Proxy, AuthScheme::Basic)
            .unwrap()
            .user(),
        Some("b")
    );
    assert!(set.get(AuthTarget::Server, AuthScheme::Digest).is_none());
}

#[test]
fn remove_credentials_is_s_ok_then_s_false() {
    let mut set = CredentialSet::new();
    set.set(explicit(AuthTarget::Server, AuthScheme::Digest, "a", "1"));
    let first = set.remove(AuthTarget::Server, AuthScheme::Digest);
    assert_eq!(first, RemoveOutcome::Removed);
    assert_eq!(first.code(), S_OK);
    let second = set.remove(AuthTarget::Server, AuthScheme::Digest);
    assert_eq!(second, RemoveOutcome::NothingSet);
    assert_eq!(second.code(), S_FALSE);
    assert!(set.is_empty());
}

#[test]
fn take_ownership_clear_strips_every_credential() {
    let mut set = CredentialSet::new();
    set.set(explicit(AuthTarget::Server, AuthScheme::Basic, "a", "1"));
    set.set(Credentials::implicit(AuthTarget::Proxy, AuthScheme::Negotiate).unwrap());
    set.clear();
    assert!(set.is_empty());
}

#[test]
fn debug_of_a_credential_set_shows_users_but_never_passwords() {
    let mut set = CredentialSet::new();
    set.set(explicit(
        AuthTarget::Server,
        AuthScheme::Basic,
        "alice",
        "hunter2-Server",
    ));
    set.set(explicit(
        AuthTarget::Proxy,
        AuthScheme::Digest,
        "bob",
        "Circle of Life",
    ));
    let debug = format!("{set:?} {set:#?}");
    assert!(debug.contains("alice") && debug.contains("bob"), "{debug}");
    assert!(debug.contains("***"), "{debug}");
    assert!(!debug.contains("hunter2"), "{debug}");
    assert!(!debug.contains("Circle"), "{debug}");
}

#[test]
fn has_explicit_ignores_implicit_credentials() {
    let mut set = CredentialSet::new();
    set.set(Credentials::implicit(AuthTarget::Server, AuthScheme::Ntlm).unwrap());
    assert!(!set.has_explicit(AuthTarget::Server));
    set.set(explicit(AuthTarget::Server, AuthScheme::Digest, "a", "1"));
    assert!(set.has_explicit(AuthTarget::Server));
    assert!(!set.has_explicit(AuthTarget::Proxy));
}

#[test]
fn credential_set_round_trips_through_the_store_format() {
    let mut set = CredentialSet::new();
    set.set(explicit(
        AuthTarget::Server,
        AuthScheme::Basic,
        "alice",
        "pw",
    ));
    set.set(Credentials::implicit(AuthTarget::Proxy, AuthScheme::Negotiate).unwrap());
    let json = serde_json::to_string(&set).unwrap();
    assert!(
        json.contains("\"pw\""),
        "the store holds the password: {json}"
    );
    let back: CredentialSet = serde_json::from_str(&json).unwrap();
    assert_eq!(back, set);
}

#[test]
fn loading_rechecks_credentials_and_refuses_duplicate_slots() {
    let bad = r#"[{"target":"Server","scheme":"Basic","user":null,"password":"pw"}]"#;
    let err = serde_json::from_str::<CredentialSet>(bad).unwrap_err();
    assert!(err.to_string().contains("E_INVALIDARG"), "{err}");
    assert!(!err.to_string().contains("pw\""), "{err}");
    let dup = r#"[{"target":"Proxy","scheme":"Ntlm","user":null,"password":null},
                  {"target":"Proxy","scheme":"Ntlm","user":null,"password":null}]"#;
    let err = serde_json::from_str::<CredentialSet>(dup).unwrap_err();
    assert!(err.to_string().contains("two credentials"), "{err}");
}

#[test]
fn credentials_answer_basic_and_digest_without_exposing_the_password() {
    let basic = explicit(
        AuthTarget::Server,
        AuthScheme::Basic,
        "Aladdin",
        "open sesame",
    );
    assert_eq!(
        basic.basic_authorization().unwrap().expose(),
        "Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ=="
    );
    let digest = explicit(
        AuthTarget::Server,
        AuthScheme::Digest,
        "Mufasa",
        "Circle of Life",
    );
    let challenge = crate::auth::parse_challenges(
        r#"Digest realm="http-auth@example.org", qop=auth, algorithm=MD5, nonce="7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v", opaque="FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS""#,
    )
    .unwrap();
    let mut state = DigestState::from_challenge(&challenge[0]).unwrap();
    let value = digest
        .digest_authorization(
            &mut state,
            "GET",
            "/dir/index.html",
            "f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ",
        )
        .unwrap();
    assert!(value
        .expose()
        .contains(r#"response="8ca523f5e9506fed4657c9700eebdbec""#));
    let implicit = Credentials::implicit(AuthTarget::Proxy, AuthScheme::Ntlm).unwrap();
    assert_eq!(implicit.basic_authorization(), None);
    assert_eq!(
        implicit.digest_authorization(&mut state, "GET", "/", "c"),
        None
    );
}
