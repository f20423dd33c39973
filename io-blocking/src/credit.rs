//! [`Credits`]: how many received chunks the connection threads may have queued for the engine
//! thread and not yet handled, all connections together.
//!
//! Why: a chunk is up to 256 KiB (one [`ReadBuffer`](backhaul_io::ReadBuffer) allocation), and
//! the engine thread's channel holds up to 32 messages, so on a fast transfer whose file writes
//! fell behind the reads the queue held 8 MiB of body — most of the difference between this
//! driver's peak RSS (16–17.8 MiB) and the tokio driver's (its input channel holds 8). Bounding
//! the chunks rather than the channel leaves room in the channel for the application's commands
//! (which group commit batches together). A reader without credit waits; meanwhile the socket's
//! receive buffer holds what the peer sends, so the transfer is not slowed (measured: same wall
//! time at 256 MiB on plain HTTP and HTTPS).

use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};

/// Received chunks that may wait for the engine thread at once, all connections together:
/// 2 MiB of 256 KiB reads, as the tokio driver's input channel.
pub(crate) const CHUNKS_QUEUED: usize = 8;

/// The credits left, shared by the connection threads (cheap to clone).
#[derive(Clone, Debug)]
pub(crate) struct Credits(Arc<Shared>);

#[derive(Debug)]
struct Shared {
    left: Mutex<usize>,
    returned: Condvar,
}

impl Credits {
    /// `n` credits.
    pub(crate) fn new(n: usize) -> Self {
        Self(Arc::new(Shared {
            left: Mutex::new(n),
            returned: Condvar::new(),
        }))
    }

    /// Takes a credit, waiting until one is returned if none is left. Never waits forever:
    /// every credit taken travels with a message to the engine thread, which drops it once it
    /// has handled the message (or drops the message unread when it stops).
    pub(crate) fn take(&self) -> Credit {
        let mut left = lock(&self.0.left);
        while *left == 0 {
            left = self
                .0
                .returned
                .wait(left)
                .unwrap_or_else(PoisonError::into_inner);
        }
        *left -= 1;
        Credit(self.clone())
    }
}

/// One queued chunk's credit: given back when dropped.
#[derive(Debug)]
pub(crate) struct Credit(Credits);

impl Drop for Credit {
    fn drop(&mut self) {
        *lock(&self.0 .0.left) += 1;
        self.0 .0.returned.notify_one();
    }
}

/// Lock, ignoring poisoning: a count is valid whatever a panicking holder did.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

#[cfg(test)]
mod tests {
    use std::sync::mpsc;
    use std::time::Duration;

    use super::*;

    #[test]
    fn a_taker_waits_while_every_credit_is_out_and_wakes_when_one_returns() {
        let credits = Credits::new(2);
        let (a, b) = (credits.take(), credits.take());
        let (tx, rx) = mpsc::channel();
        let waiting = credits.clone();
        let thread = std::thread::spawn(move || {
            let third = waiting.take();
            tx.send(()).unwrap();
            drop(third);
        });
        // Not a timing assertion: the taker cannot get a credit before one is returned.
        assert!(rx.recv_timeout(Duration::from_millis(100)).is_err());
        drop(a);
        rx.recv().expect("the taker got the returned credit");
        thread.join().unwrap();
        drop(b);
        let _all = [credits.take(), credits.take()];
    }
}
