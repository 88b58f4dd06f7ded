//! Wildcard matching: the one matcher behind IAM policies (Action, Resource, `StringLike`, `ArnLike`) and ALB
//! listener rules (host, path, header and query values). Each caller compiles its own syntax into [`Token`]s
//! (IAM: policy variables, ARN segments; ALB: backslash escapes) and decides how case is folded; this module
//! only matches.
//!
//! `*` matches any run of characters (possibly empty) and `?` exactly one character; either may be barred from
//! matching `:` (IAM's ARN rule: a wildcard stays inside its colon-separated segment). Patterns whose stars may
//! all match anything are matched greedily with one remembered star (linear in practice, no allocation: the
//! proxy's per-request path); patterns with a colon-bound star use a dynamic programme over (token, position),
//! O(pattern × text), never exponential.

/// One token of a compiled pattern.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Token {
    /// One byte of the pattern's UTF-8, compared as is (or ASCII-folded, see [`Wildcard::new`]).
    Byte(u8),
    /// `?`: exactly one character; `colon` says whether that character may be `:`.
    One { colon: bool },
    /// `*`: any run of characters, possibly empty; `colon` says whether the run may contain `:`.
    Star { colon: bool },
}

/// A compiled pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Wildcard {
    tokens: Box<[Token]>,
    fold_ascii: bool,
    /// Some star may not match `:` (matched by the dynamic programme).
    bounded: bool,
}

/// The length of the UTF-8 sequence a byte starts (1 for continuation bytes, which never start a match here).
fn utf8_width(lead: u8) -> usize {
    match lead {
        0xF0..=0xFF => 4,
        0xE0..=0xEF => 3,
        0xC0..=0xDF => 2,
        _ => 1,
    }
}

impl Wildcard {
    /// A pattern of `tokens`; with `fold_ascii`, ASCII letters match regardless of case (other characters
    /// exactly). Consecutive equal stars are merged: they match what one does.
    pub fn new(mut tokens: Vec<Token>, fold_ascii: bool) -> Wildcard {
        if fold_ascii {
            for t in &mut tokens {
                if let Token::Byte(b) = t {
                    *b = b.to_ascii_lowercase();
                }
            }
        }
        tokens.dedup_by(|a, b| matches!(a, Token::Star { .. }) && a == b);
        let bounded = tokens.contains(&Token::Star { colon: false });
        Wildcard { tokens: tokens.into(), fold_ascii, bounded }
    }

    fn byte_eq(&self, pattern: u8, text: u8) -> bool {
        pattern == if self.fold_ascii { text.to_ascii_lowercase() } else { text }
    }

    /// Does the whole of `text` match?
    pub fn matches(&self, text: &str) -> bool {
        if self.bounded { self.matches_table(text.as_bytes()) } else { self.matches_greedy(text.as_bytes()) }
    }

    /// Greedy matching, correct when every star may match anything: on a mismatch only the last star needs to
    /// absorb one more character.
    fn matches_greedy(&self, text: &[u8]) -> bool {
        let (mut p, mut t) = (0usize, 0usize);
        // The last star's token index and the text position it currently absorbs up to.
        let mut star: Option<(usize, usize)> = None;
        while t < text.len() {
            match self.tokens.get(p) {
                Some(Token::Star { .. }) => {
                    star = Some((p, t));
                    p += 1;
                    continue;
                }
                Some(Token::One { colon }) if *colon || text[t] != b':' => {
                    p += 1;
                    t += utf8_width(text[t]);
                    continue;
                }
                Some(Token::Byte(c)) if self.byte_eq(*c, text[t]) => {
                    p += 1;
                    t += 1;
                    continue;
                }
                _ => {}
            }
            match star {
                Some((sp, st)) => {
                    let next = st + utf8_width(text[st]);
                    star = Some((sp, next));
                    p = sp + 1;
                    t = next;
                }
                None => return false,
            }
        }
        self.tokens[p.min(self.tokens.len())..].iter().all(|t| matches!(t, Token::Star { .. }))
    }

    /// The dynamic programme: after each token, the set of text positions the pattern so far can end at.
    fn matches_table(&self, text: &[u8]) -> bool {
        let n = text.len();
        let mut cur = vec![false; n + 1];
        let mut next = vec![false; n + 1];
        cur[0] = true;
        for token in self.tokens.iter() {
            next.iter_mut().for_each(|b| *b = false);
            match *token {
                Token::Star { colon } => {
                    for j in 0..=n {
                        next[j] |= cur[j];
                        if next[j] && j < n && (colon || text[j] != b':') {
                            next[(j + utf8_width(text[j])).min(n)] = true;
                        }
                    }
                }
                Token::One { colon } => {
                    for j in 0..n {
                        if cur[j] && (colon || text[j] != b':') {
                            next[(j + utf8_width(text[j])).min(n)] = true;
                        }
                    }
                }
                Token::Byte(c) => {
                    for j in 0..n {
                        next[j + 1] = cur[j] && self.byte_eq(c, text[j]);
                    }
                }
            }
            std::mem::swap(&mut cur, &mut next);
            if !cur.iter().any(|b| *b) {
                return false;
            }
        }
        cur[n]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `*`/`?` match anything, `%`/`!` are their colon-bound forms.
    fn compile(pattern: &str) -> Wildcard {
        compile_folded(pattern, false)
    }

    fn compile_folded(pattern: &str, fold_ascii: bool) -> Wildcard {
        let tokens = pattern
            .bytes()
            .map(|b| match b {
                b'*' => Token::Star { colon: true },
                b'?' => Token::One { colon: true },
                b'%' => Token::Star { colon: false },
                b'!' => Token::One { colon: false },
                b => Token::Byte(b),
            })
            .collect();
        Wildcard::new(tokens, fold_ascii)
    }

    #[test]
    fn stars_and_ones_with_and_without_colons() {
        let cases = [
            ("", "", true),
            ("", "x", false),
            ("*", "", true),
            ("*", "a:b/c", true),
            ("a*c", "abbbc", true),
            ("a*c", "abbb", false),
            ("*a*b*c*", "xxaxxbxxcxx", true),
            ("*a*b*c*", "xxaxxcxxbxx", false),
            ("a**b", "ab", true),
            ("a?c", "abc", true),
            ("a?c", "ac", false),
            ("a?c", "a:c", true),
            ("a!c", "a:c", false),
            ("a!c", "abc", true),
            ("a%c", "abbc", true),
            ("a%c", "ab:bc", false),
            ("a%:%c", "ab:bc", true),
            ("%:*", "x:y:z", true),
            ("%:%", "x:y:z", false),
            ("*%c", "a:bc", true),
            ("%*c", "a:bc", true),
            // `?` is one character, not one byte.
            ("/é?", "/éü", true),
            ("/?", "/é", true),
            ("/??", "/é", false),
            ("/%", "/éü", true),
            ("/!!", "/éü", true),
            ("/!", "/éü", false),
        ];
        for (pattern, text, want) in cases {
            let w = compile(pattern);
            assert_eq!(w.matches(text), want, "{pattern:?} vs {text:?}");
            if !w.bounded {
                assert_eq!(w.matches_table(text.as_bytes()), want, "the table agrees: {pattern:?} vs {text:?}");
            }
        }
    }

    #[test]
    fn ascii_folding_is_decided_at_compile_time() {
        assert!(compile_folded("*.Example.COM", true).matches("www.example.com"));
        assert!(compile_folded("*.example.com", true).matches("WWW.EXAMPLE.COM"));
        assert!(!compile_folded("/Path", false).matches("/path"));
        // Only ASCII folds: the Kelvin sign is not a `k`.
        assert!(!compile_folded("k.example.com", true).matches("\u{212A}.example.com"));
    }

    #[test]
    fn pathological_patterns_stay_fast() {
        let p = "*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*b".repeat(10);
        let t = "a".repeat(2000);
        assert!(!compile(&p).matches(&t));
        assert!(!compile(&p.replace('*', "%")).matches(&t));
    }
}
