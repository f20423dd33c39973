//! The notification command line (`SetNotifyCmdLine`) in the simulation.

use std::path::Path;
use std::time::Duration;

use backhaul_core::{codes, JobId, JobState, NotifyFlags};
use backhaul_tests::sim::{Reply, Resource, Sim};

const PROGRAM: &str = "/usr/local/bin/on-done";

fn job_with_cmd(sim: &mut Sim, path: &str) -> JobId {
    let job = sim.create_job("notify");
    sim.command(|e| {
        let mut j = e.job_mut(job)?;
        j.add_file(&format!("http://files.test{path}"), Path::new("/dl/f"))?;
        j.set_minimum_retry_delay(30)?;
        j.set_notify_cmd_line(Some(PROGRAM), Some("on-done --job 'a b' ';' '$(id)'"))?;
        j.resume()
    })
    .expect("job starts");
    job
}

#[test]
fn the_program_runs_once_on_transferred_with_its_arguments_literally() {
    let mut sim = Sim::new(1);
    sim.serve("files.test", 80, "/f", Resource::new(vec![1; 100], "v"));
    let job = job_with_cmd(&mut sim, "/f");
    sim.drive_to_state(job, JobState::Transferred);
    sim.advance(Duration::from_secs(120));
    assert_eq!(sim.programs.len(), 1, "{:?}", sim.programs);
    let (_, ran_for, program, args) = &sim.programs[0];
    assert_eq!((*ran_for, program.as_str()), (job, PROGRAM));
    assert_eq!(args, &["--job", "a b", ";", "$(id)"]);
}

#[test]
fn a_failing_program_is_rerun_after_the_retry_delay_until_it_succeeds() {
    let mut sim = Sim::new(2);
    sim.serve("files.test", 80, "/f", Resource::new(vec![1; 100], "v"));
    sim.program_exits.extend([1, 2, 0]);
    let job = job_with_cmd(&mut sim, "/f");
    sim.drive_to_state(job, JobState::Transferred);
    sim.advance(Duration::from_secs(300));
    let times: Vec<_> = sim.programs.iter().map(|p| p.0).collect();
    assert_eq!(times.len(), 3, "ran until it exited 0: {times:?}");
    for pair in times.windows(2) {
        let gap = pair[1].saturating_since(pair[0]);
        assert!(
            gap >= Duration::from_secs(30),
            "rerun after the retry delay: {gap:?}"
        );
    }
}

#[test]
fn completing_the_job_stops_the_reruns() {
    let mut sim = Sim::new(3);
    sim.serve("files.test", 80, "/f", Resource::new(vec![1; 100], "v"));
    sim.program_exits.extend([1; 10]);
    let job = job_with_cmd(&mut sim, "/f");
    sim.drive_to_state(job, JobState::Transferred);
    sim.command(|e| e.job_mut(job)?.complete()).unwrap();
    sim.advance(Duration::from_secs(300));
    assert_eq!(sim.programs.len(), 1);
}

#[test]
fn the_program_runs_on_error_and_when_set_after_the_event() {
    let mut sim = Sim::new(4);
    sim.script("files.test", 80, "/gone", vec![Reply::Status(404, vec![])]);
    let job = sim.create_job("late");
    sim.command(|e| {
        let mut j = e.job_mut(job)?;
        j.add_file("http://files.test/gone", Path::new("/dl/f"))?;
        j.resume()
    })
    .unwrap();
    sim.drive_to_state(job, JobState::Error);
    assert!(sim.programs.is_empty());
    sim.command(|e| e.job_mut(job)?.set_notify_cmd_line(Some(PROGRAM), None))
        .unwrap();
    sim.drive(100);
    assert_eq!(sim.programs.len(), 1, "set after the event, it still runs");
    assert!(sim.programs[0].3.is_empty());
}

#[test]
fn notify_flags_without_job_transferred_mean_no_run_for_it() {
    let mut sim = Sim::new(5);
    sim.serve("files.test", 80, "/f", Resource::new(vec![1; 100], "v"));
    let job = sim.create_job("quiet");
    sim.command(|e| {
        let mut j = e.job_mut(job)?;
        j.add_file("http://files.test/f", Path::new("/dl/f"))?;
        j.set_notify_flags(NotifyFlags::JOB_ERROR)?;
        j.set_notify_cmd_line(Some(PROGRAM), None)?;
        j.resume()
    })
    .unwrap();
    sim.drive_to_state(job, JobState::Transferred);
    sim.advance(Duration::from_secs(60));
    assert!(sim.programs.is_empty());
}

#[test]
fn bad_command_lines_are_refused_with_bits_codes() {
    let mut sim = Sim::new(6);
    let job = sim.create_job("bad");
    let set = |sim: &mut Sim, p: Option<&str>, a: Option<&str>| {
        sim.command(|e| e.job_mut(job)?.set_notify_cmd_line(p, a))
            .unwrap_err()
            .code()
    };
    assert_eq!(set(&mut sim, Some("relative"), None), codes::E_INVALIDARG);
    assert_eq!(set(&mut sim, None, Some("x")), codes::E_INVALIDARG);
    let long = "a".repeat(4001);
    assert_eq!(
        set(&mut sim, Some(PROGRAM), Some(&long)),
        codes::BG_E_STRING_TOO_LONG
    );
    assert_eq!(sim.engine.job(job).unwrap().notify_cmd_line(), None);
}
