//! The file actions as the engine asks for them: exclusive owner-only temp files, positioned
//! writes, atomic commits, forgiving deletes, and the local-name check of `add_file`.

use std::fs;
use std::os::unix::fs::{symlink, PermissionsExt};
use std::path::Path;

use backhaul_core::{codes, IoFailureKind, JobId};
use backhaul_io::{check_local_name, TempFiles};

const JOB: JobId = JobId(7);

fn mode(path: &Path) -> u32 {
    fs::metadata(path).unwrap().permissions().mode() & 0o777
}

#[test]
fn a_new_temp_file_is_created_empty_and_owner_only() {
    let dir = tempfile::tempdir().unwrap();
    let temp = dir.path().join(".x.tmp");
    let mut files = TempFiles::new();
    assert_eq!(files.open_temp(JOB, 0, &temp, true), Ok(0));
    assert_eq!(mode(&temp), 0o600);
    assert_eq!(files.len(), 1);
}

#[test]
fn creating_a_temp_file_where_a_file_exists_fails_with_already_exists() {
    let dir = tempfile::tempdir().unwrap();
    let temp = dir.path().join(".x.tmp");
    fs::write(&temp, b"someone else's").unwrap();
    let err = TempFiles::new().open_temp(JOB, 0, &temp, true).unwrap_err();
    assert_eq!(err.kind, IoFailureKind::AlreadyExists);
    assert!(err.message.contains(".x.tmp"), "{}", err.message);
    assert_eq!(fs::read(&temp).unwrap(), b"someone else's");
}

#[test]
fn a_symlink_planted_at_the_temp_path_is_never_followed() {
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("victim");
    fs::write(&target, b"precious").unwrap();
    let temp = dir.path().join(".x.tmp");
    symlink(&target, &temp).unwrap();
    let mut files = TempFiles::new();

    let err = files.open_temp(JOB, 0, &temp, true).unwrap_err();
    assert_eq!(err.kind, IoFailureKind::AlreadyExists);
    assert!(
        files.open_temp(JOB, 0, &temp, false).is_err(),
        "reopen must not follow the symlink"
    );
    assert!(files.write(JOB, 0, 0, b"evil").is_err());
    assert_eq!(fs::read(&target).unwrap(), b"precious");
}

#[test]
fn opening_a_temp_file_in_a_missing_directory_is_not_found() {
    let dir = tempfile::tempdir().unwrap();
    let err = TempFiles::new()
        .open_temp(JOB, 0, &dir.path().join("gone/.x.tmp"), true)
        .unwrap_err();
    assert_eq!(err.kind, IoFailureKind::NotFound);
}

#[test]
fn reopening_a_temp_file_reports_the_bytes_already_there() {
    let dir = tempfile::tempdir().unwrap();
    let temp = dir.path().join(".x.tmp");
    let mut files = TempFiles::new();
    files.open_temp(JOB, 0, &temp, true).unwrap();
    files.write(JOB, 0, 0, b"12345").unwrap();
    files.close(JOB, 0);
    assert!(files.is_empty());
    assert_eq!(files.open_temp(JOB, 0, &temp, false), Ok(5));
    files.write(JOB, 0, 5, b"678").unwrap();
    assert_eq!(fs::read(&temp).unwrap(), b"12345678");
}

#[test]
fn writes_land_at_their_offsets_and_truncate_cuts_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let temp = dir.path().join(".x.tmp");
    let mut files = TempFiles::new();
    files.open_temp(JOB, 3, &temp, true).unwrap();
    files.write(JOB, 3, 6, b"world").unwrap();
    files.write(JOB, 3, 0, b"hello ").unwrap();
    assert_eq!(fs::read(&temp).unwrap(), b"hello world");
    files.truncate(JOB, 3, 5).unwrap();
    assert_eq!(fs::read(&temp).unwrap(), b"hello");
    files.truncate(JOB, 3, 0).unwrap();
    assert_eq!(fs::read(&temp).unwrap(), b"");
}

#[test]
fn writing_to_a_file_that_is_not_open_fails_instead_of_writing_elsewhere() {
    let mut files = TempFiles::new();
    let err = files.write(JOB, 0, 0, b"x").unwrap_err();
    assert_eq!(err.kind, IoFailureKind::Other);
    assert!(files.truncate(JOB, 0, 0).is_err());
}

#[test]
fn commit_makes_the_file_appear_with_its_bytes_and_the_temp_disappear() {
    let dir = tempfile::tempdir().unwrap();
    let temp = dir.path().join(".x.tmp");
    let dest = dir.path().join("x.bin");
    fs::write(&dest, b"old version").unwrap();
    let mut files = TempFiles::new();
    files.open_temp(JOB, 0, &temp, true).unwrap();
    files.write(JOB, 0, 0, b"new bytes").unwrap();

    files.commit(JOB, 0, &temp, &dest, 9).unwrap();

    assert_eq!(fs::read(&dest).unwrap(), b"new bytes");
    assert!(!temp.exists());
    assert_eq!(
        mode(&dest),
        0o666 & !umask(),
        "an ordinary file, under the umask"
    );
    assert!(files.is_empty());
}

#[test]
fn commit_reopens_a_temp_file_whose_handle_was_closed() {
    let dir = tempfile::tempdir().unwrap();
    let temp = dir.path().join(".x.tmp");
    let dest = dir.path().join("x.bin");
    let mut files = TempFiles::new();
    files.open_temp(JOB, 0, &temp, true).unwrap();
    files.write(JOB, 0, 0, b"abc").unwrap();
    files.close(JOB, 0);
    files.commit(JOB, 0, &temp, &dest, 3).unwrap();
    assert_eq!(fs::read(&dest).unwrap(), b"abc");
}

#[test]
fn committing_a_missing_temp_file_fails_and_creates_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let dest = dir.path().join("x.bin");
    let err = TempFiles::new()
        .commit(JOB, 0, &dir.path().join(".x.tmp"), &dest, 3)
        .unwrap_err();
    assert_eq!(err.kind, IoFailureKind::NotFound);
    assert!(!dest.exists());
}

#[test]
fn a_commit_repeated_after_a_crash_that_had_renamed_the_file_succeeds_and_keeps_it() {
    let dir = tempfile::tempdir().unwrap();
    let temp = dir.path().join(".x.tmp");
    let dest = dir.path().join("x.bin");
    let mut files = TempFiles::new();
    files.open_temp(JOB, 0, &temp, true).unwrap();
    files.write(JOB, 0, 0, b"abc").unwrap();
    files.commit(JOB, 0, &temp, &dest, 3).unwrap();
    // A new process (no handle) commits again: the temp file is gone, the file is in place.
    TempFiles::new().commit(JOB, 0, &temp, &dest, 3).unwrap();
    assert_eq!(fs::read(&dest).unwrap(), b"abc");
}

#[test]
fn a_commit_whose_temp_file_vanished_does_not_pass_off_the_previous_version_as_the_download() {
    let dir = tempfile::tempdir().unwrap();
    let dest = dir.path().join("x.bin");
    fs::write(&dest, b"version 1").unwrap();
    // The download (3 bytes) finished, then its temp file was deleted behind the job's back.
    let err = TempFiles::new()
        .commit(JOB, 0, &dir.path().join(".x.tmp"), &dest, 3)
        .unwrap_err();
    assert_eq!(err.kind, IoFailureKind::NotFound);
    assert!(err.message.contains(".x.tmp"), "{}", err.message);
    assert_eq!(fs::read(&dest).unwrap(), b"version 1", "left as it was");
}

#[test]
fn sync_flushes_an_open_temp_file_and_fails_on_one_not_open() {
    let dir = tempfile::tempdir().unwrap();
    let temp = dir.path().join(".x.tmp");
    let mut files = TempFiles::new();
    files.open_temp(JOB, 0, &temp, true).unwrap();
    files.write(JOB, 0, 0, b"abc").unwrap();
    assert_eq!(files.sync(JOB, 0), Ok(()));
    assert!(files.sync(JOB, 1).is_err());
}

#[test]
fn deleting_a_temp_file_closes_and_removes_it() {
    let dir = tempfile::tempdir().unwrap();
    let temp = dir.path().join(".x.tmp");
    let mut files = TempFiles::new();
    files.open_temp(JOB, 0, &temp, true).unwrap();
    files.delete(JOB, 0, &temp).unwrap();
    assert!(!temp.exists());
    assert!(files.is_empty());
}

#[test]
fn deleting_a_temp_file_that_is_already_gone_is_fine() {
    let dir = tempfile::tempdir().unwrap();
    assert_eq!(
        TempFiles::new().delete(JOB, 0, &dir.path().join(".never.tmp")),
        Ok(())
    );
}

#[test]
fn a_local_name_in_a_missing_directory_is_refused_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("no/such");
    let err = check_local_name(&missing.join("f.bin")).unwrap_err();
    assert_eq!(err.code(), codes::E_INVALIDARG);
    assert_eq!(
        err.detail(),
        format!("directory {} does not exist", missing.display())
    );
}

#[test]
fn a_local_name_that_is_a_directory_is_refused_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let err = check_local_name(dir.path()).unwrap_err();
    assert_eq!(err.code(), codes::E_INVALIDARG);
    assert_eq!(
        err.detail(),
        format!("{} is a directory", dir.path().display())
    );
    assert!(check_local_name(Path::new("/")).is_err());
}

#[test]
fn a_local_name_under_a_file_is_refused_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("plain");
    fs::write(&file, b"").unwrap();
    let err = check_local_name(&file.join("f.bin")).unwrap_err();
    assert_eq!(
        err.detail(),
        format!("{} is not a directory", file.display())
    );
}

#[test]
fn a_new_or_existing_file_in_an_existing_directory_passes_and_relative_names_are_left_to_core() {
    let dir = tempfile::tempdir().unwrap();
    assert_eq!(check_local_name(&dir.path().join("new.bin")), Ok(()));
    fs::write(dir.path().join("old.bin"), b"").unwrap();
    assert_eq!(check_local_name(&dir.path().join("old.bin")), Ok(()));
    assert_eq!(check_local_name(Path::new("relative/name.bin")), Ok(()));
}

/// This process's umask, as a shell it starts (which inherits it) prints it.
fn umask() -> u32 {
    let out = std::process::Command::new("sh")
        .args(["-c", "umask"])
        .output()
        .unwrap();
    u32::from_str_radix(String::from_utf8_lossy(&out.stdout).trim(), 8).unwrap()
}
