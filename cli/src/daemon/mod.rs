//! `backhaul daemon`: the engine over a job store, serving a local socket.
//!
//! A per-user daemon lives at `$XDG_RUNTIME_DIR/backhaul/backhaul.sock` (directory 0700,
//! socket 0600) and serves only its own uid; a system daemon (`--system`, as root) lives at
//! `/run/backhaul/backhaul.sock` (socket 0666) and serves every user, each as the uid the
//! kernel reports for the peer (`SO_PEERCRED`): a user sees and changes only their own jobs,
//! root sees all. The protocol is in [`crate::protocol`] and `docs/daemon.md`.

pub(crate) mod socket;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use backhaul_core::{Caller, Owner};
use backhaul_tokio::{DriverConfig, DriverError, Manager, StoreError, StoreLocation};
use tokio::io::{AsyncWriteExt, BufReader};
use tokio::net::UnixStream;

use crate::protocol::{Op, Outcome, Reply, WireError, MAX_LINE, VERSION};
use backhaul_cli::ops;
use backhaul_cli::requests::{self, error_reply, ReadLine};

/// How the daemon was asked to run.
#[derive(Clone, Debug)]
pub(crate) struct DaemonOptions {
    /// The socket to serve.
    pub(crate) socket: PathBuf,
    /// The job store: jobs survive the daemon (`None`: in memory, gone when it stops).
    pub(crate) store: Option<PathBuf>,
    /// Serve every user (root only), not just the daemon's own uid.
    pub(crate) system: bool,
    /// Extra CA files trusted for HTTPS.
    pub(crate) ca_files: Vec<PathBuf>,
    /// Checkpoint a running file after this many bytes (`None`: core's default, 8 MiB).
    pub(crate) checkpoint_bytes: Option<u64>,
    /// …or after this long (`None`: core's default, 5 s).
    pub(crate) checkpoint_interval: Option<Duration>,
}

/// Runs the daemon until SIGINT or SIGTERM.
pub(crate) fn run(options: DaemonOptions) -> Result<(), String> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("backhaul-daemon")
        .build()
        .map_err(|e| format!("cannot start tokio: {e}"))?;
    runtime.block_on(serve(options))
}

async fn serve(options: DaemonOptions) -> Result<(), String> {
    let uid = socket::current_uid();
    if options.system && uid != 0 {
        return Err("--system needs root: it serves every user's jobs".into());
    }
    if socket::is_served(&options.socket) {
        return Err(already_served(&options.socket));
    }
    let mut config = DriverConfig::new();
    config.ca_files = options.ca_files.clone();
    config.owner = Owner(format!("uid:{uid}"));
    if let Some(path) = &options.store {
        config.store = StoreLocation::File(path.clone());
    }
    if let Some(bytes) = options.checkpoint_bytes {
        config.core.checkpoint_bytes = bytes;
    }
    if let Some(interval) = options.checkpoint_interval {
        config.core.checkpoint_interval = interval;
    }
    // The store is opened (and its jobs reloaded) before the socket is bound: a verb that can
    // connect finds a daemon that works, and one that cannot start never listens.
    let manager = match Manager::new(config) {
        Ok(manager) => manager,
        Err(e @ DriverError::Store(StoreError::InUse { .. })) => {
            return Err(lost_race_or(e.to_string(), &options.socket).await)
        }
        Err(e) => return Err(e.to_string()),
    };
    let listener = match socket::bind(&options.socket, options.system) {
        Ok(listener) => listener,
        Err(e) => {
            manager.shutdown().await;
            return Err(e);
        }
    };
    for broken in manager.broken_records().await.map_err(|e| e.to_string())? {
        eprintln!(
            "backhaul: daemon: job {} could not be reloaded: {}",
            broken.id, broken.reason
        );
    }
    let daemon = Arc::new(Daemon {
        manager,
        uid,
        system: options.system,
    });
    tracing::info!("serving {}", options.socket.display());
    let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .map_err(|e| format!("cannot watch SIGTERM: {e}"))?;
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => {
                    let daemon = daemon.clone();
                    tokio::spawn(async move { daemon.serve_connection(stream).await });
                }
                Err(e) => tracing::warn!("accept failed: {e}"),
            },
            _ = tokio::signal::ctrl_c() => break,
            _ = terminate.recv() => break,
        }
    }
    let _ = std::fs::remove_file(&options.socket);
    daemon.manager.clone().shutdown().await;
    Ok(())
}

fn already_served(socket: &Path) -> String {
    format!("a daemon already serves {}", socket.display())
}

/// Why this daemon cannot start, its store being in use (`error`). Verbs racing to start a
/// daemon each start one: the first to open the store serves, the others find it in use. A
/// loser says that a daemon serves (once the winner listens, which follows its store opening
/// closely) rather than reporting the lock as a failure; a store held by anything else stays
/// that error.
async fn lost_race_or(error: String, socket: &Path) -> String {
    for _ in 0..20 {
        if socket::is_served(socket) {
            return already_served(socket);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    error
}

struct Daemon {
    manager: Manager,
    uid: u32,
    system: bool,
}

impl Daemon {
    /// One client: requests in, replies out, until it hangs up. Nothing a client sends stops
    /// the daemon.
    async fn serve_connection(&self, stream: UnixStream) {
        let peer = match stream.peer_cred() {
            Ok(cred) => cred,
            Err(e) => return tracing::warn!("no peer credentials: {e}"),
        };
        let caller = Caller {
            owner: Owner(format!("uid:{}", peer.uid())),
            admin: peer.uid() == 0,
        };
        let (read, mut write) = stream.into_split();
        let mut reader = BufReader::new(read);
        let mut line = Vec::with_capacity(1024);
        loop {
            line.clear();
            let reply = match requests::read_line(&mut reader, &mut line, MAX_LINE).await {
                Ok(ReadLine::Eof) => return,
                Ok(ReadLine::TooLong) => requests::too_long(MAX_LINE),
                Ok(ReadLine::Line) => self.answer(&caller, &line).await,
                Err(e) => return tracing::debug!("client read failed: {e}"),
            };
            if write.write_all(&requests::encode(&reply)).await.is_err() {
                return;
            }
        }
    }

    async fn answer(&self, caller: &Caller, line: &[u8]) -> Reply {
        let request = match requests::decode(line) {
            Ok(request) => request,
            Err(reply) => return reply,
        };
        if !self.system && caller.owner.0 != format!("uid:{}", self.uid) {
            let why = "this per-user daemon serves only its own user".to_string();
            return error_reply(
                request.id,
                WireError::new(backhaul_core::codes::E_ACCESSDENIED, why),
            );
        }
        let (who, op) = (caller.clone(), request.op);
        let completes = matches!(op, Op::Complete { .. });
        let result = match self.manager.call(move |e| ops::apply(e, &who, op)).await {
            // Its commits are performed once it has answered: their result is the next command's.
            Ok(Ok(reply)) if completes => {
                self.manager
                    .call(move |e| ops::commit_result(e, reply))
                    .await
            }
            other => other,
        };
        let outcome = match result {
            Ok(Ok(value)) => Outcome::Ok(value),
            Ok(Err(e)) => Outcome::Error(e.into()),
            Err(e) => Outcome::Error(WireError::new(
                backhaul_core::codes::E_UNEXPECTED,
                e.to_string(),
            )),
        };
        Reply {
            v: VERSION,
            id: request.id,
            outcome,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_daemon_that_lost_the_start_race_says_a_daemon_serves_and_only_then() {
        let dir = tempfile::tempdir().unwrap();
        let socket = dir.path().join("backhaul.sock");
        let in_use = "job store /x/jobs.redb is in use by another process".to_string();

        // No daemon comes: the store's error stands.
        assert_eq!(lost_race_or(in_use.clone(), &socket).await, in_use);

        // The winner listens a moment after the loser found the store in use.
        let winner = {
            let socket = socket.clone();
            tokio::spawn(async move {
                tokio::time::sleep(Duration::from_millis(300)).await;
                std::os::unix::net::UnixListener::bind(socket).unwrap()
            })
        };
        let said = lost_race_or(in_use, &socket).await;
        let _listener = winner.await.unwrap();
        assert_eq!(said, already_served(&socket));
    }
}
