//! Basic (RFC 7617): `Basic base64(user ":" password)`, always UTF-8.

use base64::Engine as _;
use zeroize::Zeroizing;

use super::Secret;

/// The `Authorization` (or `Proxy-Authorization`) value for Basic: `Basic ` and the base64 of
/// the UTF-8 bytes of `user:password`.
///
/// UTF-8 is the only `charset` RFC 7617 §2.1 defines, and what servers announcing
/// `charset="UTF-8"` expect; a server that announces nothing gets UTF-8 too (plain ASCII is the
/// same either way). [`super::Credentials::new`] has already refused a user name holding `:`
/// (the server would split there) and control characters. The value is a [`Secret`]: it is the
/// password, merely encoded.
pub fn basic_authorization(user: &str, password: &Secret) -> Secret {
    let plain = Zeroizing::new(format!("{user}:{}", password.expose()));
    let mut value = String::with_capacity(6 + plain.len().div_ceil(3) * 4);
    value.push_str("Basic ");
    base64::engine::general_purpose::STANDARD.encode_string(plain.as_bytes(), &mut value);
    Secret::new(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc7617_example_aladdin() {
        let value = basic_authorization("Aladdin", &Secret::from("open sesame"));
        assert_eq!(value.expose(), "Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ==");
    }

    #[test]
    fn rfc7617_utf8_example() {
        // RFC 7617 §2.1: user "test", password "123£" in UTF-8.
        let value = basic_authorization("test", &Secret::from("123\u{A3}"));
        assert_eq!(value.expose(), "Basic dGVzdDoxMjPCow==");
    }

    #[test]
    fn basic_value_is_a_secret_in_debug() {
        let value = basic_authorization("u", &Secret::from("p"));
        assert_eq!(format!("{value:?}"), "***");
    }
}
