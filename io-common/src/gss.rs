//! `Action::SecurityToken`: Negotiate as the logged-on user, through the system's GSS-API
//! (MIT krb5's `libgssapi_krb5`, by way of the `libgssapi` crate).
//!
//! The library reads the default credential cache (`KRB5CCNAME`) and the configuration
//! (`KRB5_CONFIG`) itself, and asks the KDC for the service ticket: file and network work, so
//! each step runs off the engine's thread (the driver's [`Io::run_off_thread`]) and comes back
//! as `Input::SecurityToken`. One client context per (job, connection, target) is kept here
//! between legs and dropped when core closes the connection ([`GssContexts::close`]) or the
//! exchange completes.
//!
//! The mechanism is SPNEGO carrying Kerberos (what browsers and curl send for `Negotiate`).
//! No mutual authentication is asked for: the server's final token is not needed (core does not
//! wait for it), and the server is authenticated by TLS when that matters. No delegation: the
//! ticket-granting ticket never leaves this host.
//!
//! [`Io::run_off_thread`]: crate::Io::run_off_thread

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use backhaul_core::auth::AuthTarget;
use backhaul_core::{ConnId, Input, JobId, TokenStep};
use bytes::Bytes;
use libgssapi::context::{ClientCtx, CtxFlags, SecurityContext};
use libgssapi::credential::{Cred, CredUsage};
use libgssapi::name::Name;
use libgssapi::oid::{OidSet, GSS_MECH_KRB5, GSS_MECH_SPNEGO, GSS_NT_HOSTBASED_SERVICE};

use crate::clock;
use crate::OffThread;

mod ccache;

type Key = (JobId, ConnId, AuthTarget);

/// The client contexts between legs. `None`: a step is running on another thread (it holds the
/// context meanwhile); a missing key: the connection was closed, so the step's context is
/// dropped instead of kept.
#[derive(Clone, Debug, Default)]
pub struct GssContexts {
    contexts: Arc<Mutex<HashMap<Key, Option<ClientCtx>>>>,
}

/// One `Action::SecurityToken`.
#[derive(Clone, Debug)]
pub struct TokenRequest {
    /// The job.
    pub job: JobId,
    /// The connection.
    pub conn: ConnId,
    /// Server or proxy.
    pub target: AuthTarget,
    /// `HTTP@host`.
    pub service: String,
    /// The server's token; `None` starts a new context.
    pub input: Option<Bytes>,
}

impl GssContexts {
    /// No contexts.
    pub fn new() -> Self {
        Self::default()
    }

    /// The blocking work for one step: run it with [`Io::run_off_thread`] and feed the input it
    /// returns.
    ///
    /// [`Io::run_off_thread`]: crate::Io::run_off_thread
    pub fn step_work(&self, request: TokenRequest) -> OffThread {
        let key = (request.job, request.conn, request.target);
        let kept = {
            let mut contexts = self.lock();
            if request.input.is_none() {
                contexts.insert(key, None); // a first leg starts over
                None
            } else {
                contexts.get_mut(&key).and_then(Option::take)
            }
        };
        let contexts = self.clone();
        Box::new(move || {
            let TokenRequest {
                job,
                conn,
                target,
                service,
                input,
            } = request;
            let result = contexts.run_step(key, kept, &service, input.as_deref());
            Input::SecurityToken {
                now: clock::now(),
                job,
                conn,
                target,
                result,
            }
        })
    }

    /// Forgets every context of `conn` (core closed it).
    pub fn close(&self, conn: ConnId) {
        self.lock().retain(|(_, c, _), _| *c != conn);
    }

    /// How many contexts are kept or running (for tests).
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    /// Whether no context is kept or running.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn run_step(
        &self,
        key: Key,
        kept: Option<ClientCtx>,
        service: &str,
        input: Option<&[u8]>,
    ) -> Result<TokenStep, String> {
        let fresh = match (kept, input) {
            (Some(ctx), _) => Ok(ctx),
            (None, None) => new_context(service),
            (None, Some(_)) => Err("no Negotiate context is kept for this connection".to_string()),
        };
        let mut ctx = match fresh {
            Ok(ctx) => ctx,
            Err(e) => {
                self.lock().remove(&key);
                return Err(e);
            }
        };
        let result = ctx.step(input, None);
        let mut contexts = self.lock();
        match result {
            Ok(token) => {
                let complete = ctx.is_complete();
                let token = token.map(|t| t.to_vec()).unwrap_or_default();
                // Keep the context for the next leg only while the connection is open.
                match contexts.get_mut(&key) {
                    Some(slot) if !complete => *slot = Some(ctx),
                    Some(_) => {
                        contexts.remove(&key);
                    }
                    None => {}
                }
                Ok(TokenStep { token, complete })
            }
            Err(e) => {
                contexts.remove(&key);
                Err(e.to_string())
            }
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<Key, Option<ClientCtx>>> {
        // A panic elsewhere leaves the map consistent (each change is one call).
        self.contexts.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// A SPNEGO client context for `service` (`HTTP@host`) with the default credential cache's
/// Kerberos credentials. Acquiring them first turns "no ticket" into its own clear error.
fn new_context(service: &str) -> Result<ClientCtx, String> {
    // A malformed FILE cache crashes MIT krb5 1.20 inside gss_acquire_cred (ccache.rs).
    if let Some(path) = ccache::default_file_cache() {
        ccache::check(&path)?;
    }
    let name = Name::new(service.as_bytes(), Some(GSS_NT_HOSTBASED_SERVICE))
        .map_err(|e| format!("the service name {service:?} is unusable: {e}"))?;
    let mechs = OidSet::singleton(GSS_MECH_KRB5).map_err(|e| e.to_string())?;
    let cred =
        Cred::acquire(None, None, CredUsage::Initiate, Some(&mechs)).map_err(|e| e.to_string())?;
    Ok(ClientCtx::new(
        Some(cred),
        name,
        CtxFlags::empty(),
        Some(GSS_MECH_SPNEGO),
    ))
}

#[cfg(test)]
mod tests;
