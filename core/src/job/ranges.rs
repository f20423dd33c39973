//! `BG_FILE_RANGE`: the parts of a remote file that `AddFileWithRanges` fetches, BITS' checks on
//! them, and how an offset in the local file (the ranges concatenated in the order given) maps
//! back to a place in the remote file.

use serde::{Deserialize, Serialize};

use crate::codes;
use crate::error::BitsError;

/// `BG_LENGTH_TO_EOF`: a range that runs to the end of the remote file.
pub const LENGTH_TO_EOF: u64 = u64::MAX;

/// `BG_FILE_RANGE`: `length` bytes of the remote file from `initial_offset`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileRange {
    /// First byte of the range in the remote file.
    pub initial_offset: u64,
    /// How many bytes, or [`LENGTH_TO_EOF`].
    pub length: u64,
}

impl FileRange {
    /// A range of `length` bytes (or [`LENGTH_TO_EOF`]) from `initial_offset`.
    pub const fn new(initial_offset: u64, length: u64) -> Self {
        Self {
            initial_offset,
            length,
        }
    }

    /// The range's length once the remote file's size is known (`None` for a range to EOF
    /// while it is not, or when the range starts at or past the end).
    pub(crate) fn resolved_len(&self, size: Option<u64>) -> Option<u64> {
        if self.length != LENGTH_TO_EOF {
            return Some(self.length);
        }
        size?.checked_sub(self.initial_offset).filter(|&n| n > 0)
    }

    /// One past the range's last byte; `None` for a range to EOF (it has no end of its own).
    fn end(&self) -> Option<u64> {
        (self.length != LENGTH_TO_EOF).then(|| self.initial_offset + self.length)
    }
}

/// `AddFileWithRanges`' checks, in BITS' order of blame: none (`E_INVALIDARG`), too many
/// (`BG_E_TOO_MANY_RANGES_IN_FILE`), an empty or unrepresentable range (`BG_E_INVALID_RANGE`),
/// then overlaps (`BG_E_OVERLAPPING_RANGES`, checked on the ranges sorted by offset, so the
/// same range twice, in any order, overlaps). Ranges need not be in ascending order.
pub(crate) fn check_ranges(ranges: &[FileRange], max: usize) -> Result<(), BitsError> {
    if ranges.is_empty() {
        return Err(BitsError::new(
            codes::E_INVALIDARG,
            "AddFileWithRanges needs at least one range",
        ));
    }
    if ranges.len() > max {
        return Err(BitsError::new(
            codes::BG_E_TOO_MANY_RANGES_IN_FILE,
            format!("{} ranges for one file; the limit is {max}", ranges.len()),
        ));
    }
    for (i, r) in ranges.iter().enumerate() {
        let why = if r.length == 0 {
            Some("has a length of 0")
        } else if r.initial_offset == LENGTH_TO_EOF {
            Some("starts at BG_LENGTH_TO_EOF")
        } else if r.length != LENGTH_TO_EOF && r.initial_offset.checked_add(r.length).is_none() {
            Some("ends past the largest file offset")
        } else {
            None
        };
        if let Some(why) = why {
            return Err(BitsError::new(
                codes::BG_E_INVALID_RANGE,
                format!(
                    "range {i} ({}, {}) {why}",
                    r.initial_offset,
                    describe(r.length)
                ),
            ));
        }
    }
    let mut sorted: Vec<(usize, &FileRange)> = ranges.iter().enumerate().collect();
    sorted.sort_by_key(|(_, r)| r.initial_offset);
    for pair in sorted.windows(2) {
        let ((i, a), (j, b)) = (pair[0], pair[1]);
        if a.end().is_none_or(|end| end > b.initial_offset) {
            let (first, second) = (i.min(j), i.max(j));
            return Err(BitsError::new(
                codes::BG_E_OVERLAPPING_RANGES,
                format!("ranges {first} and {second} overlap"),
            ));
        }
    }
    Ok(())
}

/// The first range that does not lie inside a remote file of `size` bytes: a range must start
/// before the end, and a fixed-length one must end at or before it.
pub(crate) fn first_outside(ranges: &[FileRange], size: u64) -> Option<(usize, FileRange)> {
    ranges
        .iter()
        .enumerate()
        .find(|(_, r)| r.initial_offset >= size || r.end().is_some_and(|end| end > size))
        .map(|(i, r)| (i, *r))
}

/// The local file's length: the ranges' lengths added up (`None` while a range to EOF waits
/// for the remote size).
pub(crate) fn total_len(ranges: &[FileRange], size: Option<u64>) -> Option<u64> {
    ranges.iter().try_fold(0u64, |sum, r| {
        Some(sum.saturating_add(r.resolved_len(size)?))
    })
}

/// Where local offset `local` lies: the range's index, the offset inside it, and the range's
/// first local offset. `None` when `local` is at or past the end of the last range, or inside
/// a range to EOF of unknown length is impossible to place exactly (it is the last range then).
pub(crate) fn locate(ranges: &[FileRange], size: Option<u64>, local: u64) -> Option<Place> {
    let mut start = 0u64;
    for (index, r) in ranges.iter().enumerate() {
        match r.resolved_len(size) {
            Some(len) if local < start + len => {
                return Some(Place {
                    index,
                    within: local - start,
                })
            }
            Some(len) => start += len,
            // Unknown length: only offset 0 of it can be asked for (`bytes=a-`).
            None => {
                return (local == start).then_some(Place { index, within: 0 });
            }
        }
    }
    None
}

/// A place in the local file of a ranged download.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Place {
    /// Which range.
    pub(crate) index: usize,
    /// Bytes of that range already in the local file.
    pub(crate) within: u64,
}

fn describe(length: u64) -> String {
    if length == LENGTH_TO_EOF {
        "BG_LENGTH_TO_EOF".to_string()
    } else {
        length.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(offset: u64, length: u64) -> FileRange {
        FileRange::new(offset, length)
    }

    fn code(ranges: &[FileRange]) -> Option<crate::codes::HResult> {
        check_ranges(ranges, 500).err().map(|e| e.code())
    }

    #[test]
    fn ascending_descending_and_adjacent_ranges_are_accepted() {
        assert_eq!(
            code(&[r(0, 100), r(2000, 100), r(5000, LENGTH_TO_EOF)]),
            None
        );
        assert_eq!(
            code(&[r(5000, LENGTH_TO_EOF), r(2000, 100), r(0, 100)]),
            None
        );
        assert_eq!(code(&[r(100, 100), r(0, 100)]), None);
        assert_eq!(code(&[r(0, LENGTH_TO_EOF)]), None);
    }

    #[test]
    fn no_range_is_invalidarg_and_501_are_too_many() {
        assert_eq!(code(&[]), Some(codes::E_INVALIDARG));
        let many: Vec<FileRange> = (0..501).map(|i| r(i * 10, 10)).collect();
        assert_eq!(code(&many[..500]), None);
        assert_eq!(code(&many), Some(codes::BG_E_TOO_MANY_RANGES_IN_FILE));
    }

    #[test]
    fn empty_eof_offset_and_overflowing_ranges_are_invalid() {
        assert_eq!(code(&[r(0, 0)]), Some(codes::BG_E_INVALID_RANGE));
        assert_eq!(
            code(&[r(LENGTH_TO_EOF, 10)]),
            Some(codes::BG_E_INVALID_RANGE)
        );
        assert_eq!(
            code(&[r(u64::MAX - 5, 10)]),
            Some(codes::BG_E_INVALID_RANGE)
        );
    }

    #[test]
    fn duplicates_overlaps_and_ranges_after_an_eof_range_overlap() {
        let overlapping = codes::BG_E_OVERLAPPING_RANGES;
        assert_eq!(code(&[r(0, 10), r(0, 10)]), Some(overlapping));
        assert_eq!(code(&[r(5, 10), r(0, 6)]), Some(overlapping));
        assert_eq!(code(&[r(0, LENGTH_TO_EOF), r(100, 1)]), Some(overlapping));
        assert_eq!(code(&[r(100, 1), r(0, LENGTH_TO_EOF)]), Some(overlapping));
        let e = check_ranges(&[r(50, 1), r(0, 10), r(5, 1)], 500).unwrap_err();
        assert!(e.detail().contains("ranges 1 and 2"), "{}", e.detail());
    }

    #[test]
    fn ranges_outside_the_file_are_found() {
        let ranges = [r(0, 10), r(90, 10), r(95, LENGTH_TO_EOF)];
        assert_eq!(first_outside(&ranges[..2], 100), None);
        assert_eq!(first_outside(&ranges[..2], 99), Some((1, r(90, 10))));
        assert_eq!(
            first_outside(&[r(100, LENGTH_TO_EOF)], 100),
            Some((0, r(100, LENGTH_TO_EOF)))
        );
        assert_eq!(first_outside(&[r(99, LENGTH_TO_EOF)], 100), None);
    }

    #[test]
    fn local_offsets_map_to_ranges_in_the_order_given() {
        let ranges = [r(500, 10), r(0, 5), r(20, LENGTH_TO_EOF)];
        assert_eq!(total_len(&ranges, None), None);
        assert_eq!(total_len(&ranges, Some(30)), Some(25));
        let at = |local| locate(&ranges, Some(30), local);
        assert_eq!(
            at(0),
            Some(Place {
                index: 0,
                within: 0
            })
        );
        assert_eq!(
            at(9),
            Some(Place {
                index: 0,
                within: 9
            })
        );
        assert_eq!(
            at(10),
            Some(Place {
                index: 1,
                within: 0
            })
        );
        assert_eq!(
            at(15),
            Some(Place {
                index: 2,
                within: 0
            })
        );
        assert_eq!(
            at(24),
            Some(Place {
                index: 2,
                within: 9
            })
        );
        assert_eq!(at(25), None);
        // Size unknown: the range to EOF can only be started, not resumed.
        assert_eq!(
            locate(&ranges, None, 15),
            Some(Place {
                index: 2,
                within: 0
            })
        );
        assert_eq!(locate(&ranges, None, 16), None);
    }
}
