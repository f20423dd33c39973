//! [`Credentials`] (one `SetCredentials` call, validated with BITS' rules) and the job's
//! [`CredentialSet`] (one slot per target and scheme).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::{basic_authorization, AuthScheme, AuthTarget, DigestState, Secret};
use crate::codes::{
    HResult, BG_E_PASSWORD_TOO_LARGE, BG_E_USERNAME_TOO_LARGE, E_INVALIDARG, S_FALSE, S_OK,
};
use crate::BitsError;

/// Longest user name, in UTF-16 code units (Windows' "characters"): `BG_E_USERNAME_TOO_LARGE`
/// beyond.
pub const MAX_USER_NAME: usize = 300;

/// Longest password, in UTF-16 code units: `BG_E_PASSWORD_TOO_LARGE` beyond.
///
/// BITS' documents disagree: `BG_BASIC_CREDENTIALS` says 65,536 characters, the return-value
/// table says the password "cannot exceed 65535". backhaul takes the smaller: every password it
/// accepts, BITS accepts too, and a job record never holds one BITS would refuse.
pub const MAX_PASSWORD: usize = 65_535;

/// One `SetCredentials` call: a target, a scheme, and a user name and password, checked with
/// BITS' rules by [`Credentials::new`].
///
/// `Debug` shows the user name (it is an identity, not a secret) and `***` for the password.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Credentials {
    target: AuthTarget,
    scheme: AuthScheme,
    user: Option<String>,
    password: Option<Secret>,
}

impl Credentials {
    /// Checks one `SetCredentials` call, in BITS' order:
    ///
    /// - `BG_E_USERNAME_TOO_LARGE` for a user name over [`MAX_USER_NAME`];
    /// - `BG_E_PASSWORD_TOO_LARGE` for a password over [`MAX_PASSWORD`];
    /// - `E_INVALIDARG` when Basic, Digest or Passport lack a user name or a password (NULL;
    ///   an empty string is a value), when NTLM or Negotiate have one but not the other (both
    ///   absent means the logged-on user), when a string holds NUL (BITS' strings cannot), and
    ///   for Basic when the user name holds `:` or either holds a control character
    ///   (RFC 7617 §2: they could not be sent).
    pub fn new(
        target: AuthTarget,
        scheme: AuthScheme,
        user: Option<String>,
        password: Option<Secret>,
    ) -> Result<Self, BitsError> {
        if let Some(user) = &user {
            let len = user.encode_utf16().count();
            if len > MAX_USER_NAME {
                return Err(BitsError::new(
                    BG_E_USERNAME_TOO_LARGE,
                    format!(
                        "the user name has {len} characters; at most {MAX_USER_NAME} are allowed"
                    ),
                ));
            }
        }
        if let Some(password) = &password {
            let len = password.expose().encode_utf16().count();
            if len > MAX_PASSWORD {
                return Err(BitsError::new(
                    BG_E_PASSWORD_TOO_LARGE,
                    format!(
                        "the password has {len} characters; at most {MAX_PASSWORD} are allowed"
                    ),
                ));
            }
        }
        check_presence(scheme, user.is_some(), password.is_some())?;
        check_characters(
            scheme,
            user.as_deref(),
            password.as_ref().map(Secret::expose),
        )?;
        Ok(Self {
            target,
            scheme,
            user,
            password,
        })
    }

    /// Implicit credentials: NTLM or Negotiate as the logged-on user (Kerberos from the
    /// default credential cache).
    pub fn implicit(target: AuthTarget, scheme: AuthScheme) -> Result<Self, BitsError> {
        Self::new(target, scheme, None, None)
    }

    /// Server or proxy.
    pub fn target(&self) -> AuthTarget {
        self.target
    }

    /// The scheme these answer.
    pub fn scheme(&self) -> AuthScheme {
        self.scheme
    }

    /// The user name; `None` for implicit credentials.
    pub fn user(&self) -> Option<&str> {
        self.user.as_deref()
    }

    /// True for "the logged-on user": NTLM or Negotiate with no user name and no password.
    pub fn is_implicit(&self) -> bool {
        self.user.is_none() && self.password.is_none()
    }

    /// The password, for the code that answers a challenge (and later the NTLM/Negotiate
    /// context). No public getter exists, as in BITS ("there is no method to retrieve
    /// credentials that you have set"): the answers below use it in place.
    pub(crate) fn password(&self) -> Option<&Secret> {
        self.password.as_ref()
    }

    /// The Basic answer for these credentials; `None` for implicit ones.
    pub fn basic_authorization(&self) -> Option<Secret> {
        Some(basic_authorization(self.user.as_deref()?, self.password()?))
    }

    /// The next Digest answer with `state` for a request of `method` to `uri` (counting it);
    /// `None` for implicit credentials. See [`DigestState::authorization`].
    pub fn digest_authorization(
        &self,
        state: &mut DigestState,
        method: &str,
        uri: &str,
        cnonce: &str,
    ) -> Option<Secret> {
        let user = self.user.as_deref()?;
        Some(state.authorization(method, uri, user, self.password()?, cnonce))
    }
}

fn check_presence(scheme: AuthScheme, has_user: bool, has_password: bool) -> Result<(), BitsError> {
    let refusal = match (scheme.allows_implicit(), has_user, has_password) {
        (_, true, true) | (true, false, false) => return Ok(()),
        (false, _, _) => format!(
            "{scheme} credentials need a user name and a password (an empty string is allowed, \
             an absent one is not)"
        ),
        (true, _, _) => format!(
            "{scheme} credentials need both a user name and a password, or neither (the \
             logged-on user)"
        ),
    };
    Err(BitsError::new(E_INVALIDARG, refusal))
}

fn check_characters(
    scheme: AuthScheme,
    user: Option<&str>,
    password: Option<&str>,
) -> Result<(), BitsError> {
    let invalid = |what: String| Err(BitsError::new(E_INVALIDARG, what));
    for (what, value) in [("user name", user), ("password", password)] {
        let Some(value) = value else { continue };
        if value.contains('\0') {
            return invalid(format!("the {what} contains a NUL character"));
        }
        if scheme == AuthScheme::Basic && value.chars().any(char::is_control) {
            return invalid(format!(
                "the {what} contains a control character, which Basic cannot send (RFC 7617 §2)"
            ));
        }
    }
    if scheme == AuthScheme::Basic && user.is_some_and(|u| u.contains(':')) {
        return invalid(
            "the user name contains ':', which Basic cannot send: the server would split the \
             name there (RFC 7617 §2)"
                .to_string(),
        );
    }
    Ok(())
}

/// What [`CredentialSet::remove`] found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RemoveOutcome {
    /// Credentials were set and are gone: `S_OK`.
    Removed,
    /// Nothing was set for that target and scheme: `S_FALSE`.
    NothingSet,
}

impl RemoveOutcome {
    /// `S_OK` or `S_FALSE`, as `RemoveCredentials` returns.
    pub fn code(self) -> HResult {
        match self {
            Self::Removed => S_OK,
            Self::NothingSet => S_FALSE,
        }
    }
}

/// A job's credentials: one slot per (target, scheme). `Debug` never shows a password.
///
/// Serialized as a list (the job store persists it); loading re-checks every entry with
/// [`Credentials::new`] and refuses two entries for one slot.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(into = "Vec<Credentials>", try_from = "Vec<Credentials>")]
pub struct CredentialSet {
    slots: BTreeMap<(AuthTarget, AuthScheme), Credentials>,
}

impl CredentialSet {
    /// No credentials.
    pub fn new() -> Self {
        Self::default()
    }

    /// `SetCredentials`: fills the slot for the credentials' target and scheme, replacing what
    /// was there.
    pub fn set(&mut self, credentials: Credentials) {
        self.slots
            .insert((credentials.target, credentials.scheme), credentials);
    }

    /// `RemoveCredentials`: empties one slot.
    pub fn remove(&mut self, target: AuthTarget, scheme: AuthScheme) -> RemoveOutcome {
        match self.slots.remove(&(target, scheme)) {
            Some(_) => RemoveOutcome::Removed,
            None => RemoveOutcome::NothingSet,
        }
    }

    /// Drops every credential (`TakeOwnership`).
    pub fn clear(&mut self) {
        self.slots.clear();
    }

    /// The credentials set for exactly this target and scheme.
    pub fn get(&self, target: AuthTarget, scheme: AuthScheme) -> Option<&Credentials> {
        self.slots.get(&(target, scheme))
    }

    /// True when nothing is set.
    pub fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }

    /// How many slots are filled.
    pub fn len(&self) -> usize {
        self.slots.len()
    }

    /// Every credential, by target then scheme.
    pub fn iter(&self) -> impl Iterator<Item = &Credentials> + '_ {
        self.slots.values()
    }

    /// True when some credentials with a user name are set for `target` (implicit ones do not
    /// count).
    pub fn has_explicit(&self, target: AuthTarget) -> bool {
        self.iter().any(|c| c.target == target && !c.is_implicit())
    }
}

impl From<CredentialSet> for Vec<Credentials> {
    fn from(set: CredentialSet) -> Self {
        set.slots.into_values().collect()
    }
}

impl TryFrom<Vec<Credentials>> for CredentialSet {
    type Error = BitsError;

    fn try_from(list: Vec<Credentials>) -> Result<Self, Self::Error> {
        let mut set = CredentialSet::new();
        for credentials in list {
            let slot = (credentials.target, credentials.scheme);
            if set.slots.insert(slot, credentials).is_some() {
                return Err(BitsError::new(
                    E_INVALIDARG,
                    format!("two credentials for {} {}", slot.0, slot.1),
                ));
            }
        }
        Ok(set)
    }
}

/// The stored form, checked again on load: a record edited by hand or written by an older
/// version cannot bring in credentials `SetCredentials` would refuse.
#[derive(Deserialize)]
struct StoredCredentials {
    target: AuthTarget,
    scheme: AuthScheme,
    user: Option<String>,
    password: Option<Secret>,
}

impl<'de> Deserialize<'de> for Credentials {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let s = StoredCredentials::deserialize(deserializer)?;
        Credentials::new(s.target, s.scheme, s.user, s.password).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests;
