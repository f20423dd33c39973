//! A verb that finds no daemon starts a per-user one (issue 5: "talking to the daemon,
//! starting a per-user one if none is running"): verbs racing to start one end up sharing one,
//! and a daemon that cannot start is reported with its own reason instead of a timeout.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

/// A private `XDG_RUNTIME_DIR` and `XDG_STATE_HOME`; on drop, every daemon serving its socket
/// is killed (the verbs start them detached, so the test has no handle on them).
struct Home {
    dir: tempfile::TempDir,
}

impl Home {
    fn new() -> Self {
        let home = Self {
            dir: tempfile::tempdir().unwrap(),
        };
        std::fs::create_dir(home.runtime_dir()).unwrap();
        home
    }

    fn runtime_dir(&self) -> PathBuf {
        self.dir.path().join("run")
    }

    fn state_home(&self) -> PathBuf {
        self.dir.path().join("state")
    }

    fn socket(&self) -> PathBuf {
        self.runtime_dir().join("backhaul/backhaul.sock")
    }

    /// Runs a verb as a user would: no `--socket`, no `BACKHAUL_SOCKET`.
    fn verb(&self, args: &[&str]) -> Output {
        Command::new(env!("CARGO_BIN_EXE_backhaul"))
            .args(args)
            .env_remove("BACKHAUL_SOCKET")
            .env("XDG_RUNTIME_DIR", self.runtime_dir())
            .env("XDG_STATE_HOME", self.state_home())
            .stdin(Stdio::null())
            .output()
            .unwrap()
    }

    /// The pids of the daemons serving this home's socket.
    fn daemons(&self) -> Vec<u32> {
        let socket = self.socket().into_os_string().into_encoded_bytes();
        let mut pids = Vec::new();
        for entry in std::fs::read_dir("/proc").unwrap().flatten() {
            let Some(pid) = entry.file_name().to_str().and_then(|p| p.parse().ok()) else {
                continue;
            };
            let Ok(cmdline) = std::fs::read(entry.path().join("cmdline")) else {
                continue;
            };
            let args: Vec<&[u8]> = cmdline.split(|b| *b == 0).collect();
            if args.contains(&b"daemon".as_slice()) && args.contains(&socket.as_slice()) {
                pids.push(pid);
            }
        }
        pids
    }
}

impl Drop for Home {
    fn drop(&mut self) {
        for pid in self.daemons() {
            let _ = Command::new("kill").arg("-9").arg(pid.to_string()).status();
        }
    }
}

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

#[test]
fn verbs_racing_with_no_daemon_running_start_one_and_share_it() {
    let home = Home::new();
    let outputs: Vec<Output> = std::thread::scope(|scope| {
        let creators: Vec<_> = (0..4)
            .map(|i| {
                let home = &home;
                scope.spawn(move || home.verb(&["create", &format!("job-{i}")]))
            })
            .collect();
        creators.into_iter().map(|c| c.join().unwrap()).collect()
    });
    for out in outputs {
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    let listed = home.verb(&["list"]);
    let listed = String::from_utf8_lossy(&listed.stdout);
    assert!(listed.contains("listed 4 job(s)"), "{listed}");
    // A verb may have reached the winner before its own daemon found the store locked: give
    // the losers time to exit.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while home.daemons().len() > 1 && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    assert_eq!(home.daemons().len(), 1, "one daemon serves the user");
    let dir = home.socket().parent().unwrap().to_path_buf();
    assert_eq!(
        mode(&dir),
        0o700,
        "the socket's directory is the user's alone"
    );
    assert_eq!(mode(&dir.join("daemon.log")), 0o600);
    assert!(
        home.state_home().join("backhaul/jobs.redb").exists(),
        "the jobs are in the user's store"
    );
}

#[test]
fn a_daemon_that_cannot_open_its_store_is_reported_with_its_reason_and_never_listens() {
    let home = Home::new();
    // The store's directory cannot be created under a regular file.
    std::fs::write(home.state_home(), b"not a directory").unwrap();

    let out = home.verb(&["list"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("exited at once") && stderr.contains("job store"),
        "the daemon's own reason: {stderr}"
    );
    assert!(
        stderr.contains("daemon.log"),
        "where to read more: {stderr}"
    );
    assert!(
        !home.socket().exists(),
        "a daemon without a store never listens"
    );
    assert!(home.daemons().is_empty());
}
