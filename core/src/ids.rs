//! Identifiers: jobs, files within a job, connections.

use serde::{Deserialize, Serialize};

/// A job's identity: 128 random bits from the engine's seeded RNG, shown as a GUID like BITS.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct JobId(pub u128);

impl std::fmt::Display for JobId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let v = self.0;
        write!(
            f,
            "{{{:08X}-{:04X}-{:04X}-{:04X}-{:012X}}}",
            (v >> 96) as u32,
            (v >> 80) as u16,
            (v >> 64) as u16,
            (v >> 48) as u16,
            v & 0xFFFF_FFFF_FFFF
        )
    }
}

impl std::str::FromStr for JobId {
    type Err = crate::BitsError;

    /// Parses `{XXXXXXXX-XXXX-XXXX-XXXX-XXXXXXXXXXXX}`, braces optional, any case.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim();
        let s = s
            .strip_prefix('{')
            .and_then(|s| s.strip_suffix('}'))
            .unwrap_or(s);
        let groups: Vec<&str> = s.split('-').collect();
        let lens = [8, 4, 4, 4, 12];
        if groups.len() != 5 || groups.iter().zip(lens).any(|(g, n)| g.len() != n) {
            return Err(crate::BitsError::new(
                crate::codes::E_INVALIDARG,
                "not a job id (GUID)",
            ));
        }
        let hex: String = groups.concat();
        u128::from_str_radix(&hex, 16)
            .map(JobId)
            .map_err(|_| crate::BitsError::new(crate::codes::E_INVALIDARG, "not a job id (GUID)"))
    }
}

/// A file's position in its job, in the order files were added (0-based).
pub type FileIndex = u32;

/// A connection the engine asked a driver to open. Never reused after close.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct ConnId(pub u64);

impl std::fmt::Display for ConnId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "conn#{}", self.0)
    }
}
