//! Core micro-benchmark: inputs per second on the body path. One job downloads one file on an
//! engine driven in memory (no I/O): the response head, then `Input::Received` chunks of 256 KiB
//! and of 16 KiB, each followed by draining its outputs (`WriteFile` dropped, `Persist` encoded
//! into a `MemoryStore` as the drivers' host does). Prints inputs/s and the equivalent
//! throughput, medians (min–max) of several runs; then the cost per byte of a response head
//! trickled in one byte per input (4, 16 and 60 KiB: flat when the head scan is linear).
//!
//! `cargo bench -p backhaul-tests --bench body_path` (BENCH_RUNS, BENCH_BODY_MIB to change).

mod common;

use std::path::Path;
use std::time::Instant;

use backhaul_core::{
    Action, Config, Engine, Input, JobId, JobPriority, JobType, Output, Owner, Timestamp,
};
use backhaul_store::{JobStore, MemoryStore};
use bytes::Bytes;

use common::{env_usize, show};

const NOW: Timestamp = Timestamp::from_secs(1_800_000_000);

/// An engine with one job, driven in memory: what a driver would do, minus the I/O.
struct Rig {
    engine: Engine,
    store: MemoryStore,
    job: JobId,
    conn: Option<backhaul_core::ConnId>,
    written: u64,
}

impl Rig {
    /// A foreground job with one file, resumed, connected, its request sent.
    fn new() -> Self {
        let mut engine = Engine::new(Config::new([7; 32]), NOW);
        let job = engine
            .create_job("bench", JobType::Download, Owner("bench".into()))
            .expect("create_job");
        let mut job_mut = engine.job_mut(job).expect("job");
        job_mut
            .add_file("http://127.0.0.1:8080/big.bin", Path::new("/bench/big.bin"))
            .expect("add_file");
        job_mut
            .set_priority(JobPriority::Foreground)
            .expect("priority");
        job_mut.resume().expect("resume");
        let mut rig = Rig {
            engine,
            store: MemoryStore::new(),
            job,
            conn: None,
            written: 0,
        };
        rig.drain();
        assert!(rig.conn.is_some(), "the engine did not connect");
        rig
    }

    /// Feed one input, then drain and perform its outputs, feeding back what they report.
    fn feed(&mut self, input: Input) {
        self.engine.handle(input);
        self.drain();
    }

    fn drain(&mut self) {
        let mut reports = Vec::new();
        loop {
            match self.engine.poll_output() {
                Output::Timeout(_) => break,
                Output::Event(_) => {}
                Output::Action(action) => match action {
                    Action::Connect { conn, .. } => {
                        self.conn = Some(conn);
                        reports.push(Input::Connected {
                            now: NOW,
                            conn,
                            peer_certificates: Vec::new(),
                        });
                    }
                    Action::OpenTemp { job, file, .. } => reports.push(Input::TempOpened {
                        now: NOW,
                        job,
                        file,
                        len: 0,
                    }),
                    Action::WriteFile { data, .. } => self.written += data.len() as u64,
                    Action::Persist { job } => {
                        let record = self.engine.job_record(job).expect("record");
                        self.store.put(job, record).expect("put");
                    }
                    _ => {}
                },
            }
        }
        for input in reports {
            self.feed(input);
        }
    }

    /// The 200 head for a body of `len` bytes.
    fn respond(&mut self, len: u64) {
        let head = format!("HTTP/1.1 200 OK\r\nContent-Length: {len}\r\nETag: \"b\"\r\n\r\n");
        let conn = self.conn.expect("connected");
        self.feed(Input::Received {
            now: NOW,
            conn,
            data: Bytes::from(head),
        });
    }
}

/// Feeds a `body` of `chunks` slices of `chunk`; returns the seconds the body took.
fn run_body(chunk: &Bytes, chunks: usize) -> f64 {
    let mut rig = Rig::new();
    rig.respond((chunk.len() * chunks) as u64);
    let conn = rig.conn.expect("connected");
    let start = Instant::now();
    for _ in 0..chunks {
        rig.feed(Input::Received {
            now: NOW,
            conn,
            data: chunk.clone(),
        });
    }
    let secs = start.elapsed().as_secs_f64();
    assert_eq!(
        rig.written,
        (chunk.len() * chunks) as u64,
        "every byte written"
    );
    let state = rig.engine.job(rig.job).expect("job").state();
    assert_eq!(
        state,
        backhaul_core::JobState::Transferred,
        "the job finished"
    );
    assert!(rig.store.len() == 1, "the job was persisted");
    secs
}

/// Feeds a response head of about `head_bytes` (one long header) one byte per input, as a
/// server trickling it would, then a 1-byte body; returns the seconds the head took. Bounded
/// by the head limit (64 KiB); each byte should cost the same however many came before.
fn run_trickled_head(head_bytes: usize) -> f64 {
    let mut rig = Rig::new();
    let conn = rig.conn.expect("connected");
    let padding = "p".repeat(head_bytes.saturating_sub(80));
    let head = format!("HTTP/1.1 200 OK\r\nContent-Length: 1\r\nX-Padding: {padding}\r\n\r\n");
    let bytes = Bytes::from(head);
    let start = Instant::now();
    for i in 0..bytes.len() {
        rig.feed(Input::Received {
            now: NOW,
            conn,
            data: bytes.slice(i..i + 1),
        });
    }
    let secs = start.elapsed().as_secs_f64();
    rig.feed(Input::Received {
        now: NOW,
        conn,
        data: Bytes::from_static(b"x"),
    });
    let state = rig.engine.job(rig.job).expect("job").state();
    assert_eq!(
        state,
        backhaul_core::JobState::Transferred,
        "the job finished"
    );
    secs
}

fn main() {
    let runs = env_usize("BENCH_RUNS", 7);
    let body_mib = env_usize("BENCH_BODY_MIB", 1024);
    println!("body path: Engine::handle(Received) + drain, {body_mib} MiB body, {runs} runs");
    for chunk_kib in [256usize, 16] {
        let chunk = Bytes::from(vec![0x5a; chunk_kib * 1024]);
        let chunks = body_mib * 1024 / chunk_kib;
        let secs: Vec<f64> = (0..=runs)
            .map(|_| run_body(&chunk, chunks))
            .skip(1)
            .collect();
        let inputs_per_s: Vec<f64> = secs.iter().map(|s| chunks as f64 / s).collect();
        let gb_per_s: Vec<f64> = secs
            .iter()
            .map(|s| (body_mib * 1024 * 1024) as f64 / s / 1e9)
            .collect();
        let ns_per_input: Vec<f64> = secs.iter().map(|s| s * 1e9 / chunks as f64).collect();
        println!(
            "  {chunk_kib:>3} KiB chunks: {} inputs/s, {} ns/input, {} GB/s equivalent",
            show(&inputs_per_s, 0),
            show(&ns_per_input, 0),
            show(&gb_per_s, 1)
        );
    }
    for head_kib in [4usize, 16, 60] {
        let secs: Vec<f64> = (0..runs.min(3))
            .map(|_| run_trickled_head(head_kib * 1024))
            .collect();
        let ns_per_byte: Vec<f64> = secs
            .iter()
            .map(|s| s * 1e9 / (head_kib * 1024) as f64)
            .collect();
        println!(
            "  a {head_kib:>2} KiB head, one byte per input: {} s, {} ns/byte",
            show(&secs, 3),
            show(&ns_per_byte, 0)
        );
    }
}
