//! The transfer flow against a scripted backend, and its reports.

use std::sync::mpsc::{self, Receiver};
use std::sync::Mutex;

use backhaul_core::{
    CompleteOutcome, ErrorContext, FileIndex, FileProgress, HResult, JobError, JobProgress,
    JobTimes, JobType, NotifyFlags, Owner, Timestamp,
};

use super::*;
use crate::report::{EXIT_FAILED, EXIT_INTERRUPTED, EXIT_OK, EXIT_USAGE};

/// How the fake job ends once resumed.
#[derive(Clone)]
enum Ending {
    /// TRANSFERRED; `complete` writes each file with `size` bytes (or not, if `write` is false).
    Transferred { size: u64, write: bool },
    /// ERROR with this error.
    Error(JobError),
}

/// A scripted `Manager`: records every call, refuses `add_file` for one pair if asked.
struct Fake {
    ending: Ending,
    refuse_file: Option<(usize, BitsError)>,
    calls: Mutex<Vec<String>>,
    files: Mutex<Vec<PathBuf>>,
    state: Mutex<JobState>,
}

impl Fake {
    fn new(ending: Ending) -> Self {
        Self {
            ending,
            refuse_file: None,
            calls: Mutex::new(Vec::new()),
            files: Mutex::new(Vec::new()),
            state: Mutex::new(JobState::Suspended),
        }
    }

    fn log(&self, call: &str) {
        self.calls.lock().unwrap().push(call.to_string());
    }

    fn calls(&self) -> Vec<String> {
        self.calls.lock().unwrap().clone()
    }
}

impl Backend for Fake {
    fn start(_: &Request) -> Result<Self, Failure> {
        unreachable!("tests build the fake themselves")
    }
    fn jobs(&self) -> Result<Vec<JobId>, BitsError> {
        self.log("jobs");
        Ok(vec![JobId(7)])
    }
    fn suspend(&self, _: JobId) -> Result<(), BitsError> {
        self.log("suspend");
        *self.state.lock().unwrap() = JobState::Suspended;
        Ok(())
    }
    fn create_job(&self, _: &str) -> Result<JobId, BitsError> {
        self.log("create_job");
        Ok(JobId(7))
    }
    fn add_file(&self, _: JobId, _: &str, local: &Path) -> Result<FileIndex, BitsError> {
        self.log("add_file");
        let mut files = self.files.lock().unwrap();
        if let Some((i, e)) = &self.refuse_file {
            if *i == files.len() {
                return Err(e.clone());
            }
        }
        files.push(local.to_path_buf());
        Ok(files.len() as FileIndex - 1)
    }
    fn set_priority(&self, _: JobId, p: JobPriority) -> Result<(), BitsError> {
        self.log(&format!("set_priority {}", p.name()));
        Ok(())
    }
    fn set_minimum_retry_delay(&self, _: JobId, secs: u32) -> Result<(), BitsError> {
        self.log(&format!("set_minimum_retry_delay {secs}"));
        Ok(())
    }
    fn set_no_progress_timeout(&self, _: JobId, secs: u32) -> Result<(), BitsError> {
        self.log(&format!("set_no_progress_timeout {secs}"));
        Ok(())
    }
    fn set_security_flags(&self, _: JobId, flags: u32) -> Result<(), BitsError> {
        self.log(&format!("set_security_flags 0x{flags:04X}"));
        Ok(())
    }
    fn set_custom_headers(&self, _: JobId, headers: &str) -> Result<(), BitsError> {
        self.log(&format!("set_custom_headers {}", headers.lines().count()));
        Ok(())
    }
    fn set_credentials(&self, _: JobId, c: Credentials) -> Result<(), BitsError> {
        self.log(&format!("set_credentials {} {}", c.target(), c.scheme()));
        Ok(())
    }
    fn set_proxy_settings(&self, _: JobId, s: ProxySettings) -> Result<(), BitsError> {
        self.log(&format!("set_proxy_settings {}", s.usage().name()));
        Ok(())
    }
    fn pin_certificates(&self, _: JobId, pins: Vec<[u8; 32]>) -> Result<(), BitsError> {
        self.log(&format!("pin_certificates {}", pins.len()));
        Ok(())
    }
    fn resume(&self, _: JobId) -> Result<(), BitsError> {
        self.log("resume");
        *self.state.lock().unwrap() = match self.ending {
            Ending::Transferred { .. } => JobState::Transferred,
            Ending::Error(_) => JobState::Error,
        };
        Ok(())
    }
    fn cancel(&self, _: JobId) -> Result<(), BitsError> {
        self.log("cancel");
        *self.state.lock().unwrap() = JobState::Cancelled;
        Ok(())
    }
    fn complete(&self, _: JobId) -> Result<CompleteOutcome, BitsError> {
        self.log("complete");
        if let Ending::Transferred { size, write: true } = self.ending {
            for path in self.files.lock().unwrap().iter() {
                std::fs::write(path, vec![0u8; size as usize]).unwrap();
            }
        }
        *self.state.lock().unwrap() = JobState::Acknowledged;
        Ok(CompleteOutcome::Complete)
    }
    fn info(&self, job: JobId) -> Result<JobInfo, BitsError> {
        let state = *self.state.lock().unwrap();
        let size = match self.ending {
            Ending::Transferred { size, .. } => size,
            Ending::Error(_) => SIZE_UNKNOWN,
        };
        let done = state == JobState::Transferred || state == JobState::Acknowledged;
        let files: Vec<FileInfo> = self
            .files
            .lock()
            .unwrap()
            .iter()
            .enumerate()
            .map(|(i, path)| FileInfo {
                index: i as FileIndex,
                remote_name: format!("http://h/{i}"),
                local_name: path.clone(),
                temporary_name: None,
                progress: FileProgress {
                    bytes_total: size,
                    bytes_transferred: if done { size } else { 0 },
                    completed: done,
                },
            })
            .collect();
        let error = match (&self.ending, state) {
            (Ending::Error(e), JobState::Error) => Some(e.clone()),
            _ => None,
        };
        Ok(JobInfo {
            id: job,
            display_name: "t".into(),
            description: String::new(),
            job_type: JobType::Download,
            priority: JobPriority::Foreground,
            owner: Owner("me".into()),
            state,
            progress: JobProgress {
                bytes_total: SIZE_UNKNOWN,
                bytes_transferred: 0,
                files_total: files.len() as u32,
                files_transferred: 0,
            },
            files,
            times: JobTimes {
                creation: Timestamp::EPOCH,
                modification: Timestamp::EPOCH,
                transfer_completion: None,
            },
            error,
            error_count: 0,
            notify_flags: NotifyFlags::DEFAULT,
            minimum_retry_delay: 10,
            no_progress_timeout: 300,
            maximum_download_time: 0,
            security_flags: Default::default(),
        })
    }
    fn spawn_wait(&self, _: JobId) -> Receiver<Result<JobState, BitsError>> {
        let (tx, rx) = mpsc::channel();
        tx.send(Ok(*self.state.lock().unwrap())).unwrap();
        rx
    }
    fn shutdown(self) {}
}

fn request(dir: &Path, names: &[&str]) -> Request {
    Request {
        runtime: Runtime::Blocking,
        pairs: names
            .iter()
            .map(|n| (format!("http://h/{n}"), dir.join(n)))
            .collect(),
        display_name: "t".into(),
        priority: JobPriority::Foreground,
        ca_files: Vec::new(),
        crl_files: Vec::new(),
        retry_delay: 10,
        no_progress_timeout: 300,
        security_flags: 0,
        credentials: Vec::new(),
        proxy: None,
        headers: Vec::new(),
        pins: Vec::new(),
        json: false,
        quiet: true,
        store: None,
    }
}

#[test]
fn with_a_store_the_job_that_writes_the_same_files_is_resumed_not_created_again() {
    let dir = tempfile::tempdir().unwrap();
    let fake = Fake::new(Ending::Transferred {
        size: 5,
        write: true,
    });
    // The fake names file i `http://h/{i}`: a stored job with `dir/0` is this request's.
    fake.files.lock().unwrap().push(dir.path().join("0"));
    let mut request = request(dir.path(), &["0"]);
    request.store = Some(dir.path().join("jobs.redb"));
    let outcome = drive(&fake, &request, &AtomicBool::new(false));
    assert_eq!(outcome.failure, None);
    assert_eq!(outcome.state, Some(JobState::Acknowledged));
    let calls = fake.calls();
    assert!(
        !calls.iter().any(|c| c == "create_job" || c == "add_file"),
        "{calls:?}"
    );
    assert!(calls.iter().any(|c| c == "resume"), "{calls:?}");
}

#[test]
fn with_a_store_a_job_writing_the_same_files_from_other_urls_is_cancelled() {
    let dir = tempfile::tempdir().unwrap();
    let fake = Fake::new(Ending::Transferred {
        size: 5,
        write: true,
    });
    // Stored: `http://h/0` → `dir/x`; asked for: `http://h/x` → `dir/x`.
    fake.files.lock().unwrap().push(dir.path().join("x"));
    let mut request = request(dir.path(), &["x"]);
    request.store = Some(dir.path().join("jobs.redb"));
    let _ = drive(&fake, &request, &AtomicBool::new(false));
    let calls = fake.calls();
    let cancelled = calls.iter().position(|c| c == "cancel");
    let created = calls.iter().position(|c| c == "create_job");
    assert!(
        cancelled.is_some() && created.is_some() && cancelled < created,
        "the old job is cancelled, then a new one created: {calls:?}"
    );
}

#[test]
fn transferred_job_is_completed_and_its_files_checked() {
    let dir = tempfile::tempdir().unwrap();
    let fake = Fake::new(Ending::Transferred {
        size: 5,
        write: true,
    });
    let outcome = drive(
        &fake,
        &request(dir.path(), &["a", "b"]),
        &AtomicBool::new(false),
    );
    assert_eq!(outcome.failure, None);
    assert_eq!(outcome.exit_code(), EXIT_OK);
    assert_eq!(outcome.state, Some(JobState::Acknowledged));
    assert_eq!(outcome.files[1].bytes, 5);
    assert_eq!(
        fake.calls(),
        [
            "create_job",
            "set_priority FOREGROUND",
            "set_minimum_retry_delay 10",
            "set_no_progress_timeout 300",
            "add_file",
            "add_file",
            "resume",
            "complete"
        ]
    );
}

#[test]
fn fatal_job_error_cancels_and_reports_the_error() {
    let dir = tempfile::tempdir().unwrap();
    let error = JobError::new(
        ErrorContext::RemoteFile,
        HResult::from_http_status(404),
        "the server answered HTTP 404 Not Found",
    )
    .for_file(0);
    let fake = Fake::new(Ending::Error(error));
    let outcome = drive(&fake, &request(dir.path(), &["x"]), &AtomicBool::new(false));
    assert_eq!(outcome.exit_code(), EXIT_FAILED);
    assert_eq!(outcome.state, Some(JobState::Cancelled));
    assert_eq!(fake.calls().last().map(String::as_str), Some("cancel"));
    let line = outcome.failure.unwrap().error_line();
    assert!(
        line.contains("BG_E_HTTP_ERROR_404 (0x80190194) in BG_ERROR_CONTEXT_REMOTE_FILE"),
        "{line}"
    );
    assert!(line.ends_with("for http://h/x"), "{line}");
}

#[test]
fn refused_add_file_cancels_before_resume_and_is_a_usage_error() {
    let dir = tempfile::tempdir().unwrap();
    let mut fake = Fake::new(Ending::Transferred {
        size: 1,
        write: true,
    });
    fake.refuse_file = Some((
        1,
        BitsError::new(codes::E_INVALIDARG, "scheme \"ftp\" is not http or https"),
    ));
    let outcome = drive(
        &fake,
        &request(dir.path(), &["a", "b"]),
        &AtomicBool::new(false),
    );
    assert_eq!(outcome.exit_code(), EXIT_USAGE);
    let calls = fake.calls();
    assert!(!calls.contains(&"resume".to_string()), "{calls:?}");
    assert_eq!(calls.last().map(String::as_str), Some("cancel"));
    let line = outcome.failure.unwrap().error_line();
    assert!(
        line.contains("E_INVALIDARG (0x80070057): scheme \"ftp\""),
        "{line}"
    );
    assert!(line.contains("(file 2: http://h/b -> "), "{line}");
}

#[test]
fn missing_file_after_complete_is_a_failure() {
    let dir = tempfile::tempdir().unwrap();
    let fake = Fake::new(Ending::Transferred {
        size: 3,
        write: false,
    });
    let outcome = drive(&fake, &request(dir.path(), &["a"]), &AtomicBool::new(false));
    assert_eq!(outcome.exit_code(), EXIT_FAILED);
    let line = outcome.failure.unwrap().error_line();
    assert!(line.contains("is missing after complete"), "{line}");
}

#[test]
fn interrupt_cancels_the_job() {
    let dir = tempfile::tempdir().unwrap();
    let fake = Fake::new(Ending::Transferred {
        size: 3,
        write: true,
    });
    let outcome = drive(&fake, &request(dir.path(), &["a"]), &AtomicBool::new(true));
    assert_eq!(outcome.exit_code(), EXIT_INTERRUPTED);
    assert_eq!(outcome.state, Some(JobState::Cancelled));
    assert_eq!(fake.calls().last().map(String::as_str), Some("cancel"));
}
