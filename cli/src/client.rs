//! The verbs' side of the socket: connect to the daemon (starting a per-user one when none is
//! running), send one request, read its reply.

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use backhaul_core::codes;
use serde_json::Value;

use crate::protocol::{Op, Outcome, Reply, Request, WireError, VERSION};

/// How long a freshly started daemon may take to listen.
const START_TIMEOUT: Duration = Duration::from_secs(10);

/// A connection to the daemon.
pub(crate) struct Client {
    stream: BufReader<UnixStream>,
    next_id: u64,
}

impl Client {
    /// Connects to `socket`; when nothing listens there and `autostart`, starts `backhaul
    /// daemon --socket <socket>` in the background first.
    pub(crate) fn connect(socket: &Path, autostart: bool) -> Result<Self, WireError> {
        let unreachable = |e: std::io::Error| {
            WireError::new(
                codes::E_UNEXPECTED,
                format!("no daemon at {}: {e}", socket.display()),
            )
        };
        let stream = match UnixStream::connect(socket) {
            Ok(stream) => stream,
            Err(e) if !autostart => return Err(unreachable(e)),
            Err(_) => {
                start_daemon(socket)?;
                wait_for(socket).map_err(unreachable)?
            }
        };
        Ok(Self {
            stream: BufReader::new(stream),
            next_id: 1,
        })
    }

    /// Sends `op` and waits for its reply.
    pub(crate) fn request(&mut self, op: Op) -> Result<Value, WireError> {
        let id = self.next_id;
        self.next_id += 1;
        let broken = |e: String| WireError::new(codes::E_UNEXPECTED, e);
        let mut line = serde_json::to_vec(&Request { v: VERSION, id, op })
            .map_err(|e| broken(e.to_string()))?;
        line.push(b'\n');
        self.stream
            .get_mut()
            .write_all(&line)
            .map_err(|e| broken(format!("cannot send to the daemon: {e}")))?;
        let mut reply = String::new();
        match self.stream.read_line(&mut reply) {
            Ok(0) => return Err(broken("the daemon closed the connection".into())),
            Ok(_) => {}
            Err(e) => return Err(broken(format!("cannot read the daemon's reply: {e}"))),
        }
        let reply: Reply = serde_json::from_str(&reply)
            .map_err(|e| broken(format!("the daemon's reply is not understood: {e}")))?;
        match reply.outcome {
            Outcome::Ok(value) => Ok(value),
            Outcome::Error(e) => Err(e),
        }
    }
}

/// Starts this executable as a per-user daemon on `socket`, detached from the terminal (its
/// own process group: a Ctrl+C on the verb does not stop it).
fn start_daemon(socket: &Path) -> Result<(), WireError> {
    let exe = std::env::current_exe().unwrap_or_else(|_| PathBuf::from("backhaul"));
    Command::new(exe)
        .arg("daemon")
        .arg("--socket")
        .arg(socket)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .process_group(0)
        .spawn()
        .map(drop)
        .map_err(|e| WireError::new(codes::E_UNEXPECTED, format!("cannot start the daemon: {e}")))
}

fn wait_for(socket: &Path) -> std::io::Result<UnixStream> {
    let deadline = Instant::now() + START_TIMEOUT;
    loop {
        match UnixStream::connect(socket) {
            Ok(stream) => return Ok(stream),
            Err(e) if Instant::now() >= deadline => return Err(e),
            Err(_) => std::thread::sleep(Duration::from_millis(50)),
        }
    }
}
