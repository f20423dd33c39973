//! The record encoding: a magic, a version, then the record as JSON.
//!
//! JSON keeps records readable with standard tools and lets fields be added with defaults; the
//! version number gates incompatible changes. A record from a newer version is refused, never
//! guessed at.

use backhaul_core::JobRecord;

use crate::StoreError;

/// The record version this build writes and the newest it reads.
pub const RECORD_VERSION: u32 = 1;

const MAGIC: &[u8; 4] = b"BHJR";

/// Encodes a job record: `BHJR`, the version as u32 little-endian, the record as JSON.
pub fn encode_record(record: &JobRecord) -> Vec<u8> {
    let mut out = Vec::with_capacity(512);
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&RECORD_VERSION.to_le_bytes());
    // Invariant: JobRecord holds only strings, numbers and enums, which JSON always encodes.
    serde_json::to_writer(&mut out, record).expect("a JobRecord always encodes as JSON");
    out
}

/// Decodes what [`encode_record`] wrote. Never panics, whatever the bytes.
pub fn decode_record(bytes: &[u8]) -> Result<JobRecord, StoreError> {
    let rest = bytes
        .strip_prefix(MAGIC)
        .ok_or_else(|| StoreError::Corrupt("missing BHJR magic".into()))?;
    let (version, body) = rest
        .split_first_chunk::<4>()
        .ok_or_else(|| StoreError::Corrupt("truncated before the version".into()))?;
    let version = u32::from_le_bytes(*version);
    if version > RECORD_VERSION {
        return Err(StoreError::UnsupportedVersion {
            found: version,
            supported: RECORD_VERSION,
        });
    }
    if version == 0 {
        return Err(StoreError::Corrupt("version 0 does not exist".into()));
    }
    serde_json::from_slice(body).map_err(|e| StoreError::Corrupt(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn record_from_a_newer_version_is_refused() {
        let mut bytes = MAGIC.to_vec();
        bytes.extend_from_slice(&(RECORD_VERSION + 1).to_le_bytes());
        bytes.extend_from_slice(b"{}");
        assert!(matches!(
            decode_record(&bytes),
            Err(StoreError::UnsupportedVersion { .. })
        ));
    }

    #[test]
    fn record_without_magic_is_corrupt() {
        assert!(matches!(decode_record(b"{}"), Err(StoreError::Corrupt(_))));
        assert!(matches!(
            decode_record(b"BHJR\x01"),
            Err(StoreError::Corrupt(_))
        ));
    }

    proptest! {
        #[test]
        fn decoding_arbitrary_bytes_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
            let _ = decode_record(&bytes);
            let mut framed = MAGIC.to_vec();
            framed.extend_from_slice(&RECORD_VERSION.to_le_bytes());
            framed.extend_from_slice(&bytes);
            let _ = decode_record(&framed);
        }
    }
}
