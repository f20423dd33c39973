//! Server CHALLENGE_MESSAGEs ("Type 2") that `sspi` cannot read, laid out again so it can.
//!
//! `sspi` reads a challenge's TargetName and TargetInfo fields unconditionally and fails
//! ("failed to fill whole buffer") when one is absent or points outside the message. Both
//! happen in the wild: MS-NLMP 2.2.1.2 lets a server leave TargetInfo out (the older 32- or
//! 40-byte layout, without `NTLMSSP_NEGOTIATE_TARGET_INFO`), and squid's `ntlm_fake_auth`
//! sends a TargetName whose offset is garbage. Neither field changes what the client proves:
//! the answer is NTLMv2 over the server's challenge either way, with the server's target
//! list when it sent a readable one and an empty one otherwise (the client adds its own AV
//! pairs). A challenge `sspi` can read passes untouched, so a server that checks the MIC
//! (which covers the challenge's bytes) sees its own message.

/// `NTLMSSP\0`.
const SIGNATURE: &[u8; 8] = b"NTLMSSP\0";
/// MessageType of a CHALLENGE_MESSAGE.
const CHALLENGE: u32 = 2;
/// Signature, type, TargetName, flags, challenge, reserved, TargetInfo: what `sspi` reads.
const HEADER: usize = 48;
/// The Version field follows the header when this flag is set.
const NEGOTIATE_VERSION: u32 = 0x0200_0000;
/// The 8-byte Version field.
const VERSION_LEN: usize = 8;
/// An AV pair list holding only MsvAvEOL.
const EMPTY_TARGET_INFO: [u8; 4] = [0; 4];

/// The challenge as `sspi` can read it: `message` itself when it can already, else the same
/// flags (without the Version field) and server challenge with an empty TargetName and the
/// readable TargetInfo (or an empty one). Anything that is not a challenge is returned as is,
/// for `sspi` to refuse with its own error.
pub(super) fn readable_challenge(message: Vec<u8>) -> Vec<u8> {
    let is_challenge = message.len() >= 32
        && message.starts_with(SIGNATURE)
        && u32_at(&message, 8) == Some(CHALLENGE);
    if !is_challenge || is_readable(&message) {
        return message;
    }
    let flags = u32_at(&message, 20).unwrap_or(0) & !NEGOTIATE_VERSION;
    let target_info = field(&message, 40).unwrap_or(&EMPTY_TARGET_INFO);
    let info_len = u16::try_from(target_info.len()).unwrap_or(0);
    let mut out = Vec::with_capacity(HEADER + target_info.len());
    out.extend_from_slice(SIGNATURE);
    out.extend_from_slice(&CHALLENGE.to_le_bytes());
    out.extend_from_slice(&security_buffer(0));
    out.extend_from_slice(&flags.to_le_bytes());
    out.extend_from_slice(&message[24..32]);
    out.extend_from_slice(&[0; 8]);
    out.extend_from_slice(&security_buffer(info_len));
    out.extend_from_slice(&target_info[..usize::from(info_len)]);
    out
}

/// Whether `sspi` reads every field of this challenge: the whole header, the Version when
/// announced, and both payload fields inside the message.
fn is_readable(message: &[u8]) -> bool {
    let version = u32_at(message, 20).is_some_and(|f| f & NEGOTIATE_VERSION != 0);
    let needed = HEADER + if version { VERSION_LEN } else { 0 };
    message.len() >= needed && field(message, 12).is_some() && field(message, 40).is_some()
}

/// The payload a security buffer (length, allocated length, offset) at `at` points to, when
/// the header holds it and the payload lies inside the message.
fn field(message: &[u8], at: usize) -> Option<&[u8]> {
    let len = usize::from(u16::from_le_bytes(
        message.get(at..at + 2)?.try_into().ok()?,
    ));
    let offset = usize::try_from(u32_at(message, at + 4)?).ok()?;
    if at + 8 > HEADER.min(message.len()) {
        return None;
    }
    message.get(offset..offset.checked_add(len)?)
}

/// A security buffer of `len` bytes at the end of the 48-byte header.
fn security_buffer(len: u16) -> [u8; 8] {
    let mut buf = [0; 8];
    buf[..2].copy_from_slice(&len.to_le_bytes());
    buf[2..4].copy_from_slice(&len.to_le_bytes());
    buf[4..].copy_from_slice(&(HEADER as u32).to_le_bytes());
    buf
}

fn u32_at(message: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_le_bytes(
        message.get(at..at + 4)?.try_into().ok()?,
    ))
}

#[cfg(test)]
mod tests {
    use base64::Engine as _;

    use super::*;

    fn decode(b64: &str) -> Vec<u8> {
        base64::engine::general_purpose::STANDARD
            .decode(b64)
            .unwrap()
    }

    /// squid 5.7's `ntlm_fake_auth`: no TargetInfo, TargetName offset 0xaaaaaaae.
    const SQUID_FAKE: &str = "TlRMTVNTUAACAAAACQAJAK6qqqoGgggA7lOCOk54iuQAAAAAAAA6AFdPUktHUk9VUA==";

    #[test]
    fn squids_fake_challenge_keeps_flags_and_challenge_with_empty_fields() {
        let original = decode(SQUID_FAKE);
        let fixed = readable_challenge(original.clone());
        assert!(is_readable(&fixed), "{fixed:02x?}");
        assert_eq!(fixed.len(), HEADER + 4);
        assert_eq!(&fixed[20..24], &original[20..24], "the flags");
        assert_eq!(&fixed[24..32], &original[24..32], "the server's challenge");
        assert_eq!(field(&fixed, 12), Some(&[][..]), "no TargetName");
        assert_eq!(field(&fixed, 40), Some(&EMPTY_TARGET_INFO[..]));
    }

    #[test]
    fn an_ntlm_context_answers_squids_fake_challenge() {
        use crate::auth::{AuthScheme, AuthTarget, ConnectionContext, Credentials, Step};
        let password = Some("any".into());
        let dave = Credentials::new(
            AuthTarget::Proxy,
            AuthScheme::Ntlm,
            Some("DOM\\dave".into()),
            password,
        )
        .unwrap();
        let mut ctx = ConnectionContext::new(AuthScheme::Ntlm, &dave).unwrap();
        assert!(matches!(ctx.step(None), Ok(Step::Send(_))));
        let answer = ctx.step(Some(SQUID_FAKE));
        assert!(matches!(answer, Ok(Step::Send(_))), "{answer:?}");
        assert!(ctx.is_complete());
    }

    #[test]
    fn a_readable_challenge_passes_untouched() {
        let readable = readable_challenge(decode(SQUID_FAKE));
        assert_eq!(readable_challenge(readable.clone()), readable);
    }

    #[test]
    fn a_readable_target_info_is_kept_when_the_target_name_is_not() {
        let mut message = readable_challenge(decode(SQUID_FAKE));
        message.truncate(HEADER);
        let info = [2, 0, 4, 0, b'D', 0, b'M', 0, 0, 0, 0, 0];
        message[40..48].copy_from_slice(&security_buffer(info.len() as u16));
        message.extend_from_slice(&info);
        message[16..20].copy_from_slice(&0xdead_beef_u32.to_le_bytes());
        let fixed = readable_challenge(message);
        assert_eq!(field(&fixed, 40), Some(&info[..]));
        assert_eq!(field(&fixed, 12), Some(&[][..]));
    }

    proptest::proptest! {
        /// Whatever a server sends after the challenge's fixed part, the result never panics
        /// and is a challenge sspi can read, with the server's flags (less Version) and
        /// challenge.
        #[test]
        fn any_challenge_comes_out_readable(
            fixed in proptest::collection::vec(proptest::num::u8::ANY, 20),
            rest in proptest::collection::vec(proptest::num::u8::ANY, 0..80),
        ) {
            let mut message = SIGNATURE.to_vec();
            message.extend_from_slice(&CHALLENGE.to_le_bytes());
            message.extend_from_slice(&fixed);
            message.extend_from_slice(&rest);
            let fixed_up = readable_challenge(message.clone());
            proptest::prop_assert!(is_readable(&fixed_up));
            proptest::prop_assert_eq!(&fixed_up[24..32], &message[24..32]);
            let flags = u32_at(&message, 20).unwrap() & !NEGOTIATE_VERSION;
            proptest::prop_assert_eq!(u32_at(&fixed_up, 20).unwrap() & !NEGOTIATE_VERSION, flags);
        }
    }

    #[test]
    fn what_is_not_a_challenge_is_left_for_sspi_to_refuse() {
        for junk in [vec![], b"NTLMSSP\0\x01\0\0\0".to_vec(), vec![0xff; 64]] {
            assert_eq!(readable_challenge(junk.clone()), junk);
        }
    }
}
