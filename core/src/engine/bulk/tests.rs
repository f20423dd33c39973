use crate::codes;
use crate::job::{FileRange, JobPriority, JobState, JobType, NewJob, Owner};
use crate::output::{Action, Output};
use crate::{Config, Engine, Timestamp};

fn engine(max_jobs: usize) -> Engine {
    let mut config = Config::new([6; 32]);
    config.max_jobs = max_jobs;
    config.max_jobs_per_owner = max_jobs;
    Engine::new(config, Timestamp::from_secs(1_800_000_000))
}

fn owner() -> Owner {
    Owner("pkg".into())
}

/// Everything the engine put out until its next timeout.
fn drain(engine: &mut Engine) -> Vec<Output> {
    let mut outputs = Vec::new();
    loop {
        match engine.poll_output() {
            Output::Timeout(_) => return outputs,
            other => outputs.push(other),
        }
    }
}

fn batch() -> Vec<NewJob> {
    vec![
        NewJob::download("a").file("http://h/a", "/dl/a"),
        NewJob::download("b")
            .file("https://h/b1", "/dl/b1")
            .file("https://h/b2", "/dl/b2")
            .priority(JobPriority::High)
            .resumed(),
        NewJob {
            files: vec![crate::job::NewFile {
                url: "http://h/c".into(),
                local: "/dl/c".into(),
                ranges: vec![FileRange::new(0, 10)],
            }],
            ..NewJob::download("c")
        },
    ]
}

#[test]
fn a_batch_creates_every_job_with_its_files_priority_and_state() {
    let mut engine = engine(10);
    let ids = engine.create_jobs(&batch(), owner()).unwrap();
    assert_eq!(engine.jobs(), ids);
    let [a, b, c] = [ids[0], ids[1], ids[2]].map(|id| engine.job(id).unwrap().info());
    assert_eq!((a.display_name.as_str(), a.files.len()), ("a", 1));
    assert_eq!(a.state, JobState::Suspended);
    assert_eq!(a.priority, JobPriority::Normal);
    assert_eq!(b.files.len(), 2);
    assert_eq!(b.priority, JobPriority::High);
    assert_ne!(b.state, JobState::Suspended, "resumed");
    assert_eq!(c.owner, owner());
    assert_eq!(
        engine.job(ids[2]).unwrap().file_ranges(0).unwrap(),
        vec![FileRange::new(0, 10)]
    );
    let persisted: Vec<_> = drain(&mut engine)
        .into_iter()
        .filter_map(|out| match out {
            Output::Action(Action::Persist { job }) => Some(job),
            _ => None,
        })
        .collect();
    for id in &ids {
        assert!(persisted.contains(id), "job {id} persisted");
    }
}

/// Asserts `jobs` is refused with `code`, the detail holding every one of `named`, and that
/// nothing was created, persisted or published.
fn assert_refused_whole(jobs: &[NewJob], code: crate::HResult, named: &[&str]) {
    let mut engine = engine(10);
    drain(&mut engine);
    let error = engine.create_jobs(jobs, owner()).unwrap_err();
    assert_eq!(error.code(), code, "{error}");
    for name in named {
        assert!(error.detail().contains(name), "{name:?} in {error}");
    }
    assert!(engine.jobs().is_empty(), "no job left behind");
    assert!(
        drain(&mut engine).is_empty(),
        "nothing persisted or published"
    );
}

#[test]
fn a_bad_url_names_its_job_and_file_and_creates_no_job() {
    let mut jobs = batch();
    jobs[1].files[1].url = "ftp://h/b2".into();
    let named = [
        "job #1",
        "\"b\"",
        "file #1",
        "/dl/b2",
        "ftp://h/b2",
        "no job",
    ];
    assert_refused_whole(&jobs, codes::E_INVALIDARG, &named);
}

#[test]
fn a_relative_or_repeated_local_name_is_refused_whole() {
    let mut relative = batch();
    relative[2].files[0].local = "c".into();
    assert_refused_whole(&relative, codes::E_INVALIDARG, &["job #2", "file #0"]);
    let mut repeated = batch();
    repeated[1].files[1].local = "/dl/b1".into();
    assert_refused_whole(&repeated, codes::E_INVALIDARG, &["job #1", "file #1"]);
}

#[test]
fn a_bad_range_a_resume_without_files_or_an_upload_are_refused_whole() {
    let mut ranges = batch();
    ranges[2].files[0].ranges = vec![FileRange::new(0, 10), FileRange::new(5, 10)];
    assert_refused_whole(&ranges, codes::BG_E_OVERLAPPING_RANGES, &["job #2"]);
    let mut empty = batch();
    empty.push(NewJob::download("empty").resumed());
    assert_refused_whole(&empty, codes::BG_E_EMPTY, &["job #3", "\"empty\""]);
    let mut upload = batch();
    upload[0].job_type = JobType::Upload;
    assert_refused_whole(&upload, codes::E_NOTIMPL, &["job #0"]);
}

#[test]
fn a_batch_beyond_the_job_limit_creates_no_job() {
    let mut engine = engine(4);
    engine
        .create_job("old", JobType::Download, owner())
        .unwrap();
    let mut jobs = batch();
    jobs.push(NewJob::download("d").file("http://h/d", "/dl/d"));
    let error = engine.create_jobs(&jobs, owner()).unwrap_err();
    assert_eq!(error.code(), codes::BG_E_TOO_MANY_JOBS_PER_MACHINE);
    assert!(error.detail().contains("batch of 4"), "{error}");
    assert_eq!(engine.jobs().len(), 1);
    jobs.pop();
    assert_eq!(engine.create_jobs(&jobs, owner()).unwrap().len(), 3);
}
