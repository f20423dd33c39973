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
        // Hex digits only: `from_str_radix` alone would also take a sign ("+1234567-…").
        let malformed =
            |(g, n): (&&str, usize)| g.len() != n || !g.chars().all(|c| c.is_ascii_hexdigit());
        if groups.len() != 5 || groups.iter().zip(lens).any(malformed) {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_job_id_prints_as_a_guid_and_parses_back() {
        let id = JobId(0x6F1A_2B3C_0D4E_5F60_7182_93A4_B5C6_D7E8);
        assert_eq!(id.to_string(), "{6F1A2B3C-0D4E-5F60-7182-93A4B5C6D7E8}");
        assert_eq!(id.to_string().parse::<JobId>().unwrap(), id);
        assert_eq!(
            "6f1a2b3c-0d4e-5f60-7182-93a4b5c6d7e8"
                .parse::<JobId>()
                .unwrap(),
            id
        );
    }

    #[test]
    fn a_sign_in_a_job_id_is_refused() {
        for text in [
            "+1234567-0000-0000-0000-000000000000",
            "{+1234567-0000-0000-0000-000000000000}",
            "12345678-0000-0000-0000-+00000000000",
        ] {
            let err = text.parse::<JobId>().unwrap_err();
            assert_eq!(err.code(), crate::codes::E_INVALIDARG, "{text}");
        }
    }
}
