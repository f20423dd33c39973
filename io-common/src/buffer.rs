//! Receive buffers: a connection reads into one large buffer and hands the engine slices of it
//! (`Bytes` sharing the allocation), so received bytes are never copied on their way in.

use std::io;

use bytes::{Bytes, BytesMut};

/// Room reserved for a connection's reads.
pub const READ_BUFFER: usize = 256 * 1024;

/// Below this much free room, a fresh [`READ_BUFFER`] is allocated.
const MIN_ROOM: usize = 16 * 1024;

/// Make room in `buf` for the next read (tokio's `read_buf` fills the spare capacity).
pub fn make_room(buf: &mut BytesMut) {
    if buf.capacity() - buf.len() < MIN_ROOM {
        buf.reserve(READ_BUFFER);
    }
}

/// A receive buffer for `std::io::Read`, which wants initialised memory: each allocation is
/// zeroed once, reads fill it from the front, and [`ReadBuffer::take`] splits the bytes read
/// off without copying.
#[derive(Debug, Default)]
pub struct ReadBuffer {
    /// Initialised throughout; `..filled` holds bytes read and not yet taken.
    buf: BytesMut,
    filled: usize,
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
        if self.buf.len() - self.filled < MIN_ROOM {
            let mut fresh = BytesMut::zeroed(READ_BUFFER.max(self.filled + MIN_ROOM));
            fresh[..self.filled].copy_from_slice(&self.buf[..self.filled]); // rare: a chunk spanning two allocations
            self.buf = fresh;
        }
        let n = read(&mut self.buf[self.filled..])?;
        self.filled += n;
        Ok(n)
    }

    /// No bytes waiting to be taken.
    pub fn is_empty(&self) -> bool {
        self.filled == 0
    }

    /// The bytes read since the last take.
    pub fn take(&mut self) -> Bytes {
        let filled = std::mem::take(&mut self.filled);
        self.buf.split_to(filled).freeze()
    }
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
