//! Running a job's notification program (`Action::RunProgram`): directly, never through a
//! shell, with no search path, stdin/stdout/stderr closed, and `BACKHAUL_JOB_ID` set.

use std::process::{Command, Stdio};

use backhaul_core::{Input, JobId};

use crate::clock;
use crate::failure::io_failure;

/// Runs `program args…` to its end (blocking: call it off the engine's thread) and returns the
/// input that reports it.
pub fn run_program(job: JobId, program: &str, args: &[String]) -> Input {
    let status = Command::new(program)
        .args(args)
        .env("BACKHAUL_JOB_ID", job.to_string())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
    let exit = match status {
        // Killed by a signal: no exit code, and certainly not success.
        Ok(status) => Ok(status.code().unwrap_or(-1)),
        Err(err) => Err(io_failure(&err)),
    };
    Input::ProgramExited {
        now: clock::now(),
        job,
        exit,
    }
}
