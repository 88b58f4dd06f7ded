//! Offset pagination: the one helper behind every API whose token is a position in a stable listing (ECS,
//! EC2, ELBv2 and IAM; Secrets Manager, SSM and CloudWatch Logs page after a key instead, with `token.rs`). Each
//! API keeps only its own limits and wording.

use std::ops::RangeInclusive;

/// A token that is not an offset.
#[derive(Debug)]
pub(crate) struct BadToken;

/// The page size a request asks for: `default` when absent, the value when within `range`, else `Err(value)`.
pub(crate) fn size(asked: Option<i32>, default: usize, range: RangeInclusive<i32>) -> Result<usize, i32> {
    match asked {
        None => Ok(default),
        Some(m) if range.contains(&m) => Ok(m as usize),
        Some(m) => Err(m),
    }
}

/// One page of `items` from offset `token` (none: the start), at most `size`, and the next page's token when
/// more remain.
pub(crate) fn offset_page<T>(
    items: Vec<T>,
    token: Option<&str>,
    size: usize,
) -> Result<(Vec<T>, Option<String>), BadToken> {
    let start: usize = match token {
        None => 0,
        Some(t) => t.parse().map_err(|_| BadToken)?,
    };
    let total = items.len();
    let page: Vec<T> = items.into_iter().skip(start).take(size).collect();
    let next = (start.saturating_add(size) < total).then(|| (start + size).to_string());
    Ok((page, next))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pages_walk_the_listing_once() {
        let items: Vec<u32> = (0..7).collect();
        let (a, next) = offset_page(items.clone(), None, 3).expect("first");
        assert_eq!((a, next.as_deref()), (vec![0, 1, 2], Some("3")));
        let (b, next) = offset_page(items.clone(), Some("3"), 3).expect("second");
        assert_eq!((b, next.as_deref()), (vec![3, 4, 5], Some("6")));
        let (c, next) = offset_page(items.clone(), Some("6"), 3).expect("last");
        assert_eq!((c, next), (vec![6], None));
        assert!(offset_page(items, Some("x"), 3).is_err());
        assert_eq!(size(None, 100, 1..=100), Ok(100));
        assert_eq!(size(Some(5), 100, 1..=100), Ok(5));
        assert_eq!(size(Some(0), 100, 1..=100), Err(0));
    }
}
