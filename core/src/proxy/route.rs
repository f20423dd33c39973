//! Which way a URL goes: directly, or through which proxies, in the order to try them.

use url::Url;

use super::bypass::BypassList;
use super::endpoint::{parse_proxy, redact, TargetHost};
use super::list::{ProxyList, Scheme};
use super::{ProxyEndpoint, ProxyEnvironment, ProxyError, ProxySettings, ProxyUsage};

/// One way to reach a URL's origin.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Route {
    /// Connect to the origin itself.
    Direct,
    /// Connect to this proxy, which reaches the origin.
    Proxy(ProxyEndpoint),
}

/// The routes to try for `url`, in order; never empty on success.
///
/// - NO_PROXY: `[Direct]`.
/// - OVERRIDE: `[Direct]` if the bypass list matches the URL's host (and port); otherwise the
///   list's proxies for the URL's scheme, in list order ("tried in order until a successful
///   connection"), or `[Direct]` if the list has none for that scheme. There is no fallback to
///   a direct connection after the proxies fail.
/// - PRECONFIG: the environment's proxy for the scheme, unless `no_proxy` matches; `[Direct]`
///   when no variable applies.
/// - AUTODETECT: [`ProxyError::AutodetectNotImplemented`].
///
/// Every entry of both lists is checked on every call, even entries that do not apply to this
/// URL, so a bad list fails every job that uses it.
pub fn route(
    url: &Url,
    settings: &ProxySettings,
    env: &ProxyEnvironment,
) -> Result<Vec<Route>, ProxyError> {
    let scheme = match url.scheme() {
        "http" => Scheme::Http,
        "https" => Scheme::Https,
        _ => return Err(ProxyError::UnroutableUrl(url.scheme().to_string() + "://")),
    };
    let (Some(host), Some(port)) = (url.host_str(), url.port_or_known_default()) else {
        return Err(ProxyError::UnroutableUrl("a URL without a host".into()));
    };
    let host = TargetHost::new(host);
    match settings.usage() {
        ProxyUsage::NoProxy => Ok(vec![Route::Direct]),
        ProxyUsage::Autodetect => Err(ProxyError::AutodetectNotImplemented),
        ProxyUsage::Override => {
            let list = ProxyList::parse(settings.proxy_list().unwrap_or(""))?;
            let bypass = BypassList::parse(settings.bypass_list().unwrap_or(""))?;
            let proxies = list.for_scheme(scheme);
            if bypass.matches(&host, port) || proxies.is_empty() {
                return Ok(vec![Route::Direct]);
            }
            Ok(proxies.into_iter().map(Route::Proxy).collect())
        }
        ProxyUsage::Preconfig => {
            let Some((name, value)) = env.proxy_var(scheme) else {
                return Ok(vec![Route::Direct]);
            };
            let proxy = parse_proxy(value).map_err(|reason| ProxyError::InvalidEntry {
                place: format!("environment variable {name}"),
                entry: redact(value),
                reason,
            })?;
            if env.bypasses(&host, port)? {
                return Ok(vec![Route::Direct]);
            }
            Ok(vec![Route::Proxy(proxy)])
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::ProxyKind;
    use super::*;

    fn url(text: &str) -> Url {
        Url::parse(text).unwrap()
    }

    fn overriding(list: &str, bypass: Option<&str>) -> ProxySettings {
        ProxySettings::new(
            ProxyUsage::Override,
            Some(list.to_string()),
            bypass.map(str::to_string),
        )
        .unwrap()
    }

    fn env(pairs: &[(&str, &str)]) -> ProxyEnvironment {
        ProxyEnvironment::from_vars(pairs.iter().map(|(n, v)| (n.to_string(), v.to_string())))
    }

    fn shown(routes: &[Route]) -> Vec<String> {
        routes
            .iter()
            .map(|r| match r {
                Route::Direct => "direct".to_string(),
                Route::Proxy(p) => p.to_string(),
            })
            .collect()
    }

    fn routes(u: &str, settings: &ProxySettings, e: &ProxyEnvironment) -> Vec<String> {
        shown(&route(&url(u), settings, e).unwrap())
    }

    #[test]
    fn no_proxy_is_always_direct_whatever_the_environment() {
        let settings = ProxySettings::new(ProxyUsage::NoProxy, None, None).unwrap();
        let e = env(&[("http_proxy", "p:1"), ("all_proxy", "q:2")]);
        assert_eq!(routes("http://a.example/f", &settings, &e), ["direct"]);
    }

    #[test]
    fn override_tries_the_list_in_order_for_the_urls_scheme() {
        let settings = overriding("first:3128 socks5://second:1080 https=tls-only:8443", None);
        let e = ProxyEnvironment::default();
        assert_eq!(
            routes("http://a.example/f", &settings, &e),
            ["http://first:3128", "socks5://second:1080"]
        );
        assert_eq!(
            routes("https://a.example/f", &settings, &e),
            ["http://tls-only:8443"]
        );
    }

    #[test]
    fn override_bypass_goes_direct_and_ignores_the_environment() {
        let settings = overriding("p:3128", Some("<local> *.corp"));
        let e = env(&[("no_proxy", "*")]);
        assert_eq!(routes("http://intranet/f", &settings, &e), ["direct"]);
        assert_eq!(
            routes("https://files.corp:8443/f", &settings, &e),
            ["direct"]
        );
        assert_eq!(
            routes("http://a.example/f", &settings, &e),
            ["http://p:3128"]
        );
    }

    #[test]
    fn override_without_a_proxy_for_the_scheme_goes_direct() {
        let settings = overriding("https=p:3128", None);
        let e = ProxyEnvironment::default();
        assert_eq!(routes("http://a.example/f", &settings, &e), ["direct"]);
    }

    #[test]
    fn a_bad_entry_fails_even_urls_it_does_not_apply_to() {
        let settings = overriding("https=p:0 ok:1", Some("<local>"));
        let err = route(
            &url("http://a.example/"),
            &settings,
            &ProxyEnvironment::default(),
        )
        .unwrap_err();
        assert!(err.to_string().contains("\"https=p:0\""), "{err}");
        assert_eq!(err.code(), crate::codes::BG_E_INVALID_PROXY_INFO);
        let settings = overriding("ok:1", Some("a.*.b"));
        assert!(route(&url("http://x/"), &settings, &ProxyEnvironment::default()).is_err());
    }

    #[test]
    fn preconfig_uses_the_schemes_variable_then_all_proxy() {
        let settings = ProxySettings::default();
        let e = env(&[
            ("HTTPS_PROXY", "http://secure:3129/"),
            ("all_proxy", "socks5h://u:pw@s:1080"),
        ]);
        assert_eq!(
            routes("https://a.example/", &settings, &e),
            ["http://secure:3129"]
        );
        let got = route(&url("http://a.example/"), &settings, &e).unwrap();
        let [Route::Proxy(proxy)] = got.as_slice() else {
            panic!("{got:?}")
        };
        assert_eq!(proxy.kind, ProxyKind::Socks5);
        assert_eq!(proxy.auth.as_ref().unwrap().password.expose(), "pw");
    }

    #[test]
    fn preconfig_without_variables_or_with_no_proxy_match_is_direct() {
        let settings = ProxySettings::default();
        assert_eq!(
            routes("http://a.example/", &settings, &ProxyEnvironment::default()),
            ["direct"]
        );
        let e = env(&[("http_proxy", "p:1"), ("NO_PROXY", "localhost,127.0.0.0/8")]);
        assert_eq!(routes("http://127.0.0.1:8080/", &settings, &e), ["direct"]);
        assert_eq!(routes("http://localhost/", &settings, &e), ["direct"]);
        assert_eq!(routes("http://a.example/", &settings, &e), ["http://p:1"]);
    }

    #[test]
    fn a_bad_variable_names_itself_without_the_password() {
        let settings = ProxySettings::default();
        let e = env(&[("https_proxy", "https://u:hunter2@p:1")]);
        let err = route(&url("https://a/"), &settings, &e)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("https_proxy") && err.contains("u:***@p:1"),
            "{err}"
        );
        assert!(!err.contains("hunter2"), "{err}");
    }

    #[test]
    fn ipv6_hosts_are_matched_without_brackets() {
        let settings = overriding("p:1", Some("::1"));
        assert_eq!(
            routes(
                "http://[::1]:8080/",
                &settings,
                &ProxyEnvironment::default()
            ),
            ["direct"]
        );
    }

    proptest::proptest! {
        #[test]
        fn routing_arbitrary_lists_never_panics_and_never_returns_nothing(
            list in "[a-z0-9:/@=%.;, *<>\\[\\]-]{0,60}",
            bypass in "[a-z0-9:.;, *<>\\[\\]-]{0,40}",
            host in "[a-z0-9.-]{1,20}",
            https: bool,
        ) {
            let settings = ProxySettings::new(ProxyUsage::Override, Some(list), Some(bypass)).unwrap();
            let scheme = if https { "https" } else { "http" };
            if let Ok(u) = Url::parse(&format!("{scheme}://{host}/")) {
                if let Ok(routes) = route(&u, &settings, &ProxyEnvironment::default()) {
                    proptest::prop_assert!(!routes.is_empty());
                }
            }
        }
    }
}
