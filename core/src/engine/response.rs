//! Responses: what a status, a Content-Range and a validator mean for the file — continue,
//! restart from byte 0, follow a redirect, retry later, or fail — and the body bytes that
//! follow.

use bytes::Bytes;
use url::Url;

use crate::codes::{self, HResult};
use crate::error::Severity;
use crate::http::{BodyFraming, ContentRange, ResponseEvent, ResponseHead};
use crate::ids::{ConnId, JobId};
use crate::job::{JobState, NotifyFlags, RedirectPolicy, Trigger};
use crate::output::{Action, JobEvent};
use crate::proxy::Route;

use super::transfer::{remote_error, Phase};
use super::{Engine, MODIFICATION_EVENT_INTERVAL};

/// A file restarted this many times within one fetch is a server fault.
const MAX_RESTARTS: u32 = 3;

impl Engine {
    pub(super) fn handle_response_event(&mut self, id: JobId, conn: ConnId, event: ResponseEvent) {
        match event {
            ResponseEvent::Head(head) => self.handle_head(id, conn, head),
            ResponseEvent::Body(data) => self.handle_body(id, data),
            ResponseEvent::End { reusable } => self.handle_end(id, conn, reusable),
        }
    }

    pub(super) fn handle_head(&mut self, id: JobId, conn: ConnId, head: ResponseHead) {
        let now = self.now;
        let Some(job) = self.jobs.get_mut(&id) else {
            return;
        };
        let Some(fetch) = job.fetch.as_mut() else {
            return;
        };
        let url = fetch.url.to_string();
        let status = head.status;
        if fetch.range.is_some() && matches!(status, 200 | 203 | 204 | 206 | 416) {
            return self.handle_ranged_head(id, conn, &head);
        }
        match status {
            200 | 203 | 204 => {
                let file = &mut job.rec.files[fetch.file as usize];
                if fetch.range_start > 0 {
                    // The server sent the whole entity: the version changed or ranges are off.
                    // (`self.out` directly: `self.jobs` is still borrowed.)
                    self.out
                        .push_back(crate::Output::Action(Action::TruncateFile {
                            job: id,
                            file: fetch.file,
                            len: 0,
                        }));
                }
                file.reset_version();
                file.size = match head.framing {
                    BodyFraming::ContentLength(n) => Some(n),
                    BodyFraming::None => Some(0),
                    BodyFraming::Chunked | BodyFraming::UntilClose => None,
                };
                file.etag = head.strong_etag().map(str::to_string);
                file.last_modified = head.last_modified().map(str::to_string);
                fetch.offset = 0;
                fetch.range_start = 0;
                fetch.phase = Phase::Body;
                self.apply(id, Trigger::ResponseAccepted);
            }
            206 if fetch.range_start == 0 => {
                let why = format!("206 Partial Content for a request without Range ({url})");
                let error = remote_error(codes::BG_E_INVALID_SERVER_RESPONSE, why);
                self.fail(id, error, Severity::Fatal, None);
            }
            206 => {
                let file = &job.rec.files[fetch.file as usize];
                let continues = match head.content_range() {
                    Some(ContentRange::Bytes {
                        start,
                        end_inclusive,
                        total: Some(total),
                    }) => {
                        start == fetch.range_start
                            && Some(total) == file.size
                            && end_inclusive.checked_add(1) == Some(total)
                            && same_validator(file.etag.as_deref(), head.strong_etag())
                    }
                    _ => false,
                };
                if continues {
                    fetch.phase = Phase::Body;
                    self.apply(id, Trigger::ResponseAccepted);
                } else {
                    self.restart_file(id, conn);
                }
            }
            416 if fetch.range_start > 0 => self.restart_file(id, conn),
            300..=303 | 307 | 308 => self.follow_redirect(id, conn, &head),
            401 => self.handle_challenge(id, conn, &head, None),
            407 => match self.conns.get(&conn).map(|c| c.via.clone()) {
                Some(Route::Proxy(proxy)) => self.handle_challenge(id, conn, &head, Some(proxy)),
                // A 407 from an origin reached directly: nothing to answer it with.
                _ => {
                    let error = remote_error(
                        HResult::from_http_status(407),
                        format!("{url} answered 407, but the request did not go through a proxy"),
                    );
                    self.fail(id, error, Severity::Fatal, None)
                }
            },
            s if is_transient_status(s) => {
                let retry_after = head.retry_after(now);
                let error = remote_error(
                    HResult::from_http_status(s),
                    format!("{url} answered {s} {}", head.reason),
                );
                self.fail(id, error, Severity::Transient, retry_after);
            }
            s => {
                let error = remote_error(
                    HResult::from_http_status(s),
                    format!("{url} answered {s} {}", head.reason),
                );
                self.fail(id, error, Severity::Fatal, None);
            }
        }
    }

    /// The server's answer does not continue the recorded version: start the file over from
    /// byte 0 on a fresh request. Never splice two versions.
    pub(super) fn restart_file(&mut self, id: JobId, conn: ConnId) {
        self.drop_conn(conn);
        let Some(job) = self.jobs.get_mut(&id) else {
            return;
        };
        let Some(fetch) = job.fetch.as_mut() else {
            return;
        };
        fetch.conn = None;
        fetch.restarts += 1;
        if fetch.restarts > MAX_RESTARTS {
            let why = format!(
                "{} keeps answering ranges that do not match the file",
                fetch.url
            );
            return self.fail(
                id,
                remote_error(codes::BG_E_INVALID_SERVER_RESPONSE, why),
                Severity::Fatal,
                None,
            );
        }
        let file = fetch.file;
        job.rec.files[file as usize].reset_version();
        self.push_action(Action::TruncateFile {
            job: id,
            file,
            len: 0,
        });
        self.connect_or_reuse(id);
    }

    /// A 3xx with a Location, under the job's redirect policy (`SetSecurityFlags`): follow it
    /// (ALLOW_SILENT), follow it and rename the file's remote name (ALLOW_REPORT), or fail
    /// with `HRESULT_FROM_WIN32(status)` and the remote name set to the target (DISALLOW).
    pub(super) fn follow_redirect(&mut self, id: JobId, conn: ConnId, head: &ResponseHead) {
        self.drop_conn(conn);
        let max_redirects = self.config.max_redirects;
        let Some(job) = self.jobs.get_mut(&id) else {
            return;
        };
        let flags = job.rec.security_flags;
        let Some(fetch) = job.fetch.as_mut() else {
            return;
        };
        fetch.conn = None;
        let from = fetch.url.clone();
        let refuse = |why: String| remote_error(codes::ERROR_WINHTTP_REDIRECT_FAILED, why);
        let target = redirect_target(&from, head);
        let file = &mut job.rec.files[fetch.file as usize];
        if flags.redirect_policy() == RedirectPolicy::Disallow {
            let to = match &target {
                Ok(target) => {
                    // BITS: the remote name becomes the redirect target, so the app sees where
                    // it led. Nothing learned about the old name applies to the new one.
                    file.remote = target.clone();
                    file.reset_version();
                    target.to_string()
                }
                Err(why) => why.clone(),
            };
            let why = format!(
                "{from} redirected ({} {}): {to}; the job's redirect policy is DISALLOW",
                head.status, head.reason
            );
            let code = disallowed_redirect_code(head.status);
            return self.fail(id, remote_error(code, why), Severity::Fatal, None);
        }
        let target = match target {
            Ok(target) => target,
            Err(why) => return self.fail(id, refuse(why), Severity::Fatal, None),
        };
        let why = if from.scheme() == "https"
            && target.scheme() == "http"
            && !flags.allow_https_to_http()
        {
            Some(format!(
                "{from} redirected from HTTPS to HTTP ({target}) and the job does not allow it \
                 (BG_HTTP_REDIRECT_POLICY_ALLOW_HTTPS_TO_HTTP)"
            ))
        } else if fetch.chain.contains(&target) {
            Some(format!(
                "{from} redirected back to {target}: a redirect loop"
            ))
        } else if fetch.chain.len() > max_redirects as usize {
            Some(format!("{from}: more than {max_redirects} redirects"))
        } else {
            None
        };
        if let Some(why) = why {
            return self.fail(id, refuse(why), Severity::Fatal, None);
        }
        if flags.redirect_policy() == RedirectPolicy::AllowReport {
            // The file's remote name becomes the target (GetRemoteName shows it), so retries
            // and resumes go straight there.
            file.remote = target.clone();
            job.rec.times.modification = self.now;
            self.push_action(Action::Persist { job: id });
        }
        let fetch = self.fetch_mut(id).expect("checked above");
        // Secrets stay with their origin: once a redirect leaves it, nothing re-adds them,
        // even if a later redirect comes back.
        if from.origin() != target.origin() {
            fetch.left_origin = true;
        }
        fetch.chain.push(target.clone());
        fetch.route_index = 0;
        fetch.url = target;
        self.connect_or_reuse(id);
    }

    pub(super) fn handle_body(&mut self, id: JobId, data: Bytes) {
        let multipart = self
            .fetch_mut(id)
            .is_some_and(|f| f.phase == Phase::Body && f.parts.is_some());
        if multipart {
            return self.handle_part_bytes(id, data);
        }
        self.write_body(id, data);
    }

    /// Body bytes of the current file, in order: written at the fetch's offset.
    pub(super) fn write_body(&mut self, id: JobId, data: Bytes) {
        let now = self.now;
        let Some(job) = self.jobs.get_mut(&id) else {
            return;
        };
        let Some(fetch) = job.fetch.as_mut() else {
            return;
        };
        if fetch.phase != Phase::Body {
            return;
        }
        let len = data.len() as u64;
        let file = &mut job.rec.files[fetch.file as usize];
        // A ranged file's body ends where the range does; a whole file's, at its size.
        let limit = match &fetch.range {
            Some(range) => range.local_end,
            None => file.size,
        };
        if let Some(limit) = limit {
            if fetch.offset + len > limit {
                let why = format!("{} sent more bytes than it announced", fetch.url);
                return self.fail(
                    id,
                    remote_error(codes::BG_E_INVALID_SERVER_RESPONSE, why),
                    Severity::Fatal,
                    None,
                );
            }
        }
        let offset = fetch.offset;
        fetch.offset += len;
        file.transferred = fetch.offset;
        let index = fetch.file;
        job.rec.last_progress = now;
        job.rec.times.modification = now;
        job.bytes_since_persist += len;
        let modification_due = job
            .last_modification_event
            .is_none_or(|t| now.saturating_since(t) >= MODIFICATION_EVENT_INTERVAL);
        if modification_due {
            job.last_modification_event = Some(now);
        }
        self.push_action(Action::WriteFile {
            job: id,
            file: index,
            offset,
            data,
        });
        self.checkpoint_if_due(id, index, offset + len);
        if modification_due {
            self.notify(
                id,
                NotifyFlags::JOB_MODIFICATION,
                JobEvent::JobModification { job: id },
            );
        }
    }

    pub(super) fn handle_end(&mut self, id: JobId, conn: ConnId, reusable: bool) {
        let now = self.now;
        let ranged = self
            .fetch_mut(id)
            .is_some_and(|f| f.phase == Phase::Body && f.range.is_some());
        if ranged && !self.end_of_range(id, conn, reusable) {
            return;
        }
        let Some(job) = self.jobs.get_mut(&id) else {
            return;
        };
        if job
            .fetch
            .as_ref()
            .is_some_and(|f| f.phase == Phase::AuthDrain)
        {
            return self.auth_drained(id, conn, reusable);
        }
        let Some(fetch) = job.fetch.take_if(|f| f.phase == Phase::Body) else {
            return;
        };
        let file = &mut job.rec.files[fetch.file as usize];
        // (A ranged file has every range in, and `size` stays the remote file's.)
        if !ranged && file.size.is_some_and(|size| size != fetch.offset) {
            // Invariant: the codec ends a framed body only after exactly its length.
            unreachable!(
                "response ended at {} of {:?} bytes",
                fetch.offset, file.size
            );
        }
        if !ranged {
            file.size = Some(fetch.offset);
        }
        file.completed = true;
        // Sync before closing: the record says "completed" for good only once this is on disk.
        self.request_sync(id, fetch.file, fetch.offset);
        self.push_action(Action::CloseFile {
            job: id,
            file: fetch.file,
        });
        self.release_conn(conn, reusable, now);
        self.notify(
            id,
            NotifyFlags::FILE_TRANSFERRED,
            JobEvent::FileTransferred {
                job: id,
                file: fetch.file,
            },
        );
        self.push_action(Action::Persist { job: id });
        if self.job_state(id).is_some_and(JobState::is_running) {
            self.start_next_file(id);
        }
    }
}

/// Statuses retried after the retry delay: the server may recover.
pub(crate) fn is_transient_status(status: u16) -> bool {
    matches!(status, 408 | 429 | 500 | 502 | 503 | 504)
}

fn same_validator(recorded: Option<&str>, offered: Option<&str>) -> bool {
    match (recorded, offered) {
        (Some(a), Some(b)) => a == b,
        // If-Range already made the server check; a 206 without an ETag is trusted.
        _ => true,
    }
}

/// Where a 3xx points: its Location resolved against the request URL (fragment dropped), when
/// it is an http(s) URL without userinfo. `Err` explains why it cannot be followed.
fn redirect_target(from: &Url, head: &ResponseHead) -> Result<Url, String> {
    let Some(location) = head.location() else {
        return Err(format!(
            "{from} answered {} without a Location",
            head.status
        ));
    };
    let mut target = from
        .join(location)
        .map_err(|e| format!("{from} redirected to an invalid Location {location:?}: {e}"))?;
    target.set_fragment(None);
    if !matches!(target.scheme(), "http" | "https") {
        return Err(format!(
            "{from} redirected to {target}: only http and https are followed"
        ));
    }
    if !target.username().is_empty() || target.password().is_some() {
        return Err(format!("{from} redirected to a URL carrying credentials"));
    }
    if target.host_str().is_none_or(str::is_empty) {
        return Err(format!("{from} redirected to {target}, which has no host"));
    }
    Ok(target)
}

/// BITS' error for a redirect under DISALLOW: `HRESULT_FROM_WIN32(HTTP_STATUS_*)`, i.e. the
/// status itself as a Win32 code (300 → 0x8007012C … 308 → 0x80070134).
fn disallowed_redirect_code(status: u16) -> HResult {
    HResult::from_win32(u32::from(status))
}
