//! A file of a job: remote URL, local name, temp file, size, validators and progress.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};
use url::Url;

use super::ranges::{self, FileRange};
use super::{FileProgress, SIZE_UNKNOWN};

/// One file of a job (a `BG_FILE_INFO` plus what the transfer learned).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct JobFile {
    /// Where the file comes from (after an ALLOW_REPORT redirect, where it came from).
    pub(crate) remote: Url,
    /// Where the file appears on Complete.
    pub(crate) local: PathBuf,
    /// The hidden temp file in the local name's directory, once chosen.
    pub(crate) temp: Option<PathBuf>,
    /// The remote file's size, once a response said it (for a ranged file, the complete
    /// length from `Content-Range`, not the local file's length).
    pub(crate) size: Option<u64>,
    /// `AddFileWithRanges`: the parts fetched, concatenated in this order into the local file
    /// (empty: the whole file). Offsets in `transferred` and `synced` are local-file offsets.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub(crate) ranges: Vec<FileRange>,
    /// Bytes of the current version written to the temp file (maybe not yet on disk).
    pub(crate) transferred: u64,
    /// Bytes of the current version known to be on disk (synced before a checkpoint): where a
    /// restart resumes. Never more than `transferred`.
    #[serde(default)]
    pub(crate) synced: u64,
    /// Fully transferred.
    pub(crate) completed: bool,
    /// Committed to the local name by Complete.
    pub(crate) committed: bool,
    /// The strong ETag of the version being transferred.
    pub(crate) etag: Option<String>,
    /// The Last-Modified of the version being transferred.
    pub(crate) last_modified: Option<String>,
    /// The origin (`scheme://host:port`, default port normalised) of the URL the app added:
    /// custom headers and server credentials go only there.
    #[serde(default)]
    pub(crate) secrets_origin: Option<String>,
}

impl JobFile {
    pub(crate) fn new(remote: Url, local: PathBuf) -> Self {
        Self {
            secrets_origin: Some(remote.origin().ascii_serialization()),
            remote,
            local,
            temp: None,
            size: None,
            ranges: Vec::new(),
            transferred: 0,
            synced: 0,
            completed: false,
            committed: false,
            etag: None,
            last_modified: None,
        }
    }

    pub(crate) fn progress(&self) -> FileProgress {
        FileProgress {
            bytes_total: self.local_len().unwrap_or(SIZE_UNKNOWN),
            bytes_transferred: self.transferred,
            completed: self.completed,
        }
    }

    /// The length the local file has once complete: the remote size, or for a ranged file the
    /// ranges' lengths added up. `None` until known.
    pub(crate) fn local_len(&self) -> Option<u64> {
        if self.ranges.is_empty() {
            self.size
        } else {
            ranges::total_len(&self.ranges, self.size)
        }
    }

    /// The validator for `If-Range`: a strong ETag, else Last-Modified (RFC 9110 §13.1.5).
    pub(crate) fn if_range(&self) -> Option<&str> {
        self.etag.as_deref().or(self.last_modified.as_deref())
    }

    /// Whether a request to `url` may carry the job's custom headers and server credentials:
    /// only when it goes to the origin of the URL the app added.
    pub(crate) fn is_secrets_origin(&self, url: &Url) -> bool {
        let origin = url.origin().ascii_serialization();
        match &self.secrets_origin {
            Some(allowed) => *allowed == origin,
            // A record from before the origin was kept: the remote name's own origin.
            None => self.remote.origin().ascii_serialization() == origin,
        }
    }

    /// Forget everything learned about the remote version: the next byte written is byte 0.
    pub(crate) fn reset_version(&mut self) {
        self.size = None;
        self.transferred = 0;
        self.synced = 0;
        self.etag = None;
        self.last_modified = None;
    }
}
