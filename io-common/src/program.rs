//! Running a job's notification program (`Action::RunProgram`): directly, never through a
//! shell, with no search path, stdin/stdout/stderr closed, and `BACKHAUL_JOB_ID` set — and, in a
//! daemon running as root, as the job's owner (BITS: "launched as the user who set it").

use std::os::unix::fs::MetadataExt;
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};

use backhaul_core::{Input, JobId, Owner};

use crate::clock;
use crate::failure::io_failure;

/// A user to run a program as: uid and primary gid.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RunAs {
    /// The user id.
    pub uid: u32,
    /// The primary group id.
    pub gid: u32,
}

impl RunAs {
    /// Who should run the program of a job owned by `owner` (`uid:N`): `None` to run it as
    /// this process (it is not root, or the owner is root or not a uid); else the owner, with
    /// the primary group `/etc/passwd` gives it (`nogroup`, 65534, when it has no entry).
    pub fn for_owner(owner: &Owner) -> Option<RunAs> {
        let uid: u32 = owner.0.strip_prefix("uid:")?.parse().ok()?;
        let me = std::fs::metadata("/proc/self").ok()?.uid();
        if me != 0 || uid == 0 {
            return None;
        }
        Some(RunAs {
            uid,
            gid: primary_gid(uid).unwrap_or(NOGROUP),
        })
    }
}

/// Debian's `nogroup`.
const NOGROUP: u32 = 65_534;

/// The primary gid of `uid` in `/etc/passwd`.
fn primary_gid(uid: u32) -> Option<u32> {
    let passwd = std::fs::read_to_string("/etc/passwd").ok()?;
    passwd.lines().find_map(|line| {
        let fields: Vec<&str> = line.split(':').collect();
        (fields.get(2)?.parse::<u32>().ok()? == uid).then(|| fields.get(3)?.parse().ok())?
    })
}

/// Runs `program args…` to its end (blocking: call it off the engine's thread), as `run_as`
/// when given, and returns the input that reports it.
pub fn run_program(job: JobId, program: &str, args: &[String], run_as: Option<RunAs>) -> Input {
    let mut command = Command::new(program);
    command
        .args(args)
        .env("BACKHAUL_JOB_ID", job.to_string())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    if let Some(user) = run_as {
        drop_privileges(&mut command, user);
    }
    let status = command.status();
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

/// Makes `command` run as `user`: no supplementary groups, then its gid, then its uid.
#[allow(unsafe_code)]
fn drop_privileges(command: &mut Command, user: RunAs) {
    // SAFETY: the closure runs in the child between fork and exec, where only async-signal-safe
    // calls are allowed; it makes one: setgroups(2). std offers no safe way to clear the
    // supplementary groups (`CommandExt::groups` is unstable), and without it the program
    // would keep root's groups.
    unsafe {
        command.pre_exec(|| {
            if libc::setgroups(0, std::ptr::null()) == 0 {
                Ok(())
            } else {
                Err(std::io::Error::last_os_error())
            }
        });
    }
    command.gid(user.gid).uid(user.uid);
}
