//! Test payloads: reproducible pseudo-random bodies and their SHA-256.

use bytes::Bytes;

/// `len` pseudo-random bytes, the same for the same `(len, seed)`, built fast enough that 64 MiB
/// takes well under a second even in a debug build.
///
/// The body is a 64 KiB pseudo-random block (xorshift64*, per seed) repeated, with the first
/// 8 bytes of every 64-byte line replaced by the next word of the same xorshift stream. So no
/// two lines are alike: a body spliced from the wrong offset, or from another seed's body, never
/// compares equal, yet the generator does one step per 64 bytes rather than one per 8.
pub fn deterministic_bytes(len: usize, seed: u64) -> Bytes {
    let mut rng = XorShift::new(seed);
    let mut block = vec![0u8; BLOCK];
    for word in block.chunks_exact_mut(8) {
        word.copy_from_slice(&rng.next().to_le_bytes());
    }
    let mut out = Vec::with_capacity(len.next_multiple_of(BLOCK));
    while out.len() < len {
        out.extend_from_slice(&block);
    }
    for line in out.chunks_exact_mut(LINE) {
        line[..8].copy_from_slice(&rng.next().to_le_bytes());
    }
    out.truncate(len);
    Bytes::from(out)
}

/// The lowercase hex SHA-256 of `data`.
///
/// Computed with ring's SHA-256 (reached through rustls' crypto provider): it is assembly, so
/// hashing 64 MiB takes milliseconds in a debug build, where a Rust implementation takes seconds.
pub fn sha256_hex(data: &[u8]) -> String {
    let suite = rustls::crypto::ring::cipher_suite::TLS13_AES_128_GCM_SHA256
        .tls13()
        .expect("TLS13_AES_128_GCM_SHA256 is a TLS 1.3 suite");
    let hash = suite.common.hash_provider;
    assert_eq!(
        hash.algorithm(),
        rustls::crypto::hash::HashAlgorithm::SHA256
    );
    let digest = hash.hash(data);
    let mut hex = String::with_capacity(64);
    for byte in digest.as_ref() {
        hex.push(char::from(HEX[usize::from(byte >> 4)]));
        hex.push(char::from(HEX[usize::from(byte & 0x0F)]));
    }
    hex
}

const HEX: &[u8; 16] = b"0123456789abcdef";
const BLOCK: usize = 64 * 1024;
const LINE: usize = 64;

/// xorshift64* (Vigna): small, fast, good enough for test payloads.
struct XorShift(u64);

impl XorShift {
    fn new(seed: u64) -> Self {
        // A zero state would stay zero; mix the seed so that seeds 0, 1, 2… give unrelated streams.
        let state = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ 0xD1B5_4A32_D192_ED03;
        XorShift(if state == 0 {
            0x2545_F491_4F6C_DD1D
        } else {
            state
        })
    }

    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use super::*;

    #[test]
    fn same_seed_same_bytes_other_seed_other_bytes() {
        let a = deterministic_bytes(1_000_003, 7);
        assert_eq!(a.len(), 1_000_003);
        assert_eq!(a, deterministic_bytes(1_000_003, 7));
        assert_ne!(a, deterministic_bytes(1_000_003, 8));
        assert_eq!(&a[..100], &deterministic_bytes(100, 7)[..]);
    }

    #[test]
    fn no_two_64_byte_lines_are_alike() {
        let a = deterministic_bytes(4 << 20, 3);
        let mut lines: Vec<&[u8]> = a.chunks(64).collect();
        lines.sort_unstable();
        lines.dedup();
        assert_eq!(lines.len(), (4 << 20) / 64);
    }

    #[test]
    fn sha256_of_abc_is_the_fips_vector() {
        assert_eq!(
            sha256_hex(b"abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn sha256_agrees_with_the_sha2_crate() {
        use sha2::{Digest, Sha256};
        let data = deterministic_bytes(100_001, 9);
        let expected: String = Sha256::digest(&data)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        assert_eq!(sha256_hex(&data), expected);
    }

    #[test]
    fn generates_and_hashes_64_mib_quickly() {
        let start = Instant::now();
        let body = deterministic_bytes(64 << 20, 1);
        assert_eq!(body.len(), 64 << 20);
        eprintln!("64 MiB generated in {:?}", start.elapsed());
        assert!(start.elapsed() < Duration::from_secs(5));
        let start = Instant::now();
        let _ = sha256_hex(&body);
        eprintln!("64 MiB hashed in {:?}", start.elapsed());
        assert!(start.elapsed() < Duration::from_secs(5));
    }
}
