use super::*;
use crate::auth::{parse_challenges, Secret};

fn creds(target: AuthTarget, scheme: AuthScheme) -> Credentials {
    Credentials::new(
        target,
        scheme,
        Some(format!("{target}-{scheme}")),
        Some(Secret::from("pw")),
    )
    .unwrap()
}

fn set_of(list: &[(AuthTarget, AuthScheme)]) -> CredentialSet {
    let mut set = CredentialSet::new();
    for &(target, scheme) in list {
        set.set(creds(target, scheme));
    }
    set
}

const ALL_OFFERED: &str = r#"Basic realm="b", Digest realm="d", nonce="n", qop=auth, NTLM, Negotiate, Passport1.4 srealm=x"#;

#[test]
fn strongest_offered_scheme_with_credentials_wins() {
    let challenges = parse_challenges(ALL_OFFERED).unwrap();
    let s = AuthTarget::Server;
    let cases = [
        (vec![(s, AuthScheme::Basic)], AuthScheme::Basic),
        (
            vec![(s, AuthScheme::Basic), (s, AuthScheme::Digest)],
            AuthScheme::Digest,
        ),
        (
            vec![(s, AuthScheme::Digest), (s, AuthScheme::Ntlm)],
            AuthScheme::Ntlm,
        ),
        (
            vec![(s, AuthScheme::Ntlm), (s, AuthScheme::Negotiate)],
            AuthScheme::Negotiate,
        ),
    ];
    for (held, expected) in cases {
        let set = set_of(&held);
        let chosen = choose(&challenges, &set, s).expect("a scheme is chosen");
        assert_eq!(chosen.scheme, expected);
        assert_eq!(chosen.credentials.scheme(), expected);
        assert_eq!(
            AuthScheme::from_challenge_scheme(&chosen.challenge.scheme),
            Some(expected)
        );
    }
}

#[test]
fn credentials_for_a_scheme_not_offered_are_not_used() {
    let challenges = parse_challenges(r#"Basic realm="b""#).unwrap();
    let set = set_of(&[(AuthTarget::Server, AuthScheme::Digest)]);
    assert_eq!(choose(&challenges, &set, AuthTarget::Server), None);
}

#[test]
fn passport_challenge_is_never_answered() {
    let challenges = parse_challenges("Passport1.4 srealm=x").unwrap();
    let set = set_of(&[(AuthTarget::Server, AuthScheme::Passport)]);
    assert_eq!(choose(&challenges, &set, AuthTarget::Server), None);
}

#[test]
fn proxy_target_uses_only_proxy_credentials() {
    let challenges = parse_challenges(ALL_OFFERED).unwrap();
    let set = set_of(&[(AuthTarget::Server, AuthScheme::Negotiate)]);
    assert_eq!(choose(&challenges, &set, AuthTarget::Proxy), None);
    let set = set_of(&[
        (AuthTarget::Server, AuthScheme::Negotiate),
        (AuthTarget::Proxy, AuthScheme::Basic),
    ]);
    let chosen = choose(&challenges, &set, AuthTarget::Proxy).unwrap();
    assert_eq!(chosen.scheme, AuthScheme::Basic);
    assert_eq!(chosen.credentials.target(), AuthTarget::Proxy);
}

#[test]
fn implicit_proxy_credentials_serve_the_server_without_explicit_server_credentials() {
    let challenges = parse_challenges(ALL_OFFERED).unwrap();
    let mut set = CredentialSet::new();
    set.set(Credentials::implicit(AuthTarget::Proxy, AuthScheme::Negotiate).unwrap());
    let chosen = choose(&challenges, &set, AuthTarget::Server).unwrap();
    assert_eq!(chosen.scheme, AuthScheme::Negotiate);
    assert_eq!(chosen.credentials.target(), AuthTarget::Proxy);
    assert!(chosen.credentials.is_implicit());

    // Implicit server credentials are not explicit: the fallback still applies.
    set.set(Credentials::implicit(AuthTarget::Server, AuthScheme::Ntlm).unwrap());
    assert!(set
        .credentials_for(AuthTarget::Server, AuthScheme::Negotiate)
        .is_some());

    // Explicit server credentials of any scheme stop it.
    set.set(creds(AuthTarget::Server, AuthScheme::Basic));
    assert_eq!(
        set.credentials_for(AuthTarget::Server, AuthScheme::Negotiate),
        None
    );
    let chosen = choose(&challenges, &set, AuthTarget::Server).unwrap();
    assert_eq!(chosen.scheme, AuthScheme::Ntlm);
    assert_eq!(chosen.credentials.target(), AuthTarget::Server);
}

#[test]
fn explicit_proxy_credentials_never_serve_the_server() {
    let set = set_of(&[(AuthTarget::Proxy, AuthScheme::Ntlm)]);
    assert_eq!(
        set.credentials_for(AuthTarget::Server, AuthScheme::Ntlm),
        None
    );
}

#[test]
fn strongest_digest_algorithm_is_chosen_and_unusable_digest_is_skipped() {
    let challenges = parse_challenges(
        r#"Digest realm=r, nonce=a, qop=auth, algorithm=MD5, Digest realm=r, nonce=b, qop=auth, algorithm=SHA-256, Digest realm=r, nonce=c, algorithm=SHA-3"#,
    )
    .unwrap();
    let set = set_of(&[(AuthTarget::Server, AuthScheme::Digest)]);
    let chosen = choose(&challenges, &set, AuthTarget::Server).unwrap();
    assert_eq!(chosen.challenge.param("nonce"), Some("b"));

    let only_unusable =
        parse_challenges(r#"Digest realm=r, nonce=c, algorithm=SHA-3, Basic realm=r"#).unwrap();
    let set = set_of(&[
        (AuthTarget::Server, AuthScheme::Digest),
        (AuthTarget::Server, AuthScheme::Basic),
    ]);
    let chosen = choose(&only_unusable, &set, AuthTarget::Server).unwrap();
    assert_eq!(chosen.scheme, AuthScheme::Basic);
}

#[test]
fn scheme_names_match_without_case() {
    let challenges = parse_challenges("bAsIc realm=x").unwrap();
    let set = set_of(&[(AuthTarget::Server, AuthScheme::Basic)]);
    assert!(choose(&challenges, &set, AuthTarget::Server).is_some());
}
