//! What the user sees: the one-line error, the JSON object, the summary line and the progress
//! bar. Pure formatting except [`Progress`], which draws on stderr.
//!
//! Every way a transfer can end is an [`Outcome`]; [`Outcome::exit_code`],
//! [`Failure::error_line`] and [`Outcome::to_json`] render it, so the shapes are unit-tested
//! without a network or an engine.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::time::Duration;

use backhaul_core::{
    BitsError, ErrorContext, HResult, JobError, JobId, JobInfo, JobState, SIZE_UNKNOWN,
};
use indicatif::{HumanBytes, HumanDuration, ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde::Serialize;

/// Exit status: the job reached ACKNOWLEDGED and every file is in place.
pub(crate) const EXIT_OK: u8 = 0;
/// Exit status: the transfer failed (a job error, a missing file, a driver failure).
pub(crate) const EXIT_FAILED: u8 = 1;
/// Exit status: the command line was refused (clap's own code for usage errors).
pub(crate) const EXIT_USAGE: u8 = 2;
/// Exit status: interrupted by Ctrl+C (128 + SIGINT).
pub(crate) const EXIT_INTERRUPTED: u8 = 130;

/// How a transfer ended, with what the JSON output reports.
#[derive(Debug)]
pub(crate) struct Outcome {
    /// The job, once created.
    pub(crate) job: Option<JobId>,
    /// The job's name.
    pub(crate) display_name: String,
    /// The job's last known state.
    pub(crate) state: Option<JobState>,
    /// Every URL/DEST pair asked for, in order.
    pub(crate) files: Vec<FileOutcome>,
    /// Why it failed; `None` on success.
    pub(crate) failure: Option<Failure>,
    /// How long the transfer took (for the summary line).
    pub(crate) elapsed: Duration,
}

/// One URL/DEST pair and how far it got.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct FileOutcome {
    /// The URL as given.
    pub(crate) url: String,
    /// The destination as given.
    pub(crate) dest: PathBuf,
    /// Bytes transferred.
    pub(crate) bytes: u64,
    /// The file's size, once the server has said.
    pub(crate) size: Option<u64>,
}

/// Who is to blame for a failure, which decides the exit code.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum FailureKind {
    /// The command line was refused (a bad URL or DEST, an unreadable CA file).
    Usage,
    /// The transfer failed.
    Transfer,
    /// The user pressed Ctrl+C.
    Interrupted,
}

/// Why a transfer failed: a BITS code and context when there is one, and the cause in words.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Failure {
    /// Who is to blame.
    pub(crate) kind: FailureKind,
    /// Where it happened (job errors only).
    pub(crate) context: Option<ErrorContext>,
    /// The BITS code, when the failure has one.
    pub(crate) code: Option<HResult>,
    /// The cause in plain words, on one line.
    pub(crate) message: String,
}

impl Outcome {
    /// An outcome with nothing done yet for these URL/DEST pairs.
    pub(crate) fn new(display_name: &str, pairs: &[(String, PathBuf)]) -> Self {
        let files = pairs
            .iter()
            .map(|(url, dest)| FileOutcome {
                url: url.clone(),
                dest: dest.clone(),
                bytes: 0,
                size: None,
            })
            .collect();
        Self {
            job: None,
            display_name: display_name.to_string(),
            state: None,
            files,
            failure: None,
            elapsed: Duration::ZERO,
        }
    }

    /// Take the state and each file's progress from a snapshot of the job.
    pub(crate) fn record(&mut self, info: &JobInfo) {
        self.state = Some(info.state);
        for (file, seen) in self.files.iter_mut().zip(&info.files) {
            file.bytes = seen.progress.bytes_transferred;
            file.size =
                (seen.progress.bytes_total != SIZE_UNKNOWN).then_some(seen.progress.bytes_total);
        }
    }

    /// The process exit code.
    pub(crate) fn exit_code(&self) -> u8 {
        match &self.failure {
            None => EXIT_OK,
            Some(f) => match f.kind {
                FailureKind::Usage => EXIT_USAGE,
                FailureKind::Transfer => EXIT_FAILED,
                FailureKind::Interrupted => EXIT_INTERRUPTED,
            },
        }
    }

    /// The summary printed on success (unless `-q` or `--json`).
    pub(crate) fn summary_line(&self) -> String {
        let bytes: u64 = self.files.iter().map(|f| f.bytes).sum();
        let n = self.files.len();
        let job = self.job.map(|j| j.to_string()).unwrap_or_default();
        format!(
            "backhaul: transferred {n} file{} ({}) in {}; job {job} acknowledged",
            if n == 1 { "" } else { "s" },
            HumanBytes(bytes),
            human_duration(self.elapsed),
        )
    }

    /// The `--json` object, on one line: job id, final state, each file, and the error on
    /// failure.
    pub(crate) fn to_json(&self) -> String {
        let doc = JsonOutcome {
            ok: self.failure.is_none(),
            exit_code: self.exit_code(),
            job: self.job.map(|j| j.to_string()),
            display_name: &self.display_name,
            state: self.state.map(JobState::name),
            files: self
                .files
                .iter()
                .map(|f| JsonFile {
                    url: &f.url,
                    dest: f.dest.display().to_string(),
                    bytes: f.bytes,
                    size: f.size,
                })
                .collect(),
            error: self.failure.as_ref().map(|f| JsonError {
                context: f.context.map(ErrorContext::name),
                code: f.code.map(HResult::name_or_hex),
                hresult: f.code.map(|c| c.to_string()),
                message: &f.message,
            }),
        };
        serde_json::to_string(&doc).expect("the outcome is plain data")
    }
}

/// `0.4 s` under a minute (HumanDuration would say `0 seconds`), `3 minutes` beyond.
fn human_duration(d: Duration) -> String {
    if d < Duration::from_secs(60) {
        format!("{:.1} s", d.as_secs_f64())
    } else {
        HumanDuration(d).to_string()
    }
}

#[derive(Serialize)]
struct JsonOutcome<'a> {
    ok: bool,
    exit_code: u8,
    job: Option<String>,
    display_name: &'a str,
    state: Option<&'static str>,
    files: Vec<JsonFile<'a>>,
    error: Option<JsonError<'a>>,
}

#[derive(Serialize)]
struct JsonFile<'a> {
    url: &'a str,
    dest: String,
    bytes: u64,
    size: Option<u64>,
}

#[derive(Serialize)]
struct JsonError<'a> {
    context: Option<&'static str>,
    code: Option<String>,
    hresult: Option<String>,
    message: &'a str,
}

impl Failure {
    /// The job went to ERROR: its recorded error, naming the file it concerns when the
    /// description does not already.
    pub(crate) fn job_error(error: &JobError, file: Option<&FileOutcome>) -> Self {
        let mut message = one_line(&error.description);
        if message.is_empty() {
            message = error.code.message();
        }
        if let Some(file) = file {
            let subject = match error.context {
                ErrorContext::LocalFile => file.dest.display().to_string(),
                _ => shorten(&file.url),
            };
            if !message.contains(&subject) {
                message = format!("{message} for {subject}");
            }
        }
        Self {
            kind: FailureKind::Transfer,
            context: Some(error.context),
            code: Some(error.code),
            message,
        }
    }

    /// A command was refused; `doing` says which step, e.g. `file 2: URL -> DEST`.
    pub(crate) fn refused(kind: FailureKind, error: &BitsError, doing: &str) -> Self {
        let mut message = one_line(error.detail());
        if message.is_empty() {
            message = error.code().message();
        }
        Self {
            kind,
            context: None,
            code: Some(error.code()),
            message: format!("{message} ({doing})"),
        }
    }

    /// A failure without a BITS code (the driver, the filesystem check after complete).
    pub(crate) fn plain(kind: FailureKind, message: impl AsRef<str>) -> Self {
        Self {
            kind,
            context: None,
            code: None,
            message: one_line(message.as_ref()),
        }
    }

    /// The one line printed on stderr:
    /// `backhaul: error: CODE (0xHEX) in CONTEXT: cause`.
    pub(crate) fn error_line(&self) -> String {
        let label = match self.kind {
            FailureKind::Interrupted => "interrupted",
            FailureKind::Usage | FailureKind::Transfer => "error",
        };
        // `NAME (0xHEX)`, or the hex alone for a code without a known name.
        let code = self.code.map(|code| match code.name() {
            Some(name) => format!("{name} ({code})"),
            None => code.to_string(),
        });
        let head = match (code, self.context) {
            (Some(code), Some(context)) => format!("{code} in {}: ", context.name()),
            (Some(code), None) => format!("{code}: "),
            (None, _) => String::new(),
        };
        format!("backhaul: {label}: {head}{}", self.message)
    }
}

/// The text on one line: line breaks and other control characters become spaces.
fn one_line(text: &str) -> String {
    let spaced: String = text
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    spaced.trim().to_string()
}

/// A URL short enough for an error line (a 2,200-character URL is named, not printed).
pub(crate) fn shorten(url: &str) -> String {
    const KEEP: usize = 80;
    let n = url.chars().count();
    if n <= KEEP + 20 {
        return url.to_string();
    }
    let head: String = url.chars().take(KEEP).collect();
    format!("{head}… ({n} characters)")
}

/// A job's URL/DEST pair for error lines: `file 2: URL -> DEST`.
pub(crate) fn describe_pair(index: usize, url: &str, dest: &Path) -> String {
    format!("file {}: {} -> {}", index + 1, shorten(url), dest.display())
}

/// The progress bar on stderr: bytes, rate and ETA. Hidden unless stderr is a terminal.
#[derive(Debug)]
pub(crate) struct Progress {
    bar: Option<ProgressBar>,
    known_length: bool,
}

impl Progress {
    /// A bar on stderr when `wanted` and stderr is a terminal; otherwise nothing is drawn.
    pub(crate) fn new(wanted: bool) -> Self {
        if !wanted || !std::io::stderr().is_terminal() {
            return Self {
                bar: None,
                known_length: false,
            };
        }
        let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr());
        bar.set_style(spinner_style());
        bar.set_message("starting");
        bar.enable_steady_tick(Duration::from_millis(120));
        Self {
            bar: Some(bar),
            known_length: false,
        }
    }

    /// Whether a bar is drawn (so the caller polls for it).
    pub(crate) fn is_shown(&self) -> bool {
        self.bar.is_some()
    }

    /// Show a snapshot of the job.
    pub(crate) fn update(&mut self, info: &JobInfo) {
        let Some(bar) = &self.bar else { return };
        let p = info.progress;
        if p.bytes_total != SIZE_UNKNOWN {
            if !self.known_length {
                bar.set_style(bar_style());
                self.known_length = true;
            }
            bar.set_length(p.bytes_total);
        }
        bar.set_position(p.bytes_transferred);
        bar.set_message(progress_message(info));
    }

    /// Remove the bar, so what follows starts on a clean line.
    pub(crate) fn clear(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}

/// What the bar says next to the numbers: the state, or the error being retried.
fn progress_message(info: &JobInfo) -> String {
    let p = info.progress;
    let files = format!("{}/{} files", p.files_transferred, p.files_total);
    match (info.state, &info.error) {
        (JobState::TransientError, Some(e)) => {
            format!(
                "{files}, retrying after {} ({})",
                e.code.name_or_hex(),
                one_line(&e.description)
            )
        }
        (state, _) => format!(
            "{files}, {}",
            state.name().to_ascii_lowercase().replace('_', " ")
        ),
    }
}

fn spinner_style() -> ProgressStyle {
    ProgressStyle::with_template("{spinner} {bytes} ({bytes_per_sec}) {wide_msg}")
        .expect("the template is valid")
}

fn bar_style() -> ProgressStyle {
    ProgressStyle::with_template(
        "{spinner} [{bar:30}] {bytes}/{total_bytes} ({bytes_per_sec}, ETA {eta}) {wide_msg}",
    )
    .expect("the template is valid")
    .progress_chars("=> ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use backhaul_core::codes;

    fn pair(url: &str, dest: &str) -> (String, PathBuf) {
        (url.to_string(), PathBuf::from(dest))
    }

    fn http_404() -> JobError {
        JobError::new(
            ErrorContext::RemoteFile,
            HResult::from_http_status(404),
            "the server answered HTTP 404 Not Found",
        )
        .for_file(0)
    }

    #[test]
    fn job_error_line_names_code_hex_context_and_url() {
        let file = FileOutcome {
            url: "http://127.0.0.1:1234/x".into(),
            dest: "/tmp/x".into(),
            bytes: 0,
            size: None,
        };
        let line = Failure::job_error(&http_404(), Some(&file)).error_line();
        assert_eq!(
            line,
            "backhaul: error: BG_E_HTTP_ERROR_404 (0x80190194) in BG_ERROR_CONTEXT_REMOTE_FILE: \
             the server answered HTTP 404 Not Found for http://127.0.0.1:1234/x"
        );
    }

    #[test]
    fn job_error_line_does_not_repeat_a_url_the_description_names() {
        let error = JobError::new(
            ErrorContext::RemoteFile,
            HResult::from_http_status(404),
            "http://h/x: not found",
        );
        let file = FileOutcome {
            url: "http://h/x".into(),
            dest: "/d".into(),
            bytes: 0,
            size: None,
        };
        let line = Failure::job_error(&error, Some(&file)).error_line();
        assert!(
            line.ends_with("BG_ERROR_CONTEXT_REMOTE_FILE: http://h/x: not found"),
            "{line}"
        );
    }

    #[test]
    fn local_file_error_names_the_destination() {
        let error = JobError::new(
            ErrorContext::LocalFile,
            HResult::from_win32(112),
            "disk full",
        );
        let file = FileOutcome {
            url: "http://h/x".into(),
            dest: "/data/x".into(),
            bytes: 0,
            size: None,
        };
        let line = Failure::job_error(&error, Some(&file)).error_line();
        assert!(
            line.ends_with("in BG_ERROR_CONTEXT_LOCAL_FILE: disk full for /data/x"),
            "{line}"
        );
    }

    #[test]
    fn job_error_without_description_uses_the_codes_message() {
        let error = JobError::new(
            ErrorContext::RemoteFile,
            HResult::from_http_status(503),
            "  ",
        );
        let line = Failure::job_error(&error, None).error_line();
        assert!(
            line.ends_with(": the server answered HTTP 503 Service Unavailable"),
            "{line}"
        );
    }

    #[test]
    fn error_line_is_one_line_whatever_the_description() {
        let error = JobError::new(
            ErrorContext::GeneralTransport,
            HResult(0x8007_2EFD),
            "a\nb\r\nc",
        );
        let line = Failure::job_error(&error, None).error_line();
        assert!(!line.contains('\n') && !line.contains('\r'), "{line:?}");
        assert!(line.contains("0x80072EFD"), "{line}");
    }

    #[test]
    fn refusal_line_names_code_and_pair() {
        let error = BitsError::new(
            codes::E_INVALIDARG,
            "local name \"x\" is not an absolute path",
        );
        let doing = describe_pair(0, "http://h/x", Path::new("x"));
        let line = Failure::refused(FailureKind::Usage, &error, &doing).error_line();
        assert_eq!(
            line,
            "backhaul: error: E_INVALIDARG (0x80070057): local name \"x\" is not an absolute path \
             (file 1: http://h/x -> x)"
        );
    }

    #[test]
    fn a_code_without_a_name_is_shown_once_in_hex() {
        let error = BitsError::new(HResult(0x8000_1234), "something unheard of");
        let line = Failure::refused(FailureKind::Transfer, &error, "creating the job").error_line();
        assert_eq!(
            line,
            "backhaul: error: 0x80001234: something unheard of (creating the job)"
        );
    }

    #[test]
    fn plain_failure_has_no_code() {
        let line = Failure::plain(FailureKind::Transfer, "driver stopped").error_line();
        assert_eq!(line, "backhaul: error: driver stopped");
    }

    #[test]
    fn long_urls_are_shortened_and_counted() {
        let url = format!("http://h/{}", "a".repeat(2_200));
        let short = shorten(&url);
        assert!(short.chars().count() < 120, "{short}");
        assert!(short.ends_with("(2209 characters)"), "{short}");
        assert_eq!(shorten("http://h/x"), "http://h/x");
    }

    #[test]
    fn exit_codes_follow_blame() {
        let mut outcome = Outcome::new("t", &[pair("http://h/x", "/x")]);
        assert_eq!(outcome.exit_code(), EXIT_OK);
        outcome.failure = Some(Failure::plain(FailureKind::Usage, "u"));
        assert_eq!(outcome.exit_code(), EXIT_USAGE);
        outcome.failure = Some(Failure::plain(FailureKind::Transfer, "t"));
        assert_eq!(outcome.exit_code(), EXIT_FAILED);
        outcome.failure = Some(Failure::plain(FailureKind::Interrupted, "i"));
        assert_eq!(outcome.exit_code(), EXIT_INTERRUPTED);
    }

    #[test]
    fn json_keeps_the_documented_field_order() {
        let json = Outcome::new("t", &[]).to_json();
        assert!(
            json.starts_with(r#"{"ok":true,"exit_code":0,"job":null,"display_name":"t","#),
            "{json}"
        );
        assert!(!json.contains('\n'), "{json}");
    }

    #[test]
    fn json_of_a_success_has_job_state_and_files() {
        let mut outcome = Outcome::new(
            "t",
            &[pair("http://h/a", "/d/a"), pair("http://h/b", "/d/b")],
        );
        outcome.job = Some(JobId(0x1234));
        outcome.state = Some(JobState::Acknowledged);
        outcome.files[0].bytes = 10;
        outcome.files[0].size = Some(10);
        let v: serde_json::Value = serde_json::from_str(&outcome.to_json()).unwrap();
        assert_eq!(v["ok"], true);
        assert_eq!(v["exit_code"], 0);
        assert_eq!(v["job"], "{00000000-0000-0000-0000-000000001234}");
        assert_eq!(v["display_name"], "t");
        assert_eq!(v["state"], "ACKNOWLEDGED");
        assert_eq!(v["files"][0]["url"], "http://h/a");
        assert_eq!(v["files"][0]["dest"], "/d/a");
        assert_eq!(v["files"][0]["bytes"], 10);
        assert_eq!(v["files"][0]["size"], 10);
        assert_eq!(v["files"][1]["bytes"], 0);
        assert!(v["files"][1]["size"].is_null());
        assert!(v["error"].is_null());
    }

    #[test]
    fn json_of_a_failure_has_the_error_fields() {
        let mut outcome = Outcome::new("t", &[pair("http://h/x", "/d/x")]);
        outcome.job = Some(JobId(1));
        outcome.state = Some(JobState::Cancelled);
        outcome.failure = Some(Failure::job_error(&http_404(), Some(&outcome.files[0])));
        let v: serde_json::Value = serde_json::from_str(&outcome.to_json()).unwrap();
        assert_eq!(v["ok"], false);
        assert_eq!(v["exit_code"], 1);
        assert_eq!(v["state"], "CANCELLED");
        assert_eq!(v["error"]["context"], "BG_ERROR_CONTEXT_REMOTE_FILE");
        assert_eq!(v["error"]["code"], "BG_E_HTTP_ERROR_404");
        assert_eq!(v["error"]["hresult"], "0x80190194");
        assert_eq!(
            v["error"]["message"],
            "the server answered HTTP 404 Not Found for http://h/x"
        );
    }

    #[test]
    fn json_of_a_failure_before_any_job_has_nulls() {
        let mut outcome = Outcome::new("t", &[pair("http://h/x", "/d/x")]);
        outcome.failure = Some(Failure::plain(FailureKind::Usage, "cannot read CA file"));
        let v: serde_json::Value = serde_json::from_str(&outcome.to_json()).unwrap();
        assert!(v["job"].is_null() && v["state"].is_null());
        assert!(v["error"]["code"].is_null() && v["error"]["context"].is_null());
        assert_eq!(v["exit_code"], 2);
    }

    #[test]
    fn summary_counts_files_and_bytes() {
        let mut outcome = Outcome::new("t", &[pair("http://h/a", "/d/a")]);
        outcome.job = Some(JobId(1));
        outcome.files[0].bytes = 2048;
        let line = outcome.summary_line();
        assert!(
            line.starts_with("backhaul: transferred 1 file (2.00 KiB)"),
            "{line}"
        );
    }
}
