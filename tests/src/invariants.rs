//! The job contract's invariants, checked after every operation on a [`World`](crate::world):
//! by the `engine_ops` fuzz target, the state-machine property test and the exhaustive
//! explorer alike. docs/model.md lists them with where each is checked.
//!
//! Each check returns `Err` with the invariant's name and what broke it; nothing here panics,
//! so a fuzzer or a property test reports the message.

use std::collections::{BTreeMap, BTreeSet};

use backhaul_core::job::state::transition;
use backhaul_core::job::{Outcome, Trigger};
use backhaul_core::{ConnId, HResult, JobEvent, JobId, JobState};

use crate::sim::{Sim, Trace};
use crate::world::Op;

/// What the checker remembers between operations.
#[derive(Debug, Clone)]
pub struct Checker {
    events_seen: usize,
    trace_seen: usize,
    error_count: u32,
    last_state: JobState,
    /// Connections whose certificate is accepted: (host, port) accepted so far, per connection.
    conns: BTreeMap<ConnId, (String, u16, bool)>,
    verdict_for: BTreeSet<ConnId>,
    accepted_servers: BTreeSet<(String, u16)>,
    /// Files with a failed write since their temp file was last opened.
    write_failed: BTreeSet<usize>,
}

/// The job as it was just before an operation: what a command is judged against.
#[derive(Debug, Clone, Copy)]
pub struct Before {
    state: JobState,
    empty: bool,
    all_done: bool,
}

impl Checker {
    /// A checker for `job`, starting from the simulation as it is now (it reads the trace so
    /// far to learn the open connections and accepted servers).
    pub fn new(sim: &Sim, job: JobId) -> Self {
        let view = sim.engine.job(job).expect("the job exists");
        let mut checker = Self {
            events_seen: sim.events.len(),
            trace_seen: 0,
            error_count: view.error_count(),
            last_state: view.state(),
            conns: BTreeMap::new(),
            verdict_for: BTreeSet::new(),
            accepted_servers: BTreeSet::new(),
            write_failed: BTreeSet::new(),
        };
        // The history was checked when it happened; this only rebuilds what it left.
        let _ = checker.trace_rules(sim);
        checker.trace_seen = sim.trace.len();
        checker
    }

    /// What a command will be judged against: the job just before it.
    pub fn snapshot(&self, sim: &Sim, job: JobId) -> Before {
        let view = sim.engine.job(job).expect("the job exists");
        let files = view.files();
        Before {
            state: view.state(),
            empty: files.is_empty(),
            all_done: files.iter().all(|f| f.progress.completed),
        }
    }

    /// Checks every invariant after `op` (which returned `result`), and advances the history.
    pub fn check(
        &mut self,
        sim: &Sim,
        job: JobId,
        op: Op,
        before: Before,
        result: Option<Result<(), HResult>>,
    ) -> Result<(), String> {
        let changes = self.state_changes(sim, job);
        if let Some(result) = result {
            command_matches_table(op, before, result, &changes)?;
        }
        every_change_is_a_table_move(self.last_state, &changes)?;
        let view = sim.engine.job(job).expect("jobs are never forgotten");
        let state = view.state();
        if self.last_state.is_final() && state != self.last_state {
            return Err(format!(
                "final-stays-final: {} became {state}",
                self.last_state
            ));
        }
        if view.error_count() < self.error_count {
            return Err(format!(
                "error-count-monotonic: {} went down to {}",
                self.error_count,
                view.error_count()
            ));
        }
        self.error_count = view.error_count();
        self.last_state = state;
        error_available_exactly_in_error_states(sim, job)?;
        progress_is_consistent(sim, job)?;
        files_appear_only_when_complete(sim, job)?;
        no_temp_file_after_cancel_or_acknowledge(sim, job)?;
        remote_names_are_http_without_userinfo(sim, job)?;
        self.trace_rules(sim)
    }

    fn state_changes(&mut self, sim: &Sim, job: JobId) -> Vec<(JobState, JobState)> {
        let changes = sim.events[self.events_seen..]
            .iter()
            .filter_map(|e| match e {
                JobEvent::StateChanged { job: j, from, to } if *j == job => Some((*from, *to)),
                _ => None,
            })
            .collect();
        self.events_seen = sim.events.len();
        changes
    }

    /// no-request-before-verdict and checkpoint-behind-data: the trace since the last check.
    fn trace_rules(&mut self, sim: &Sim) -> Result<(), String> {
        for item in &sim.trace[self.trace_seen..] {
            match item {
                Trace::Connect {
                    conn,
                    host,
                    port,
                    tls,
                } => {
                    self.conns.insert(*conn, (host.clone(), *port, *tls));
                }
                Trace::Validate { conn } => {
                    self.verdict_for.remove(conn);
                }
                Trace::Verdict { conn, accepted } => {
                    if *accepted {
                        self.verdict_for.insert(*conn);
                        if let Some((host, port, _)) = self.conns.get(conn) {
                            self.accepted_servers.insert((host.clone(), *port));
                        }
                    }
                }
                Trace::Send { conn } => {
                    let Some((host, port, tls)) = self.conns.get(conn) else {
                        return Err(format!(
                            "send-on-open-connection: {conn:?} was never opened"
                        ));
                    };
                    let cached = self.accepted_servers.contains(&(host.clone(), *port));
                    if *tls && !self.verdict_for.contains(conn) && !cached {
                        return Err(format!(
                            "no-request-before-verdict: a request went to {host}:{port} on \
                             {conn:?} before the callback accepted the server"
                        ));
                    }
                }
                Trace::WriteFailed { file, .. } => {
                    self.write_failed.insert(*file as usize);
                }
                Trace::TempOpened { file, .. } => {
                    self.write_failed.remove(&(*file as usize));
                }
                Trace::Persist { job, files } => {
                    for (i, (recorded, on_disk)) in files.iter().enumerate() {
                        // After a failed write the record may run ahead: reopening the temp file
                        // cuts the count back to what it holds (`handle_temp_opened`).
                        if recorded > on_disk && !self.write_failed.contains(&i) {
                            return Err(format!(
                                "checkpoint-behind-data: job {job:?} file {i} records {recorded} \
                                 bytes but its temp file holds {on_disk}"
                            ));
                        }
                    }
                }
            }
        }
        self.trace_seen = sim.trace.len();
        Ok(())
    }
}

/// state-legal-for-command: a command's code and first state change are what
/// `job::state::transition` says for the state it ran in.
fn command_matches_table(
    op: Op,
    before: Before,
    result: Result<(), HResult>,
    changes: &[(JobState, JobState)],
) -> Result<(), String> {
    let trigger = match op {
        Op::Resume => Trigger::Resume {
            empty: before.empty,
            all_done: before.all_done,
        },
        Op::Suspend => Trigger::Suspend,
        Op::Cancel => Trigger::Cancel,
        Op::Complete => Trigger::Complete,
        _ => return Ok(()),
    };
    let expected = transition(before.state, trigger);
    match (expected, result) {
        (Outcome::Refuse(code), Err(got)) if code == got => {
            if changes.is_empty() {
                Ok(())
            } else {
                Err(format!(
                    "state-legal-for-command: refused {op:?} still changed the state: {changes:?}"
                ))
            }
        }
        (Outcome::Refuse(code), r) => Err(format!(
            "state-legal-for-command: {op:?} in {} returned {r:?}, the table says {}",
            before.state,
            code.name_or_hex()
        )),
        (_, Err(code)) => Err(format!(
            "state-legal-for-command: {op:?} in {} was refused with {}, the table says {expected:?}",
            before.state,
            code.name_or_hex()
        )),
        (Outcome::Move(to), Ok(())) => match changes.first() {
            Some(&(from, first)) if from == before.state && first == to => Ok(()),
            other => Err(format!(
                "state-legal-for-command: {op:?} in {} should move to {to} first, saw {other:?}",
                before.state
            )),
        },
        (Outcome::Stay | Outcome::Ignore, Ok(())) => Ok(()),
    }
}

/// every-change-is-a-table-move: each `StateChanged` continues from the last state and is a
/// `Move` of some trigger in the table.
fn every_change_is_a_table_move(
    mut last: JobState,
    changes: &[(JobState, JobState)],
) -> Result<(), String> {
    for &(from, to) in changes {
        if from != last {
            return Err(format!(
                "every-change-is-a-table-move: a change from {from} follows state {last}"
            ));
        }
        let legal = Trigger::ALL
            .iter()
            .any(|t| transition(from, *t) == Outcome::Move(to));
        if !legal {
            return Err(format!(
                "every-change-is-a-table-move: no trigger moves {from} to {to}"
            ));
        }
        last = to;
    }
    Ok(())
}

/// error-available-in-error-states: `GetError` answers exactly in ERROR and TRANSIENT_ERROR.
fn error_available_exactly_in_error_states(sim: &Sim, job: JobId) -> Result<(), String> {
    let view = sim.engine.job(job).expect("job");
    let state = view.state();
    let has = view.error().is_ok();
    let should = matches!(state, JobState::Error | JobState::TransientError);
    if has != should {
        return Err(format!(
            "error-available-in-error-states: error() is {} in {state}",
            if has { "available" } else { "unavailable" }
        ));
    }
    Ok(())
}

/// progress-consistent: counts and bytes never exceed their totals; a completed file has its
/// size; TRANSFERRED and ACKNOWLEDGED (without a partial complete) mean every file is done.
fn progress_is_consistent(sim: &Sim, job: JobId) -> Result<(), String> {
    let view = sim.engine.job(job).expect("job");
    let p = view.progress();
    if p.files_transferred > p.files_total {
        return Err(format!("progress-consistent: {p:?}"));
    }
    for f in view.files() {
        let fp = f.progress;
        if fp.bytes_total != backhaul_core::SIZE_UNKNOWN && fp.bytes_transferred > fp.bytes_total {
            return Err(format!(
                "progress-consistent: file {} has {} of {} bytes",
                f.index, fp.bytes_transferred, fp.bytes_total
            ));
        }
        if fp.completed && fp.bytes_transferred != fp.bytes_total {
            return Err(format!(
                "progress-consistent: file {} is complete at {} of {} bytes",
                f.index, fp.bytes_transferred, fp.bytes_total
            ));
        }
    }
    if view.state() == JobState::Transferred && p.files_transferred != p.files_total {
        return Err(format!("progress-consistent: TRANSFERRED with {p:?}"));
    }
    Ok(())
}

/// nothing-at-local-name-before-complete: a local name holds nothing until Complete commits it
/// (or a commit failed back to TRANSFERRED), and then it holds the whole file.
fn files_appear_only_when_complete(sim: &Sim, job: JobId) -> Result<(), String> {
    let view = sim.engine.job(job).expect("job");
    let state = view.state();
    for f in view.files() {
        let Some(data) = sim.files.get(&f.local_name) else {
            continue;
        };
        if !matches!(state, JobState::Acknowledged | JobState::Transferred) {
            return Err(format!(
                "nothing-at-local-name-before-complete: {} exists while the job is {state}",
                f.local_name.display()
            ));
        }
        if !f.progress.completed || data.data.len() as u64 != f.progress.bytes_total {
            return Err(format!(
                "nothing-at-local-name-before-complete: {} appeared with {} bytes, incomplete",
                f.local_name.display(),
                data.data.len()
            ));
        }
    }
    Ok(())
}

/// no-temp-after-cancel: a CANCELLED job leaves no file at all; an ACKNOWLEDGED one leaves only
/// its local names.
fn no_temp_file_after_cancel_or_acknowledge(sim: &Sim, job: JobId) -> Result<(), String> {
    let view = sim.engine.job(job).expect("job");
    let state = view.state();
    let locals: Vec<_> = view.files().into_iter().map(|f| f.local_name).collect();
    let stray: Vec<_> = match state {
        JobState::Cancelled => sim.files.keys().collect(),
        JobState::Acknowledged => sim.files.keys().filter(|p| !locals.contains(p)).collect(),
        _ => return Ok(()),
    };
    if stray.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "no-temp-after-cancel: the job is {state} and {stray:?} remain"
        ))
    }
}

/// redirect-target-http: every remote name (after a reported redirect too) is http(s) and
/// carries no user name or password.
fn remote_names_are_http_without_userinfo(sim: &Sim, job: JobId) -> Result<(), String> {
    let view = sim.engine.job(job).expect("job");
    for f in view.files() {
        let url = url::Url::parse(&f.remote_name).map_err(|e| {
            format!(
                "redirect-target-http: {} does not parse: {e}",
                f.remote_name
            )
        })?;
        if !matches!(url.scheme(), "http" | "https")
            || !url.username().is_empty()
            || url.password().is_some()
        {
            return Err(format!(
                "redirect-target-http: file {} points at {}",
                f.index, f.remote_name
            ));
        }
    }
    Ok(())
}
