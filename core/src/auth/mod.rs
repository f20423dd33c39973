//! HTTP authentication for BITS jobs: the credentials `SetCredentials` holds, the challenges a
//! 401 or 407 carries, and the answers (Basic, Digest) — all pure: no clock, and the only
//! randomness (Digest's client nonce) is handed in by the caller.
//!
//! - [`Credentials`] / [`CredentialSet`]: BITS' rules and codes, one slot per target and scheme.
//! - [`parse_challenges`] / [`parse_fields`]: `WWW-Authenticate` and `Proxy-Authenticate`.
//! - [`choose`]: the strongest offered scheme the job holds credentials for
//!   (Negotiate > NTLM > Digest > Basic; Passport is never answered).
//! - [`basic_authorization`] and [`DigestState`]: the `Authorization` values.
//! - [`ConnectionContext`]: NTLM and Negotiate, which authenticate a connection (`sspi`).
//!
//! Secrets live in [`Secret`]: zeroed on drop, printed as `***`, serialized only for the job
//! store. `docs/auth.md` explains the choices.

mod basic;
mod challenge;
mod connection;
mod credentials;
mod digest;
mod kind;
mod ntlm_challenge;
mod secret;
mod select;

pub use self::basic::basic_authorization;
pub use self::challenge::{
    parse_challenges, parse_fields, Challenge, ChallengeError, ChallengeProblem,
};
pub use self::connection::{ConnectionContext, ContextError, Step};
pub use self::credentials::{
    CredentialSet, Credentials, RemoveOutcome, MAX_PASSWORD, MAX_USER_NAME,
};
pub use self::digest::{is_stale, DigestAlgorithm, DigestError, DigestQop, DigestState, Update};
pub use self::kind::{AuthScheme, AuthTarget};
pub use self::secret::Secret;
pub use self::select::{choose, Chosen};
