//! Percent-encoding as AWS and ALB spell it (RFC 3986), on the `percent-encoding` crate: the one home for
//! every crate that writes or reads `%XX` (SigV4's canonical request, the Query protocol, IAM's encoded
//! policy documents, the proxy's query rules and its own requests).

use std::borrow::Cow;

use percent_encoding::{AsciiSet, NON_ALPHANUMERIC};

/// Everything but RFC 3986's unreserved characters (`A-Z a-z 0-9 - . _ ~`).
const RESERVED: &AsciiSet = &NON_ALPHANUMERIC.remove(b'-').remove(b'.').remove(b'_').remove(b'~');
/// The same, but `/` stays (SigV4's canonical URI).
const RESERVED_BUT_SLASH: &AsciiSet = &RESERVED.remove(b'/');

/// `%XX` (upper-case hex) for every byte but the unreserved characters, and for `/` unless `keep_slash`.
pub fn encode(bytes: &[u8], keep_slash: bool) -> String {
    percent_encoding::percent_encode(bytes, if keep_slash { RESERVED_BUT_SLASH } else { RESERVED }).to_string()
}

/// `%XX` decoded, as UTF-8 (invalid sequences replaced); an invalid escape stays as it is, `+` stays a `+`.
pub fn decode_lossy(s: &str) -> Cow<'_, str> {
    percent_encoding::percent_decode_str(s).decode_utf8_lossy()
}

/// A form-encoded value (query strings, `application/x-www-form-urlencoded` bodies): `+` is a space, `%XX`
/// is decoded and an invalid escape stays as it is.
pub fn decode_form(s: &[u8]) -> Vec<u8> {
    let spaced: Vec<u8> = s.iter().map(|&b| if b == b'+' { b' ' } else { b }).collect();
    percent_encoding::percent_decode(&spaced).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_all_but_the_unreserved_characters() {
        assert_eq!(encode(r#"{"A":"b c/é~"}"#.as_bytes(), false), "%7B%22A%22%3A%22b%20c%2F%C3%A9~%22%7D");
        assert_eq!(encode(b"/a b/-._~*", true), "/a%20b/-._~%2A");
        assert_eq!(encode(b"p1 x/y", false), "p1%20x%2Fy");
    }

    #[test]
    fn decodes_valid_escapes_and_keeps_invalid_ones() {
        assert_eq!(decode_form(b"%zz%4"), b"%zz%4");
        assert_eq!(decode_form(b"%41%"), b"A%");
        assert_eq!(decode_form(b"a+b%2Bc%20d"), b"a b+c d");
        assert_eq!(decode_lossy("a+b%2Fc"), "a+b/c");
        assert!(matches!(decode_lossy("plain"), Cow::Borrowed("plain")));
        assert_eq!(decode_lossy("%FF%41"), "\u{FFFD}A");
    }
}
