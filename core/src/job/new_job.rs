//! [`NewJob`]: one job for [`Engine::create_jobs`](crate::Engine::create_jobs), which creates
//! a whole batch in one command (one store commit in the drivers).

use std::path::PathBuf;

use super::{FileRange, JobPriority, JobType};
use crate::error::BitsError;

/// A job to create, with what `CreateJob`, `AddFile` / `AddFileWithRanges`, `SetPriority`
/// and `Resume` would give it one call at a time.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewJob {
    /// `CreateJob`'s display name.
    pub display_name: String,
    /// `CreateJob`'s type (only [`JobType::Download`] is implemented).
    pub job_type: JobType,
    /// `SetPriority` (BITS' default: [`JobPriority::Normal`]).
    pub priority: JobPriority,
    /// `AddFile` for each, in order (their [`FileIndex`](crate::FileIndex) is their position).
    pub files: Vec<NewFile>,
    /// `Resume` once created (the job must have a file), instead of staying SUSPENDED.
    pub resume: bool,
}

/// One file of a [`NewJob`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewFile {
    /// The remote name: an http or https URL.
    pub url: String,
    /// The absolute local name.
    pub local: PathBuf,
    /// Empty: the whole file (`AddFile`); else only these parts (`AddFileWithRanges`).
    pub ranges: Vec<FileRange>,
}

impl NewJob {
    /// A download job named `display_name`, NORMAL priority, no file, left SUSPENDED.
    pub fn download(display_name: impl Into<String>) -> Self {
        Self {
            display_name: display_name.into(),
            job_type: JobType::Download,
            priority: JobPriority::Normal,
            files: Vec::new(),
            resume: false,
        }
    }

    /// Adds the whole of `url` as a file at `local`.
    #[must_use]
    pub fn file(mut self, url: impl Into<String>, local: impl Into<PathBuf>) -> Self {
        self.files.push(NewFile {
            url: url.into(),
            local: local.into(),
            ranges: Vec::new(),
        });
        self
    }

    /// Sets the priority.
    #[must_use]
    pub fn priority(mut self, priority: JobPriority) -> Self {
        self.priority = priority;
        self
    }

    /// Resumes the job once it is created.
    #[must_use]
    pub fn resumed(mut self) -> Self {
        self.resume = true;
        self
    }

    /// `error`, about job `index` of a batch (and its file `file`, if about one), reworded to
    /// say which: the code stays, the detail names the job and the file's local and remote
    /// names. Drivers use it for the checks they make before the engine sees the batch.
    pub fn refusal(&self, index: usize, file: Option<usize>, error: &BitsError) -> BitsError {
        let job = format!("job #{index} ({:?})", self.display_name);
        let what = match file.and_then(|i| self.files.get(i).map(|f| (i, f))) {
            Some((i, f)) => format!("{job}, file #{i} ({} from {})", f.local.display(), f.url),
            None => job,
        };
        BitsError::new(
            error.code(),
            format!(
                "{what}: {}; no job of the batch was created",
                error.detail()
            ),
        )
    }
}
