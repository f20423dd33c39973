//! Bounded exhaustive exploration of the two-file world: every sequence of operations over a
//! small alphabet — commands, server answers (200/206 resume, 503, 404, redirect), a refused
//! connection, a rejected certificate, delivery of the next input, running to a settled state,
//! and the retry timer — up to the depth, every distinct state expanded once, every invariant
//! checked on every transition. `BACKHAUL_EXPLORE_DEPTH=n` explores deeper.

use backhaul_tests::explore::explore;
use backhaul_tests::world::{Op, ServerReply, RETRY_DELAY_SECS};

fn alphabet() -> Vec<Op> {
    vec![
        Op::Resume,
        Op::Suspend,
        Op::Cancel,
        Op::Complete,
        Op::Serve {
            file: 0,
            reply: ServerReply::Truncated,
        },
        Op::Serve {
            file: 0,
            reply: ServerReply::Unavailable,
        },
        Op::Serve {
            file: 1,
            reply: ServerReply::NotFound,
        },
        Op::Serve {
            file: 1,
            reply: ServerReply::Redirect,
        },
        Op::Serve {
            file: 1,
            reply: ServerReply::Reset,
        },
        Op::Refuse { file: 0, on: true },
        Op::Verdict(false),
        Op::Step,
        Op::Settle,
        Op::Advance(RETRY_DELAY_SECS + 1),
    ]
}

fn depth() -> usize {
    std::env::var("BACKHAUL_EXPLORE_DEPTH")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(6)
}

#[test]
fn every_operation_sequence_up_to_the_depth_keeps_every_invariant() {
    let depth = depth();
    match explore(7, &alphabet(), depth) {
        Ok(c) => eprintln!(
            "explored depth {depth}: {} states, {} transitions, {} at the last level, {:.1?}",
            c.states, c.transitions, c.frontier, c.elapsed
        ),
        Err(ce) => panic!(
            "{}\nreplay: World::new({}) then {:?}",
            ce.violation, ce.seed, ce.ops
        ),
    }
}
