//! The file actions: temp files created exclusively and owner-only, positioned writes, the
//! atomic commit, and the filesystem check `add_file` makes before core sees the name.
//!
//! Everything here is synchronous `std::fs`: a positioned write lands in the page cache in
//! microseconds, and only a commit waits for the disk (its fsyncs, once per file). Drivers
//! call these on their engine thread or task, so a file action is done — and its result fed
//! back — before the next input is handled.

use std::collections::HashMap;
use std::fs::{self, File, OpenOptions, Permissions};
use std::io;
use std::os::unix::fs::{FileExt, OpenOptionsExt, PermissionsExt};
use std::path::Path;

use backhaul_core::{codes, BitsError, FileIndex, IoFailure, IoFailureKind, JobId};

use crate::failure::file_failure;

/// Mode of a temp file while it is being written: owner-only.
const TEMP_MODE: u32 = 0o600;
/// Mode a finished file gets just before it appears at its local name, before the umask: an
/// ordinary file, as `open(O_CREAT, 0666)` makes one.
const FINISHED_MODE: u32 = 0o666;
/// The umask assumed when the process's cannot be read.
const DEFAULT_UMASK: u32 = 0o022;

/// The open temp files, keyed by job and file.
#[derive(Debug, Default)]
pub struct TempFiles {
    open: HashMap<(JobId, FileIndex), File>,
}

impl TempFiles {
    /// No file open.
    pub fn new() -> Self {
        Self::default()
    }

    /// Number of open temp files.
    pub fn len(&self) -> usize {
        self.open.len()
    }

    /// No temp file is open.
    pub fn is_empty(&self) -> bool {
        self.open.is_empty()
    }

    /// `Action::OpenTemp`: create `path` exclusively (mode 0600) or open the existing file,
    /// never following a symlink, and keep it open. Returns its current length.
    pub fn open_temp(
        &mut self,
        job: JobId,
        file: FileIndex,
        path: &Path,
        create: bool,
    ) -> Result<u64, IoFailure> {
        self.open.remove(&(job, file));
        let op = if create { "create" } else { "open" };
        let handle = open_no_follow(path, create).map_err(|err| file_failure(op, path, &err))?;
        let meta = handle
            .metadata()
            .map_err(|err| file_failure(op, path, &err))?;
        if !meta.is_file() {
            let message = format!("{op} {}: not a regular file", path.display());
            return Err(IoFailure::new(IoFailureKind::Other, message));
        }
        self.open.insert((job, file), handle);
        Ok(meta.len())
    }

    /// Gives the open temp file to `uid:gid` (a daemon running as root writes for its users:
    /// their files must be theirs). Through the open handle, so a path swapped meanwhile is
    /// never what changes owner.
    pub fn give_to(
        &self,
        job: JobId,
        file: FileIndex,
        uid: u32,
        gid: u32,
    ) -> Result<(), IoFailure> {
        let handle = self.handle(job, file)?;
        std::os::unix::fs::fchown(handle, Some(uid), Some(gid))
            .map_err(|err| io_failure_on(job, file, "chown", &err))
    }

    /// `Action::WriteFile`: write all of `data` at `offset`.
    pub fn write(
        &mut self,
        job: JobId,
        file: FileIndex,
        offset: u64,
        data: &[u8],
    ) -> Result<(), IoFailure> {
        self.handle(job, file)?
            .write_all_at(data, offset)
            .map_err(|err| io_failure_on(job, file, "write", &err))
    }

    /// `Action::TruncateFile`: cut the file to `len` bytes.
    pub fn truncate(&mut self, job: JobId, file: FileIndex, len: u64) -> Result<(), IoFailure> {
        self.handle(job, file)?
            .set_len(len)
            .map_err(|err| io_failure_on(job, file, "truncate", &err))
    }

    /// `Action::SyncFile`: flush the file's data to disk (`fdatasync`).
    pub fn sync(&mut self, job: JobId, file: FileIndex) -> Result<(), IoFailure> {
        self.handle(job, file)?
            .sync_data()
            .map_err(|err| io_failure_on(job, file, "sync", &err))
    }

    /// `Action::CloseFile`: drop the handle (the file stays).
    pub fn close(&mut self, job: JobId, file: FileIndex) {
        self.open.remove(&(job, file));
    }

    /// `Action::CommitFile`: give the temp file ordinary permissions, sync it, rename it over
    /// `dest`, then sync the directory. The handle is closed either way.
    ///
    /// Once the rename is done the file is at its local name: a failing directory sync is only
    /// logged (some filesystems cannot sync a directory), since reporting it would make core
    /// retry a commit whose temp file is gone.
    ///
    /// A commit is idempotent across a crash: when the temp file is gone and a regular file of
    /// the downloaded length (`len`) is at `dest`, the rename already happened in
    /// an earlier run that died before its record was forgotten, and the commit succeeds. A
    /// file of another length there is what was at the local name before (an updater's
    /// previous version): the temp file is reported missing rather than that file passed off
    /// as the download.
    pub fn commit(
        &mut self,
        job: JobId,
        file: FileIndex,
        temp: &Path,
        dest: &Path,
        len: u64,
    ) -> Result<(), IoFailure> {
        let handle = match self.open.remove(&(job, file)) {
            Some(handle) => handle,
            None => match open_no_follow(temp, false) {
                Ok(handle) => handle,
                Err(err) if err.kind() == io::ErrorKind::NotFound && committed(dest, len) => {
                    tracing::info!(
                        "{} is already at {}: committed before a restart",
                        temp.display(),
                        dest.display()
                    );
                    return Ok(());
                }
                Err(err) => return Err(file_failure("open", temp, &err)),
            },
        };
        handle
            .set_permissions(Permissions::from_mode(FINISHED_MODE & !umask()))
            .map_err(|err| file_failure("chmod", temp, &err))?;
        handle
            .sync_all()
            .map_err(|err| file_failure("sync", temp, &err))?;
        drop(handle);
        fs::rename(temp, dest).map_err(|err| file_failure("rename to", dest, &err))?;
        let dir = dest
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        if let Err(err) = File::open(dir).and_then(|d| d.sync_all()) {
            tracing::warn!(
                "committed {} but syncing {} failed: {err}",
                dest.display(),
                dir.display()
            );
        }
        Ok(())
    }

    /// `Action::DeleteTemp`: close the handle and remove the file. A file already gone is fine.
    pub fn delete(&mut self, job: JobId, file: FileIndex, path: &Path) -> Result<(), IoFailure> {
        self.open.remove(&(job, file));
        match fs::remove_file(path) {
            Err(err) if err.kind() != io::ErrorKind::NotFound => {
                Err(file_failure("delete", path, &err))
            }
            _ => Ok(()),
        }
    }

    fn handle(&self, job: JobId, file: FileIndex) -> Result<&File, IoFailure> {
        self.open.get(&(job, file)).ok_or_else(|| {
            IoFailure::new(
                IoFailureKind::Other,
                format!("temp file {file} of job {job} is not open"),
            )
        })
    }
}

fn open_no_follow(path: &Path, create: bool) -> io::Result<File> {
    let mut options = OpenOptions::new();
    options
        .read(true)
        .write(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC);
    if create {
        // O_CREAT | O_EXCL: fails on any existing name, a symlink included, without following it.
        options.create_new(true).mode(TEMP_MODE);
    }
    options.open(path)
}

/// The process's umask, read from `/proc/self/status` on every commit (it may change while the
/// process runs). Hand-written: std has no getter, and `umask(2)` only reads it by setting it,
/// which races with every other thread creating files.
fn umask() -> u32 {
    fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| umask_in_status(&status))
        .unwrap_or(DEFAULT_UMASK)
}

/// The `Umask:` field of a `/proc/<pid>/status` text (Linux 4.7 and later).
fn umask_in_status(status: &str) -> Option<u32> {
    let value = status
        .lines()
        .find_map(|line| line.strip_prefix("Umask:"))?;
    u32::from_str_radix(value.trim(), 8)
        .ok()
        .filter(|m| *m <= 0o777)
}

/// Whether `dest` is a regular file of length `len`.
fn committed(dest: &Path, len: u64) -> bool {
    fs::symlink_metadata(dest).is_ok_and(|m| m.is_file() && m.len() == len)
}

fn io_failure_on(job: JobId, file: FileIndex, op: &str, err: &io::Error) -> IoFailure {
    IoFailure::new(
        crate::failure::kind_of(err),
        format!("{op} temp file {file} of job {job}: {err}"),
    )
}

/// The check `add_file` makes before core sees a local name, so that a name that cannot work
/// fails at once (`E_INVALIDARG`) instead of as a job error later: the parent directory must
/// exist and the name must not be a directory. Relative names are left to core, which refuses
/// them.
pub fn check_local_name(local: &Path) -> Result<(), BitsError> {
    if !local.is_absolute() {
        return Ok(());
    }
    let invalid = |detail: String| Err(BitsError::new(codes::E_INVALIDARG, detail));
    if fs::symlink_metadata(local).is_ok_and(|m| m.is_dir()) {
        return invalid(format!("{} is a directory", local.display()));
    }
    let Some(dir) = local.parent() else {
        return invalid(format!("{} is a directory", local.display()));
    };
    match fs::metadata(dir) {
        Ok(meta) if meta.is_dir() => Ok(()),
        Ok(_) => invalid(format!("{} is not a directory", dir.display())),
        Err(err) if err.kind() == io::ErrorKind::NotFound => {
            invalid(format!("directory {} does not exist", dir.display()))
        }
        Err(err) => invalid(format!("cannot use directory {}: {err}", dir.display())),
    }
}

#[cfg(test)]
mod tests {
    use super::umask_in_status;

    #[test]
    fn the_umask_is_read_from_the_status_field_in_octal() {
        let status = "Name:\tbackhaul\nUmask:\t0027\nState:\tR (running)\n";
        assert_eq!(umask_in_status(status), Some(0o027));
        assert_eq!(umask_in_status("Name:\tx\n"), None, "before Linux 4.7");
        assert_eq!(umask_in_status("Umask:\t0899\n"), None, "not octal");
    }
}
