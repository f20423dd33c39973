//! Where the daemon's socket lives, and binding it safely: a directory only its owner can
//! enter (per user) or a root-owned one (system), a stale socket replaced, a live one left
//! alone.

use std::fs::{DirBuilder, Permissions};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use tokio::net::UnixListener;

/// The system daemon's socket.
const SYSTEM_SOCKET: &str = "/run/backhaul/backhaul.sock";

/// This process's uid (the owner of `/proc/self`: no `unsafe` `getuid` call needed).
pub(crate) fn current_uid() -> u32 {
    std::fs::metadata("/proc/self").map_or(u32::MAX, |m| m.uid())
}

/// The socket path: `BACKHAUL_SOCKET` if set; the system socket for `system`; else
/// `$XDG_RUNTIME_DIR/backhaul/backhaul.sock`, or `/tmp/backhaul-<uid>/backhaul.sock` when
/// there is no runtime directory.
pub(crate) fn default_socket(system: bool) -> PathBuf {
    if let Some(path) = std::env::var_os("BACKHAUL_SOCKET") {
        return PathBuf::from(path);
    }
    if system {
        return PathBuf::from(SYSTEM_SOCKET);
    }
    match std::env::var_os("XDG_RUNTIME_DIR") {
        Some(dir) if !dir.is_empty() => PathBuf::from(dir).join("backhaul/backhaul.sock"),
        _ => PathBuf::from(format!("/tmp/backhaul-{}/backhaul.sock", current_uid())),
    }
}

/// Whether a daemon listens on `socket` now.
pub(crate) fn is_served(socket: &Path) -> bool {
    std::os::unix::net::UnixStream::connect(socket).is_ok()
}

/// Creates the socket's directory (and its parents) if missing: 0700 for a user's daemon,
/// 0755 for the system's. `bind` then checks whoever created it.
pub(crate) fn create_dir(dir: &Path, system: bool) -> std::io::Result<()> {
    let mode = if system { 0o755 } else { 0o700 };
    DirBuilder::new().recursive(true).mode(mode).create(dir)
}

/// Binds `socket`: its directory is created (0700 per user, 0755 system) or checked (owned by
/// us, writable by no one else); a live daemon there is an error, a stale socket is replaced.
pub(crate) fn bind(socket: &Path, system: bool) -> Result<UnixListener, String> {
    let dir = socket
        .parent()
        .ok_or_else(|| format!("{} has no directory", socket.display()))?;
    create_dir(dir, system).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    let meta = std::fs::metadata(dir).map_err(|e| format!("cannot read {}: {e}", dir.display()))?;
    if meta.uid() != current_uid() || meta.mode() & 0o022 != 0 {
        return Err(format!(
            "{} must belong to uid {} and be writable by no one else (it is uid {}, mode {:o})",
            dir.display(),
            current_uid(),
            meta.uid(),
            meta.mode() & 0o777
        ));
    }
    if is_served(socket) {
        return Err(format!("a daemon already serves {}", socket.display()));
    }
    match std::fs::remove_file(socket) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(format!("cannot replace {}: {e}", socket.display())),
    }
    let listener = UnixListener::bind(socket)
        .map_err(|e| format!("cannot listen on {}: {e}", socket.display()))?;
    let socket_mode = if system { 0o666 } else { 0o600 };
    std::fs::set_permissions(socket, Permissions::from_mode(socket_mode))
        .map_err(|e| format!("cannot set the mode of {}: {e}", socket.display()))?;
    Ok(listener)
}
