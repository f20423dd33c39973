//! `docs/job-states.md` is rendered from the one transition function; this test fails when the
//! file is stale. Regenerate with `BACKHAUL_BLESS=1 cargo test -p backhaul-tests --test job_states_doc`.

use backhaul_core::job::state::render_table;

const HEADER: &str = "# Job states and transitions

Generated from `core/src/job/state.rs` (`transition`, the only function that decides a job's
next state) by `tests/tests/job_states_doc.rs`. Do not edit by hand: run
`BACKHAUL_BLESS=1 cargo test -p backhaul-tests --test job_states_doc`.

Rows are triggers (application commands, scheduler decisions, transfer facts, timers), columns
are the state the job is in. A cell reads: **→ STATE** the job moves there; `stays` the call
succeeds and nothing changes; a code name the call is refused with that HRESULT and nothing
changes; `·` the fact does not apply in that state and is dropped (for example, a late response
after the job was suspended).

";

const FOOTER: &str = "
Notes:
- `complete` leaves the state as it is while the finished files are renamed into place; the
  last rename moves the job to ACKNOWLEDGED (`commits done`), a failed one to TRANSFERRED
  (`commit failed`), as BITS keeps a job whose rename failed in TRANSFERRED. The drivers'
  `complete` returns once the renames are done, and returns a failed rename's error (its code
  and description), as BITS' `Complete` does (`Engine::commit_result`).
- A failure reported after the last byte of the last file arrived (a write that failed) moves a
  TRANSFERRED job to TRANSIENT_ERROR or ERROR: the file was not, after all, transferred.
- `resume (no files)` is `BG_E_EMPTY` in every non-final state; BITS documents it for SUSPENDED.
";

#[test]
fn job_states_doc_is_current() {
    let doc = format!("{HEADER}{}{FOOTER}", render_table());
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/job-states.md");
    if std::env::var_os("BACKHAUL_BLESS").is_some() {
        std::fs::write(path, &doc).expect("write docs/job-states.md");
    }
    let current = std::fs::read_to_string(path).unwrap_or_default();
    assert!(
        current == doc,
        "docs/job-states.md is stale: run BACKHAUL_BLESS=1 cargo test -p backhaul-tests --test job_states_doc"
    );
}
