//! One job with two files in the simulation, driven by a small alphabet of operations
//! ([`Op`]): the application's commands, what the servers answer, the certificate callback's
//! verdicts, delivery of the next input, and time. The `engine_ops` fuzz target, the
//! state-machine property test and the exhaustive explorer all drive this same world and check
//! the same [`invariants`](crate::invariants) after every operation.
//!
//! File 0 is `http://files.test/a`; file 1 is `https://secure.test/b`, and the job has the
//! app's certificate validation callback registered, so every HTTPS connection asks for a
//! verdict before its first request.

use std::path::Path;
use std::time::Duration;

use backhaul_core::{HResult, JobId, JobState};

use crate::invariants::Checker;
use crate::sim::{Reply, Resource, Sim};

/// The plain-HTTP server.
pub const HTTP_HOST: &str = "files.test";
/// The HTTPS server.
pub const HTTPS_HOST: &str = "secure.test";
/// `(url, host, port, path, local name)` of the job's two files.
pub const FILES: [(&str, &str, u16, &str, &str); 2] = [
    ("http://files.test/a", HTTP_HOST, 80, "/a", "/dl/a"),
    ("https://secure.test/b", HTTPS_HOST, 443, "/b", "/dl/b"),
];
/// The retry delay the world's job uses (BITS' floor).
pub const RETRY_DELAY_SECS: u32 = 5;
/// The no-progress timeout the world's job uses: short, so retries end in ERROR quickly, and
/// no multiple of the retry delay, so the deadline never ties with a retry.
pub const NO_PROGRESS_SECS: u32 = 17;

/// How a server answers the next request for one file (then it serves normally again).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ServerReply {
    /// 200 with the whole file (a 206 when the request asks for a range).
    Ok,
    /// The connection drops after half the body: the next attempt resumes with a range (206).
    Truncated,
    /// 503 Service Unavailable (transient).
    Unavailable,
    /// 404 Not Found (fatal).
    NotFound,
    /// 302 to another path on the same server, which serves the same file.
    Redirect,
    /// The file changes (new ETag) and is served truncated: the next attempt restarts at 0.
    Changed,
    /// The request is accepted and never answered (the receive timeout fires).
    Silence,
    /// The connection is closed without an answer.
    Closed,
    /// The connection is reset after half the body.
    Reset,
}

impl ServerReply {
    /// Every reply.
    pub const ALL: [ServerReply; 9] = [
        Self::Ok,
        Self::Truncated,
        Self::Unavailable,
        Self::NotFound,
        Self::Redirect,
        Self::Changed,
        Self::Silence,
        Self::Closed,
        Self::Reset,
    ];
}

/// One operation on the world.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Op {
    /// `Resume`.
    Resume,
    /// `Suspend`.
    Suspend,
    /// `Cancel`.
    Cancel,
    /// `Complete`.
    Complete,
    /// The next request for file `file` (0 or 1) is answered with `reply`.
    Serve {
        /// Which file.
        file: u8,
        /// How.
        reply: ServerReply,
    },
    /// The server of file `file` refuses connections (`true`) or accepts them again.
    Refuse {
        /// Which file's server.
        file: u8,
        /// Refuse or accept.
        on: bool,
    },
    /// The certificate callback's next verdict: accept or reject.
    Verdict(bool),
    /// Writes to temp files fail with "disk full" (`true`) or succeed again.
    DiskFull(bool),
    /// Deliver the earliest pending input, or fire the engine's timer.
    Step,
    /// Step until the job is not QUEUED, CONNECTING or TRANSFERRING (at most 5,000 steps).
    Settle,
    /// Let this many seconds pass (delivering and firing everything due on the way).
    Advance(u32),
}

impl Op {
    /// Whether this is an application command (checked against the transition table).
    pub fn is_command(self) -> bool {
        matches!(self, Op::Resume | Op::Suspend | Op::Cancel | Op::Complete)
    }

    /// Decodes one operation from two bytes (for fuzzing: every byte pair is some operation).
    pub fn from_bytes(kind: u8, arg: u8) -> Op {
        match kind % 12 {
            0 => Op::Resume,
            1 => Op::Suspend,
            2 => Op::Cancel,
            3 => Op::Complete,
            4 | 5 => Op::Serve {
                file: arg & 1,
                reply: ServerReply::ALL[usize::from(arg >> 1) % ServerReply::ALL.len()],
            },
            6 => Op::Refuse {
                file: arg & 1,
                on: arg & 2 != 0,
            },
            7 => Op::Verdict(arg & 1 == 0),
            8 => Op::DiskFull(arg & 7 == 0),
            9 => Op::Step,
            10 => Op::Settle,
            // Up to ~4 minutes: past the retry delay, the receive timeout and the no-progress
            // timeout of the world's job.
            _ => Op::Advance(u32::from(arg)),
        }
    }
}

/// The world: the simulation, its one job, and the invariant checker watching it.
#[derive(Debug)]
pub struct World {
    /// The simulation.
    pub sim: Sim,
    /// The job.
    pub job: JobId,
    /// The invariant checker (its history: last state, error count, trace position).
    pub checker: Checker,
    versions: [u8; 2],
}

impl World {
    /// A fresh world from `seed`: both files served, the job SUSPENDED with both files, the
    /// validation callback registered, retry delay 5 s, no-progress timeout 60 s.
    pub fn new(seed: u64) -> Self {
        let mut sim = Sim::new(seed);
        // Records are checked as saved at the end of a drain; saved in order, as
        // `backhaul_io::Host` saves them, they are checked by tests/tests/sim_checkpoints.rs.
        sim.defer_persist = true;
        for (i, (_, host, port, path, _)) in FILES.iter().enumerate() {
            sim.serve(host, *port, path, content(i, 0));
            sim.serve(host, *port, "/moved", content(i, 0));
        }
        let job = sim.create_job("world");
        sim.command(|e| {
            let mut j = e.job_mut(job)?;
            for (url, _, _, _, local) in FILES {
                j.add_file(url, Path::new(local))?;
            }
            j.set_server_certificate_validation(true)?;
            j.set_minimum_retry_delay(RETRY_DELAY_SECS)?;
            j.set_no_progress_timeout(NO_PROGRESS_SECS)
        })
        .expect("the world's job is set up");
        let checker = Checker::new(&sim, job);
        Self {
            sim,
            job,
            checker,
            versions: [0; 2],
        }
    }

    /// The job's state.
    pub fn state(&self) -> JobState {
        self.sim.state(self.job)
    }

    /// Applies `op`; a command's result is returned (`Err` holds the refusal's code).
    pub fn apply(&mut self, op: Op) -> Option<Result<(), HResult>> {
        let job = self.job;
        let code = |r: Result<(), backhaul_core::BitsError>| r.map_err(|e| e.code());
        match op {
            Op::Resume => return Some(code(self.sim.command(|e| e.job_mut(job)?.resume()))),
            Op::Suspend => return Some(code(self.sim.command(|e| e.job_mut(job)?.suspend()))),
            Op::Cancel => return Some(code(self.sim.command(|e| e.job_mut(job)?.cancel()))),
            Op::Complete => {
                let r = self.sim.command(|e| e.job_mut(job)?.complete().map(|_| ()));
                return Some(code(r));
            }
            Op::Serve { file, reply } => self.script(usize::from(file & 1), reply),
            Op::Refuse { file, on } => {
                let (_, host, port, _, _) = FILES[usize::from(file & 1)];
                self.sim.refuse_connections(host, port, on);
            }
            Op::Verdict(accept) => {
                // A rejection with the code an app would give (CERT_E_UNTRUSTEDROOT).
                let verdict = if accept {
                    Ok(())
                } else {
                    Err(HResult(0x800B_0109))
                };
                self.sim.verdicts.push_back(verdict);
            }
            Op::DiskFull(on) => {
                self.sim.fail_writes = on.then_some(backhaul_core::IoFailureKind::DiskFull);
            }
            Op::Step => {
                self.sim.step();
            }
            Op::Settle => {
                for _ in 0..5_000 {
                    if !self.state().is_active() || !self.sim.step() {
                        break;
                    }
                }
            }
            Op::Advance(secs) => self.sim.advance(Duration::from_secs(u64::from(secs))),
        }
        None
    }

    /// Applies `op`, then checks every invariant. `Err` names the broken one.
    pub fn apply_checked(&mut self, op: Op) -> Result<Option<Result<(), HResult>>, String> {
        let before = self.checker.snapshot(&self.sim, self.job);
        let result = self.apply(op);
        self.checker
            .check(&self.sim, self.job, op, before, result)
            .map_err(|e| format!("{e} (after {op:?}, seed {})", self.sim.seed))?;
        Ok(result)
    }

    fn script(&mut self, file: usize, reply: ServerReply) {
        let (_, host, port, path, _) = FILES[file];
        let half = content(file, self.versions[file]).body.len() as u64 / 2;
        let first = match reply {
            ServerReply::Ok => Reply::Serve,
            ServerReply::Truncated => Reply::Truncate(half),
            ServerReply::Unavailable => Reply::Status(503, vec![]),
            ServerReply::NotFound => Reply::Status(404, vec![]),
            ServerReply::Redirect => Reply::Status(302, vec![("Location".into(), "/moved".into())]),
            ServerReply::Changed => {
                self.versions[file] = self.versions[file].wrapping_add(1);
                let new = content(file, self.versions[file]);
                self.sim.serve(host, port, "/moved", new.clone());
                Reply::ChangeToTruncated(new, half)
            }
            ServerReply::Silence => Reply::Silence,
            ServerReply::Closed => Reply::Close,
            ServerReply::Reset => Reply::Reset(half),
        };
        self.sim.script(host, port, path, vec![first, Reply::Serve]);
    }
}

/// Version `version` of file `file`: small (so states hash fast), distinct per version.
pub fn content(file: usize, version: u8) -> Resource {
    let len = 3_000 + file * 1_000 + usize::from(version % 3) * 100;
    let body: Vec<u8> = (0..len)
        .map(|i| (i as u8) ^ (file as u8 * 31) ^ version.wrapping_mul(7))
        .collect();
    Resource::new(body, &format!("f{file}v{version}"))
}
