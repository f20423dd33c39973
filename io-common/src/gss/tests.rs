//! The context store without a KDC: a first leg with no ticket reports the library's words and
//! keeps nothing; a continuation for a connection with no context says so. (The legs that reach
//! a KDC are exercised by tests/interop/kerberos.sh.)

use super::*;

/// A credential cache that cannot hold a ticket, and a configuration with no realm, for this
/// process: the GSS-API must fail before any network I/O.
fn without_ticket() {
    // Every test here wants the same values, so setting them from parallel tests is harmless.
    std::env::set_var("KRB5CCNAME", "FILE:/nonexistent/backhaul-test/ccache");
    std::env::set_var("KRB5_CONFIG", "/dev/null");
}

fn request(conn: u64, input: Option<&[u8]>) -> TokenRequest {
    TokenRequest {
        job: JobId(1),
        conn: ConnId(conn),
        target: AuthTarget::Server,
        service: "HTTP@localhost".to_string(),
        input: input.map(Bytes::copy_from_slice),
    }
}

fn result_of(input: Input) -> Result<TokenStep, String> {
    match input {
        Input::SecurityToken { result, .. } => result,
        other => panic!("not a SecurityToken input: {other:?}"),
    }
}

#[test]
fn a_first_leg_without_a_ticket_reports_the_library_error_and_keeps_no_context() {
    without_ticket();
    let contexts = GssContexts::new();
    let work = contexts.step_work(request(7, None));
    assert_eq!(contexts.len(), 1, "the running step is accounted for");
    let error = result_of(work()).expect_err("no ticket, no token");
    assert!(!error.is_empty());
    assert!(contexts.is_empty(), "a failed context is not kept");
}

#[test]
fn a_continuation_with_no_kept_context_fails_and_keeps_nothing() {
    let contexts = GssContexts::new();
    let work = contexts.step_work(request(8, Some(b"server token")));
    let error = result_of(work()).expect_err("nothing to continue");
    assert!(error.contains("no Negotiate context"), "{error}");
    assert!(contexts.is_empty());
}

#[test]
fn closing_a_connection_forgets_its_contexts_only() {
    let contexts = GssContexts::new();
    let _first = contexts.step_work(request(9, None));
    let _second = contexts.step_work(request(10, None));
    contexts.close(ConnId(9));
    assert_eq!(contexts.len(), 1);
}
