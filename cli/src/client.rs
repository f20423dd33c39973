//! The verbs' side of the socket: connect to the daemon (starting a per-user one when none is
//! running), send one request, read its reply.

use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Read, Seek, SeekFrom, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::os::unix::net::UnixStream;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use backhaul_core::codes;
use serde_json::Value;

use crate::protocol::{Op, Outcome, Reply, Request, WireError, VERSION};

/// How long a freshly started daemon may take to listen.
const START_TIMEOUT: Duration = Duration::from_secs(10);

/// How long a verb whose daemon exited at start waits for another verb's daemon to listen.
const RACE_GRACE: Duration = Duration::from_secs(2);

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
                let mut daemon = start_daemon(socket)?;
                wait_for(socket, &mut daemon)?
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
        match read_reply(&mut self.stream, id)?.outcome {
            Outcome::Ok(value) => Ok(value),
            Outcome::Error(e) => Err(e),
        }
    }
}

/// The most a reply line may hold: `list --all-users --verbose` of a full daemon (BITS' limit
/// of 300 jobs per user, many users) is a few MiB; beyond this a peer is not the daemon.
const MAX_REPLY: u64 = 64 << 20;

/// Reads the reply to request `id`: one JSON line, ended by a newline, of this protocol's
/// version. However the socket splits it, the same bytes give the same reply; a reply cut
/// short, too long, unreadable, or to another request is an error that says so.
fn read_reply(reader: &mut impl BufRead, id: u64) -> Result<Reply, WireError> {
    let broken = |e: String| WireError::new(codes::E_UNEXPECTED, e);
    let mut line = Vec::new();
    let read = reader
        .by_ref()
        .take(MAX_REPLY + 1)
        .read_until(b'\n', &mut line)
        .map_err(|e| broken(format!("cannot read the daemon's reply: {e}")))?;
    if read == 0 {
        return Err(broken("the daemon closed the connection".into()));
    }
    if line.pop() != Some(b'\n') {
        return Err(broken(if read as u64 > MAX_REPLY {
            format!("the daemon's reply is longer than {MAX_REPLY} bytes")
        } else {
            format!("the daemon closed the connection after {read} bytes of its reply")
        }));
    }
    let reply: Reply = serde_json::from_slice(&line)
        .map_err(|e| broken(format!("the daemon's reply is not understood: {e}")))?;
    // A request the daemon could not read is refused with id 0: that refusal is the answer.
    let unread = reply.id == 0 && matches!(reply.outcome, Outcome::Error(_));
    if reply.v != VERSION || (reply.id != id && !unread) {
        return Err(broken(format!(
            "the daemon answered request {} (protocol {}) to request {id} (protocol {VERSION})",
            reply.id, reply.v
        )));
    }
    Ok(reply)
}

/// A daemon this verb started: its process, and the file its standard error goes to.
struct StartedDaemon {
    child: Child,
    log: Option<PathBuf>,
}

/// Starts this executable as a per-user daemon on `socket`, detached from the terminal (its
/// own process group: a Ctrl+C on the verb does not stop it). Its standard error goes to
/// `daemon.log` beside the socket (a pipe would block it once we are gone), so that a daemon
/// that cannot start can say why.
fn start_daemon(socket: &Path) -> Result<StartedDaemon, WireError> {
    let exe = std::env::current_exe().unwrap_or_else(|_| PathBuf::from("backhaul"));
    let log = daemon_log(socket);
    let stderr = log
        .as_ref()
        .and_then(|path| open_log(path).ok())
        .map_or_else(Stdio::null, Stdio::from);
    let child = Command::new(exe)
        .arg("daemon")
        .arg("--socket")
        .arg(socket)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(stderr)
        .process_group(0)
        .spawn()
        .map_err(|e| {
            WireError::new(codes::E_UNEXPECTED, format!("cannot start the daemon: {e}"))
        })?;
    Ok(StartedDaemon { child, log })
}

/// `daemon.log` in the socket's directory, which is created as the daemon would (0700) so
/// the log can be opened before the daemon runs; `None` when that cannot be done.
fn daemon_log(socket: &Path) -> Option<PathBuf> {
    let dir = socket.parent().filter(|d| !d.as_os_str().is_empty())?;
    crate::daemon::socket::create_dir(dir, false).ok()?;
    Some(dir.join("daemon.log"))
}

fn open_log(path: &Path) -> std::io::Result<File> {
    OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o600)
        .open(path)
}

/// Waits until the daemon listens on `socket`. A daemon that exits first is reported with the
/// last line it logged, unless another verb's daemon, which won the race to the store, listens
/// within [`RACE_GRACE`].
fn wait_for(socket: &Path, daemon: &mut StartedDaemon) -> Result<UnixStream, WireError> {
    let mut deadline = Instant::now() + START_TIMEOUT;
    let mut exited = None;
    loop {
        let error = match UnixStream::connect(socket) {
            Ok(stream) => return Ok(stream),
            Err(e) => e,
        };
        if exited.is_none() {
            if let Ok(Some(status)) = daemon.child.try_wait() {
                exited = Some(status);
                deadline = deadline.min(Instant::now() + RACE_GRACE);
            }
        }
        if Instant::now() >= deadline {
            let why = match exited {
                Some(status) => format!(
                    "the one started for it exited at once ({status}){}",
                    daemon.logged_reason()
                ),
                None => format!(
                    "the one started for it did not listen within {} s: {error}",
                    START_TIMEOUT.as_secs()
                ),
            };
            let message = format!("no daemon at {}: {why}", socket.display());
            return Err(WireError::new(codes::E_UNEXPECTED, message));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

impl StartedDaemon {
    /// `: <its last logged line> (see <log>)`, or nothing when it logged nothing.
    fn logged_reason(&self) -> String {
        self.log
            .as_deref()
            .and_then(|log| last_line(log).map(|line| (log, line)))
            .map_or_else(String::new, |(log, line)| {
                format!(": {line} (see {})", log.display())
            })
    }
}

/// The last non-empty line of a log file (read from its last 4 KiB: the log is appended to by
/// every daemon started there).
fn last_line(path: &Path) -> Option<String> {
    let mut file = File::open(path).ok()?;
    let len = file.metadata().ok()?.len();
    file.seek(SeekFrom::Start(len.saturating_sub(4096))).ok()?;
    let mut tail = Vec::new();
    file.read_to_end(&mut tail).ok()?;
    let text = String::from_utf8_lossy(&tail);
    let line = text.lines().rev().find(|l| !l.trim().is_empty())?;
    Some(line.trim().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A socket that hands out its bytes in the pieces given.
    struct Pieces<'a>(Vec<&'a [u8]>);

    impl Read for Pieces<'_> {
        fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
            // An empty read is the end of the stream: an empty piece is no read at all.
            self.0.retain(|piece| !piece.is_empty());
            let Some(piece) = self.0.first_mut() else {
                return Ok(0);
            };
            let n = piece.len().min(buf.len());
            buf[..n].copy_from_slice(&piece[..n]);
            *piece = &piece[n..];
            if piece.is_empty() {
                self.0.remove(0);
            }
            Ok(n)
        }
    }

    fn read_split(pieces: Vec<&[u8]>, id: u64) -> Result<Reply, WireError> {
        // A 3-byte buffer: the line also crosses the reader's own refills.
        read_reply(&mut BufReader::with_capacity(3, Pieces(pieces)), id)
    }

    #[test]
    fn a_reply_reads_the_same_however_the_socket_splits_it() {
        let wire = "{\"v\":1,\"id\":7,\"ok\":{\"name\":\"nightly ✓\",\"files\":[1,2]}}\n";
        let wire = wire.as_bytes();
        let whole = read_split(vec![wire], 7).expect("the whole reply");
        assert!(matches!(&whole.outcome, Outcome::Ok(v) if v["name"] == "nightly ✓"));
        assert_eq!(read_split(wire.chunks(1).collect(), 7), Ok(whole.clone()));
        for at in 0..=wire.len() {
            let (a, b) = wire.split_at(at);
            assert_eq!(
                read_split(vec![a, b], 7),
                Ok(whole.clone()),
                "split at {at}"
            );
        }
    }

    #[test]
    fn a_reply_cut_short_or_to_another_request_is_an_error_that_says_so() {
        let wire = b"{\"v\":1,\"id\":7,\"ok\":null}\n";
        let cut = read_split(vec![&wire[..10]], 7).unwrap_err();
        assert!(cut.message.contains("after 10 bytes"), "{}", cut.message);
        let none = read_split(vec![], 7).unwrap_err();
        assert!(
            none.message.contains("closed the connection"),
            "{}",
            none.message
        );
        let other = read_split(vec![wire], 8).unwrap_err();
        assert!(other.message.contains("request 7"), "{}", other.message);
        let garbage = read_split(vec![b"HTTP/1.1 200 OK\r\n"], 7).unwrap_err();
        assert!(
            garbage.message.contains("not understood"),
            "{}",
            garbage.message
        );
    }
}
