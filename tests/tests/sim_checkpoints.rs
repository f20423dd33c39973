//! A saved job record never claims bytes its temp file does not hold yet.
//!
//! `Action::Persist` carries no record: the driver saves `Engine::job_record` as it is when it
//! performs the action. One input can queue a `Persist` (the state change on the response
//! head) ahead of the `WriteFile`s of the body that the same input carried; by the time the
//! driver performs that `Persist`, the record already counts those bytes — and the file is
//! marked complete — while they are still queued behind it. A crash there (once
//! `Engine::restore` exists) restores a "complete" file that is empty.

use backhaul_tests::sim::Trace;
use backhaul_tests::world::{Op, World};

/// Every `Persist` saved as `backhaul_io::Host` saves it (in order), checked against the bytes
/// written so far.
#[test]
#[ignore = "known defect: a Persist performed in order can run ahead of the writes queued behind \
            it (see the module doc); run with --ignored"]
fn a_record_saved_in_order_never_claims_unwritten_bytes() {
    let mut world = World::new(1);
    world.sim.defer_persist = false;
    world.apply(Op::Resume);
    world.apply(Op::Settle);
    for item in &world.sim.trace {
        if let Trace::Persist { files, .. } = item {
            for (i, (recorded, on_disk)) in files.iter().enumerate() {
                assert!(
                    recorded <= on_disk,
                    "file {i}: the saved record claims {recorded} bytes, the temp file holds {on_disk}"
                );
            }
        }
    }
}

/// The same run with records saved once the drain is done: never ahead of the data.
#[test]
fn a_record_saved_after_the_drain_never_claims_unwritten_bytes() {
    let mut world = World::new(1);
    world.apply(Op::Resume);
    world.apply(Op::Settle);
    let mut saves = 0;
    for item in &world.sim.trace {
        if let Trace::Persist { files, .. } = item {
            saves += 1;
            for (i, (recorded, on_disk)) in files.iter().enumerate() {
                assert!(recorded <= on_disk, "file {i}: {recorded} > {on_disk}");
            }
        }
    }
    assert!(saves > 0, "the run saved no record at all");
}
