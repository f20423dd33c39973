//! How the current file of a running job moves, and what happens to its temp file.
//!
//! A running job has at most one [`Fetch`]: the current file (FIFO, one at a time). A fetch
//! opens the file's temp file, gets a connection (an idle keep-alive one to the same origin, or
//! a new one), sends a GET (with `Range` + `If-Range` when resuming), and turns the response into
//! writes at offsets. Only a 206 that continues exactly the recorded version is spliced onto the
//! bytes already on disk; anything else restarts the file from byte 0. Connections live in
//! `connection.rs`, the meaning of a response in `response.rs`.

use std::path::PathBuf;

use url::Url;

use crate::auth::AuthScheme;

use crate::codes::{self, HResult};
use crate::error::{ErrorContext, JobError, Severity};
use crate::http::ByterangesParser;
use crate::ids::{ConnId, FileIndex, JobId};
use crate::input::{FileOp, IoFailure, IoFailureKind};
use crate::job::Trigger;
use crate::output::Action;

use super::ranged::RangeRequest;
use super::Engine;

/// Tries at finding an unused temp name.
const MAX_TEMP_NAME_TRIES: u32 = 16;

/// The request in flight for a job's current file.
#[derive(Debug)]
pub(crate) struct Fetch {
    pub(crate) file: FileIndex,
    /// Where the request goes (after redirects).
    pub(super) url: Url,
    /// Every URL requested in the current redirect chain, the file's own first: a Location
    /// among them is a loop.
    pub(super) chain: Vec<Url>,
    /// A redirect in this chain changed the origin: no secret is sent for the rest of it.
    pub(super) left_origin: bool,
    /// The scheme whose credentials the request in flight carries.
    pub(super) auth_sent: Option<AuthScheme>,
    /// The scheme whose proxy credentials the CONNECT or request in flight carries.
    pub(super) proxy_auth_sent: Option<AuthScheme>,
    /// The place in the proxy list this fetch connects through (0 without a list).
    pub(super) route_index: usize,
    /// Challenges answered in this fetch.
    pub(super) auth_rounds: u32,
    pub(super) restarts: u32,
    pub(super) temp_name_tries: u32,
    pub(super) phase: Phase,
    pub(super) conn: Option<ConnId>,
    /// The file offset the next body byte is written at.
    pub(super) offset: u64,
    /// The offset asked for with `Range` (0: the whole file).
    pub(super) range_start: u64,
    /// For a file added with ranges: the range the request in flight asks for.
    pub(super) range: Option<RangeRequest>,
    /// The answer in flight is `multipart/byteranges`: its parser.
    pub(super) parts: Option<ByterangesParser>,
    pub(super) temp_open: bool,
    /// The temp file is being re-opened (`create: false`) from an earlier run or fetch.
    pub(super) reopening: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Phase {
    OpeningTemp,
    Connecting,
    AwaitingHead,
    /// A 401/407 carried the server's NTLM / Negotiate challenge: its body is read (and
    /// dropped) to the end, then the answer goes out on the same connection.
    AuthDrain,
    Body,
}

impl Engine {
    /// Starts the job's next unfinished file, or finishes the job when none is left.
    pub(super) fn start_next_file(&mut self, id: JobId) {
        let Some(job) = self.jobs.get_mut(&id) else {
            return;
        };
        let Some(index) = job.rec.files.iter().position(|f| !f.completed) else {
            self.apply(id, Trigger::AllFilesDone);
            return;
        };
        let file = &job.rec.files[index];
        let url = file.remote.clone();
        let create = file.temp.is_none();
        let index = FileIndex::try_from(index).unwrap_or(FileIndex::MAX);
        job.fetch = Some(Fetch {
            file: index,
            chain: vec![url.clone()],
            left_origin: false,
            auth_sent: None,
            proxy_auth_sent: None,
            route_index: 0,
            auth_rounds: 0,
            url,
            restarts: 0,
            temp_name_tries: 0,
            phase: Phase::OpeningTemp,
            conn: None,
            offset: 0,
            range_start: 0,
            range: None,
            parts: None,
            temp_open: false,
            reopening: !create,
        });
        if create {
            let path = self.fresh_temp_name(id, index);
            self.jobs.get_mut(&id).expect("job exists").rec.files[index as usize].temp = Some(path);
        }
        self.open_temp(id, index, create);
    }

    pub(super) fn open_temp(&mut self, id: JobId, file: FileIndex, create: bool) {
        let Some(job) = self.jobs.get(&id) else {
            return;
        };
        let Some(path) = job.rec.files[file as usize].temp.clone() else {
            return;
        };
        self.push_action(Action::OpenTemp {
            job: id,
            file,
            path,
            create,
        });
    }

    /// A hidden name in the local name's directory: `.NAME.XXXXXXXX.backhaul`.
    pub(super) fn fresh_temp_name(&mut self, id: JobId, file: FileIndex) -> PathBuf {
        use rand_chacha::rand_core::Rng;
        let local = &self.jobs[&id].rec.files[file as usize].local;
        let dir = local.parent().map(PathBuf::from).unwrap_or_default();
        let name = local
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        // Keep the temp name under NAME_MAX (255 bytes) whatever the local name's length.
        let mut short: String = String::new();
        for c in name.chars() {
            if short.len() + c.len_utf8() > 200 {
                break;
            }
            short.push(c);
        }
        let tag = self.rng.next_u32();
        dir.join(format!(".{short}.{tag:08x}.backhaul"))
    }

    pub(super) fn handle_temp_opened(&mut self, id: JobId, file: FileIndex, len: u64) {
        let Some(job) = self.jobs.get_mut(&id) else {
            return;
        };
        let expected =
            matches!(&job.fetch, Some(f) if f.file == file && f.phase == Phase::OpeningTemp);
        if !expected {
            // The fetch was stopped while the open was in flight: release the handle.
            self.push_action(Action::CloseFile { job: id, file });
            return;
        }
        let f = &mut job.rec.files[file as usize];
        if len < f.transferred {
            // A write failed (disk full), or the disk lost unsynced bytes: every byte before
            // `len` is this version's, written in order, so the transfer continues from there.
            f.transferred = len;
            f.synced = f.synced.min(len);
        } else if len > f.transferred {
            // Bytes past the last checkpoint may be incomplete: cut back to what was recorded.
            let keep = f.transferred;
            self.push_action(Action::TruncateFile {
                job: id,
                file,
                len: keep,
            });
        }
        let fetch = self.fetch_mut(id).expect("checked above");
        fetch.temp_open = true;
        self.connect_or_reuse(id);
    }

    /// Stops the job's fetch: closes its connection and its temp file handle.
    pub(super) fn stop_fetch(&mut self, id: JobId) {
        let Some(fetch) = self.jobs.get_mut(&id).and_then(|j| j.fetch.take()) else {
            return;
        };
        if let Some(conn) = fetch.conn {
            self.drop_conn(conn);
        }
        if fetch.temp_open {
            self.push_action(Action::CloseFile {
                job: id,
                file: fetch.file,
            });
        }
    }

    pub(super) fn handle_file_failed(
        &mut self,
        id: JobId,
        file: FileIndex,
        op: FileOp,
        error: IoFailure,
    ) {
        if op == FileOp::Write {
            self.forget_pending_sync(id, file);
        }
        match op {
            FileOp::Commit => return self.handle_commit_failed(id, file, &error),
            // A temp file that can't be deleted is left behind; nothing in the job depends on it.
            FileOp::Delete => return,
            FileOp::OpenTemp | FileOp::Write => {}
        }
        let in_fetch = self.fetch_mut(id).is_some_and(|f| f.file == file);
        if !in_fetch {
            // A write of a file whose response already ended failed: the file is not done.
            let Some(job) = self.jobs.get_mut(&id) else {
                return;
            };
            let Some(f) = job.rec.files.get_mut(file as usize) else {
                return;
            };
            if op != FileOp::Write || f.committed || !f.completed {
                return;
            }
            f.completed = false;
            let (error, severity) = local_file_error(&error);
            return self.fail(id, error.for_file(file), severity, None);
        }
        let Some(fetch) = self.fetch_mut(id) else {
            return;
        };
        if op == FileOp::OpenTemp {
            fetch.temp_open = false;
            if error.kind == IoFailureKind::NotFound && fetch.reopening {
                // The temp file of an earlier run is gone: nothing of the file is left, so it
                // starts over from byte 0 in a new temp file at the same name.
                fetch.reopening = false;
                let job = self.jobs.get_mut(&id).expect("job exists");
                job.rec.files[file as usize].reset_version();
                return self.open_temp(id, file, true);
            }
            if error.kind == IoFailureKind::AlreadyExists
                && fetch.temp_name_tries < MAX_TEMP_NAME_TRIES
            {
                // Someone else's file has the name we drew: draw another.
                fetch.temp_name_tries += 1;
                let path = self.fresh_temp_name(id, file);
                self.jobs.get_mut(&id).expect("job exists").rec.files[file as usize].temp =
                    Some(path);
                return self.open_temp(id, file, true);
            }
        }
        let (error, severity) = local_file_error(&error);
        self.fail(id, error.for_file(file), severity, None);
    }

    pub(super) fn fetch_mut(&mut self, id: JobId) -> Option<&mut Fetch> {
        self.jobs.get_mut(&id).and_then(|j| j.fetch.as_mut())
    }
}

pub(super) fn remote_error(code: HResult, why: String) -> JobError {
    JobError::new(ErrorContext::RemoteFile, code, why)
}

/// A failure of the temp file: a full disk may clear up (transient); the rest needs a person.
fn local_file_error(error: &IoFailure) -> (JobError, Severity) {
    let (code, severity) = match error.kind {
        IoFailureKind::DiskFull => (codes::ERROR_DISK_FULL, Severity::Transient),
        IoFailureKind::NotFound => (codes::ERROR_PATH_NOT_FOUND, Severity::Fatal),
        IoFailureKind::PermissionDenied => (codes::E_ACCESSDENIED, Severity::Fatal),
        IoFailureKind::AlreadyExists => (codes::ERROR_FILE_EXISTS, Severity::Fatal),
        _ => (codes::ERROR_WRITE_FAULT, Severity::Fatal),
    };
    (
        JobError::new(ErrorContext::LocalFile, code, error.message.clone()),
        severity,
    )
}
