//! Writes the test PKI's certificates as files, for a real HTTPS server (the nginx interop
//! suite, `tests/interop/nginx.sh`) to present the same certificate problems the in-process
//! conformance tests do.
//!
//! Usage: `test_pki_files DIR CDP_URL`. For each of `good`, `expired`, `not-yet-valid`,
//! `wrong-host`, `client-auth-only` and `revoked`, a CA of its own and a leaf for `localhost` /
//! `127.0.0.1` with that problem ([`LeafProblem`]), written by
//! [`TestPki::write_server_files`] as `DIR/NAME/ca.pem`, `chain.pem` (leaf then CA) and
//! `key.pem` (the leaf's PKCS#8 key). The `revoked` leaf is otherwise good and carries the CRL
//! distribution point `CDP_URL`; `DIR/revoked/crl.der` is its CA's CRL revoking it, and
//! `DIR/revoked/crl-clean.der` the same CA's CRL revoking nothing. Exit 0 on success, 1 on an
//! error, 2 on bad usage.

use std::path::Path;
use std::process::ExitCode;

use backhaul_tests::{LeafProblem, TestPki};

/// The directories written, and what is wrong with each leaf (`None` for `revoked`, whose
/// problem is its CRL).
const SETS: [(&str, LeafProblem); 5] = [
    ("good", LeafProblem::None),
    ("expired", LeafProblem::Expired),
    ("not-yet-valid", LeafProblem::NotYetValid),
    ("wrong-host", LeafProblem::WrongHost),
    ("client-auth-only", LeafProblem::ClientAuthOnly),
];

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [dir, cdp] = args.as_slice() else {
        eprintln!("usage: test_pki_files DIR CDP_URL");
        return ExitCode::from(2);
    };
    match write_all(Path::new(dir), cdp) {
        Ok(()) => ExitCode::SUCCESS,
        Err(why) => {
            eprintln!("test_pki_files: {why}");
            ExitCode::FAILURE
        }
    }
}

fn write_all(dir: &Path, cdp: &str) -> Result<(), String> {
    for (name, problem) in SETS {
        let pki = TestPki::with_problem(problem);
        write_set(&pki, &dir.join(name))?;
    }
    let revoked = TestPki::with_crl_distribution_point(cdp);
    let sub = dir.join("revoked");
    write_set(&revoked, &sub)?;
    write(&sub.join("crl.der"), &revoked.crl(true))?;
    write(&sub.join("crl-clean.der"), &revoked.crl(false))
}

fn write_set(pki: &TestPki, sub: &Path) -> Result<(), String> {
    pki.write_server_files(sub)
        .map_err(|e| format!("{}: {e}", sub.display()))
}

fn write(path: &Path, bytes: &[u8]) -> Result<(), String> {
    std::fs::write(path, bytes).map_err(|e| format!("{}: {e}", path.display()))
}
