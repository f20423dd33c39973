//! `transfer`'s HTTPS policy options: `--security-flags`, `--redirect-policy`,
//! `--allow-https-to-http` (all folded into BITS' `SetSecurityFlags` value) and `--pin-sha256`,
//! which is built on the server-certificate validation callback.

use backhaul_core::job::{RedirectPolicy, SecurityFlags};
use backhaul_core::{codes, CertificateDer, HResult};
use sha2::{Digest, Sha256};

/// The names `--security-flags` accepts, with their `BG_SSL_*` bits.
const FLAG_NAMES: [(&str, u32); 5] = [
    ("crl", SecurityFlags::ENABLE_CRL_CHECK),
    ("ignore-cn", SecurityFlags::IGNORE_CERT_CN_INVALID),
    ("ignore-date", SecurityFlags::IGNORE_CERT_DATE_INVALID),
    ("ignore-unknown-ca", SecurityFlags::IGNORE_UNKNOWN_CA),
    ("ignore-wrong-usage", SecurityFlags::IGNORE_CERT_WRONG_USAGE),
];

/// `--security-flags`: a number (decimal or `0x` hex) or comma-separated names (and numbers),
/// OR'ed together. Whether the value is one BITS defines is checked later, with the other
/// options folded in.
pub(crate) fn parse_security_flags(s: &str) -> Result<u32, String> {
    let mut bits = 0;
    for token in s.split(',').map(str::trim).filter(|t| !t.is_empty()) {
        let lower = token.to_ascii_lowercase();
        bits |= if let Some(&(_, bit)) = FLAG_NAMES.iter().find(|(name, _)| *name == lower) {
            bit
        } else if let Some(hex) = lower.strip_prefix("0x") {
            u32::from_str_radix(hex, 16).map_err(|_| unknown_flag(token))?
        } else {
            lower.parse::<u32>().map_err(|_| unknown_flag(token))?
        };
    }
    Ok(bits)
}

fn unknown_flag(token: &str) -> String {
    let names: Vec<&str> = FLAG_NAMES.iter().map(|(n, _)| *n).collect();
    format!(
        "{token:?} is neither a number nor one of {}",
        names.join(", ")
    )
}

/// The job's `SetSecurityFlags` value from the three options: `--redirect-policy` replaces the
/// policy bits of `--security-flags`, `--allow-https-to-http` adds 0x0800. `Err` explains a
/// value BITS does not define (E_NOTIMPL).
pub(crate) fn fold_security_flags(
    flags: u32,
    redirect: Option<RedirectPolicy>,
    allow_https_to_http: bool,
) -> Result<u32, String> {
    let mut bits = flags;
    if let Some(policy) = redirect {
        bits = (bits & !SecurityFlags::REDIRECT_POLICY_MASK) | policy.bits();
    }
    if allow_https_to_http {
        bits |= SecurityFlags::ALLOW_HTTPS_TO_HTTP;
    }
    SecurityFlags::from_bits(bits)
        .map(SecurityFlags::bits)
        .map_err(|e| format!("{} ({})", e.detail(), e.code().name_or_hex()))
}

/// `--pin-sha256`: the SHA-256 of a leaf certificate (DER), 64 hex digits, `:` separators
/// allowed (as `openssl x509 -fingerprint -sha256` prints them).
pub(crate) fn parse_pin(s: &str) -> Result<[u8; 32], String> {
    let hex: String = s.chars().filter(|c| *c != ':').collect();
    if hex.len() != 64 || !hex.chars().all(|c| c.is_ascii_hexdigit()) {
        return Err(format!(
            "{s:?} is not a SHA-256 fingerprint: 64 hex digits expected"
        ));
    }
    let mut pin = [0u8; 32];
    for (i, byte) in pin.iter_mut().enumerate() {
        *byte = u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).expect("checked hex above");
    }
    Ok(pin)
}

/// The pinning callback's verdict: accept a leaf whose SHA-256 is one of `pins`.
pub(crate) fn pin_verdict(pins: &[[u8; 32]], leaf: &CertificateDer<'_>) -> Result<(), HResult> {
    let hash: [u8; 32] = Sha256::digest(leaf.as_ref()).into();
    if pins.contains(&hash) {
        Ok(())
    } else {
        Err(codes::TRUST_E_FAIL)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_numbers_and_hex_combine() {
        assert_eq!(parse_security_flags("crl,ignore-date"), Ok(0x0005));
        assert_eq!(parse_security_flags("0x0108"), Ok(0x0108));
        assert_eq!(parse_security_flags("16, IGNORE-CN"), Ok(0x0012));
        let err = parse_security_flags("crl,nope").unwrap_err();
        assert!(
            err.contains("\"nope\"") && err.contains("ignore-unknown-ca"),
            "{err}"
        );
    }

    #[test]
    fn redirect_policy_replaces_the_policy_bits_and_bad_values_are_refused() {
        assert_eq!(
            fold_security_flags(0x0201, Some(RedirectPolicy::AllowReport), true),
            Ok(0x0901)
        );
        let err = fold_security_flags(0x0040, None, false).unwrap_err();
        assert!(err.contains("E_NOTIMPL"), "{err}");
        assert!(fold_security_flags(0x0300, None, false).is_err());
    }

    #[test]
    fn pins_are_64_hex_digits_with_optional_colons() {
        let hex = "00".repeat(31) + "ff";
        assert_eq!(parse_pin(&hex).unwrap()[31], 0xFF);
        let colons: Vec<String> = (0..32).map(|i| format!("{i:02X}")).collect();
        assert_eq!(parse_pin(&colons.join(":")).unwrap()[5], 5);
        assert!(parse_pin("abc").is_err());
        assert!(parse_pin(&"zz".repeat(32)).is_err());
    }

    #[test]
    fn the_pin_accepts_only_the_pinned_leaf() {
        let leaf = CertificateDer::from(vec![1u8, 2, 3]);
        let pin: [u8; 32] = Sha256::digest([1u8, 2, 3]).into();
        assert_eq!(pin_verdict(&[pin], &leaf), Ok(()));
        assert_eq!(pin_verdict(&[[0; 32]], &leaf), Err(codes::TRUST_E_FAIL));
    }
}
