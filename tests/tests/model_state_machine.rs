//! The reference model (`backhaul_tests::reference`) against the real engine in the two-file
//! world, with proptest-state-machine: random sequences of commands, server behaviour,
//! verdicts and retries; after every step the engine's observable state equals the model's and
//! every invariant of `backhaul_tests::invariants` holds.
//!
//! `PROPTEST_CASES=n` runs n cases (default 5,000: about 10 s of CPU in a debug build here);
//! docs/model.md has the timings for 10,000.

use backhaul_core::JobState;
use backhaul_tests::reference::{Model, Step, SIZES};
use backhaul_tests::world::{Op, ServerReply, World, FILES};
use proptest::prelude::*;
use proptest_state_machine::{prop_state_machine, ReferenceStateMachine, StateMachineTest};

struct Reference;

impl ReferenceStateMachine for Reference {
    type State = Model;
    type Transition = Step;

    fn init_state() -> BoxedStrategy<Model> {
        Just(Model::new()).boxed()
    }

    fn transitions(_: &Model) -> BoxedStrategy<Step> {
        let reply = prop_oneof![
            Just(ServerReply::Ok),
            Just(ServerReply::Truncated),
            Just(ServerReply::Unavailable),
            Just(ServerReply::NotFound),
            Just(ServerReply::Redirect),
            Just(ServerReply::Closed),
            Just(ServerReply::Reset),
        ];
        prop_oneof![
            4 => Just(Step::Resume),
            1 => Just(Step::Suspend),
            1 => Just(Step::Cancel),
            1 => Just(Step::Complete),
            4 => (0u8..2, reply).prop_map(|(file, reply)| Step::Serve { file, reply }),
            1 => (0u8..2, any::<bool>()).prop_map(|(file, on)| Step::Refuse { file, on }),
            1 => any::<bool>().prop_map(Step::Verdict),
            6 => Just(Step::WaitRetry),
        ]
        .boxed()
    }

    fn apply(state: Model, step: &Step) -> Model {
        state.apply(*step)
    }
}

struct Engine;

impl StateMachineTest for Engine {
    type SystemUnderTest = World;
    type Reference = Reference;

    fn init_test(_: &Model) -> World {
        World::new(11)
    }

    fn apply(mut world: World, model: &Model, step: Step) -> World {
        let result = match step {
            Step::Resume => checked(&mut world, Op::Resume),
            Step::Suspend => checked(&mut world, Op::Suspend),
            Step::Cancel => checked(&mut world, Op::Cancel),
            Step::Complete => checked(&mut world, Op::Complete),
            Step::Serve { file, reply } => checked(&mut world, Op::Serve { file, reply }),
            Step::Refuse { file, on } => checked(&mut world, Op::Refuse { file, on }),
            Step::Verdict(v) => checked(&mut world, Op::Verdict(v)),
            Step::WaitRetry => {
                for _ in 0..100 {
                    if world.state() != JobState::TransientError {
                        break;
                    }
                    checked(&mut world, Op::Step);
                }
                None
            }
        };
        checked(&mut world, Op::Settle);
        assert_eq!(result, model.last_result, "the result of {step:?}");
        world
    }

    fn check_invariants(world: &World, model: &Model) {
        let view = world.sim.engine.job(world.job).expect("job");
        assert_eq!(view.state(), model.state, "state");
        assert_eq!(view.error_count(), model.error_count, "error count");
        if let Ok(error) = view.error() {
            assert_eq!(Some((error.context, error.code)), model.error, "error");
        }
        for (i, f) in view.files().iter().enumerate() {
            assert_eq!(f.progress.completed, model.done[i], "file {i} completed");
            assert_eq!(
                f.progress.bytes_transferred, model.bytes[i],
                "file {i} bytes"
            );
            if model.done[i] {
                assert_eq!(f.progress.bytes_total, SIZES[i], "file {i} size");
            }
            let at_local = world.sim.file(FILES[i].4);
            assert_eq!(
                at_local.is_some(),
                model.appeared[i],
                "file {i} at its local name"
            );
        }
    }
}

/// Applies `op` and checks every invariant; a violation fails the case with its name.
fn checked(world: &mut World, op: Op) -> Option<Result<(), backhaul_core::HResult>> {
    match world.apply_checked(op) {
        Ok(result) => result,
        Err(violation) => panic!("{violation}"),
    }
}

fn cases() -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(5_000)
}

prop_state_machine! {
    #![proptest_config(ProptestConfig::with_cases(cases()))]

    #[test]
    fn the_engine_matches_the_reference_model(sequential 1..30 => Engine);
}
