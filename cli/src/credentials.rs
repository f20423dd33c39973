//! `transfer`'s authentication and proxy options: `--server-auth` / `--proxy-auth SCHEME:USER`
//! with passwords from an environment variable or a terminal prompt (never the command line),
//! and `--proxy` / `--proxy-bypass` / `--no-proxy`.

use std::io::IsTerminal;

use backhaul_core::auth::{AuthScheme, AuthTarget, Credentials, Secret};
use backhaul_core::proxy::{ProxySettings, ProxyUsage};

/// One `--server-auth` / `--proxy-auth` value: the scheme, and the user (`None`: implicit,
/// "the logged-on user", for NTLM and Negotiate).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct AuthOption {
    pub(crate) scheme: AuthScheme,
    pub(crate) user: Option<String>,
}

/// Parses `SCHEME:USER` (`SCHEME:` for implicit credentials). The scheme is a BITS name
/// (basic, digest, ntlm, negotiate, passport) or its number.
pub(crate) fn parse_auth_option(s: &str) -> Result<AuthOption, String> {
    let (scheme, user) = s
        .split_once(':')
        .ok_or_else(|| format!("{s:?} is not SCHEME:USER (use SCHEME: for the logged-on user)"))?;
    let scheme = scheme
        .parse::<AuthScheme>()
        .map_err(|e| e.detail().to_string())?;
    let user = (!user.is_empty()).then(|| user.to_string());
    Ok(AuthOption { scheme, user })
}

/// The credentials for `options` of `target`: each explicit user's password from the
/// environment variable `password_env`, or else asked on the terminal. `Err` explains why a
/// password could not be had, or what BITS refuses.
pub(crate) fn credentials(
    target: AuthTarget,
    options: &[AuthOption],
    password_env: Option<&str>,
) -> Result<Vec<Credentials>, String> {
    let mut out = Vec::with_capacity(options.len());
    for option in options {
        let credentials = match &option.user {
            None => Credentials::implicit(target, option.scheme),
            Some(user) => {
                let password = password(target, option.scheme, user, password_env)?;
                Credentials::new(target, option.scheme, Some(user.clone()), Some(password))
            }
        };
        out.push(credentials.map_err(|e| format!("{} {}: {}", target, option.scheme, e.detail()))?);
    }
    Ok(out)
}

fn password(
    target: AuthTarget,
    scheme: AuthScheme,
    user: &str,
    env: Option<&str>,
) -> Result<Secret, String> {
    if let Some(var) = env {
        return std::env::var(var).map(Secret::new).map_err(|_| {
            format!("the environment variable {var} (the {target} password) is not set")
        });
    }
    if !std::io::stdin().is_terminal() {
        let flag = match target {
            AuthTarget::Server => "--password-env",
            AuthTarget::Proxy => "--proxy-password-env",
        };
        return Err(format!(
            "no {target} password for {user}: pass {flag} VAR (passwords are never taken from \
             the command line), or run on a terminal to be asked"
        ));
    }
    let prompt = format!("{target} password for {user} ({scheme}): ");
    rpassword::prompt_password(prompt)
        .map(Secret::new)
        .map_err(|e| format!("cannot read the {target} password: {e}"))
}

/// The job's proxy settings from `--proxy` (repeatable: an OVERRIDE list, tried in order),
/// `--proxy-bypass` and `--no-proxy`; `None` keeps PRECONFIG (the environment).
pub(crate) fn proxy_settings(
    proxies: &[String],
    bypass: Option<&str>,
    no_proxy: bool,
) -> Result<Option<ProxySettings>, String> {
    let settings = if no_proxy {
        ProxySettings::new(ProxyUsage::NoProxy, None, None)
    } else if !proxies.is_empty() {
        let list = proxies.join(";");
        ProxySettings::new(ProxyUsage::Override, Some(list), bypass.map(str::to_string))
    } else if bypass.is_some() {
        return Err("--proxy-bypass needs --proxy".into());
    } else {
        return Ok(None);
    };
    settings
        .map(Some)
        .map_err(|e| format!("{} ({})", e.detail(), e.code().name_or_hex()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scheme_user_pairs_parse_and_an_empty_user_is_implicit() {
        let basic = parse_auth_option("basic:alice").unwrap();
        assert_eq!(
            (basic.scheme, basic.user.as_deref()),
            (AuthScheme::Basic, Some("alice"))
        );
        let implicit = parse_auth_option("NEGOTIATE:").unwrap();
        assert_eq!(
            (implicit.scheme, implicit.user),
            (AuthScheme::Negotiate, None)
        );
        assert_eq!(
            parse_auth_option("2:bob").unwrap().scheme,
            AuthScheme::Digest
        );
        assert!(parse_auth_option("alice")
            .unwrap_err()
            .contains("SCHEME:USER"));
        assert!(parse_auth_option("kerberos5:x").is_err());
    }

    #[test]
    fn passwords_come_from_the_named_variable_and_a_missing_one_is_named() {
        // PATH is always set; its value stands in for a password.
        let var = "PATH";
        let opts = [parse_auth_option("basic:alice").unwrap()];
        let creds = credentials(AuthTarget::Server, &opts, Some(var)).unwrap();
        assert_eq!(creds[0].user(), Some("alice"));
        let err =
            credentials(AuthTarget::Proxy, &opts, Some("BACKHAUL_SURELY_UNSET_VAR")).unwrap_err();
        assert!(err.contains("BACKHAUL_SURELY_UNSET_VAR"), "{err}");
        let err = credentials(
            AuthTarget::Server,
            &[parse_auth_option("basic:").unwrap()],
            None,
        )
        .unwrap_err();
        assert!(err.contains("Basic"), "implicit Basic is refused: {err}");
    }

    #[test]
    fn proxy_options_become_bits_settings() {
        assert_eq!(proxy_settings(&[], None, false), Ok(None));
        let s = proxy_settings(&["a:1".into(), "b:2".into()], Some("*.lan"), false)
            .unwrap()
            .unwrap();
        assert_eq!(
            (s.usage(), s.proxy_list()),
            (ProxyUsage::Override, Some("a:1;b:2"))
        );
        assert_eq!(s.bypass_list(), Some("*.lan"));
        let none = proxy_settings(&[], None, true).unwrap().unwrap();
        assert_eq!(none.usage(), ProxyUsage::NoProxy);
        assert!(proxy_settings(&[], Some("x"), false).is_err());
    }
}
