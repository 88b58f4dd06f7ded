//! Opaque pagination tokens: the key a page stopped at, hex-encoded so that a client echoes it back unchanged.
//! A token that does not decode is the caller's error to report (each service words it its own way).

/// The token for a page that stopped before `key`.
pub(crate) fn encode(key: &str) -> String {
    hex::encode(key)
}

/// The key a token names, or `None` when it is not one of ours.
pub(crate) fn decode(t: &str) -> Option<String> {
    String::from_utf8(hex::decode(t).ok()?).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_round_trip_and_refuse_strangers() {
        for key in ["", "a", "/aws/ecs/default/web-1a2b", "ünï"] {
            assert_eq!(decode(&encode(key)).as_deref(), Some(key));
        }
        for bad in ["0", "zz", "ff", "c3"] {
            assert_eq!(decode(bad), None, "{bad}");
        }
    }
}
