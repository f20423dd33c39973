//! Scenarios for the job lifecycle, run in the deterministic simulation.

use std::path::Path;

use backhaul_core::{codes, CompleteOutcome, JobEvent, JobPriority, JobState, NotifyFlags};
use backhaul_tests::sim::{for_each_seed, Reply, Resource, Sim};

const HOST: &str = "files.test";

fn body(len: usize, salt: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u8).wrapping_mul(31).wrapping_add(salt))
        .collect()
}

/// A sim serving `/f` (200 KiB, ETag "v1") and a suspended job with that one file.
fn one_file_job(seed: u64) -> (Sim, backhaul_core::JobId, Vec<u8>) {
    let mut sim = Sim::new(seed);
    let data = body(200 * 1024, 7);
    sim.serve(HOST, 80, "/f", Resource::new(data.clone(), "v1"));
    let job = sim.create_job("one file");
    sim.command(|e| {
        e.job_mut(job)?
            .add_file("http://files.test/f", Path::new("/dl/f"))
    })
    .expect("add_file");
    (sim, job, data)
}

#[test]
fn download_then_complete_makes_the_file_appear_only_on_complete() {
    for_each_seed(20, |seed| {
        let (mut sim, job, data) = one_file_job(seed);
        assert_eq!(sim.state(job), JobState::Suspended);
        sim.command(|e| e.job_mut(job)?.resume()).expect("resume");
        sim.drive_to_state(job, JobState::Transferred);
        assert!(
            sim.file("/dl/f").is_none(),
            "nothing appears at the local name before Complete"
        );
        let temp = sim.engine.job(job).unwrap().files()[0]
            .temporary_name
            .clone()
            .expect("temp name");
        assert_eq!(sim.files[&temp].data, data);
        let outcome = sim
            .command(|e| e.job_mut(job)?.complete())
            .expect("complete");
        assert_eq!(outcome, CompleteOutcome::Complete);
        assert_eq!(sim.state(job), JobState::Acknowledged);
        assert_eq!(sim.file("/dl/f"), Some(&data[..]));
        assert!(!sim.files.contains_key(&temp));
        assert_eq!(
            sim.states_of(job),
            [
                JobState::Queued,
                JobState::Connecting,
                JobState::Transferring,
                JobState::Transferred,
                JobState::Acknowledged
            ]
        );
    });
}

#[test]
fn resume_without_files_is_bg_e_empty_and_stays_suspended() {
    let mut sim = Sim::new(1);
    let job = sim.create_job("empty");
    let err = sim.command(|e| e.job_mut(job)?.resume()).unwrap_err();
    assert_eq!(err.code(), codes::BG_E_EMPTY);
    assert_eq!(sim.state(job), JobState::Suspended);
}

#[test]
fn every_command_in_a_final_state_is_bg_e_invalid_state() {
    let (mut sim, job, _) = one_file_job(1);
    sim.command(|e| e.job_mut(job)?.cancel()).expect("cancel");
    assert_eq!(sim.state(job), JobState::Cancelled);
    let results = sim.command(|e| {
        let mut j = e.job_mut(job).unwrap();
        vec![
            j.resume().unwrap_err(),
            j.suspend().unwrap_err(),
            j.cancel().unwrap_err(),
            j.complete().unwrap_err(),
            j.set_display_name("x").unwrap_err(),
            j.set_priority(JobPriority::High).unwrap_err(),
            j.add_file("http://files.test/g", Path::new("/dl/g"))
                .unwrap_err(),
        ]
    });
    for err in results {
        assert_eq!(err.code(), codes::BG_E_INVALID_STATE, "{err}");
    }
    assert!(
        sim.engine.jobs().is_empty(),
        "final jobs drop out of enumeration"
    );
}

#[test]
fn error_is_unavailable_outside_error_states() {
    let (sim, job, _) = one_file_job(1);
    let err = sim.engine.job(job).unwrap().error().unwrap_err();
    assert_eq!(err.code(), codes::BG_E_ERROR_INFORMATION_UNAVAILABLE);
}

#[test]
fn add_file_refuses_bad_names_with_e_invalidarg() {
    let mut sim = Sim::new(1);
    let job = sim.create_job("bad input");
    let long = format!("http://files.test/{}", "a".repeat(2200));
    for (url, local) in [
        ("ftp://files.test/f", "/dl/f"),
        ("http://files.test/f", "relative/f"),
        (long.as_str(), "/dl/f"),
        ("not a url", "/dl/f"),
        ("http://user:pw@files.test/f", "/dl/f"),
        ("http://files.test/f", "/dl/"),
    ] {
        let err = sim
            .command(|e| e.job_mut(job)?.add_file(url, Path::new(local)))
            .unwrap_err();
        assert_eq!(err.code(), codes::E_INVALIDARG, "{url} -> {local}: {err}");
    }
    assert_eq!(sim.engine.job(job).unwrap().files().len(), 0);
}

#[test]
fn upload_jobs_are_not_implemented_and_names_are_limited() {
    let mut sim = Sim::new(1);
    let owner = backhaul_core::Owner("t".into());
    let err = sim
        .engine
        .create_job("u", backhaul_core::JobType::Upload, owner.clone())
        .unwrap_err();
    assert_eq!(err.code(), codes::E_NOTIMPL);
    let err = sim
        .engine
        .create_job(&"n".repeat(257), backhaul_core::JobType::Download, owner)
        .unwrap_err();
    assert_eq!(err.code(), codes::BG_E_STRING_TOO_LONG);
    let job = sim.create_job("ok");
    let err = sim
        .command(|e| e.job_mut(job)?.set_description(&"d".repeat(1025)))
        .unwrap_err();
    assert_eq!(err.code(), codes::BG_E_STRING_TOO_LONG);
    let err = sim
        .command(|e| e.job_mut(job)?.set_notify_flags(0x40))
        .unwrap_err();
    assert_eq!(err.code(), codes::E_NOTIMPL);
}

#[test]
fn minimum_retry_delay_is_clamped_to_five_seconds_and_defaults_follow_bits() {
    let mut sim = Sim::new(1);
    let job = sim.create_job("clamp");
    sim.command(|e| e.job_mut(job)?.set_minimum_retry_delay(1))
        .unwrap();
    let view = sim.engine.job(job).unwrap();
    assert_eq!(view.minimum_retry_delay(), 5);
    assert_eq!(view.no_progress_timeout(), 1_209_600);
    assert_eq!(view.maximum_download_time(), 7_776_000);
    assert_eq!(view.notify_flags().bits(), 0x3);
    assert_eq!(view.priority(), JobPriority::Normal);
}

#[test]
fn too_many_files_in_a_job_is_refused() {
    let mut config = backhaul_core::Config::new([0; 32]);
    config.max_files_per_job = 2;
    let mut sim = Sim::with_config(1, config);
    let job = sim.create_job("limit");
    for i in 0..2 {
        let local = format!("/dl/f{i}");
        sim.command(|e| {
            e.job_mut(job)?
                .add_file("http://files.test/f", Path::new(&local))
        })
        .unwrap();
    }
    let err = sim
        .command(|e| {
            e.job_mut(job)?
                .add_file("http://files.test/f", Path::new("/dl/f9"))
        })
        .unwrap_err();
    assert_eq!(err.code(), codes::BG_E_TOO_MANY_FILES_IN_JOB);
}

#[test]
fn cancel_deletes_temp_files_and_leaves_nothing() {
    for_each_seed(10, |seed| {
        let (mut sim, job, _) = one_file_job(seed);
        sim.script(HOST, 80, "/f", vec![Reply::Silence]);
        sim.command(|e| e.job_mut(job)?.resume()).unwrap();
        sim.drive_until(1000, |s| s.files.len() == 1);
        sim.command(|e| e.job_mut(job)?.cancel()).unwrap();
        sim.drive(1000);
        assert!(
            sim.files.is_empty(),
            "temp files remain: {:?}",
            sim.files.keys()
        );
        assert_eq!(sim.state(job), JobState::Cancelled);
    });
}

#[test]
fn complete_before_transfer_ends_is_partial_and_deletes_unfinished_files() {
    let mut sim = Sim::new(3);
    sim.serve(HOST, 80, "/a", Resource::new(body(1000, 1), "a"));
    sim.serve(HOST, 80, "/b", Resource::new(body(1000, 2), "b"));
    sim.script(HOST, 80, "/b", vec![Reply::Silence]);
    let job = sim.create_job("partial");
    sim.command(|e| {
        let mut j = e.job_mut(job)?;
        j.add_file("http://files.test/a", Path::new("/dl/a"))?;
        j.add_file("http://files.test/b", Path::new("/dl/b"))?;
        j.resume()
    })
    .unwrap();
    sim.drive_until(10_000, |s| {
        s.engine.job(job).unwrap().progress().files_transferred == 1
    });
    sim.advance(std::time::Duration::from_millis(50));
    let outcome = sim.command(|e| e.job_mut(job)?.complete()).unwrap();
    assert_eq!(outcome, CompleteOutcome::PartialComplete);
    assert_eq!(outcome.hresult(), codes::BG_S_PARTIAL_COMPLETE);
    assert_eq!(sim.state(job), JobState::Acknowledged);
    assert_eq!(sim.file("/dl/a"), Some(&body(1000, 1)[..]));
    assert_eq!(
        sim.files.len(),
        1,
        "only the finished file remains: {:?}",
        sim.files.keys()
    );
}

#[test]
fn files_of_a_job_transfer_one_at_a_time_in_order_over_one_connection() {
    for_each_seed(10, |seed| {
        let mut sim = Sim::new(seed);
        for (i, name) in ["/1", "/2", "/3"].iter().enumerate() {
            sim.serve(
                HOST,
                80,
                name,
                Resource::new(body(50_000 + i, i as u8), name),
            );
        }
        let job = sim.create_job("fifo");
        sim.command(|e| {
            let mut j = e.job_mut(job)?;
            for name in ["1", "2", "3"] {
                j.add_file(
                    &format!("http://files.test/{name}"),
                    Path::new(&format!("/dl/{name}")),
                )?;
            }
            j.resume()
        })
        .unwrap();
        sim.drive_to_state(job, JobState::Transferred);
        let paths: Vec<&str> = sim.requests.iter().map(|r| r.path.as_str()).collect();
        assert_eq!(paths, ["/1", "/2", "/3"]);
        assert_eq!(
            sim.connects, 1,
            "keep-alive: one connection carries every file"
        );
        let progress = sim.engine.job(job).unwrap().progress();
        assert_eq!(progress.files_transferred, 3);
        assert_eq!(progress.bytes_total, progress.bytes_transferred);
    });
}

#[test]
fn notify_flags_filter_callbacks_but_state_changes_are_always_sent() {
    let (mut sim, job, _) = one_file_job(5);
    let flags = NotifyFlags::DISABLE | NotifyFlags::JOB_TRANSFERRED;
    sim.command(|e| e.job_mut(job)?.set_notify_flags(flags))
        .unwrap();
    sim.command(|e| e.job_mut(job)?.resume()).unwrap();
    sim.drive_to_state(job, JobState::Transferred);
    assert!(!sim
        .events
        .iter()
        .any(|e| matches!(e, JobEvent::JobTransferred { .. })));
    let changed = |e: &JobEvent| {
        matches!(
            e,
            JobEvent::StateChanged {
                to: JobState::Transferred,
                ..
            }
        )
    };
    assert!(sim.events.iter().any(changed));

    let (mut sim, job, _) = one_file_job(5);
    sim.command(|e| e.job_mut(job)?.set_notify_flags(0x1B))
        .unwrap();
    sim.command(|e| e.job_mut(job)?.resume()).unwrap();
    sim.drive_to_state(job, JobState::Transferred);
    assert!(sim
        .events
        .iter()
        .any(|e| matches!(e, JobEvent::JobTransferred { .. })));
    assert!(sim
        .events
        .iter()
        .any(|e| matches!(e, JobEvent::FileTransferred { file: 0, .. })));
    assert!(sim
        .events
        .iter()
        .any(|e| matches!(e, JobEvent::JobModification { .. })));
}

#[test]
fn times_record_creation_modification_and_transfer_completion() {
    let (mut sim, job, _) = one_file_job(2);
    let created = sim.engine.job(job).unwrap().times().creation;
    sim.advance(std::time::Duration::from_secs(10));
    sim.command(|e| e.job_mut(job)?.resume()).unwrap();
    sim.drive_to_state(job, JobState::Transferred);
    let times = sim.engine.job(job).unwrap().times();
    assert_eq!(times.creation, created);
    assert!(times.modification > created);
    assert_eq!(times.transfer_completion, Some(times.modification));
}

#[test]
fn suspend_stops_the_transfer_and_resume_continues_from_the_same_offset() {
    for_each_seed(10, |seed| {
        let mut sim = Sim::new(seed);
        let data = body(300_000, 9);
        sim.serve(HOST, 80, "/f", Resource::new(data.clone(), "v1"));
        sim.script(HOST, 80, "/f", vec![Reply::Truncate(100_000), Reply::Serve]);
        let job = sim.create_job("suspend");
        sim.command(|e| {
            let mut j = e.job_mut(job)?;
            j.add_file("http://files.test/f", Path::new("/dl/f"))?;
            j.set_minimum_retry_delay(5)
        })
        .unwrap();
        sim.command(|e| e.job_mut(job)?.resume()).unwrap();
        sim.drive_to_state(job, JobState::TransientError);
        sim.command(|e| e.job_mut(job)?.suspend()).unwrap();
        assert_eq!(sim.state(job), JobState::Suspended);
        sim.advance(std::time::Duration::from_secs(3600));
        assert_eq!(
            sim.state(job),
            JobState::Suspended,
            "a suspended job is not retried"
        );
        sim.command(|e| e.job_mut(job)?.resume()).unwrap();
        sim.drive_to_state(job, JobState::Transferred);
        assert_eq!(
            sim.requests.last().unwrap().header("range"),
            Some("bytes=100000-")
        );
        sim.command(|e| e.job_mut(job)?.complete()).unwrap();
        assert_eq!(sim.file("/dl/f"), Some(&data[..]));
    });
}

#[test]
fn a_failed_rename_on_complete_keeps_the_job_transferred_as_bits_does() {
    let (mut sim, job, _) = one_file_job(4);
    sim.command(|e| e.job_mut(job)?.resume()).unwrap();
    sim.drive_to_state(job, JobState::Transferred);
    let temp = sim.engine.job(job).unwrap().files()[0]
        .temporary_name
        .clone()
        .unwrap();
    sim.files.remove(&temp);
    sim.command(|e| e.job_mut(job)?.complete()).unwrap();
    assert_eq!(sim.state(job), JobState::Transferred);
    assert!(sim.file("/dl/f").is_none());
    assert_eq!(sim.states_of(job).last(), Some(&JobState::Transferred));
    sim.command(|e| e.job_mut(job)?.cancel()).unwrap();
    assert_eq!(sim.state(job), JobState::Cancelled);
}
