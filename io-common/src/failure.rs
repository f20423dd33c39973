//! `io::Error` → [`IoFailure`]: the portable kind core classifies, plus the OS's words.
//!
//! Which phase failed decides the kind for connections (resolving → `NameNotResolved`, TCP
//! connect → `ConnectRefused`, TLS handshake → `TlsHandshake`); afterwards, and for files, the
//! `io::ErrorKind` does.

use std::io;
use std::path::Path;

use backhaul_core::{IoFailure, IoFailureKind};

/// A failure of an open connection or a file, classified by its `io::ErrorKind`.
pub fn io_failure(err: &io::Error) -> IoFailure {
    IoFailure::new(kind_of(err), err.to_string())
}

/// A failure of `op` (e.g. `create`) on `path`: the message names both.
pub fn file_failure(op: &str, path: &Path, err: &io::Error) -> IoFailure {
    IoFailure::new(kind_of(err), format!("{op} {}: {err}", path.display()))
}

/// `host` did not resolve (`err` is `None` when it resolved to no address).
pub fn resolve_failure(host: &str, err: Option<&io::Error>) -> IoFailure {
    let message = match err {
        Some(err) => format!("cannot resolve {host}: {err}"),
        None => format!("{host} resolved to no address"),
    };
    IoFailure::new(IoFailureKind::NameNotResolved, message)
}

/// TCP connect to `host:port` failed: refused, unreachable, timed out, or any other reason.
pub fn connect_failure(host: &str, port: u16, err: &io::Error) -> IoFailure {
    IoFailure::new(
        IoFailureKind::ConnectRefused,
        format!("cannot connect to {host}:{port}: {err}"),
    )
}

/// The TLS handshake with `host` failed (alert, protocol error, or the peer went away).
pub fn tls_failure(host: &str, err: &dyn std::fmt::Display) -> IoFailure {
    IoFailure::new(
        IoFailureKind::TlsHandshake,
        format!("TLS handshake with {host} failed: {err}"),
    )
}

/// The portable kind of `err`. A rustls error on an open connection (bad record, alert) broke
/// the stream: `ConnectionReset`.
pub fn kind_of(err: &io::Error) -> IoFailureKind {
    use io::ErrorKind as K;
    if err
        .get_ref()
        .is_some_and(|inner| inner.is::<rustls::Error>())
    {
        return IoFailureKind::ConnectionReset;
    }
    match err.kind() {
        K::NotFound | K::NotADirectory => IoFailureKind::NotFound,
        K::AlreadyExists => IoFailureKind::AlreadyExists,
        K::PermissionDenied | K::ReadOnlyFilesystem => IoFailureKind::PermissionDenied,
        K::StorageFull | K::QuotaExceeded => IoFailureKind::DiskFull,
        K::ConnectionRefused | K::HostUnreachable | K::NetworkUnreachable | K::NetworkDown => {
            IoFailureKind::ConnectRefused
        }
        K::ConnectionReset
        | K::ConnectionAborted
        | K::BrokenPipe
        | K::NotConnected
        | K::UnexpectedEof => IoFailureKind::ConnectionReset,
        _ => IoFailureKind::Other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn enospc_is_disk_full() {
        let err = io::Error::from_raw_os_error(libc::ENOSPC);
        assert_eq!(io_failure(&err).kind, IoFailureKind::DiskFull);
        assert_eq!(
            kind_of(&io::Error::from_raw_os_error(libc::EDQUOT)),
            IoFailureKind::DiskFull
        );
    }

    #[test]
    fn os_errors_map_to_their_portable_kinds() {
        let cases = [
            (libc::ENOENT, IoFailureKind::NotFound),
            (libc::ENOTDIR, IoFailureKind::NotFound),
            (libc::EEXIST, IoFailureKind::AlreadyExists),
            (libc::EACCES, IoFailureKind::PermissionDenied),
            (libc::EPERM, IoFailureKind::PermissionDenied),
            (libc::EROFS, IoFailureKind::PermissionDenied),
            (libc::ECONNREFUSED, IoFailureKind::ConnectRefused),
            (libc::EHOSTUNREACH, IoFailureKind::ConnectRefused),
            (libc::ECONNRESET, IoFailureKind::ConnectionReset),
            (libc::EPIPE, IoFailureKind::ConnectionReset),
            (libc::EIO, IoFailureKind::Other),
        ];
        for (errno, kind) in cases {
            assert_eq!(
                kind_of(&io::Error::from_raw_os_error(errno)),
                kind,
                "errno {errno}"
            );
        }
    }

    #[test]
    fn failure_messages_keep_the_os_words_and_the_path() {
        let err = io::Error::from_raw_os_error(libc::ENOSPC);
        let failure = file_failure("write", Path::new("/dl/.x.tmp"), &err);
        assert!(
            failure.message.starts_with("write /dl/.x.tmp: "),
            "{}",
            failure.message
        );
        assert!(
            failure.message.contains("os error 28"),
            "{}",
            failure.message
        );
    }

    #[test]
    fn a_tls_error_mid_stream_is_a_reset_connection() {
        let err = io::Error::new(io::ErrorKind::InvalidData, rustls::Error::DecryptError);
        assert_eq!(kind_of(&err), IoFailureKind::ConnectionReset);
    }

    #[test]
    fn connection_phases_decide_the_kind() {
        let refused = io::Error::from_raw_os_error(libc::ETIMEDOUT);
        assert_eq!(
            connect_failure("h", 1, &refused).kind,
            IoFailureKind::ConnectRefused
        );
        assert_eq!(
            resolve_failure("h", None).kind,
            IoFailureKind::NameNotResolved
        );
        assert_eq!(tls_failure("h", &"alert").kind, IoFailureKind::TlsHandshake);
    }
}
