//! Receive buffers: a connection reads into one large buffer and hands the engine slices of it
//! (`Bytes` sharing the allocation), so received bytes are never copied on their way in.

use std::io;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, Weak};

use bytes::Bytes;

/// Room reserved for a connection's reads, at most.
pub const READ_BUFFER: usize = 256 * 1024;

/// Room a connection's first reads get; see [`ReadSize`].
const FIRST_READ: usize = 16 * 1024;

/// Below this much free room, a fresh allocation is made.
const MIN_ROOM: usize = 16 * 1024;

/// Read room all of a driver's connections may hold at once: each gets an equal share of it,
/// between 16 KiB (`FIRST_READ`) and [`READ_BUFFER`]. One transfer reads 256 KiB at a time; a thousand
/// concurrent ones read 64 KiB each (without it, they held 300 MiB of read buffers).
pub const READ_BUDGET: usize = 64 * 1024 * 1024;

/// How much room a connection's next read gets: it starts at 16 KiB and doubles, up to its
/// share of [`READ_BUDGET`], each time a read fills all the room it had. One fast transfer
/// reaches 256 KiB reads within a few reads; slow or many connections keep small buffers.
#[derive(Clone, Copy, Debug)]
pub struct ReadSize(usize);

impl Default for ReadSize {
    fn default() -> Self {
        Self(FIRST_READ)
    }
}

impl ReadSize {
    /// How much the next read may take, for one of `connections` connections reading at once.
    pub fn limit(&self, connections: usize) -> usize {
        let share = (READ_BUDGET / connections.max(1)).clamp(FIRST_READ, READ_BUFFER);
        self.0.min(share)
    }

    /// A read of `n` bytes into `room` bytes of room happened.
    pub fn record(&mut self, n: usize, room: usize) {
        if n == room {
            self.0 = (self.0 * 2).min(READ_BUFFER);
        }
    }
}

/// Spare allocations a [`ReadBuffer`] keeps for reuse: enough for the chunks the engine is
/// writing while the next reads fill others, without letting an idle connection hoard memory
/// (1 MiB at most). With 2, the tokio driver (8 inputs in flight) still page-faulted on 10% of
/// its received bytes (12,000-16,000 faults per 512 MiB); with 4, 5,800-7,200.
const MAX_SPARE: usize = 4;

/// Allocations handed back by the engine (once it has dropped every slice of one), kept for
/// the next reads.
type Spare = Arc<Mutex<Vec<Vec<u8>>>>;

/// A receive buffer for `std::io::Read`, which wants initialised memory. Reads fill an
/// allocation from the front; [`ReadBuffer::take`] hands the bytes read out as [`Bytes`] that
/// own the whole allocation, without copying. When the engine drops them the allocation comes
/// back (still initialised) for a later read, so memory is zeroed once per allocation rather
/// than once per read: zeroing a fresh 256 KiB per read cost about a tenth of the blocking
/// driver's CPU on plain HTTP.
#[derive(Debug, Default)]
pub struct ReadBuffer {
    /// Initialised throughout; `..filled` holds bytes read and not yet taken.
    current: Vec<u8>,
    filled: usize,
    spare: Spare,
}

impl ReadBuffer {
    /// An empty buffer (it allocates on the first read).
    pub fn new() -> Self {
        Self::default()
    }

    /// Read once with `read` into the free room and keep the bytes read; returns their count.
    pub fn read_with(
        &mut self,
        read: impl FnOnce(&mut [u8]) -> io::Result<usize>,
    ) -> io::Result<usize> {
        let n = read(self.room(READ_BUFFER))?;
        self.filled += n;
        Ok(n)
    }

    /// Free room for the next read, at most `max` bytes: for a reader that fills a slice itself
    /// (tokio's `read`, which cannot run inside [`ReadBuffer::read_with`]'s closure). When less
    /// than 16 KiB (or `max`) is left, the room is in a spare or fresh allocation of `max`
    /// bytes (bytes not yet taken move with it). Record the read with [`ReadBuffer::filled`].
    pub fn room(&mut self, max: usize) -> &mut [u8] {
        let max = max.max(1);
        let least = MIN_ROOM.min(max);
        if self.current.len() - self.filled < least {
            let mut fresh = self.reuse_or_allocate(self.filled + least, max);
            fresh[..self.filled].copy_from_slice(&self.current[..self.filled]); // rare: bytes not yet taken
            let old = std::mem::replace(&mut self.current, fresh);
            give_back(&self.spare, old);
        }
        let end = self.current.len().min(self.filled + max);
        &mut self.current[self.filled..end]
    }

    /// `n` bytes were read into the slice [`ReadBuffer::room`] returned.
    ///
    /// # Panics
    /// If `n` is more than the free room (a reader's bug: it claims bytes it had no room for).
    pub fn filled(&mut self, n: usize) {
        assert!(
            n <= self.current.len() - self.filled,
            "a read of {n} bytes claimed more than its room"
        );
        self.filled += n;
    }

    /// Bytes are waiting and the allocation is nearly full: take them before the next read,
    /// which would otherwise move them into a fresh allocation (a copy).
    pub fn should_take(&self) -> bool {
        self.filled > 0 && self.current.len() - self.filled < MIN_ROOM
    }

    /// No bytes waiting to be taken.
    pub fn is_empty(&self) -> bool {
        self.filled == 0
    }

    /// The bytes read since the last take.
    pub fn take(&mut self) -> Bytes {
        let len = std::mem::take(&mut self.filled);
        if len == 0 {
            return Bytes::new();
        }
        Bytes::from_owner(Lent {
            data: std::mem::take(&mut self.current),
            len,
            spare: Arc::downgrade(&self.spare),
        })
    }

    /// A spare allocation of at least `min` bytes, or a fresh zeroed one of `want` (or `min`).
    fn reuse_or_allocate(&mut self, min: usize, want: usize) -> Vec<u8> {
        let reused = lock(&self.spare).pop();
        match reused {
            Some(data) if data.len() >= min => data,
            _ => vec![0; want.max(min)],
        }
    }
}

/// An allocation lent to the engine as [`Bytes`]; it returns to its buffer's spares when the
/// last slice of it is dropped (or is freed, if the connection is gone or has enough).
struct Lent {
    data: Vec<u8>,
    len: usize,
    spare: Weak<Mutex<Vec<Vec<u8>>>>,
}

impl AsRef<[u8]> for Lent {
    fn as_ref(&self) -> &[u8] {
        &self.data[..self.len]
    }
}

impl Drop for Lent {
    fn drop(&mut self) {
        if let Some(spare) = self.spare.upgrade() {
            give_back(&spare, std::mem::take(&mut self.data));
        }
    }
}

fn give_back(spare: &Mutex<Vec<Vec<u8>>>, data: Vec<u8>) {
    let mut spare = lock(spare);
    if data.len() >= READ_BUFFER && spare.len() < MAX_SPARE {
        spare.push(data);
    }
}

/// Lock, ignoring poisoning: a spare list is valid whatever a panicking holder did.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_accumulate_until_taken_and_chunks_stay_intact_across_allocations() {
        let mut buf = ReadBuffer::new();
        let mut chunks = Vec::new();
        let mut expected = Vec::new();
        for i in 0..100u8 {
            let piece = vec![i; 5000 + usize::from(i) * 37];
            expected.extend_from_slice(&piece);
            let n = buf
                .read_with(|room| {
                    let n = piece.len().min(room.len());
                    room[..n].copy_from_slice(&piece[..n]);
                    Ok(n)
                })
                .unwrap();
            assert_eq!(n, piece.len());
            if i % 3 == 0 {
                chunks.push(buf.take());
            }
        }
        chunks.push(buf.take());
        assert!(buf.is_empty());
        assert_eq!(chunks.concat(), expected);
    }

    #[test]
    fn read_size_grows_only_while_reads_fill_their_room() {
        let mut size = ReadSize::default();
        let room = size.limit(1);
        assert_eq!(room, FIRST_READ);
        size.record(room / 2, room);
        assert_eq!(size.limit(1), FIRST_READ, "a partial read keeps the size");
        for _ in 0..10 {
            let room = size.limit(1);
            size.record(room, room);
        }
        assert_eq!(
            size.limit(1),
            READ_BUFFER,
            "full reads grow it to the cap, no further"
        );
    }

    #[test]
    fn many_connections_share_the_read_budget() {
        let mut size = ReadSize::default();
        size.record(FIRST_READ, FIRST_READ);
        size.record(2 * FIRST_READ, 2 * FIRST_READ);
        size.record(4 * FIRST_READ, 4 * FIRST_READ); // 128 KiB now
        assert_eq!(size.limit(1), 8 * FIRST_READ);
        assert_eq!(size.limit(1000), READ_BUDGET / 1000);
        assert_eq!(
            size.limit(1_000_000),
            FIRST_READ,
            "never below the first read"
        );
    }

    #[test]
    fn room_is_capped_by_the_read_size_and_small_allocations_are_not_kept() {
        let mut buf = ReadBuffer::new();
        assert_eq!(buf.room(FIRST_READ).len(), FIRST_READ);
        buf.room(FIRST_READ)[..5].copy_from_slice(b"hello");
        buf.filled(5);
        assert_eq!(
            buf.room(4).len(),
            4,
            "the cap holds inside an allocation too"
        );
        let first = buf.take();
        assert_eq!(&first[..], b"hello");
        drop(first); // 16 KiB: not kept as a spare
        assert_eq!(buf.room(READ_BUFFER).len(), READ_BUFFER);
        buf.filled(READ_BUFFER);
        let full = buf.take();
        let full_ptr = full.as_ptr();
        drop(full); // a whole READ_BUFFER comes back...
        assert_eq!(buf.room(64 * 1024).len(), 64 * 1024);
        buf.filled(1);
        assert_eq!(
            buf.take().as_ptr(),
            full_ptr,
            "...and serves a smaller read"
        );
    }

    #[test]
    #[should_panic(expected = "claimed more than its room")]
    fn a_read_claiming_more_than_its_room_is_refused() {
        let mut buf = ReadBuffer::new();
        let room = buf.room(FIRST_READ).len();
        buf.filled(room + 1);
    }

    #[test]
    fn an_allocation_comes_back_for_reuse_once_the_engine_drops_its_bytes() {
        let mut buf = ReadBuffer::new();
        let fill = |buf: &mut ReadBuffer, byte: u8| {
            buf.read_with(|room| {
                room.fill(byte);
                Ok(room.len())
            })
            .unwrap()
        };
        fill(&mut buf, 1);
        let first = buf.take();
        let first_ptr = first.as_ptr();
        fill(&mut buf, 2);
        let second = buf.take();
        assert_ne!(second.as_ptr(), first_ptr, "the first is still lent");
        drop(first);
        fill(&mut buf, 3);
        let third = buf.take();
        assert_eq!(
            third.as_ptr(),
            first_ptr,
            "the returned allocation is reused"
        );
        assert!(third.iter().all(|&b| b == 3) && second.iter().all(|&b| b == 2));
        assert_eq!(third.len(), READ_BUFFER);
    }

    #[test]
    fn a_nearly_full_allocation_asks_to_be_taken_and_an_empty_one_never_does() {
        let mut buf = ReadBuffer::new();
        assert!(!buf.should_take());
        buf.read_with(|room| Ok(room.len() - MIN_ROOM)).unwrap();
        assert!(!buf.should_take(), "exactly MIN_ROOM left is still room");
        buf.read_with(|_| Ok(1)).unwrap();
        assert!(buf.should_take());
        assert_eq!(buf.take().len(), READ_BUFFER - MIN_ROOM + 1);
        assert!(!buf.should_take());
    }

    #[test]
    fn a_failed_read_keeps_what_was_read_before() {
        let mut buf = ReadBuffer::new();
        buf.read_with(|room| {
            room[..3].copy_from_slice(b"abc");
            Ok(3)
        })
        .unwrap();
        assert!(buf.read_with(|_| Err(io::Error::other("boom"))).is_err());
        assert_eq!(&buf.take()[..], b"abc");
    }
}
