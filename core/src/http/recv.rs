//! Received bytes not yet consumed, kept as the `Bytes` the driver pushed so that body bytes
//! leave as slices of them, and a resumable search for line and head ends across those pieces.

use std::collections::VecDeque;

use bytes::{Bytes, BytesMut};

/// The pushed pieces, in order, front partly consumed.
#[derive(Debug, Default)]
pub(super) struct RecvQueue {
    pieces: VecDeque<Bytes>,
    len: usize,
}

impl RecvQueue {
    /// Appends a piece; empty pieces are dropped so the front is never empty.
    pub(super) fn push(&mut self, data: Bytes) {
        if !data.is_empty() {
            self.len += data.len();
            self.pieces.push_back(data);
        }
    }

    /// Bytes buffered.
    pub(super) fn len(&self) -> usize {
        self.len
    }

    /// Whether nothing is buffered.
    pub(super) fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Up to `max` bytes from the front of the first piece: a slice, never a copy.
    pub(super) fn take_front(&mut self, max: usize) -> Bytes {
        let Some(front) = self.pieces.front_mut() else {
            return Bytes::new();
        };
        let taken = if front.len() > max {
            front.split_to(max)
        } else {
            std::mem::take(front)
        };
        if front.is_empty() {
            self.pieces.pop_front();
        }
        self.len -= taken.len();
        taken
    }

    /// Exactly `n <= len()` bytes. Copies only when they span pieces, which is fine for the
    /// small things this is used for (heads, chunk-size lines, trailers); bodies use `take_front`.
    pub(super) fn take(&mut self, n: usize) -> Bytes {
        debug_assert!(n <= self.len, "take({n}) with {} buffered", self.len);
        if self.pieces.front().is_some_and(|front| front.len() >= n) {
            return self.take_front(n);
        }
        let mut joined = BytesMut::with_capacity(n);
        while joined.len() < n && !self.is_empty() {
            joined.extend_from_slice(&self.take_front(n - joined.len()));
        }
        joined.freeze()
    }

    /// The buffered bytes from `offset` on, piece by piece. Found from the back: a scan
    /// resumes near the end, so this costs the pieces pushed since it stopped, not all of them
    /// (from the front, a head trickled in one byte per piece cost time quadratic in its size).
    fn slices_from(&self, offset: usize) -> impl Iterator<Item = &[u8]> {
        let mut wanted = self.len.saturating_sub(offset);
        let mut first = self.pieces.len();
        let mut skip = 0;
        while wanted > 0 {
            first -= 1;
            let piece = self.pieces[first].len();
            if piece >= wanted {
                skip = piece - wanted;
                wanted = 0;
            } else {
                wanted -= piece;
            }
        }
        let mut pieces = self.pieces.range(first..);
        let head = pieces.next().map(|piece| &piece[skip..]);
        head.into_iter().chain(pieces.map(|piece| &piece[..]))
    }
}

/// What a [`Scan`] found so far.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Scanned {
    /// The terminator ends after this many bytes from the front.
    Found(usize),
    /// Not yet; more bytes are needed.
    NeedMore,
    /// More than the allowed bytes arrived without the terminator.
    TooLong,
}

/// A search for the LF ending a line, or for the empty line ending a header block, that
/// resumes where it stopped, so a head trickling in byte by byte is scanned once in total.
///
/// Hand-written because httparse needs the head in one slice: finding its end across the
/// pushed pieces first means we copy exactly the head, never the body bytes behind it.
#[derive(Debug)]
pub(super) struct Scan {
    scanned: usize,
    state: ScanState,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum ScanState {
    /// Looking for the first LF only.
    Line,
    /// Header block: only CR/LF so far (httparse skips leading empty lines, so do we).
    Leading,
    /// Header block: inside a line.
    InLine,
    /// Header block: just after an LF.
    LineStart,
    /// Header block: just after LF CR.
    LineStartCr,
}

impl Scan {
    /// The end of one line (the LF).
    pub(super) fn line() -> Self {
        Self {
            scanned: 0,
            state: ScanState::Line,
        }
    }

    /// The blank line ending a response head.
    pub(super) fn head() -> Self {
        Self {
            scanned: 0,
            state: ScanState::Leading,
        }
    }

    /// The blank line ending a trailer section, which may be that blank line alone.
    pub(super) fn trailers() -> Self {
        Self {
            scanned: 0,
            state: ScanState::LineStart,
        }
    }

    /// Continues over the bytes of `rx` not yet scanned; the terminator must end within
    /// the first `max` bytes.
    pub(super) fn resume(&mut self, rx: &RecvQueue, max: usize) -> Scanned {
        // Byte-at-a-time: heads are at most `max` bytes and each byte is looked at once.
        for slice in rx.slices_from(self.scanned) {
            for &b in slice {
                if self.scanned == max {
                    return Scanned::TooLong;
                }
                self.scanned += 1;
                if self.step(b) {
                    return Scanned::Found(self.scanned);
                }
            }
        }
        Scanned::NeedMore
    }

    /// Advances over one byte; true when it completes the terminator.
    fn step(&mut self, b: u8) -> bool {
        use ScanState::{InLine, Leading, Line, LineStart, LineStartCr};
        let (next, done) = match (self.state, b) {
            (Line, b) => (Line, b == b'\n'),
            (Leading, b'\r' | b'\n') => (Leading, false),
            (LineStart | LineStartCr, b'\n') => (LineStart, true),
            (LineStart, b'\r') => (LineStartCr, false),
            (_, b'\n') => (LineStart, false),
            _ => (InLine, false),
        };
        self.state = next;
        done
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn queue(pieces: &[&'static [u8]]) -> RecvQueue {
        let mut rx = RecvQueue::default();
        for p in pieces {
            rx.push(Bytes::from_static(p));
        }
        rx
    }

    #[test]
    fn take_joins_pieces_and_take_front_never_does() {
        let mut rx = queue(&[b"ab", b"", b"cd", b"ef"]);
        assert_eq!(rx.len(), 6);
        assert_eq!(&rx.take(3)[..], b"abc");
        assert_eq!(&rx.take_front(10)[..], b"d");
        assert_eq!(&rx.take_front(1)[..], b"e");
        assert_eq!(&rx.take_front(1)[..], b"f");
        assert!(rx.is_empty());
        assert!(rx.take_front(1).is_empty());
    }

    #[test]
    fn slices_from_any_offset_are_the_bytes_from_there_and_only_the_pieces_holding_them() {
        let mut rx = queue(&[b"ab", b"cde", b"f"]);
        rx.take_front(1);
        let all = b"bcdef";
        for offset in 0..=all.len() + 1 {
            let slices: Vec<&[u8]> = rx.slices_from(offset).collect();
            assert_eq!(
                slices.concat(),
                all.get(offset..).unwrap_or_default(),
                "from {offset}"
            );
            assert!(
                slices.iter().all(|s| !s.is_empty()),
                "from {offset}: {slices:?}"
            );
        }
        assert_eq!(rx.slices_from(4).count(), 1, "only the last piece");
    }

    #[test]
    fn head_scan_finds_blank_line_across_pieces_and_resumes() {
        let mut rx = queue(&[b"\r\nHTTP/1.1 200 OK\r\nA: b\r"]);
        let mut scan = Scan::head();
        assert_eq!(scan.resume(&rx, 100), Scanned::NeedMore);
        rx.push(Bytes::from_static(b"\n\r"));
        assert_eq!(scan.resume(&rx, 100), Scanned::NeedMore);
        rx.push(Bytes::from_static(b"\nbody"));
        assert_eq!(scan.resume(&rx, 100), Scanned::Found(rx.len() - 4));
    }

    #[test]
    fn head_scan_accepts_bare_lf_and_enforces_limit() {
        let rx = queue(&[b"HTTP/1.1 200 OK\nA: b\n\n"]);
        assert_eq!(Scan::head().resume(&rx, 100), Scanned::Found(rx.len()));
        assert_eq!(Scan::head().resume(&rx, rx.len()), Scanned::Found(rx.len()));
        assert_eq!(Scan::head().resume(&rx, rx.len() - 1), Scanned::TooLong);
    }

    #[test]
    fn cr_in_a_line_does_not_end_the_head() {
        let rx = queue(&[b"HTTP/1.1 200 OK\r\nA: \r\r\n"]);
        assert_eq!(Scan::head().resume(&rx, 100), Scanned::NeedMore);
    }

    #[test]
    fn empty_trailer_section_is_just_crlf() {
        let rx = queue(&[b"\r\nnext"]);
        assert_eq!(Scan::trailers().resume(&rx, 100), Scanned::Found(2));
    }
}
