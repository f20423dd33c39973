//! Bounded exhaustive exploration of the two-file [`World`]: every sequence of operations from
//! an alphabet up to a depth, breadth first, each distinct state expanded once.
//!
//! A state is identified by [`Sim::fingerprint`](crate::sim::Sim::fingerprint) (the engine's
//! whole `Debug` form plus the simulated world, hashed). The engine is not `Clone`, so a state
//! is kept as the operations that reach it and rebuilt by replaying them from the seed (the
//! simulation is deterministic); docs/model.md says why this is not stateright. Every
//! transition — also into an already seen state — has its invariants checked.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use crate::world::{Op, World};

/// What an exploration covered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Coverage {
    /// Distinct states reached (the initial one included).
    pub states: usize,
    /// Transitions taken (and checked), into new or already seen states.
    pub transitions: usize,
    /// Distinct states first reached at the deepest level.
    pub frontier: usize,
    /// How long it took.
    pub elapsed: Duration,
}

/// An invariant broke: the operations that lead there from a fresh world, and what broke.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Counterexample {
    /// The seed of the world.
    pub seed: u64,
    /// The operations, in order; the last one broke the invariant.
    pub ops: Vec<Op>,
    /// The invariant's message.
    pub violation: String,
}

/// Explores every sequence over `alphabet` up to `depth` operations from `World::new(seed)`.
pub fn explore(seed: u64, alphabet: &[Op], depth: usize) -> Result<Coverage, Counterexample> {
    let start = Instant::now();
    let mut seen: HashSet<u64> = HashSet::new();
    seen.insert(World::new(seed).sim.fingerprint());
    let mut frontier: Vec<Vec<Op>> = vec![Vec::new()];
    let mut transitions = 0;
    for _ in 0..depth {
        let mut next = Vec::new();
        for prefix in &frontier {
            for &op in alphabet {
                let mut world = replay(seed, prefix);
                transitions += 1;
                if let Err(violation) = world.apply_checked(op) {
                    let mut ops = prefix.clone();
                    ops.push(op);
                    return Err(Counterexample {
                        seed,
                        ops,
                        violation,
                    });
                }
                if seen.insert(world.sim.fingerprint()) {
                    let mut ops = prefix.clone();
                    ops.push(op);
                    next.push(ops);
                }
            }
        }
        frontier = next;
    }
    Ok(Coverage {
        states: seen.len(),
        transitions,
        frontier: frontier.len(),
        elapsed: start.elapsed(),
    })
}

/// The world after `ops` from `World::new(seed)`. The invariants held on the way there (the
/// explorer checked them when it first took these steps).
pub fn replay(seed: u64, ops: &[Op]) -> World {
    let mut world = World::new(seed);
    for &op in ops {
        world.apply(op);
    }
    world.checker = crate::invariants::Checker::new(&world.sim, world.job);
    world
}
