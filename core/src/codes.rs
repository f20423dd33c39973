//! BITS result codes: every HRESULT backhaul returns or records, under its BITS (or Win32,
//! WinHTTP) name and value, so people who know BITS recognise it.

use serde::{Deserialize, Serialize};

/// A Windows HRESULT value. Success codes have the top bit clear.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct HResult(pub u32);

impl HResult {
    /// True for success codes (`S_OK`, `S_FALSE`, `BG_S_*`).
    pub const fn is_success(self) -> bool {
        self.0 & 0x8000_0000 == 0
    }

    /// The code's symbolic name (`BG_E_HTTP_ERROR_404`, `E_INVALIDARG`, …), or `None` if unknown.
    pub fn name(self) -> Option<String> {
        if let Some(status) = http_status(self) {
            return Some(format!("BG_E_HTTP_ERROR_{status}"));
        }
        TABLE.iter().find(|e| e.0 == self).map(|e| e.1.to_string())
    }

    /// The name, or the hex value when the code is not one backhaul knows.
    pub fn name_or_hex(self) -> String {
        self.name().unwrap_or_else(|| format!("{self}"))
    }

    /// A one-line description in plain words.
    pub fn message(self) -> String {
        if let Some(status) = http_status(self) {
            return format!(
                "the server answered HTTP {status} {}",
                reason_phrase(status)
            );
        }
        TABLE
            .iter()
            .find(|e| e.0 == self)
            .map(|e| e.2.to_string())
            .unwrap_or_else(|| "unknown error".to_string())
    }

    /// `BG_E_HTTP_ERROR_nnn`: 0x80190000 + the HTTP status.
    pub const fn from_http_status(status: u16) -> Self {
        Self(0x8019_0000 + status as u32)
    }

    /// `HRESULT_FROM_WIN32(code)`: 0x80070000 | code.
    pub const fn from_win32(code: u32) -> Self {
        Self(0x8007_0000 | (code & 0xFFFF))
    }
}

impl std::fmt::Display for HResult {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "0x{:08X}", self.0)
    }
}

/// The HTTP status inside a `BG_E_HTTP_ERROR_nnn` code.
pub fn http_status(code: HResult) -> Option<u16> {
    let v = code.0;
    (0x8019_0064..=0x8019_0257)
        .contains(&v)
        .then(|| (v - 0x8019_0000) as u16)
}

fn reason_phrase(status: u16) -> &'static str {
    match status {
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        407 => "Proxy Authentication Required",
        408 => "Request Timeout",
        410 => "Gone",
        416 => "Range Not Satisfiable",
        429 => "Too Many Requests",
        500 => "Internal Server Error",
        501 => "Not Implemented",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        505 => "HTTP Version Not Supported",
        _ => "",
    }
}

macro_rules! codes {
    ($( $(#[$doc:meta])* $name:ident = $value:expr, $msg:expr; )*) => {
        $( $(#[$doc])* #[doc = concat!("`", stringify!($name), "`: ", $msg)]
           pub const $name: HResult = HResult($value); )*
        const TABLE: &[(HResult, &str, &str)] = &[ $( (HResult($value), stringify!($name), $msg), )* ];
    };
}

codes! {
    S_OK = 0x0000_0000, "success";
    S_FALSE = 0x0000_0001, "success, nothing to do";
    BG_S_PARTIAL_COMPLETE = 0x0020_0017, "completed; files that had not finished were deleted";
    BG_S_UNABLE_TO_DELETE_FILES = 0x0020_001A, "completed, but some temporary files could not be deleted";
    BG_S_ERROR_CONTEXT_NONE = 0x0020_0006, "no error context";
    E_NOTIMPL = 0x8000_4001, "not implemented or not a valid value";
    E_FAIL = 0x8000_4005, "unspecified failure";
    TRUST_E_FAIL = 0x800B_010B, "the server's certificate is not trusted (e.g. it matches no pin)";
    E_INVALIDARG = 0x8007_0057, "an argument is not valid";
    E_ACCESSDENIED = 0x8007_0005, "access denied: the caller does not own the job";
    E_OUTOFMEMORY = 0x8007_000E, "out of memory";
    E_UNEXPECTED = 0x8000_FFFF, "unexpected failure (the engine loop has stopped)";
    BG_E_NOT_FOUND = 0x8020_0001, "the requested job was not found";
    BG_E_INVALID_STATE = 0x8020_0002, "the requested action is not allowed in the job's current state";
    BG_E_EMPTY = 0x8020_0003, "there are no files attached to this job";
    BG_E_FILE_NOT_AVAILABLE = 0x8020_0004, "no file is available because no URL generated an error";
    BG_E_PROTOCOL_NOT_AVAILABLE = 0x8020_0005, "no protocol is available because no URL generated an error";
    BG_E_ERROR_CONTEXT_UNKNOWN = 0x8020_0007, "the error occurred in an unknown location";
    BG_E_ERROR_CONTEXT_GENERAL_QUEUE_MANAGER = 0x8020_0008, "the error occurred in the transfer queue manager";
    BG_E_ERROR_CONTEXT_LOCAL_FILE = 0x8020_0009, "the error occurred while processing the local file";
    BG_E_ERROR_CONTEXT_REMOTE_FILE = 0x8020_000A, "the error occurred while processing the remote file";
    BG_E_ERROR_CONTEXT_GENERAL_TRANSPORT = 0x8020_000B, "the error occurred in the transport layer";
    BG_E_ERROR_CONTEXT_QUEUE_MANAGER_NOTIFICATION = 0x8020_000C, "the error occurred while processing the notification callback";
    BG_E_DESTINATION_LOCKED = 0x8020_000D, "the destination file system volume is not available";
    BG_E_VOLUME_CHANGED = 0x8020_000E, "the destination volume has changed";
    BG_E_ERROR_INFORMATION_UNAVAILABLE = 0x8020_000F, "no error information: the job is not in ERROR or TRANSIENT_ERROR";
    BG_E_NETWORK_DISCONNECTED = 0x8020_0010, "there are no network adapters that are active";
    BG_E_MISSING_FILE_SIZE = 0x8020_0011, "the server did not return the file size";
    BG_E_INSUFFICIENT_HTTP_SUPPORT = 0x8020_0012, "the server does not support HTTP 1.1";
    BG_E_INSUFFICIENT_RANGE_SUPPORT = 0x8020_0013, "the server does not support the necessary HTTP protocol (ranges)";
    BG_E_PROXY_LIST_TOO_LARGE = 0x8020_0018, "the proxy list is too long (more than 32,768 characters)";
    BG_E_PROXY_BYPASS_LIST_TOO_LARGE = 0x8020_0019, "the proxy bypass list is too long (more than 32,768 characters)";
    BG_E_INVALID_SERVER_RESPONSE = 0x8020_001B, "the server's response was not valid";
    BG_E_ERROR_CONTEXT_REMOTE_APPLICATION = 0x8020_001E, "the error occurred in the remote server application";
    BG_E_TOO_MANY_FILES = 0x8020_001C, "an upload job can hold only one file";
    BG_E_STRING_TOO_LONG = 0x8020_0021, "the string is too long";
    BG_E_NO_PROGRESS = 0x8020_0024, "the job made no progress within the no-progress timeout";
    BG_E_USERNAME_TOO_LARGE = 0x8020_0025, "the user name is too long (more than 300 characters)";
    BG_E_PASSWORD_TOO_LARGE = 0x8020_0026, "the password is too long";
    BG_E_INVALID_AUTH_TARGET = 0x8020_0027, "the authentication target is not valid";
    BG_E_INVALID_AUTH_SCHEME = 0x8020_0028, "the authentication scheme is not valid";
    BG_E_FILE_NOT_FOUND = 0x8020_0029, "the remote file was not found";
    BG_E_INVALID_RANGE = 0x8020_002B, "the range is outside the file";
    BG_E_OVERLAPPING_RANGES = 0x8020_002C, "the ranges overlap";
    BG_E_CONNECT_FAILURE = 0x8020_002D, "could not connect to the server";
    BG_E_CONNECTION_CLOSED = 0x8020_002E, "the connection was closed before the response was complete";
    BG_E_BLOCKED_BY_POLICY = 0x8020_003E, "the transfer is blocked by policy";
    BG_E_INVALID_PROXY_INFO = 0x8020_003F, "the proxy settings are not valid";
    BG_E_INVALID_CREDENTIALS = 0x8020_0040, "the credentials are not valid";
    BG_E_TOO_MANY_JOBS_PER_USER = 0x8020_0049, "the owner has too many jobs";
    BG_E_TOO_MANY_JOBS_PER_MACHINE = 0x8020_0050, "there are too many jobs";
    BG_E_TOO_MANY_FILES_IN_JOB = 0x8020_0051, "the job has too many files";
    BG_E_TOO_MANY_RANGES_IN_FILE = 0x8020_0052, "the file has too many ranges";
    BG_E_VALIDATION_FAILED = 0x8020_0053, "the file failed validation";
    BG_E_MAXDOWNLOAD_TIMEOUT = 0x8020_0054, "the job did not finish within its maximum download time";
    BG_E_REMOTE_FILE_CHANGED = 0x8020_0073, "the remote file changed during the transfer";
    BG_E_SERVER_CERT_VALIDATION_INTERFACE_REQUIRED = 0x8020_0074, "a server certificate validation callback is required";
    BG_E_READ_ONLY_WHEN_JOB_ACTIVE = 0x8020_0075, "the property can only be changed while the job is suspended";
    BG_E_ERROR_CONTEXT_SERVER_CERTIFICATE_CALLBACK = 0x8020_0076, "the error occurred in the server certificate validation callback";
    ERROR_HTTP_REDIRECT_AMBIGUOUS = 0x8007_012C, "redirect refused by policy (HTTP 300)";
    ERROR_HTTP_REDIRECT_MOVED = 0x8007_012D, "redirect refused by policy (HTTP 301)";
    ERROR_HTTP_REDIRECT_FOUND = 0x8007_012E, "redirect refused by policy (HTTP 302)";
    ERROR_HTTP_REDIRECT_SEE_OTHER = 0x8007_012F, "redirect refused by policy (HTTP 303)";
    ERROR_HTTP_REDIRECT_KEEP_VERB = 0x8007_0133, "redirect refused by policy (HTTP 307)";
    ERROR_HTTP_REDIRECT_PERMANENT = 0x8007_0134, "redirect refused by policy (HTTP 308)";
    ERROR_FILE_NOT_FOUND = 0x8007_0002, "the system cannot find the file specified";
    ERROR_PATH_NOT_FOUND = 0x8007_0003, "the system cannot find the path specified";
    ERROR_FILE_EXISTS = 0x8007_0050, "the file exists";
    ERROR_DISK_FULL = 0x8007_0070, "there is not enough space on the disk";
    ERROR_WRITE_FAULT = 0x8007_001D, "the system cannot write to the specified device";
    ERROR_WINHTTP_TIMEOUT = 0x8007_2EE2, "the operation timed out";
    ERROR_WINHTTP_NAME_NOT_RESOLVED = 0x8007_2EE7, "the server name could not be resolved";
    ERROR_WINHTTP_CANNOT_CONNECT = 0x8007_2EFD, "could not connect to the server";
    ERROR_WINHTTP_CONNECTION_ERROR = 0x8007_2EFE, "the connection with the server was reset or terminated";
    ERROR_WINHTTP_REDIRECT_FAILED = 0x8007_2F00, "the redirect failed (scheme change, bad target, or too many redirects)";
    ERROR_WINHTTP_INVALID_SERVER_RESPONSE = 0x8007_2F78, "the server response could not be parsed";
    ERROR_WINHTTP_SECURE_CERT_DATE_INVALID = 0x8007_2F05, "the server certificate has expired or is not yet valid";
    ERROR_WINHTTP_SECURE_CERT_CN_INVALID = 0x8007_2F06, "the server certificate does not match the host name";
    ERROR_WINHTTP_CLIENT_AUTH_CERT_NEEDED = 0x8007_2F0C, "the server requires a client certificate";
    ERROR_WINHTTP_SECURE_INVALID_CA = 0x8007_2F0D, "the server certificate was issued by an unknown or untrusted authority";
    ERROR_WINHTTP_SECURE_CERT_REV_FAILED = 0x8007_2F19, "the revocation status of the server certificate could not be checked";
    ERROR_WINHTTP_SECURE_INVALID_CERT = 0x8007_2F89, "the server certificate is not valid";
    ERROR_WINHTTP_SECURE_CERT_REVOKED = 0x8007_2F8A, "the server certificate has been revoked";
    ERROR_WINHTTP_SECURE_FAILURE = 0x8007_2F8F, "the TLS handshake failed";
    ERROR_WINHTTP_SECURE_CERT_WRONG_USAGE = 0x8007_2F93, "the server certificate is not valid for server authentication";
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn http_error_codes_are_0x80190000_plus_status() {
        assert_eq!(HResult::from_http_status(404), HResult(0x8019_0194));
        assert_eq!(
            HResult(0x8019_0194).name().as_deref(),
            Some("BG_E_HTTP_ERROR_404")
        );
        assert_eq!(
            HResult(0x8019_01F7).name().as_deref(),
            Some("BG_E_HTTP_ERROR_503")
        );
    }

    #[test]
    fn winhttp_codes_are_hresult_from_win32() {
        assert_eq!(
            HResult::from_win32(12037),
            ERROR_WINHTTP_SECURE_CERT_DATE_INVALID
        );
        assert_eq!(HResult::from_win32(301), ERROR_HTTP_REDIRECT_MOVED);
    }

    #[test]
    fn names_round_trip_through_the_table() {
        assert_eq!(
            BG_E_INVALID_STATE.name().as_deref(),
            Some("BG_E_INVALID_STATE")
        );
        assert_eq!(format!("{BG_E_INVALID_STATE}"), "0x80200002");
        assert!(BG_S_PARTIAL_COMPLETE.is_success());
        assert!(!BG_E_EMPTY.is_success());
        let mut seen = std::collections::BTreeSet::new();
        for (code, name, _) in TABLE {
            assert!(seen.insert(*code), "{name} duplicates another code");
        }
    }
}
