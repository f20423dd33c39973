//! Crash safety of the daemon (issue 5): `backhaul daemon` runs multi-file jobs from a slow
//! loopback server and is SIGKILLed at ≥ 20 seeded random points, restarted each time on the
//! same store and socket.
//!
//! The jobs are created with the verbs before the first kill: a `create` whose reply a kill
//! swallowed may or may not exist, so "no job lost, none duplicated" is only decidable for jobs
//! whose creation was answered. Then the first `KILLS` kills all land mid-transfer; later lives
//! lengthen until every job is TRANSFERRED; then each `complete` races a kill of its own, and a
//! last kill checks that completed jobs stay gone. Checked throughout:
//!
//! - after each kill, nothing is at a job's local names before the test asked to complete it,
//!   and a file at a local name is always whole (the rename is atomic);
//! - after each restart, `list --json` shows every job not yet completed exactly once and
//!   nothing else; a job whose `complete` was answered never comes back;
//! - in the end every file is byte-identical and no temp file is left;
//! - the transfers resumed from their checkpoints: resumed (206) requests outnumber the first
//!   kills, and the server sent at most 64 KiB per job and kill more than the files' size.
//!
//! The seed is printed; `BACKHAUL_CRASH_SEED=<n>` replays a run's kill schedule. The daemon
//! runs the tokio driver only; `tests/tests/crash_recovery.rs` kills both drivers under a bare
//! manager.

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use backhaul_tests::crash::{seed, Rng};
use backhaul_tests::{deterministic_bytes, FileSpec, Route, TestServer};
use serde_json::Value;

const JOBS: usize = 3;
const FILES_PER_JOB: usize = 2;
const FILE_LEN: usize = 768 * 1024;
/// Per connection: each file takes about 4 s unkilled, each job (its files in turn) about 8 s.
const RATE: u64 = 192 * 1024;
/// Kills while the jobs transfer, after lives short enough to land before any job is done.
const KILLS: usize = 20;
/// The daemon checkpoints often (`--checkpoint-bytes`, `--checkpoint-interval-ms`), so that a
/// life of a fraction of a second still leaves progress on disk.
const CHECKPOINT_BYTES: u64 = 32 * 1024;
const CHECKPOINT_MS: u64 = 100;
/// What a kill may cost each job, at most one running file each: the bytes since the last
/// checkpoint (≤ 32 KiB), what was in flight, with room to spare.
const REFETCH_PER_JOB_PER_KILL: u64 = 64 * 1024;
/// Hang detection only; an idle machine takes a fraction of it.
const DEADLINE: Duration = Duration::from_secs(150);

/// Where a job is in the test: what `list` may show for it.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Stage {
    /// Not yet completed: listed exactly once, nothing at its local names.
    Pending,
    /// `complete` sent, racing a kill: listed at most once, its files whole or absent.
    Completing,
    /// ACKNOWLEDGED: never listed again.
    Done,
}

/// A job the test created.
struct Job {
    id: String,
    /// Local name and expected bytes of each file.
    files: Vec<(PathBuf, Vec<u8>)>,
    stage: Stage,
}

/// The daemon's paths and, while it lives, its process.
struct Harness {
    socket: PathBuf,
    store: PathBuf,
    /// `XDG_STATE_HOME` for the verbs: if one ever found no daemon and started its own, that
    /// daemon's default store would be here, not the user's.
    home: PathBuf,
    daemon: Option<Child>,
    started: Instant,
}

impl Harness {
    /// Starts a daemon on the socket and store and waits until it listens.
    fn start(&mut self) {
        assert!(self.daemon.is_none(), "a daemon already runs");
        let child = Command::new(env!("CARGO_BIN_EXE_backhaul"))
            .arg("daemon")
            .arg("--socket")
            .arg(&self.socket)
            .arg("--store")
            .arg(&self.store)
            .arg("--checkpoint-bytes")
            .arg(CHECKPOINT_BYTES.to_string())
            .arg("--checkpoint-interval-ms")
            .arg(CHECKPOINT_MS.to_string())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start backhaul daemon");
        self.daemon = Some(child);
        // The killed daemon's socket file is still there, but nothing accepts on it until the
        // new daemon has replaced it.
        while UnixStream::connect(&self.socket).is_err() {
            let exited = self.daemon.as_mut().and_then(|c| c.try_wait().unwrap());
            assert!(exited.is_none(), "the daemon exited: {exited:?}");
            self.check_deadline("the daemon to listen");
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// SIGKILL, and the daemon reaped.
    fn kill(&mut self) {
        let mut child = self.daemon.take().expect("a daemon runs");
        child.kill().unwrap();
        child.wait().unwrap();
    }

    fn check_deadline(&self, waiting_for: &str) {
        assert!(
            self.started.elapsed() < DEADLINE,
            "hung: waited {DEADLINE:?} for {waiting_for}"
        );
    }

    fn verb(&self, args: &[&str]) -> Output {
        Command::new(env!("CARGO_BIN_EXE_backhaul"))
            .args(args)
            .env("BACKHAUL_SOCKET", &self.socket)
            .env("XDG_STATE_HOME", &self.home)
            .stdin(Stdio::null())
            .output()
            .unwrap()
    }

    /// A verb that must succeed: its stdout.
    fn ok(&self, args: &[&str]) -> String {
        let out = self.verb(args);
        assert!(
            out.status.success(),
            "backhaul {args:?}: exit {:?}\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// `list --json`, checked against the jobs' stages: every pending job exactly once, a
    /// completing one at most once, nothing else.
    fn list(&self, jobs: &[Job], when: &str) -> Vec<Value> {
        let listed: Vec<Value> = serde_json::from_str(&self.ok(&["list", "--json"])).unwrap();
        let ids: Vec<&str> = listed.iter().map(|j| j["id"].as_str().unwrap()).collect();
        let unique: BTreeSet<&str> = ids.iter().copied().collect();
        assert_eq!(
            unique.len(),
            ids.len(),
            "a job listed twice ({when}): {ids:?}"
        );
        for job in jobs {
            let seen = unique.contains(job.id.as_str());
            match job.stage {
                Stage::Pending => assert!(seen, "job {} is lost ({when}): {ids:?}", job.id),
                Stage::Done => assert!(!seen, "completed job {} is back ({when})", job.id),
                Stage::Completing => {}
            }
        }
        for id in &unique {
            assert!(
                jobs.iter().any(|j| j.id == *id && j.stage != Stage::Done),
                "an extra job {id} ({when})"
            );
        }
        listed
    }

    /// Polls `list` for up to `life`; whether every job reached TRANSFERRED.
    fn all_transferred_within(&self, jobs: &[Job], life: Duration) -> bool {
        let until = Instant::now() + life;
        loop {
            if all_transferred(&self.list(jobs, "while polling")) {
                return true;
            }
            if Instant::now() >= until {
                return false;
            }
            std::thread::sleep(Duration::from_millis(100).min(until - Instant::now()));
        }
    }

    /// `complete` sent on the raw socket (a verb finding the socket dead would start a daemon
    /// of its own), the daemon killed `after` later; whether the completion was answered.
    fn complete_racing_a_kill(&mut self, job: &str, after: Duration) -> bool {
        let mut stream = UnixStream::connect(&self.socket).unwrap();
        let request = serde_json::json!({"v": 1, "id": 1, "op": "complete", "job": job});
        stream.write_all(format!("{request}\n").as_bytes()).unwrap();
        std::thread::sleep(after);
        self.kill();
        let mut line = String::new();
        // EOF or a reset: the kill came before the answer.
        let _ = BufReader::new(stream).read_line(&mut line);
        if !line.ends_with('\n') {
            return false;
        }
        let reply: Value = serde_json::from_str(&line).unwrap();
        assert!(reply.get("ok").is_some(), "complete refused: {reply}");
        true
    }
}

impl Drop for Harness {
    fn drop(&mut self) {
        if let Some(mut child) = self.daemon.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

fn all_transferred(listed: &[Value]) -> bool {
    listed.iter().all(|j| j["state"] == "TRANSFERRED")
}

/// Right after a kill: a pending job has nothing at its local names; any file at a local name
/// is whole.
fn check_local_names(jobs: &[Job], when: &str) {
    for job in jobs {
        for (local, body) in &job.files {
            if !local.exists() {
                continue;
            }
            assert!(
                job.stage != Stage::Pending,
                "{} exists before job {} was completed ({when})",
                local.display(),
                job.id
            );
            let got = std::fs::read(local).unwrap();
            assert!(got == *body, "{} is not whole ({when})", local.display());
        }
    }
}

/// Creates the jobs (all before the first kill), each running in the foreground: a background
/// job runs only when no other does, and these should all be mid-transfer at each kill.
fn create_jobs(h: &Harness, server: &TestServer, out: &Path) -> Vec<Job> {
    (0..JOBS)
        .map(|i| {
            let id = h
                .ok(&["create", &format!("crash-job-{i}")])
                .trim()
                .to_string();
            let files = (0..FILES_PER_JOB)
                .map(|j| {
                    let local = out.join(format!("job{i}-{j}"));
                    let url = server.url(&format!("/f{i}-{j}"));
                    h.ok(&["addfile", &id, &url, local.to_str().unwrap()]);
                    (
                        local,
                        deterministic_bytes(FILE_LEN, (i * 10 + j) as u64).to_vec(),
                    )
                })
                .collect();
            h.ok(&["setpriority", &id, "foreground"]);
            // A transient error is retried after 5 s, not BITS' 10 minutes.
            h.ok(&["setminretrydelay", &id, "5"]);
            h.ok(&["resume", &id]);
            Job {
                id,
                files,
                stage: Stage::Pending,
            }
        })
        .collect()
}

/// The transfers: `KILLS` short lives, each killed mid-transfer; then lives lengthen until
/// every job is TRANSFERRED (those later kills may land between one job's end and another's).
/// The number of kills.
fn run_transfers_under_kills(h: &mut Harness, jobs: &[Job], rng: &mut Rng) -> usize {
    let mut kills = 0;
    loop {
        let listed = h.list(jobs, &format!("after kill {kills}"));
        let done = all_transferred(&listed);
        assert!(
            kills > KILLS || !done,
            "every job was TRANSFERRED after only {kills} kills: slow the server down"
        );
        if done {
            return kills;
        }
        if kills == KILLS {
            let bytes: u64 = listed
                .iter()
                .map(|j| j["bytes_transferred"].as_u64().unwrap())
                .sum();
            eprintln!("after {KILLS} kills: {bytes} bytes on disk at the restart");
        }
        let extra = kills.saturating_sub(KILLS) as u64 * 100;
        let life = Duration::from_millis(60 + rng.below(240) + extra);
        if kills < KILLS {
            std::thread::sleep(life);
        } else if h.all_transferred_within(jobs, life) {
            return kills;
        }
        h.check_deadline("the jobs to be TRANSFERRED");
        h.kill();
        kills += 1;
        check_local_names(jobs, &format!("kill {kills}, {life:?} into a life"));
        h.start();
    }
}

/// Each `complete` races a kill, up to 6 ms after it is sent; after the restart the job is
/// gone with its files in place, or TRANSFERRED (never when the completion was answered) and
/// completed again. What each kill met, for the log.
fn complete_under_kills(h: &mut Harness, jobs: &mut [Job], rng: &mut Rng) -> Vec<String> {
    let mut outcomes = Vec::new();
    for i in 0..jobs.len() {
        jobs[i].stage = Stage::Completing;
        let after = Duration::from_micros(rng.below(6_000));
        let id = jobs[i].id.clone();
        let replied = h.complete_racing_a_kill(&id, after);
        let when = format!("a kill {after:?} into complete {id}");
        check_local_names(jobs, &when);
        h.start();
        let listed = h.list(jobs, &when);
        let placed = jobs[i].files.iter().filter(|(l, _)| l.exists()).count();
        outcomes.push(match listed.iter().find(|j| j["id"] == id.as_str()) {
            Some(back) => {
                assert!(!replied, "complete {id} was answered, yet the job is back");
                assert_eq!(back["state"], "TRANSFERRED", "{back}");
                h.ok(&["complete", &id]);
                format!("back with {placed} file(s) placed")
            }
            None if replied => "answered".to_string(),
            None => "done, answer lost".to_string(),
        });
        jobs[i].stage = Stage::Done;
        for (local, body) in &jobs[i].files {
            let got = std::fs::read(local).unwrap();
            assert!(got == *body, "{} is byte-identical", local.display());
        }
    }
    outcomes
}

#[test]
fn daemon_sigkilled_at_random_points_loses_no_job_and_writes_nothing_early() {
    let mut rng = Rng::new(seed());
    let mut routes = Vec::new();
    for i in 0..JOBS {
        for j in 0..FILES_PER_JOB {
            let body = deterministic_bytes(FILE_LEN, (i * 10 + j) as u64);
            let spec = FileSpec::new(body).throttled(RATE);
            routes.push(Route::file(&format!("/f{i}-{j}"), spec));
        }
    }
    let server = TestServer::start(routes);
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    std::fs::create_dir_all(&out).unwrap();
    let mut h = Harness {
        socket: dir.path().join("run/backhaul.sock"),
        store: dir.path().join("state/jobs.redb"),
        home: dir.path().join("home"),
        daemon: None,
        started: Instant::now(),
    };
    h.start();
    let mut jobs = create_jobs(&h, &server, &out);
    let transfer_kills = run_transfers_under_kills(&mut h, &jobs, &mut rng);
    let outcomes = complete_under_kills(&mut h, &mut jobs, &mut rng);
    // Completed jobs stay gone.
    h.kill();
    h.start();
    assert!(h.list(&jobs, "after the last kill").is_empty());
    let kills = transfer_kills + JOBS + 1;

    let mut names: Vec<String> = std::fs::read_dir(&out)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    let expected: Vec<String> = (0..JOBS)
        .flat_map(|i| (0..FILES_PER_JOB).map(move |j| format!("job{i}-{j}")))
        .collect();
    assert_eq!(
        names, expected,
        "no temp file is left, nothing else appears"
    );

    let requests = server.requests();
    let served: u64 = requests.iter().map(|r| r.body_bytes_sent).sum();
    let resumed = requests.iter().filter(|r| r.status == 206).count();
    let total = (JOBS * FILES_PER_JOB * FILE_LEN) as u64;
    eprintln!(
        "{kills} kills, {transfer_kills} during transfers; the completions' kills met \
         {outcomes:?}; {:?}; {served} bytes served for {total}, {resumed} requests resumed",
        h.started.elapsed()
    );
    assert!(
        resumed >= KILLS,
        "only {resumed} requests resumed a file:\n{}",
        server.request_log()
    );
    let budget = total + transfer_kills as u64 * JOBS as u64 * REFETCH_PER_JOB_PER_KILL;
    assert!(
        served <= budget,
        "{served} bytes served, more than {budget}: the restarts did not resume\n{}",
        server.request_log()
    );
}
