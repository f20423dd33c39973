//! Proxies: a job's proxy settings (`SetProxySettings`), the route a URL takes, and the SOCKS5
//! handshake. Pure: the driver hands in the environment, core decides, the driver connects.
//!
//! - [`ProxySettings`] holds what the application set, checked by BITS' argument rules.
//! - [`route`] turns the settings, the environment ([`ProxyEnvironment`], for PRECONFIG) and a
//!   URL into the ordered [`Route`]s to try. This is where the lists are parsed: a bad entry is
//!   a [`ProxyError`], which the engine records as `BG_E_INVALID_PROXY_INFO` (BITS too only finds
//!   invalid proxy settings at run time).
//! - [`socks5::Socks5Handshake`] is the sans-IO SOCKS5 client (RFC 1928, RFC 1929).
//!
//! HTTP proxies are spoken to with the [`http`](crate::http) codec: absolute-form requests for
//! `http://` URLs, a CONNECT tunnel for `https://` ones. docs/proxies.md has the user's view.

mod bypass;
mod endpoint;
mod env;
mod list;
mod route;
mod settings;
pub mod socks5;

pub use self::endpoint::{ProxyAuth, ProxyEndpoint, ProxyKind, ProxyPassword};
pub use self::env::ProxyEnvironment;
pub use self::route::{route, Route};
pub use self::settings::{ProxySettings, ProxyUsage, MAX_PROXY_LIST_CHARS};

use crate::codes::{self, HResult};

/// Why a job's proxy settings cannot route a URL. Any of these fails the job with
/// [`ProxyError::code`], `BG_E_INVALID_PROXY_INFO`.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ProxyError {
    /// An entry of a list or variable does not parse. `entry` has any password replaced by `***`.
    #[error("{place}: entry {entry:?} is not valid: {reason}")]
    InvalidEntry {
        /// Where the entry is: "the proxy list", "the bypass list", "environment variable NO_PROXY"…
        place: String,
        /// The entry, redacted.
        entry: String,
        /// What is wrong with it.
        reason: String,
    },
    /// OVERRIDE with a list that holds no usable entry.
    #[error("the OVERRIDE proxy list has no proxy for http or https")]
    EmptyProxyList,
    /// AUTODETECT was stored (e.g. in an old record) but WPAD is not implemented.
    #[error("proxy usage AUTODETECT (WPAD) is not implemented")]
    AutodetectNotImplemented,
    /// The URL is not one a proxy can route: not http/https, or without a host.
    #[error("cannot route {0}: only http:// and https:// URLs with a host")]
    UnroutableUrl(String),
}

impl ProxyError {
    /// The code the job's error gets: `BG_E_INVALID_PROXY_INFO`.
    pub fn code(&self) -> HResult {
        codes::BG_E_INVALID_PROXY_INFO
    }
}
