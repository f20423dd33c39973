//! [`LiveJobs`]: how many jobs are not in a final state, in all and per owner — the two job
//! limits `create_job` checks, kept up to date instead of counted per call (counting walked
//! every job: creating 10,000 jobs compared 50 million owners).

use std::collections::BTreeMap;

use crate::job::Owner;

/// Jobs not ACKNOWLEDGED or CANCELLED: in all, and per owner.
#[derive(Debug, Default)]
pub(super) struct LiveJobs {
    total: usize,
    per_owner: BTreeMap<Owner, usize>,
}

impl LiveJobs {
    /// A live job of `owner` appeared (created, restored, or taken over from another owner).
    pub(super) fn add(&mut self, owner: &Owner) {
        self.total += 1;
        match self.per_owner.get_mut(owner) {
            Some(n) => *n += 1,
            None => {
                self.per_owner.insert(owner.clone(), 1);
            }
        }
    }

    /// A live job of `owner` went (reached a final state, or was taken over by another owner).
    pub(super) fn remove(&mut self, owner: &Owner) {
        self.total = self.total.saturating_sub(1);
        if let Some(n) = self.per_owner.get_mut(owner) {
            *n -= 1;
            if *n == 0 {
                self.per_owner.remove(owner);
            }
        }
    }

    /// Live jobs in all.
    pub(super) fn total(&self) -> usize {
        self.total
    }

    /// Live jobs of `owner`.
    pub(super) fn of(&self, owner: &Owner) -> usize {
        self.per_owner.get(owner).copied().unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use crate::codes;
    use crate::{Config, Engine, JobType, Owner, Timestamp};

    fn engine(max_jobs: usize, max_per_owner: usize) -> Engine {
        let mut config = Config::new([5; 32]);
        config.max_jobs = max_jobs;
        config.max_jobs_per_owner = max_per_owner;
        Engine::new(config, Timestamp::from_secs(1_800_000_000))
    }

    fn create(engine: &mut Engine, owner: &str) -> Result<crate::JobId, crate::BitsError> {
        engine.create_job("j", JobType::Download, Owner(owner.into()))
    }

    #[test]
    fn the_per_owner_limit_counts_only_that_owners_live_jobs() {
        let mut engine = engine(10, 2);
        let first = create(&mut engine, "alice").unwrap();
        create(&mut engine, "alice").unwrap();
        let refused = create(&mut engine, "alice").unwrap_err();
        assert_eq!(refused.code(), codes::BG_E_TOO_MANY_JOBS_PER_USER);
        create(&mut engine, "bob").unwrap();
        // A cancelled job is final: it no longer counts.
        engine.job_mut(first).unwrap().cancel().unwrap();
        create(&mut engine, "alice").unwrap();
    }

    #[test]
    fn the_machine_limit_counts_every_owners_live_jobs() {
        let mut engine = engine(2, 10);
        create(&mut engine, "alice").unwrap();
        let bobs = create(&mut engine, "bob").unwrap();
        let refused = create(&mut engine, "carol").unwrap_err();
        assert_eq!(refused.code(), codes::BG_E_TOO_MANY_JOBS_PER_MACHINE);
        engine.job_mut(bobs).unwrap().cancel().unwrap();
        create(&mut engine, "carol").unwrap();
    }

    #[test]
    fn a_job_taken_over_counts_against_its_new_owner() {
        let mut engine = engine(10, 1);
        let job = create(&mut engine, "alice").unwrap();
        engine
            .job_mut(job)
            .unwrap()
            .take_ownership(Owner("bob".into()))
            .unwrap();
        create(&mut engine, "alice").unwrap();
        let refused = create(&mut engine, "bob").unwrap_err();
        assert_eq!(refused.code(), codes::BG_E_TOO_MANY_JOBS_PER_USER);
    }

    #[test]
    fn restored_live_jobs_count_and_final_ones_do_not() {
        let mut before = engine(10, 10);
        let live = create(&mut before, "alice").unwrap();
        before
            .job_mut(live)
            .unwrap()
            .add_file("http://h/x", Path::new("/dl/x"))
            .unwrap();
        let cancelled = create(&mut before, "alice").unwrap();
        before.job_mut(cancelled).unwrap().cancel().unwrap();
        let mut after = engine(10, 2);
        for id in [live, cancelled] {
            after
                .restore(before.job_record(id).unwrap().clone())
                .unwrap();
        }
        create(&mut after, "alice").unwrap();
        let refused = create(&mut after, "alice").unwrap_err();
        assert_eq!(refused.code(), codes::BG_E_TOO_MANY_JOBS_PER_USER);
    }
}
