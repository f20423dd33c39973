//! A saved job record never claims bytes its temp file does not hold durably.
//!
//! `Action::Persist` carries no record: the driver saves `Engine::job_record` as it is when it
//! performs the action, so one input can queue a `Persist` ahead of the `WriteFile`s of the
//! body that the same input carried. What a restart resumes from is each file's `synced`
//! checkpoint, which moves only when the driver reports `FileSynced` (docs/store.md), so even
//! a record saved in order never claims more than the temp file holds after a sync.

use backhaul_tests::sim::Trace;
use backhaul_tests::world::{Op, World};

/// Every `Persist` saved as `backhaul_io::Host` saves it (in order), checked against the bytes
/// written so far.
#[test]
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
