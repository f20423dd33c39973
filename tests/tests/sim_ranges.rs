//! `AddFileWithRanges` in the simulation: BITS' validation codes, ranges fetched one request
//! each and concatenated in the order given, resume and crash recovery inside a range, and the
//! server faults (no range support, ranges past the end, a version change between ranges).

use std::path::Path;
use std::time::Duration;

use backhaul_core::{
    codes, Config, FileRange, HResult, JobId, JobState, LENGTH_TO_EOF, SIZE_UNKNOWN,
};
use backhaul_tests::sim::{for_each_seed, Reply, Resource, Sim};

const HOST: &str = "files.test";
const URL: &str = "http://files.test/f";

fn body(len: usize, salt: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u8).wrapping_mul(29).wrapping_add(salt))
        .collect()
}

fn r(offset: u64, length: u64) -> FileRange {
    FileRange::new(offset, length)
}

/// The local file `ranges` make of `data`, in the order given.
fn expected(data: &[u8], ranges: &[FileRange]) -> Vec<u8> {
    let mut out = Vec::new();
    for range in ranges {
        let start = range.initial_offset as usize;
        let end = if range.length == LENGTH_TO_EOF {
            data.len()
        } else {
            start + range.length as usize
        };
        out.extend_from_slice(&data[start..end]);
    }
    out
}

/// A running job fetching `ranges` of `URL` into `/dl/f`, retry delay 5 s.
fn running_job(sim: &mut Sim, ranges: &[FileRange]) -> JobId {
    let job = sim.create_job("ranges");
    sim.command(|e| {
        let mut j = e.job_mut(job)?;
        j.add_file_with_ranges(URL, Path::new("/dl/f"), ranges)?;
        j.set_minimum_retry_delay(5)?;
        j.resume()
    })
    .expect("job starts");
    job
}

fn error_code(sim: &Sim, job: JobId) -> HResult {
    let view = sim.engine.job(job).unwrap();
    view.error().expect("an error is recorded").code
}

fn complete_and_read(sim: &mut Sim, job: JobId) -> Vec<u8> {
    sim.command(|e| e.job_mut(job)?.complete())
        .expect("complete");
    assert_eq!(sim.state(job), JobState::Acknowledged);
    sim.file("/dl/f").expect("file in place").to_vec()
}

fn ranges_asked(sim: &Sim) -> Vec<Option<&str>> {
    sim.requests.iter().map(|r| r.header("range")).collect()
}

#[test]
fn every_validation_code_of_add_file_with_ranges() {
    let mut sim = Sim::new(1);
    let job = sim.create_job("v");
    let add = |sim: &mut Sim, ranges: &[FileRange]| {
        sim.command(|e| {
            e.job_mut(job)?
                .add_file_with_ranges(URL, Path::new("/dl/f"), ranges)
        })
        .err()
        .map(|e| e.code())
    };
    let many: Vec<FileRange> = (0..501).map(|i| r(i * 10, 10)).collect();
    let cases: [(&[FileRange], HResult); 7] = [
        (&[], codes::E_INVALIDARG),
        (&many, codes::BG_E_TOO_MANY_RANGES_IN_FILE),
        (&[r(0, 10), r(20, 0)], codes::BG_E_INVALID_RANGE),
        (&[r(LENGTH_TO_EOF, 1)], codes::BG_E_INVALID_RANGE),
        (&[r(u64::MAX - 1, 2)], codes::BG_E_INVALID_RANGE),
        (&[r(100, 10), r(100, 10)], codes::BG_E_OVERLAPPING_RANGES),
        (
            &[r(50, 1), r(0, LENGTH_TO_EOF)],
            codes::BG_E_OVERLAPPING_RANGES,
        ),
    ];
    for (ranges, code) in cases {
        assert_eq!(add(&mut sim, ranges), Some(code), "{ranges:?}");
    }
    assert!(
        sim.engine.job(job).unwrap().files().is_empty(),
        "nothing added"
    );
    let bad_url = sim.command(|e| {
        e.job_mut(job)?
            .add_file_with_ranges("ftp://x/f", Path::new("/dl/f"), &[r(0, 1)])
    });
    assert_eq!(bad_url.unwrap_err().code(), codes::E_INVALIDARG);
    // 500 ranges, descending and adjacent, are fine.
    assert_eq!(
        add(
            &mut sim,
            &many[..500].iter().rev().copied().collect::<Vec<_>>()
        ),
        None
    );
    sim.command(|e| e.job_mut(job)?.cancel()).unwrap();
    assert_eq!(add(&mut sim, &[r(0, 1)]), Some(codes::BG_E_INVALID_STATE));
}

#[test]
fn ranges_arrive_concatenated_in_the_order_given_one_request_each_on_one_connection() {
    for_each_seed(20, |seed| {
        let mut sim = Sim::new(seed);
        let data = body(100_000, 1);
        sim.serve(HOST, 80, "/f", Resource::new(data.clone(), "v1"));
        let ranges = [r(50_000, 1_000), r(0, 500), r(90_000, LENGTH_TO_EOF)];
        let job = running_job(&mut sim, &ranges);
        let view = sim.engine.job(job).unwrap();
        assert_eq!(view.file_ranges(0).unwrap(), ranges);
        assert_eq!(
            view.progress().bytes_total,
            SIZE_UNKNOWN,
            "EOF range: size unknown"
        );
        sim.drive_to_state(job, JobState::Transferred);
        assert_eq!(
            ranges_asked(&sim),
            [
                Some("bytes=50000-50999"),
                Some("bytes=0-499"),
                Some("bytes=90000-99999")
            ]
        );
        assert_eq!(sim.requests[0].header("if-range"), None);
        assert_eq!(sim.requests[1].header("if-range"), Some("\"v1\""));
        assert!(sim.requests.iter().all(|q| q.conn == sim.requests[0].conn));
        let progress = sim.engine.job(job).unwrap().files()[0].progress;
        assert_eq!(
            (progress.bytes_total, progress.bytes_transferred),
            (11_500, 11_500)
        );
        assert_eq!(complete_and_read(&mut sim, job), expected(&data, &ranges));
    });
}

#[test]
fn a_dropped_connection_resumes_inside_the_current_range() {
    for_each_seed(20, |seed| {
        let mut sim = Sim::new(seed);
        let data = body(200_000, 2);
        sim.serve(HOST, 80, "/f", Resource::new(data.clone(), "v1"));
        sim.script(
            HOST,
            80,
            "/f",
            vec![Reply::Serve, Reply::Truncate(30_000), Reply::Serve],
        );
        let ranges = [r(10, 20), r(100_000, 50_000), r(0, 10)];
        let job = running_job(&mut sim, &ranges);
        sim.drive_to_state(job, JobState::TransientError);
        assert_eq!(error_code(&sim, job), codes::BG_E_CONNECTION_CLOSED);
        sim.drive_to_state(job, JobState::Transferred);
        let resumed = &sim.requests[2];
        assert_eq!(resumed.header("range"), Some("bytes=130000-149999"));
        assert_eq!(resumed.header("if-range"), Some("\"v1\""));
        assert_eq!(sim.requests[3].header("range"), Some("bytes=0-9"));
        assert_eq!(complete_and_read(&mut sim, job), expected(&data, &ranges));
    });
}

#[test]
fn a_server_that_ignores_range_fails_with_insufficient_range_support() {
    let mut sim = Sim::new(3);
    sim.serve(HOST, 80, "/f", Resource::new(body(10_000, 3), "v1"));
    sim.script(HOST, 80, "/f", vec![Reply::IgnoreRange]);
    let job = running_job(&mut sim, &[r(100, 100)]);
    sim.drive_to_state(job, JobState::Error);
    assert_eq!(
        error_code(&sim, job),
        codes::BG_E_INSUFFICIENT_RANGE_SUPPORT
    );
    let view = sim.engine.job(job).unwrap();
    assert_eq!(
        view.files()[0].progress.bytes_transferred,
        0,
        "no byte of the 200 kept"
    );
}

#[test]
fn ranges_outside_the_file_fail_with_invalid_range() {
    let data = body(1_000, 4);
    // Past the end (found from the first 206's size), a 416, and a range cut short by EOF.
    let cases: [&[FileRange]; 3] = [
        &[r(0, 10), r(5_000, 10)],
        &[r(1_000, LENGTH_TO_EOF)],
        &[r(990, 20)],
    ];
    for ranges in cases {
        let mut sim = Sim::new(5);
        sim.serve(HOST, 80, "/f", Resource::new(data.clone(), "v1"));
        let job = running_job(&mut sim, ranges);
        sim.drive_to_state(job, JobState::Error);
        assert_eq!(
            error_code(&sim, job),
            codes::BG_E_INVALID_RANGE,
            "{ranges:?}"
        );
        assert_eq!(
            sim.requests.len(),
            1,
            "{ranges:?}: no retry of a hopeless range"
        );
    }
}

/// A job fetching bytes 100–149 of a 1,000-byte file, whose server answers with `reply` as
/// sent: the error it ends with (nothing at the local name, no retry).
fn ranged_answer_fails(reply: Vec<u8>) -> backhaul_core::JobError {
    let mut sim = Sim::new(6);
    sim.serve(HOST, 80, "/f", Resource::new(body(1_000, 5), "v1"));
    sim.script(HOST, 80, "/f", vec![Reply::Raw(reply)]);
    let job = running_job(&mut sim, &[r(100, 50)]);
    sim.drive_to_state(job, JobState::Error);
    assert_eq!(ranges_asked(&sim), [Some("bytes=100-149")], "asked once");
    assert!(sim.file("/dl/f").is_none(), "nothing at the local name");
    sim.engine.job(job).unwrap().error().unwrap().clone()
}

fn response(head: &str, body_len: usize) -> Vec<u8> {
    let mut bytes = head.replace('\n', "\r\n").into_bytes();
    bytes.extend_from_slice(b"\r\n");
    bytes.extend(std::iter::repeat_n(b'x', body_len));
    bytes
}

#[test]
fn a_206_that_is_not_the_range_asked_for_fails_as_an_invalid_server_response() {
    let cases = [
        (
            "HTTP/1.1 206 Partial Content\nContent-Range: bytes 0-49/1000\nContent-Length: 50\n",
            50,
            "answered Range: bytes=100-149 with bytes 0-49",
        ),
        (
            "HTTP/1.1 206 Partial Content\nContent-Range: bytes 100-149/1000\nContent-Length: 40\n",
            40,
            "a Content-Length that is not the length of bytes 100-149",
        ),
        (
            "HTTP/1.1 206 Partial Content\nContent-Length: 50\n",
            50,
            "without a Content-Range",
        ),
    ];
    for (head, body_len, why) in cases {
        let error = ranged_answer_fails(response(head, body_len));
        assert_eq!(
            error.code,
            codes::BG_E_INVALID_SERVER_RESPONSE,
            "{head}: {error}"
        );
        assert!(error.description.contains(why), "{why:?} in {error}");
    }
}

#[test]
fn a_416_without_the_files_size_still_names_the_range_and_the_url() {
    let error = ranged_answer_fails(response(
        "HTTP/1.1 416 Range Not Satisfiable\nContent-Length: 0\n",
        0,
    ));
    assert_eq!(error.code, codes::BG_E_INVALID_RANGE, "{error}");
    assert!(
        error
            .description
            .contains("range 0 is outside http://files.test/f")
            && !error.description.contains("its size"),
        "{error}"
    );
}

#[test]
fn a_version_change_between_ranges_restarts_the_file_from_its_first_range() {
    for_each_seed(10, |seed| {
        let mut sim = Sim::new(seed);
        let old = body(50_000, 5);
        let new = body(60_000, 6);
        sim.serve(HOST, 80, "/f", Resource::new(old, "v1"));
        let changed = Reply::ChangeTo(Resource::new(new.clone(), "v2"));
        sim.script(HOST, 80, "/f", vec![Reply::Serve, changed, Reply::Serve]);
        let ranges = [r(40_000, 5_000), r(0, 1_000)];
        let job = running_job(&mut sim, &ranges);
        sim.drive_to_state(job, JobState::Transferred);
        // The If-Range of the second request fails: a 200 of v2, dropped; then v2 from the top.
        assert_eq!(sim.requests[1].header("if-range"), Some("\"v1\""));
        assert_eq!(
            ranges_asked(&sim)[2..],
            [Some("bytes=40000-44999"), Some("bytes=0-999")]
        );
        assert_eq!(sim.requests[2].header("if-range"), None);
        assert_eq!(complete_and_read(&mut sim, job), expected(&new, &ranges));
    });
}

#[test]
fn a_size_change_under_the_same_etag_between_ranges_restarts_the_file() {
    let mut sim = Sim::new(7);
    let old = body(50_000, 7);
    let new = body(70_000, 8);
    sim.serve(HOST, 80, "/f", Resource::new(old, "same"));
    let changed = Reply::ChangeTo(Resource::new(new.clone(), "same"));
    sim.script(HOST, 80, "/f", vec![Reply::Serve, changed, Reply::Serve]);
    let ranges = [r(0, 100), r(45_000, LENGTH_TO_EOF)];
    let job = running_job(&mut sim, &ranges);
    sim.drive_to_state(job, JobState::Transferred);
    assert_eq!(
        ranges_asked(&sim),
        [
            Some("bytes=0-99"),
            Some("bytes=45000-49999"),
            Some("bytes=0-99"),
            Some("bytes=45000-69999"),
        ]
    );
    assert_eq!(complete_and_read(&mut sim, job), expected(&new, &ranges));
}

/// A world checkpointing every 16 KiB, with a running ranged job.
fn checkpointing_world(seed: u64, data: &[u8], ranges: &[FileRange]) -> (Sim, JobId) {
    let mut config = Config::new([0; 32]);
    config.checkpoint_bytes = 16 * 1024;
    config.checkpoint_interval = Duration::from_secs(3600);
    let mut sim = Sim::with_config(seed, config);
    sim.serve(HOST, 80, "/f", Resource::new(data.to_vec(), "v1"));
    let job = running_job(&mut sim, ranges);
    (sim, job)
}

#[test]
fn a_crash_after_a_checkpoint_resumes_inside_its_range_with_if_range() {
    let data = body(300_000, 9);
    let ranges = [r(200_000, 100_000), r(0, 50_000)];
    let (mut sim, job) = checkpointing_world(11, &data, &ranges);
    sim.drive_until(10_000, |s| s.syncs.len() == 2);
    let checkpoint = sim.stored(job).unwrap().checkpoints()[0];
    assert!(
        checkpoint > 0 && checkpoint < 100_000,
        "inside the first range: {checkpoint}"
    );
    let before = sim.requests.len();
    sim.crash(true, Duration::from_secs(30));
    assert_eq!(sim.engine.job(job).unwrap().file_ranges(0).unwrap(), ranges);
    sim.drive_to_state(job, JobState::Transferred);
    let resumed = &sim.requests[before];
    let want = format!("bytes={}-299999", 200_000 + checkpoint);
    assert_eq!(resumed.header("range"), Some(want.as_str()));
    assert_eq!(resumed.header("if-range"), Some("\"v1\""));
    assert_eq!(complete_and_read(&mut sim, job), expected(&data, &ranges));
}

#[test]
fn a_crash_at_any_step_of_a_ranged_file_finishes_byte_identical() {
    let data = body(120_000, 10);
    let ranges = [r(60_000, 40_000), r(5, 30_000), r(110_000, LENGTH_TO_EOF)];
    for_each_seed(2, |seed| {
        let (mut probe, job) = checkpointing_world(seed, &data, &ranges);
        let mut total = 0;
        while probe.state(job) != JobState::Transferred {
            assert!(probe.step(), "the run ended early (seed {seed})");
            total += 1;
        }
        for crash_at in 0..=total {
            let (mut sim, job) = checkpointing_world(seed, &data, &ranges);
            for _ in 0..crash_at {
                sim.step();
            }
            sim.crash(crash_at % 2 == 0, Duration::from_secs(5));
            sim.drive_to_state(job, JobState::Transferred);
            assert_eq!(
                complete_and_read(&mut sim, job),
                expected(&data, &ranges),
                "crash at step {crash_at} (seed {seed})"
            );
        }
    });
}

#[test]
fn a_multipart_answer_to_a_range_request_is_parsed_part_by_part() {
    for_each_seed(20, |seed| {
        for parts in [1, 3] {
            let mut sim = Sim::new(seed);
            let data = body(300_000, 11);
            sim.serve(HOST, 80, "/f", Resource::new(data.clone(), "v1"));
            sim.script(HOST, 80, "/f", vec![Reply::Multipart(parts)]);
            let ranges = [r(100_000, 150_000), r(7, 1), r(299_000, LENGTH_TO_EOF)];
            let job = running_job(&mut sim, &ranges);
            sim.drive_to_state(job, JobState::Transferred);
            assert_eq!(sim.requests.len(), 3);
            assert_eq!(complete_and_read(&mut sim, job), expected(&data, &ranges));
        }
    });
}

/// A 206 multipart answer with these parts (range, bytes) of a 1,000-byte file.
fn multipart_reply(parts: &[(&str, &[u8])]) -> Reply {
    let mut body = Vec::new();
    for (range, bytes) in parts {
        body.extend_from_slice(b"--X\r\nContent-Range: bytes ");
        body.extend_from_slice(format!("{range}/1000\r\n\r\n").as_bytes());
        body.extend_from_slice(bytes);
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(b"--X--\r\n");
    let head = format!(
        "HTTP/1.1 206 Partial Content\r\nContent-Type: multipart/byteranges; boundary=X\r\n\
         ETag: \"v1\"\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    Reply::Raw([head.into_bytes(), body].concat())
}

#[test]
fn multipart_parts_that_do_not_continue_the_range_fail_with_invalid_server_response() {
    let cases = [
        // Another range than asked, a gap, a part past the range, a part missing, bad syntax.
        multipart_reply(&[("0-3", b"abcd")]),
        multipart_reply(&[("100-101", b"ab"), ("103-103", b"d")]),
        multipart_reply(&[("100-104", b"abcde")]),
        multipart_reply(&[("100-101", b"ab")]),
        Reply::Raw(
            b"HTTP/1.1 206 Partial Content\r\nContent-Type: multipart/byteranges; boundary=X\r\n\
              Content-Length: 9\r\n\r\nnot parts"
                .to_vec(),
        ),
    ];
    for reply in cases {
        let mut sim = Sim::new(12);
        sim.serve(HOST, 80, "/f", Resource::new(body(1_000, 12), "v1"));
        sim.script(HOST, 80, "/f", vec![reply.clone()]);
        let job = running_job(&mut sim, &[r(100, 4)]);
        sim.drive_to_state(job, JobState::Error);
        assert_eq!(
            error_code(&sim, job),
            codes::BG_E_INVALID_SERVER_RESPONSE,
            "{reply:?}"
        );
    }
}
