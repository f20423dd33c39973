//! [`Engine::create_jobs`]: a batch of jobs created by one command, all or none.
//!
//! Why a batch: a caller that creates jobs one call after another waits for a store commit
//! (a sync) per call, two per job with its file; a package manager that creates hundreds of
//! jobs at once wants one. The drivers run the whole batch as one command, so its records are
//! committed together.
//!
//! Why all or none: the batch is checked whole before anything is created, so a bad job or
//! file (a malformed URL, a relative local name, a batch beyond the job limits) leaves no job
//! behind, no event published and nothing persisted — the caller fixes the one entry named in
//! the error and sends the batch again, with nothing to clean up.

use crate::codes;
use crate::error::BitsError;
use crate::ids::JobId;
use crate::job::ranges::check_ranges;
use crate::job::{JobPriority, JobType, NewJob, Owner};

use super::commands::{check_display_name, check_file};
use super::Engine;

impl Engine {
    /// Creates every job of `jobs` for `owner` — each with its files, priority, and resumed if
    /// asked — or none of them. Returns their ids in the order given.
    ///
    /// The checks are those of `CreateJob`, `AddFile`, `AddFileWithRanges` and `Resume`, made
    /// for the whole batch first; the first that fails is returned with its code and a detail
    /// that names the job (its position and display name) and the file (its local and remote
    /// names) — see [`NewJob::refusal`]. The job limits count the whole batch: it fits under
    /// `Config::max_jobs` and `max_jobs_per_owner` or none of it is created
    /// (`BG_E_TOO_MANY_JOBS_PER_MACHINE`, `BG_E_TOO_MANY_JOBS_PER_USER`).
    ///
    /// The local names' directories are not checked here (core touches no files): drivers
    /// check them before calling this, as for `add_file`.
    pub fn create_jobs(&mut self, jobs: &[NewJob], owner: Owner) -> Result<Vec<JobId>, BitsError> {
        self.check_room(jobs.len(), &owner)?;
        let (max_files, max_ranges) = (
            self.config.max_files_per_job,
            self.config.max_ranges_per_file,
        );
        for (index, job) in jobs.iter().enumerate() {
            check_new_job(job, max_files, max_ranges)
                .map_err(|(file, error)| job.refusal(index, file, &error))?;
        }
        Ok(jobs
            .iter()
            .map(|job| self.create_checked(job, &owner))
            .collect())
    }

    /// Room for `count` more live jobs of `owner` under both job limits.
    fn check_room(&self, count: usize, owner: &Owner) -> Result<(), BitsError> {
        let (live, owned) = (self.live.total(), self.live.of(owner));
        if live.saturating_add(count) > self.config.max_jobs {
            return Err(BitsError::new(
                codes::BG_E_TOO_MANY_JOBS_PER_MACHINE,
                format!(
                    "a batch of {count} jobs does not fit: there are {live} jobs (the limit is \
                     {}); no job of the batch was created",
                    self.config.max_jobs
                ),
            ));
        }
        if owned.saturating_add(count) > self.config.max_jobs_per_owner {
            return Err(BitsError::new(
                codes::BG_E_TOO_MANY_JOBS_PER_USER,
                format!(
                    "a batch of {count} jobs does not fit: {owner} has {owned} jobs (the limit \
                     is {}); no job of the batch was created",
                    self.config.max_jobs_per_owner
                ),
            ));
        }
        Ok(())
    }

    /// Creates a job that [`check_new_job`] and [`Engine::check_room`] accepted.
    fn create_checked(&mut self, new: &NewJob, owner: &Owner) -> JobId {
        // Invariant (each `expect` below): the batch passed the same checks these calls make.
        let id = self
            .create_job(&new.display_name, new.job_type, owner.clone())
            .expect("create_jobs checked the job");
        let mut job = self.job_mut(id).expect("the job was just created");
        for file in &new.files {
            if file.ranges.is_empty() {
                job.add_file(&file.url, &file.local)
            } else {
                job.add_file_with_ranges(&file.url, &file.local, &file.ranges)
            }
            .expect("create_jobs checked the file");
        }
        if new.priority != JobPriority::Normal {
            job.set_priority(new.priority)
                .expect("a new job takes any priority");
        }
        if new.resume {
            job.resume().expect("create_jobs checked the job has files");
        }
        id
    }
}

/// What `CreateJob`, `AddFile(WithRanges)` and `Resume` would refuse of `job`: the error, and
/// the index of the file it is about (`None`: the job itself).
fn check_new_job(
    job: &NewJob,
    max_files: usize,
    max_ranges: usize,
) -> Result<(), (Option<usize>, BitsError)> {
    let of_job = |error| (None, error);
    if job.job_type != JobType::Download {
        let detail = format!("only download jobs are implemented, not {:?}", job.job_type);
        return Err(of_job(BitsError::new(codes::E_NOTIMPL, detail)));
    }
    check_display_name(&job.display_name).map_err(of_job)?;
    for (index, file) in job.files.iter().enumerate() {
        let of_file = |error| (Some(index), error);
        if !file.ranges.is_empty() {
            check_ranges(&file.ranges, max_ranges).map_err(of_file)?;
        }
        let before = job.files[..index].iter().map(|f| f.local.as_path());
        check_file(&file.url, &file.local, before, max_files).map_err(of_file)?;
    }
    if job.resume && job.files.is_empty() {
        let detail = "cannot resume: the job has no files";
        return Err(of_job(BitsError::new(codes::BG_E_EMPTY, detail)));
    }
    Ok(())
}

#[cfg(test)]
mod tests;
