//! The daemon end to end: `backhaul daemon` on a socket in a temp dir, the bitsadmin verbs as
//! its clients, raw bad requests on the socket, and two users against a root daemon.

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use backhaul_tests::{deterministic_bytes, FileSpec, Route, TestServer};

/// A daemon on its own socket, killed on drop.
struct Daemon {
    child: Child,
    socket: PathBuf,
    _dir: tempfile::TempDir,
}

impl Daemon {
    fn start(system: bool) -> Daemon {
        Self::start_in(tempfile::tempdir().unwrap(), system)
    }

    /// A daemon whose socket and store live in `dir`.
    fn start_in(dir: tempfile::TempDir, system: bool) -> Daemon {
        let socket = dir.path().join("run/backhaul.sock");
        let store = dir.path().join("state/jobs.redb");
        let mut command = Command::new(env!("CARGO_BIN_EXE_backhaul"));
        command
            .arg("daemon")
            .arg("--socket")
            .arg(&socket)
            .arg("--store")
            .arg(&store);
        if system {
            command.arg("--system");
        }
        let child = command
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(20);
        while UnixStream::connect(&socket).is_err() {
            assert!(Instant::now() < deadline, "the daemon did not listen");
            std::thread::sleep(Duration::from_millis(50));
        }
        Daemon {
            child,
            socket,
            _dir: dir,
        }
    }

    /// A verb as this process's user.
    fn verb(&self, args: &[&str]) -> Output {
        self.verb_as(None, args, &[])
    }

    /// A verb as `uid` (the test runs as root for this), with extra environment.
    fn verb_as(&self, uid: Option<u32>, args: &[&str], envs: &[(&str, &str)]) -> Output {
        let mut command = Command::new(env!("CARGO_BIN_EXE_backhaul"));
        command
            .args(args)
            .env("BACKHAUL_SOCKET", &self.socket)
            .envs(envs.iter().copied())
            .stdin(Stdio::null());
        if let Some(uid) = uid {
            command.uid(uid).gid(uid);
        }
        command.output().unwrap()
    }

    /// Bytes sent raw on the socket; the reply lines read back.
    fn raw(&self, bytes: &[u8], replies: usize) -> Vec<serde_json::Value> {
        let mut stream = UnixStream::connect(&self.socket).unwrap();
        stream.write_all(bytes).unwrap();
        let mut reader = BufReader::new(stream);
        (0..replies)
            .map(|_| {
                let mut line = String::new();
                reader.read_line(&mut line).unwrap();
                serde_json::from_str(&line).unwrap()
            })
            .collect()
    }
}

impl Daemon {
    /// SIGKILL, then a new daemon on the same socket and store.
    fn kill_and_restart(mut self) -> Daemon {
        let _ = self.child.kill();
        let _ = self.child.wait();
        // The socket and store directory goes to the new daemon; this one keeps an empty one.
        let dir = std::mem::replace(&mut self._dir, tempfile::tempdir().unwrap());
        Daemon::start_in(dir, false)
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn ok(out: &Output) -> String {
    assert!(
        out.status.success(),
        "exit {:?}\nstdout: {}\nstderr: {}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn refused(out: &Output, code: &str) -> String {
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains(code), "{code} expected: {stderr}");
    stderr
}

fn info(daemon: &Daemon, job: &str) -> serde_json::Value {
    serde_json::from_str(&ok(&daemon.verb(&["info", job, "--json"]))).unwrap()
}

fn wait_for_state(daemon: &Daemon, job: &str, state: &str) -> serde_json::Value {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let info = info(daemon, job);
        if info["state"] == state {
            return info;
        }
        assert!(Instant::now() < deadline, "not {state}: {info}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn every_verb_round_trips_through_the_daemon() {
    let body = deterministic_bytes(100_000, 41).to_vec();
    let server = TestServer::start(vec![Route::file(
        "/f.bin",
        FileSpec::new(body.clone().into()),
    )]);
    let daemon = Daemon::start(false);
    let dest_dir = tempfile::tempdir().unwrap();
    let dest = dest_dir.path().join("f.bin");

    let job = ok(&daemon.verb(&["create", "nightly"])).trim().to_string();
    assert!(job.starts_with('{') && job.ends_with('}'), "{job}");
    ok(&daemon.verb(&[
        "addfile",
        "nightly",
        &server.url("/f.bin"),
        dest.to_str().unwrap(),
    ]));
    for args in [
        vec!["setpriority", "nightly", "high"],
        vec!["setnotifyflags", "nightly", "3"],
        vec!["setminretrydelay", "nightly", "7"],
        vec!["setnoprogresstimeout", "nightly", "600"],
        vec!["setmaxdownloadtime", "nightly", "3600"],
        vec!["setsecurityflags", "nightly", "ignore-date,0x0100"],
        vec!["setcustomheaders", "nightly", "X-Token: t0k3n"],
        vec!["setproxysettings", "nightly", "no_proxy"],
        vec!["setnotifycmdline", "nightly", "/bin/true", "true --done"],
        vec!["setdescription", "nightly", "the nightly build"],
        vec!["setdisplayname", &job, "nightly-2"],
    ] {
        ok(&daemon.verb(&args));
    }
    ok(&daemon.verb_as(
        None,
        &[
            "setcredentials",
            "nightly-2",
            "server",
            "basic",
            "alice",
            "--password-env",
            "PW",
        ],
        &[("PW", "s3cret")],
    ));
    let removed = ok(&daemon.verb(&["removecredentials", "nightly-2", "server", "basic"]));
    assert!(removed.contains("removed"), "{removed}");
    let again = ok(&daemon.verb(&["removecredentials", "nightly-2", "server", "basic"]));
    assert!(again.contains("S_FALSE"), "{again}");

    let seen = info(&daemon, "nightly-2");
    assert_eq!(seen["priority"], "HIGH");
    assert_eq!(seen["minimum_retry_delay"], 7);
    assert_eq!(seen["no_progress_timeout"], 600);
    assert_eq!(seen["maximum_download_time"], 3600);
    assert_eq!(seen["security_flags"], 0x0104);
    assert_eq!(seen["description"], "the nightly build");
    assert_eq!(seen["state"], "SUSPENDED");
    assert!(seen["owner"].as_str().unwrap().starts_with("uid:"));

    ok(&daemon.verb(&["resume", "nightly-2"]));
    let done = wait_for_state(&daemon, &job, "TRANSFERRED");
    assert_eq!(done["bytes_transferred"], body.len());
    assert!(!dest.exists(), "nothing at the local name before complete");
    // The text form: times in RFC 3339 (UTC), durations in seconds as set.
    let text = ok(&daemon.verb(&["info", "nightly-2"]));
    assert!(text.contains("maximum_download_time: 3600\n"), "{text}");
    let completed_at = text
        .lines()
        .find_map(|l| l.strip_prefix("transfer_completion_time: "))
        .unwrap_or_default();
    assert!(
        completed_at.starts_with("20") && completed_at.contains('T') && completed_at.ends_with('Z'),
        "{text}"
    );
    let listed = ok(&daemon.verb(&["list", "--verbose"]));
    assert!(
        listed.contains("nightly-2") && listed.contains("TRANSFERRED"),
        "{listed}"
    );
    let monitored = ok(&daemon.verb(&["monitor", "--count", "1", "--json"]));
    assert!(monitored.contains(&job), "{monitored}");
    ok(&daemon.verb(&["complete", &job]));
    assert_eq!(std::fs::read(&dest).unwrap(), body);
    let request = &server.requests()[0];
    assert!(request
        .headers
        .iter()
        .any(|(n, v)| n == "X-Token" && v == "t0k3n"));

    // Ranges: the local file is the ranges concatenated in the order given.
    let ranged = ok(&daemon.verb(&["create", "ranged"])).trim().to_string();
    let part = dest_dir.path().join("part.bin");
    ok(&daemon.verb(&[
        "addfilewithranges",
        &ranged,
        &server.url("/f.bin"),
        part.to_str().unwrap(),
        "5000:200,0:100,99000:eof",
    ]));
    let shown = info(&daemon, &ranged);
    assert_eq!(shown["files"][0]["ranges"][0]["offset"], 5000, "{shown}");
    assert!(
        shown["files"][0]["ranges"][2]["length"].is_null(),
        "{shown}"
    );
    ok(&daemon.verb(&["resume", &ranged]));
    wait_for_state(&daemon, &ranged, "TRANSFERRED");
    ok(&daemon.verb(&["complete", &ranged]));
    let expected = [&body[5000..5200], &body[..100], &body[99000..]].concat();
    assert_eq!(std::fs::read(&part).unwrap(), expected);
    let bad = ok(&daemon.verb(&["create", "overlapping"]))
        .trim()
        .to_string();
    let overlapping = dest_dir.path().join("x");
    let url = server.url("/f.bin");
    let args = [
        "addfilewithranges",
        &bad,
        &url,
        overlapping.to_str().unwrap(),
        "0:10,5:10",
    ];
    refused(&daemon.verb(&args), "BG_E_OVERLAPPING_RANGES");

    // A second job: suspend and cancel; then take ownership of a third as its owner.
    let other = ok(&daemon.verb(&["create", "other"])).trim().to_string();
    ok(&daemon.verb(&[
        "addfile",
        &other,
        &server.url("/f.bin"),
        dest_dir.path().join("o").to_str().unwrap(),
    ]));
    ok(&daemon.verb(&["suspend", &other]));
    ok(&daemon.verb(&["takeownership", &other]));
    ok(&daemon.verb(&["cancel", &other]));
    assert_eq!(info(&daemon, &other)["state"], "CANCELLED");
    let listed = ok(&daemon.verb(&["list"]));
    assert!(
        !listed.contains(&other),
        "a cancelled job is no longer listed: {listed}"
    );
    refused(&daemon.verb(&["resume", &other]), "BG_E_INVALID_STATE");
}

#[test]
fn jobs_survive_a_killed_daemon_and_complete_after_its_restart() {
    let body = deterministic_bytes(200_000, 43).to_vec();
    let server = TestServer::start(vec![Route::file(
        "/f.bin",
        FileSpec::new(body.clone().into()),
    )]);
    let daemon = Daemon::start(false);
    let dest_dir = tempfile::tempdir().unwrap();
    let dest = dest_dir.path().join("f.bin");
    let job = ok(&daemon.verb(&["create", "durable"])).trim().to_string();
    ok(&daemon.verb(&[
        "addfile",
        &job,
        &server.url("/f.bin"),
        dest.to_str().unwrap(),
    ]));
    ok(&daemon.verb(&["setdescription", &job, "kept across a crash"]));

    let daemon = daemon.kill_and_restart();
    let listed = ok(&daemon.verb(&["list"]));
    assert!(listed.contains(&job), "the job is back: {listed}");
    assert_eq!(info(&daemon, &job)["description"], "kept across a crash");
    ok(&daemon.verb(&["resume", "durable"]));
    wait_for_state(&daemon, &job, "TRANSFERRED");
    ok(&daemon.verb(&["complete", &job]));
    assert_eq!(std::fs::read(&dest).unwrap(), body);
}

#[test]
fn a_second_daemon_over_a_store_in_use_names_the_store_and_never_listens() {
    let first = Daemon::start(false);
    let store = first._dir.path().join("state/jobs.redb");
    let other_socket = first._dir.path().join("other.sock");
    let out = Command::new(env!("CARGO_BIN_EXE_backhaul"))
        .arg("daemon")
        .arg("--socket")
        .arg(&other_socket)
        .arg("--store")
        .arg(&store)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains(&format!(
            "job store {} is in use by another process",
            store.display()
        )),
        "{stderr}"
    );
    assert!(!other_socket.exists(), "it never listened");
    ok(&first.verb(&["list"]));
}

#[test]
fn complete_returns_the_rename_error_and_the_job_stays_transferred() {
    let server = TestServer::start(vec![Route::file(
        "/app.bin",
        FileSpec::new(deterministic_bytes(10_000, 43)),
    )]);
    let daemon = Daemon::start(false);
    let dest_dir = tempfile::tempdir().unwrap();
    let dest = dest_dir.path().join("app.bin");
    std::fs::write(&dest, b"version 1").unwrap();
    ok(&daemon.verb(&["create", "update"]));
    let url = server.url("/app.bin");
    ok(&daemon.verb(&["addfile", "update", &url, dest.to_str().unwrap()]));
    ok(&daemon.verb(&["resume", "update"]));
    let transferred = wait_for_state(&daemon, "update", "TRANSFERRED");
    let temp = transferred["files"][0]["temporary_name"]
        .as_str()
        .expect("a temp file")
        .to_string();
    std::fs::remove_file(temp).unwrap();

    let stderr = refused(&daemon.verb(&["complete", "update"]), "0x80070003");
    assert!(stderr.contains(dest.to_str().unwrap()), "{stderr}");
    assert_eq!(info(&daemon, "update")["state"], "TRANSFERRED");
    assert_eq!(std::fs::read(&dest).unwrap(), b"version 1");
}

#[test]
fn an_ambiguous_display_name_lists_the_candidates() {
    let daemon = Daemon::start(false);
    let a = ok(&daemon.verb(&["create", "twin"])).trim().to_string();
    let b = ok(&daemon.verb(&["create", "twin"])).trim().to_string();
    let err = refused(&daemon.verb(&["resume", "twin"]), "E_INVALIDARG");
    assert!(err.contains(&a) && err.contains(&b), "{err}");
    refused(&daemon.verb(&["info", "nobody"]), "BG_E_NOT_FOUND");
}

#[test]
fn bad_requests_get_error_replies_and_the_daemon_keeps_serving() {
    let daemon = Daemon::start(false);
    let mut bytes = b"{not json\n".to_vec();
    bytes.extend_from_slice(br#"{"v":1,"id":2,"op":"format_disk"}"#);
    bytes.push(b'\n');
    bytes.extend_from_slice(br#"{"v":9,"id":3,"op":"hello"}"#);
    bytes.push(b'\n');
    bytes.extend(std::iter::repeat_n(b'x', 70_000));
    bytes.push(b'\n');
    bytes.extend_from_slice(br#"{"v":1,"id":5,"op":"hello"}"#);
    bytes.push(b'\n');
    let replies = daemon.raw(&bytes, 5);
    assert_eq!(
        replies[0]["error"]["name"], "E_INVALIDARG",
        "{}",
        replies[0]
    );
    assert_eq!(
        replies[1]["error"]["name"], "E_INVALIDARG",
        "{}",
        replies[1]
    );
    assert_eq!(replies[2]["error"]["name"], "E_NOTIMPL", "{}", replies[2]);
    assert_eq!(replies[2]["id"], 3);
    assert!(replies[3]["error"]["message"]
        .as_str()
        .unwrap()
        .contains("longer than"));
    assert_eq!(replies[4]["id"], 5);
    assert_eq!(replies[4]["ok"]["version"], 1);
    // A client that hangs up mid-line does not stop it either.
    drop(
        UnixStream::connect(&daemon.socket)
            .unwrap()
            .write_all(b"{\"v\":1,"),
    );
    ok(&daemon.verb(&["list"]));
}

fn is_root() -> bool {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata("/proc/self").is_ok_and(|m| m.uid() == 0)
}

/// A directory that belongs to `uid`.
fn dir_of(uid: u32) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::os::unix::fs::chown(dir.path(), Some(uid), Some(uid)).unwrap();
    dir
}

#[test]
fn two_users_see_only_their_own_jobs_and_root_sees_and_takes_both() {
    if !is_root() {
        eprintln!("SKIP: needs root to act as two users (CI runs as root)");
        return;
    }
    let (alice, bob) = (61_001, 61_002);
    let server = TestServer::start(vec![Route::file(
        "/f.bin",
        FileSpec::new(deterministic_bytes(1000, 42)),
    )]);
    let daemon = Daemon::start(true);
    let (dir_a, dir_b) = (dir_of(alice), dir_of(bob));
    let create = |uid, name: &str, dir: &Path| {
        let job = ok(&daemon.verb_as(Some(uid), &["create", name], &[]))
            .trim()
            .to_string();
        let local = dir.join("f.bin");
        let url = server.url("/f.bin");
        ok(&daemon.verb_as(
            Some(uid),
            &["addfile", &job, &url, local.to_str().unwrap()],
            &[],
        ));
        job
    };
    let job_a = create(alice, "alice's", dir_a.path());
    let job_b = create(bob, "bob's", dir_b.path());
    ok(&daemon.verb_as(
        Some(alice),
        &[
            "setcredentials",
            &job_a,
            "server",
            "basic",
            "alice",
            "--password-env",
            "PW",
        ],
        &[("PW", "pw")],
    ));

    let mine = ok(&daemon.verb_as(Some(alice), &["list"], &[]));
    assert!(mine.contains(&job_a) && !mine.contains(&job_b), "{mine}");
    refused(
        &daemon.verb_as(Some(bob), &["info", &job_a], &[]),
        "E_ACCESSDENIED",
    );
    refused(
        &daemon.verb_as(Some(bob), &["cancel", &job_a], &[]),
        "E_ACCESSDENIED",
    );
    refused(
        &daemon.verb_as(Some(bob), &["list", "--all-users"], &[]),
        "E_ACCESSDENIED",
    );
    refused(
        &daemon.verb_as(Some(bob), &["takeownership", &job_a], &[]),
        "E_ACCESSDENIED",
    );
    let other_dir = ok(&daemon.verb_as(Some(bob), &["create", "sneaky"], &[]))
        .trim()
        .to_string();
    let into_alices = dir_a.path().join("x").to_str().unwrap().to_string();
    refused(
        &daemon.verb_as(
            Some(bob),
            &["addfile", &other_dir, &server.url("/f.bin"), &into_alices],
            &[],
        ),
        "E_ACCESSDENIED",
    );

    let all = ok(&daemon.verb(&["list", "--all-users"]));
    assert!(all.contains(&job_a) && all.contains(&job_b), "{all}");
    ok(&daemon.verb(&["takeownership", &job_a]));
    assert_eq!(info(&daemon, &job_a)["owner"], "uid:0");
    refused(
        &daemon.verb_as(Some(alice), &["info", &job_a], &[]),
        "E_ACCESSDENIED",
    );
    // The credentials went with the change of owner: removing them finds nothing.
    let none = ok(&daemon.verb(&["removecredentials", &job_a, "server", "basic"]));
    assert!(none.contains("S_FALSE"), "{none}");

    // Bob's job runs and his file is his.
    ok(&daemon.verb_as(Some(bob), &["resume", &job_b], &[]));
    let deadline = Instant::now() + Duration::from_secs(60);
    while !ok(&daemon.verb_as(Some(bob), &["info", &job_b], &[])).contains("TRANSFERRED") {
        assert!(Instant::now() < deadline);
        std::thread::sleep(Duration::from_millis(100));
    }
    ok(&daemon.verb_as(Some(bob), &["complete", &job_b], &[]));
    use std::os::unix::fs::MetadataExt;
    assert_eq!(
        std::fs::metadata(dir_b.path().join("f.bin")).unwrap().uid(),
        bob
    );
}
