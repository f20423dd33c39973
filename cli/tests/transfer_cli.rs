//! `backhaul transfer` end to end: the real binary against the loopback test server.
//!
//! Every run is bounded ([`RUN_TIMEOUT`]): a child that overstays is killed and the test fails
//! with what it printed. Destinations live in a fresh directory per test, so "no file created,
//! no temp left" is "the directory is empty".

use std::ffi::OsString;
use std::io::Read;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use backhaul_tests::{deterministic_bytes, FileSpec, Route, Step, TestPki, TestServer};

/// No run may take longer than this.
const RUN_TIMEOUT: Duration = Duration::from_secs(60);

/// What a finished run printed, and how it exited.
#[derive(Debug, Default)]
struct Run {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

impl Run {
    fn stderr_lines(&self) -> Vec<&str> {
        self.stderr
            .lines()
            .filter(|l| !l.trim().is_empty())
            .collect()
    }
}

/// A started `backhaul`, read on two threads so neither pipe fills up.
struct Running {
    child: Child,
    stdout: JoinHandle<String>,
    stderr: JoinHandle<String>,
    started: Instant,
}

fn spawn<I, S>(args: I) -> Running
where
    I: IntoIterator<Item = S>,
    S: Into<OsString>,
{
    spawn_in(None, args)
}

/// Start `backhaul ARGS…`, in `dir` when given.
fn spawn_in<I, S>(dir: Option<&Path>, args: I) -> Running
where
    I: IntoIterator<Item = S>,
    S: Into<OsString>,
{
    spawn_with_env(dir, args, &[])
}

/// As [`spawn_in`], with extra environment variables for the child only.
fn spawn_with_env<I, S>(dir: Option<&Path>, args: I, envs: &[(&str, &str)]) -> Running
where
    I: IntoIterator<Item = S>,
    S: Into<OsString>,
{
    let mut command = Command::new(env!("CARGO_BIN_EXE_backhaul"));
    command.envs(envs.iter().copied());
    if let Some(dir) = dir {
        command.current_dir(dir);
    }
    command.args(args.into_iter().map(Into::into));
    start(command)
}

/// `backhaul ARGS…` under `umask` (an octal string), through `sh`, which sets it and execs.
fn spawn_with_umask<I, S>(umask: &str, args: I) -> Running
where
    I: IntoIterator<Item = S>,
    S: Into<OsString>,
{
    let mut command = Command::new("sh");
    command
        .arg("-c")
        .arg(format!("umask {umask} && exec \"$0\" \"$@\""))
        .arg(env!("CARGO_BIN_EXE_backhaul"))
        .args(args.into_iter().map(Into::into));
    start(command)
}

/// Starts `command` with its output piped and read.
fn start(mut command: Command) -> Running {
    let mut child = command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start backhaul");
    let stdout = read_all(child.stdout.take().expect("piped stdout"));
    let stderr = read_all(child.stderr.take().expect("piped stderr"));
    Running {
        child,
        stdout,
        stderr,
        started: Instant::now(),
    }
}

fn read_all(mut pipe: impl Read + Send + 'static) -> JoinHandle<String> {
    std::thread::spawn(move || {
        let mut s = String::new();
        let _ = pipe.read_to_string(&mut s);
        s
    })
}

impl Running {
    /// Wait for the child, killing it (and failing the test) after [`RUN_TIMEOUT`].
    fn finish(mut self) -> Run {
        let status = loop {
            if let Some(status) = self.child.try_wait().expect("poll backhaul") {
                break Some(status);
            }
            if self.started.elapsed() > RUN_TIMEOUT {
                let _ = self.child.kill();
                let _ = self.child.wait();
                break None;
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        let run = Run {
            code: status.and_then(|s| s.code()),
            stdout: self.stdout.join().unwrap_or_default(),
            stderr: self.stderr.join().unwrap_or_default(),
        };
        assert!(
            status.is_some(),
            "backhaul ran longer than {RUN_TIMEOUT:?} and was killed: {run:#?}"
        );
        run
    }
}

/// Run `backhaul ARGS…` to the end.
fn backhaul<I, S>(args: I) -> Run
where
    I: IntoIterator<Item = S>,
    S: Into<OsString>,
{
    spawn(args).finish()
}

/// `transfer`, the given options, then the URL/DEST pairs.
fn transfer(options: &[&str], pairs: &[(&str, &Path)]) -> Run {
    let mut args: Vec<OsString> = vec!["transfer".into()];
    args.extend(options.iter().map(OsString::from));
    for (url, dest) in pairs {
        args.push(OsString::from(url));
        args.push(dest.as_os_str().to_owned());
    }
    backhaul(args)
}

fn entries(dir: &Path) -> Vec<PathBuf> {
    let mut names: Vec<PathBuf> = std::fs::read_dir(dir)
        .expect("read the destination directory")
        .map(|e| e.expect("a directory entry").path())
        .collect();
    names.sort();
    names
}

fn assert_empty(dir: &Path, run: &Run) {
    let left = entries(dir);
    assert!(
        left.is_empty(),
        "files were left behind: {left:?}\n{run:#?}"
    );
}

/// A server with `/file` holding `len` reproducible bytes.
fn serve_file(len: usize) -> (TestServer, Vec<u8>) {
    let body: Vec<u8> = deterministic_bytes(len, 7).to_vec();
    let server = TestServer::start(vec![Route::file(
        "/file",
        FileSpec::new(body.clone().into()),
    )]);
    (server, body)
}

fn download_is_identical(runtime: &str) {
    let (server, body) = serve_file(300_000);
    let dir = tempfile::tempdir().unwrap();
    let dest = dir.path().join("out.bin");
    let run = transfer(&["--runtime", runtime], &[(&server.url("/file"), &dest)]);
    assert_eq!(run.code, Some(0), "{run:#?}");
    assert!(
        std::fs::read(&dest).unwrap() == body,
        "the downloaded file differs"
    );
    assert_eq!(
        entries(dir.path()),
        [dest],
        "only the file is in the directory (no temp left)"
    );
    // stderr is a pipe here: no progress bar, and nothing else on success.
    assert_eq!(run.stderr, "", "{run:#?}");
    assert!(run.stdout.contains("transferred 1 file"), "{run:#?}");
}

#[test]
fn http_download_on_tokio_exits_0_with_the_file_identical() {
    download_is_identical("tokio");
}

#[test]
fn http_download_on_blocking_exits_0_with_the_file_identical() {
    download_is_identical("blocking");
}

#[test]
fn a_downloaded_file_gets_the_mode_the_umask_allows_like_any_new_file() {
    let (server, body) = serve_file(10_000);
    for (umask, want) in [("027", 0o640), ("077", 0o600), ("002", 0o664)] {
        let dir = tempfile::tempdir().unwrap();
        let dest = dir.path().join("out.bin");
        let url = server.url("/file");
        let run =
            spawn_with_umask(umask, ["transfer".as_ref(), url.as_ref(), dest.as_os_str()]).finish();
        assert_eq!(run.code, Some(0), "{run:#?}");
        assert!(std::fs::read(&dest).unwrap() == body);
        let mode = std::fs::metadata(&dest).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, want, "umask {umask}: {mode:o}");
    }
}

#[test]
fn two_files_in_one_job_both_arrive() {
    let a: Vec<u8> = deterministic_bytes(10_000, 1).to_vec();
    let b: Vec<u8> = deterministic_bytes(20_000, 2).to_vec();
    let server = TestServer::start(vec![
        Route::file("/a", FileSpec::new(a.clone().into())),
        Route::file("/b", FileSpec::new(b.clone().into())),
    ]);
    let dir = tempfile::tempdir().unwrap();
    let (da, db) = (dir.path().join("a"), dir.path().join("b"));
    let run = transfer(
        &["-q"],
        &[(&server.url("/a"), &da), (&server.url("/b"), &db)],
    );
    assert_eq!(run.code, Some(0), "{run:#?}");
    assert!(std::fs::read(&da).unwrap() == a && std::fs::read(&db).unwrap() == b);
    assert_eq!(
        (run.stdout.as_str(), run.stderr.as_str()),
        ("", ""),
        "-q prints nothing on success"
    );
}

fn https_with_ca_file(runtime: &str) {
    let pki = TestPki::new();
    let body: Vec<u8> = deterministic_bytes(50_000, 3).to_vec();
    let server = TestServer::start_tls(
        vec![Route::file("/file", FileSpec::new(body.clone().into()))],
        &pki,
    );
    let ca_dir = tempfile::tempdir().unwrap();
    let ca = pki.write_ca_pem(ca_dir.path());
    let dir = tempfile::tempdir().unwrap();
    let dest = dir.path().join("secure.bin");
    let ca = ca.to_str().unwrap();
    let run = transfer(
        &["--runtime", runtime, "--ca-file", ca],
        &[(&server.url("/file"), &dest)],
    );
    assert_eq!(run.code, Some(0), "{run:#?}");
    assert!(std::fs::read(&dest).unwrap() == body);
}

#[test]
fn https_with_ca_file_on_tokio_exits_0() {
    https_with_ca_file("tokio");
}

#[test]
fn https_with_ca_file_on_blocking_exits_0() {
    https_with_ca_file("blocking");
}

#[test]
fn https_without_the_ca_fails_in_the_certificate_check() {
    let pki = TestPki::new();
    let server = TestServer::start_tls(
        vec![Route::file("/file", FileSpec::new(vec![1u8; 10].into()))],
        &pki,
    );
    let dir = tempfile::tempdir().unwrap();
    let run = transfer(
        &["--no-progress-timeout", "0"],
        &[(&server.url("/file"), &dir.path().join("x"))],
    );
    assert_eq!(run.code, Some(1), "{run:#?}");
    assert_eq!(run.stderr_lines().len(), 1, "{run:#?}");
    assert_empty(dir.path(), &run);
}

#[test]
fn missing_ca_file_is_a_usage_error_naming_it() {
    let (server, _) = serve_file(10);
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("no-such-ca.pem");
    let dest = dir.path().join("x");
    let run = transfer(
        &["--ca-file", missing.to_str().unwrap()],
        &[(&server.url("/file"), &dest)],
    );
    assert_eq!(run.code, Some(2), "{run:#?}");
    assert!(run.stderr.contains("no-such-ca.pem"), "{run:#?}");
    assert_empty(dir.path(), &run);
}

#[test]
fn json_output_has_job_state_and_files() {
    let (server, body) = serve_file(12_345);
    let dir = tempfile::tempdir().unwrap();
    let dest = dir.path().join("j.bin");
    let url = server.url("/file");
    let run = transfer(&["--json", "--display-name", "json test"], &[(&url, &dest)]);
    assert_eq!(run.code, Some(0), "{run:#?}");
    let v: serde_json::Value =
        serde_json::from_str(run.stdout.trim()).expect("stdout is one JSON object");
    assert_eq!(v["ok"], true);
    assert!(
        v["job"]
            .as_str()
            .is_some_and(|j| j.starts_with('{') && j.len() == 38),
        "{v}"
    );
    assert_eq!(v["display_name"], "json test");
    assert_eq!(v["state"], "ACKNOWLEDGED");
    assert_eq!(v["files"][0]["url"], url.as_str());
    assert_eq!(v["files"][0]["dest"], dest.to_str().unwrap());
    assert_eq!(v["files"][0]["bytes"], body.len() as u64);
    assert!(v["error"].is_null());
}

fn not_found(runtime: &str) {
    let server = TestServer::start(vec![Route::status("/missing", 404)]);
    let dir = tempfile::tempdir().unwrap();
    let run = transfer(
        &["--runtime", runtime],
        &[(&server.url("/missing"), &dir.path().join("x"))],
    );
    assert_eq!(run.code, Some(1), "{run:#?}");
    let lines = run.stderr_lines();
    assert_eq!(lines.len(), 1, "one error line: {run:#?}");
    assert!(lines[0].starts_with("backhaul: error: "), "{run:#?}");
    assert!(
        lines[0].contains("BG_E_HTTP_ERROR_404") && lines[0].contains("0x80190194"),
        "{run:#?}"
    );
    assert!(
        lines[0].contains("BG_ERROR_CONTEXT_REMOTE_FILE"),
        "{run:#?}"
    );
    assert_empty(dir.path(), &run);
}

#[test]
fn not_found_on_tokio_fails_with_one_line_and_leaves_nothing() {
    not_found("tokio");
}

#[test]
fn not_found_on_blocking_fails_with_one_line_and_leaves_nothing() {
    not_found("blocking");
}

#[test]
fn json_output_of_a_failure_has_the_error() {
    let server = TestServer::start(vec![Route::status("/missing", 404)]);
    let dir = tempfile::tempdir().unwrap();
    let run = transfer(
        &["--json", "-q"],
        &[(&server.url("/missing"), &dir.path().join("x"))],
    );
    assert_eq!(run.code, Some(1), "{run:#?}");
    let v: serde_json::Value =
        serde_json::from_str(run.stdout.trim()).expect("stdout is one JSON object");
    assert_eq!(v["ok"], false);
    assert_eq!(v["state"], "CANCELLED");
    assert_eq!(v["error"]["context"], "BG_ERROR_CONTEXT_REMOTE_FILE");
    assert_eq!(v["error"]["code"], "BG_E_HTTP_ERROR_404");
    assert_eq!(v["error"]["hresult"], "0x80190194");
    assert!(
        v["error"]["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty()),
        "{v}"
    );
    assert_eq!(v["files"][0]["bytes"], 0);
    assert_empty(dir.path(), &run);
}

#[test]
fn transient_error_is_retried_until_the_file_arrives() {
    let body: Vec<u8> = deterministic_bytes(1_000, 4).to_vec();
    let steps = vec![
        Step::status(503),
        Step::Serve(FileSpec::new(body.clone().into())),
    ];
    let server = TestServer::start(vec![Route::script("/flaky", steps)]);
    let dir = tempfile::tempdir().unwrap();
    let dest = dir.path().join("f");
    let run = transfer(&["--retry-delay", "1"], &[(&server.url("/flaky"), &dest)]);
    assert_eq!(run.code, Some(0), "{run:#?}");
    assert!(std::fs::read(&dest).unwrap() == body);
}

#[test]
fn transient_errors_turn_fatal_after_the_no_progress_timeout() {
    let server = TestServer::start(vec![Route::status("/down", 503)]);
    let dir = tempfile::tempdir().unwrap();
    let started = Instant::now();
    let run = transfer(
        &["--retry-delay", "1", "--no-progress-timeout", "2"],
        &[(&server.url("/down"), &dir.path().join("x"))],
    );
    assert_eq!(run.code, Some(1), "{run:#?}");
    assert_eq!(run.stderr_lines().len(), 1, "{run:#?}");
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "took {:?}",
        started.elapsed()
    );
    assert_empty(dir.path(), &run);
}

/// The part of a refusal line that core or the driver wrote: between the code and the
/// CLI's `(file N: …)` suffix.
fn refusal_detail(run: &Run) -> String {
    let lines = run.stderr_lines();
    assert_eq!(lines.len(), 1, "one error line: {run:#?}");
    let line = lines[0];
    let start = line
        .find("E_INVALIDARG (0x80070057): ")
        .unwrap_or_else(|| panic!("not an E_INVALIDARG refusal: {run:#?}"));
    let detail = &line[start + "E_INVALIDARG (0x80070057): ".len()..];
    detail
        .rfind(" (file 1: ")
        .map_or(detail, |end| &detail[..end])
        .to_ascii_lowercase()
}

/// `add_file` refuses the pair: exit 2, the detail names the problem (one of `words`), and
/// `dir` holds only what was there before.
fn assert_refused(url: &str, dest: &Path, dir: &Path, words: &[&str]) {
    let before = entries(dir);
    let run = transfer(&[], &[(url, dest)]);
    assert_eq!(run.code, Some(2), "{run:#?}");
    let detail = refusal_detail(&run);
    assert!(
        words.iter().any(|w| detail.contains(w)),
        "{detail:?} names none of {words:?}"
    );
    assert_eq!(entries(dir), before, "nothing was created: {run:#?}");
}

#[test]
fn relative_dest_is_refused() {
    // Run from inside the directory, so a wrongly accepted relative name would land there.
    let dir = tempfile::tempdir().unwrap();
    let run = spawn_in(
        Some(dir.path()),
        ["transfer", "http://127.0.0.1:9/x", "relative.bin"],
    )
    .finish();
    assert_eq!(run.code, Some(2), "{run:#?}");
    let detail = refusal_detail(&run);
    assert!(detail.contains("absolute"), "{detail:?}");
    assert_empty(dir.path(), &run);
}

#[test]
fn ftp_url_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    assert_refused(
        "ftp://127.0.0.1/x",
        &dir.path().join("x"),
        dir.path(),
        &["scheme", "ftp", "http"],
    );
}

#[test]
fn dest_in_a_missing_directory_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let dest = dir.path().join("no-such-dir").join("x");
    assert_refused(
        "http://127.0.0.1:9/x",
        &dest,
        dir.path(),
        &["director", "exist", "not found"],
    );
}

#[test]
fn url_over_2200_characters_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("http://127.0.0.1:9/{}", "a".repeat(2_200));
    assert_refused(
        &url,
        &dir.path().join("x"),
        dir.path(),
        &["2200", "2,200", "long"],
    );
}

#[test]
fn dest_that_is_a_directory_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let sub = dir.path().join("sub");
    std::fs::create_dir(&sub).unwrap();
    assert_refused("http://127.0.0.1:9/x", &sub, dir.path(), &["director"]);
    assert!(entries(&sub).is_empty());
}

#[test]
fn unknown_priority_is_a_usage_error() {
    let dir = tempfile::tempdir().unwrap();
    let run = transfer(
        &["--priority", "urgent"],
        &[("http://127.0.0.1:9/x", &dir.path().join("x"))],
    );
    assert_eq!(run.code, Some(2), "{run:#?}");
    assert!(
        run.stderr.contains("urgent") && run.stderr.contains("--priority"),
        "{run:#?}"
    );
    assert_empty(dir.path(), &run);
}

#[test]
fn odd_argument_count_is_a_usage_error() {
    let dir = tempfile::tempdir().unwrap();
    let dest = dir.path().join("x");
    let run = backhaul([
        OsString::from("transfer"),
        "http://127.0.0.1:9/x".into(),
        dest.clone().into_os_string(),
        "http://127.0.0.1:9/y".into(),
    ]);
    assert_eq!(run.code, Some(2), "{run:#?}");
    assert!(
        run.stderr.contains("pairs") && run.stderr.contains("has no DEST"),
        "{run:#?}"
    );
    assert_empty(dir.path(), &run);
}

#[test]
fn a_refused_second_pair_leaves_nothing_of_the_first() {
    let (server, _) = serve_file(1_000);
    let dir = tempfile::tempdir().unwrap();
    let ok = dir.path().join("ok");
    let run = transfer(
        &[],
        &[
            (&server.url("/file"), &ok),
            ("ftp://127.0.0.1/x", &dir.path().join("x")),
        ],
    );
    assert_eq!(run.code, Some(2), "{run:#?}");
    assert!(
        run.stderr.contains("(file 2: ftp://127.0.0.1/x -> "),
        "{run:#?}"
    );
    assert_empty(dir.path(), &run);
}

#[test]
fn version_prints_the_package_version() {
    let run = backhaul(["--version"]);
    assert_eq!(run.code, Some(0), "{run:#?}");
    assert_eq!(
        run.stdout.trim(),
        format!("backhaul {}", env!("CARGO_PKG_VERSION"))
    );
}

#[test]
fn help_states_the_cli_defaults() {
    let run = backhaul(["transfer", "--help"]);
    assert_eq!(run.code, Some(0), "{run:#?}");
    for default in [
        "[default: 10]",
        "[default: 300]",
        "[default: foreground]",
        "[default: tokio]",
    ] {
        assert!(run.stdout.contains(default), "{default} missing: {run:#?}");
    }
}

#[cfg(unix)]
#[test]
fn ctrl_c_cancels_the_job_and_leaves_nothing() {
    let body: Vec<u8> = deterministic_bytes(100_000, 5).to_vec();
    let stall = Step::Stall {
        file: FileSpec::new(body.into()),
        after: 10_000,
        hold: Duration::from_secs(120),
    };
    let server = TestServer::start(vec![Route::script("/slow", vec![stall])]);
    let dir = tempfile::tempdir().unwrap();
    let dest = dir.path().join("slow.bin");
    let running = spawn([
        OsString::from("transfer"),
        server.url("/slow").into(),
        dest.into_os_string(),
    ]);
    // Wait until the server has sent the first bytes, so the job is mid-transfer.
    let deadline = Instant::now() + Duration::from_secs(20);
    while server
        .requests_to("GET", "/slow")
        .iter()
        .all(|r| r.body_bytes_sent == 0)
        && Instant::now() < deadline
    {
        std::thread::sleep(Duration::from_millis(20));
    }
    std::thread::sleep(Duration::from_millis(300));
    let pid = running.child.id().to_string();
    let killed = Command::new("kill")
        .args(["-INT", &pid])
        .status()
        .expect("run kill");
    assert!(killed.success());
    let run = running.finish();
    assert_eq!(run.code, Some(130), "{run:#?}");
    assert!(run.stderr.contains("interrupted"), "{run:#?}");
    assert_empty(dir.path(), &run);
}

fn sha256_hex_of(der: &[u8]) -> String {
    backhaul_tests::data::sha256_hex(der)
}

fn pinned(runtime: &str) {
    let pki = TestPki::new();
    let body: Vec<u8> = deterministic_bytes(20_000, 5).to_vec();
    let server = TestServer::start_tls(
        vec![Route::file("/file", FileSpec::new(body.clone().into()))],
        &pki,
    );
    let ca_dir = tempfile::tempdir().unwrap();
    let ca = pki.write_ca_pem(ca_dir.path());
    let ca = ca.to_str().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let pin = sha256_hex_of(pki.leaf_der().as_ref());

    let dest = dir.path().join("pinned.bin");
    let run = transfer(
        &["--runtime", runtime, "--ca-file", ca, "--pin-sha256", &pin],
        &[(&server.url("/file"), &dest)],
    );
    assert_eq!(run.code, Some(0), "{run:#?}");
    assert!(std::fs::read(&dest).unwrap() == body);

    // Another pin: refused at once (not after the no-progress timeout), nothing left behind,
    // and the server never saw a request.
    let other = dir.path().join("other");
    std::fs::create_dir(&other).unwrap();
    let requests_before = server.requests().len();
    let started = std::time::Instant::now();
    let run = transfer(
        &[
            "--runtime",
            runtime,
            "--ca-file",
            ca,
            "--pin-sha256",
            &"ab".repeat(32),
        ],
        &[(&server.url("/file"), &other.join("x"))],
    );
    assert_eq!(run.code, Some(1), "{run:#?}");
    assert!(started.elapsed() < Duration::from_secs(60), "{run:#?}");
    assert!(
        run.stderr.contains("TRUST_E_FAIL") && run.stderr.contains("callback"),
        "{run:#?}"
    );
    assert_eq!(server.requests().len(), requests_before);
    assert_empty(&other, &run);
}

#[test]
fn pinned_download_on_tokio_accepts_only_the_pinned_certificate() {
    pinned("tokio");
}

#[test]
fn pinned_download_on_blocking_accepts_only_the_pinned_certificate() {
    pinned("blocking");
}

#[test]
fn undefined_security_flags_are_a_usage_error() {
    let dir = tempfile::tempdir().unwrap();
    for flags in ["0x40", "0x0300", "crl,bogus"] {
        let run = transfer(
            &["--security-flags", flags],
            &[("http://127.0.0.1:9/x", &dir.path().join("x"))],
        );
        assert_eq!(run.code, Some(2), "{flags}: {run:#?}");
        assert!(run.stderr.contains("security-flags"), "{flags}: {run:#?}");
    }
    assert_empty(dir.path(), &Run::default());
}

#[test]
fn a_custom_header_reaches_its_origin_and_never_the_redirect_target() {
    let body: Vec<u8> = deterministic_bytes(10_000, 9).to_vec();
    let target = TestServer::start(vec![Route::file(
        "/file",
        FileSpec::new(body.clone().into()),
    )]);
    let location = target.url("/file");
    let origin = TestServer::start(vec![Route::script(
        "/file",
        vec![Step::status_with_headers(302, &[("Location", &location)])],
    )]);
    let dir = tempfile::tempdir().unwrap();
    let dest = dir.path().join("f");
    let run = transfer(
        &["-H", "X-Token: abc123", "--header", "Accept-Language: fr"],
        &[(&origin.url("/file"), &dest)],
    );
    assert_eq!(run.code, Some(0), "{run:#?}");
    assert!(std::fs::read(&dest).unwrap() == body);
    let has = |r: &backhaul_tests::RecordedRequest, name: &str| {
        r.headers.iter().any(|(n, _)| n.eq_ignore_ascii_case(name))
    };
    let first = &origin.requests()[0];
    assert!(
        has(first, "x-token") && has(first, "accept-language"),
        "{first:?}"
    );
    for r in target.requests() {
        assert!(!has(&r, "x-token") && !has(&r, "accept-language"), "{r:?}");
    }
}

#[test]
fn a_header_with_a_line_break_or_a_reserved_name_is_a_usage_error() {
    let dir = tempfile::tempdir().unwrap();
    for header in ["X-A: 1\r\nX-B: 2", "Host: evil.test", "no colon"] {
        let run = transfer(
            &["--header", header],
            &[("http://127.0.0.1:9/x", &dir.path().join("x"))],
        );
        assert_eq!(run.code, Some(2), "{header:?}: {run:#?}");
        assert!(run.stderr.contains("header"), "{header:?}: {run:#?}");
    }
    assert_empty(dir.path(), &Run::default());
}

fn protected_server(body: &[u8]) -> TestServer {
    use backhaul_tests::server::AuthSpec;
    TestServer::start(vec![Route {
        path: "/file".into(),
        behavior: AuthSpec::basic("alice", "wonder land").protect(backhaul_tests::Behavior::File(
            FileSpec::new(body.to_vec().into()),
        )),
    }])
}

/// `transfer` with a variable holding the password in the child's environment.
fn transfer_with_env(options: &[&str], var: (&str, &str), pairs: &[(&str, &Path)]) -> Run {
    let mut args: Vec<OsString> = vec!["transfer".into()];
    args.extend(options.iter().map(OsString::from));
    for (url, dest) in pairs {
        args.push(OsString::from(url));
        args.push(dest.as_os_str().to_owned());
    }
    spawn_with_env(None, args, &[var]).finish()
}

#[test]
fn server_credentials_from_an_environment_variable_open_a_protected_file() {
    let body: Vec<u8> = deterministic_bytes(30_000, 12).to_vec();
    let server = protected_server(&body);
    let dir = tempfile::tempdir().unwrap();
    for (runtime, password, code) in [("tokio", "wonder land", 0), ("blocking", "guess", 1)] {
        let dest = dir.path().join(runtime);
        let run = transfer_with_env(
            &[
                "--runtime",
                runtime,
                "--server-auth",
                "basic:alice",
                "--password-env",
                "BH_TEST_PW",
            ],
            ("BH_TEST_PW", password),
            &[(&server.url("/file"), &dest)],
        );
        assert_eq!(run.code, Some(code), "{runtime}: {run:#?}");
        if code == 0 {
            assert!(std::fs::read(&dest).unwrap() == body);
        } else {
            assert!(run.stderr.contains("0x80190191"), "{run:#?}");
            assert!(
                !run.stderr.contains("guess"),
                "the password never shows: {run:#?}"
            );
        }
    }
}

#[test]
fn a_password_is_never_read_from_the_command_line_and_its_absence_is_a_usage_error() {
    let dir = tempfile::tempdir().unwrap();
    let run = transfer(
        &["--server-auth", "digest:alice"],
        &[("http://127.0.0.1:9/x", &dir.path().join("x"))],
    );
    assert_eq!(run.code, Some(2), "{run:#?}");
    assert!(run.stderr.contains("--password-env"), "{run:#?}");
    let run = transfer(
        &["--proxy-bypass", "*.lan"],
        &[("http://127.0.0.1:9/x", &dir.path().join("x"))],
    );
    assert_eq!(run.code, Some(2), "{run:#?}");
    assert_empty(dir.path(), &Run::default());
}

/// The bytes of the file the `--store` tests kill a transfer in the middle of.
const KILLED_FILE: usize = 32 * 1024 * 1024;
/// The engine's checkpoint interval (`Config::checkpoint_bytes`): a resumed file starts at or
/// past it once this much was on disk.
const CHECKPOINT: u64 = 8 * 1024 * 1024;

/// How the first run of a `--store` transfer is stopped in the middle of its file.
#[derive(Clone, Copy, Debug)]
enum Stop {
    /// SIGKILL: a crash; the job is wherever its last commit left it.
    Kill,
    /// SIGINT (Ctrl+C): the job is suspended and kept in the store; exit 130.
    Interrupt,
}

/// `--store`: a transfer stopped in the middle of a file and run again with the same command
/// resumes from its last checkpoint (a `Range` at or past 8 MiB, not byte 0), the file arrives
/// whole, and nothing was at the local name in between.
fn stopped_transfer_resumes_from_its_checkpoint(runtime: &str, stop: Stop) {
    let body: Vec<u8> = deterministic_bytes(KILLED_FILE, 11).to_vec();
    let file = FileSpec::new(body.clone().into()).throttled(12 * 1024 * 1024);
    let server = TestServer::start(vec![Route::file("/big.bin", file)]);
    let dir = tempfile::tempdir().unwrap();
    let state = tempfile::tempdir().unwrap();
    let store = state.path().join("jobs.redb");
    let dest = dir.path().join("big.bin");
    let url = server.url("/big.bin");
    let args = || -> Vec<OsString> {
        let mut args: Vec<OsString> = ["transfer", "-q", "--runtime", runtime, "--store"]
            .iter()
            .map(OsString::from)
            .collect();
        args.extend([store.clone().into_os_string(), url.clone().into()]);
        args.push(dest.as_os_str().to_owned());
        args
    };

    let mut first = spawn(args());
    let deadline = Instant::now() + RUN_TIMEOUT;
    let on_disk = |dir: &Path| -> u64 {
        entries(dir)
            .iter()
            .filter_map(|p| std::fs::metadata(p).ok())
            .map(|m| m.len())
            .sum()
    };
    while on_disk(dir.path()) < CHECKPOINT + CHECKPOINT / 2 {
        assert!(
            first.child.try_wait().unwrap().is_none(),
            "the first run ended before it was stopped: {:#?}",
            first.finish()
        );
        assert!(Instant::now() < deadline, "the first run made no progress");
        std::thread::sleep(Duration::from_millis(20));
    }
    match stop {
        Stop::Kill => {
            first.child.kill().expect("SIGKILL the first run");
            first.child.wait().expect("reap the first run");
        }
        Stop::Interrupt => {
            let pid = first.child.id().to_string();
            let sent = Command::new("kill").args(["-INT", &pid]).status();
            assert!(sent.expect("run kill").success());
            let run = first.finish();
            assert_eq!(run.code, Some(130), "{run:#?}");
            assert!(run.stderr.contains("suspended and kept in"), "{run:#?}");
        }
    }
    assert!(!dest.exists(), "the local name appeared before complete");

    let second = backhaul(args());
    assert_eq!(
        second.code,
        Some(0),
        "{second:#?}\n{}",
        server.request_log()
    );
    assert!(
        std::fs::read(&dest).unwrap() == body,
        "the resumed file differs"
    );
    assert_eq!(
        entries(dir.path()),
        std::slice::from_ref(&dest),
        "a temp file was left"
    );
    let requests = server.requests_to("GET", "/big.bin");
    let resumed_at = requests
        .last()
        .and_then(|r| r.header("Range"))
        .and_then(|r| r.strip_prefix("bytes="))
        .and_then(|r| r.trim_end_matches('-').parse::<u64>().ok())
        .unwrap_or(0);
    assert!(
        resumed_at >= CHECKPOINT,
        "{stop:?}: the second run started at byte {resumed_at}, not at the checkpoint:\n{}",
        server.request_log()
    );
}

#[test]
fn a_transfer_with_store_killed_mid_file_resumes_from_its_checkpoint_on_tokio() {
    stopped_transfer_resumes_from_its_checkpoint("tokio", Stop::Kill);
}

#[test]
fn a_transfer_with_store_killed_mid_file_resumes_from_its_checkpoint_on_blocking() {
    stopped_transfer_resumes_from_its_checkpoint("blocking", Stop::Kill);
}

#[test]
fn a_transfer_with_store_interrupted_is_kept_suspended_and_resumed_by_the_same_command() {
    stopped_transfer_resumes_from_its_checkpoint("tokio", Stop::Interrupt);
}
