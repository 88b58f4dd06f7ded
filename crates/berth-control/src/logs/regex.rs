//! The regular expressions CloudWatch Logs filter patterns accept between `%...%`: letters, digits, the symbols
//! `_ # = @ / ; , - :` and space as literals, and the operators `^ $ ? [ ] { } | \ * + .` (no parentheses, no
//! multi-byte characters), as AWS documents them. A match is a search (anywhere in the text) unless anchored.
//!
//! Without groups, a branch is a sequence of (atom, repetition) items, so matching simulates the automaton over
//! (item, repetitions so far) states, one pass over the text: no backtracking, linear in the text's length.

/// A parsed expression: alternatives (`|`).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Regex {
    branches: Vec<Branch>,
}

#[derive(Debug, Clone, PartialEq)]
struct Branch {
    start: bool,
    end: bool,
    items: Vec<Item>,
}

#[derive(Debug, Clone, PartialEq)]
struct Item {
    atom: Atom,
    min: u32,
    /// `None`: unbounded.
    max: Option<u32>,
}

#[derive(Debug, Clone, PartialEq)]
enum Atom {
    Any,
    Char(char),
    Class { negated: bool, ranges: Vec<(char, char)> },
}

impl Atom {
    fn matches(&self, c: char) -> bool {
        match self {
            Atom::Any => c != '\n',
            Atom::Char(x) => *x == c,
            Atom::Class { negated, ranges } => ranges.iter().any(|(a, b)| (*a..=*b).contains(&c)) != *negated,
        }
    }
}

const MAX_REPEAT: u32 = 1000;

fn class(negated: bool, ranges: &[(char, char)]) -> Atom {
    Atom::Class { negated, ranges: ranges.to_vec() }
}

/// `\d`, `\w`, `\s` and their negations, or an escaped symbol.
fn escape(c: char) -> Result<Atom, String> {
    const DIGIT: &[(char, char)] = &[('0', '9')];
    const WORD: &[(char, char)] = &[('0', '9'), ('A', 'Z'), ('a', 'z'), ('_', '_')];
    const SPACE: &[(char, char)] = &[(' ', ' '), ('\t', '\r')];
    Ok(match c {
        'd' => class(false, DIGIT),
        'D' => class(true, DIGIT),
        'w' => class(false, WORD),
        'W' => class(true, WORD),
        's' => class(false, SPACE),
        'S' => class(true, SPACE),
        'n' => Atom::Char('\n'),
        't' => Atom::Char('\t'),
        c if c.is_ascii_punctuation() || c == ' ' => Atom::Char(c),
        c => return Err(format!("the escape \\{c} is not supported")),
    })
}

fn literal_ok(c: char) -> bool {
    c.is_ascii_alphanumeric() || "_#=@/;,-: ".contains(c)
}

impl Regex {
    pub(crate) fn parse(src: &str) -> Result<Regex, String> {
        if src.is_empty() {
            return Err("an empty regular expression".into());
        }
        if !src.is_ascii() {
            return Err("multi-byte characters are not supported in regular expressions".into());
        }
        let chars: Vec<char> = src.chars().collect();
        let mut branches = Vec::new();
        let mut i = 0;
        loop {
            let (branch, next) = Self::branch(&chars, i)?;
            branches.push(branch);
            match chars.get(next) {
                Some('|') => i = next + 1,
                _ => break,
            }
        }
        Ok(Regex { branches })
    }

    /// One alternative from `chars[i]` up to a top-level `|` or the end; returns it and where it stopped.
    fn branch(chars: &[char], mut i: usize) -> Result<(Branch, usize), String> {
        let mut b = Branch { start: false, end: false, items: Vec::new() };
        if chars.get(i) == Some(&'^') {
            b.start = true;
            i += 1;
        }
        while i < chars.len() && chars[i] != '|' {
            let c = chars[i];
            if b.end {
                return Err("'$' must end the expression (or an alternative)".into());
            }
            let atom = match c {
                '$' => {
                    b.end = true;
                    i += 1;
                    continue;
                }
                '.' => Atom::Any,
                '\\' => {
                    i += 1;
                    escape(*chars.get(i).ok_or("a trailing '\\'")?)?
                }
                '[' => {
                    let (atom, next) = Self::class(chars, i + 1)?;
                    i = next;
                    atom
                }
                '*' | '+' | '?' | '{' => {
                    let Some(last) = b.items.last_mut() else {
                        return Err(format!("'{c}' repeats nothing"));
                    };
                    if (last.min, last.max) != (1, Some(1)) {
                        return Err(format!("'{c}' after a repetition is not supported"));
                    }
                    let (min, max, next) = match c {
                        '*' => (0, None, i + 1),
                        '+' => (1, None, i + 1),
                        '?' => (0, Some(1), i + 1),
                        _ => Self::braces(chars, i + 1)?,
                    };
                    last.min = min;
                    last.max = max;
                    i = next;
                    continue;
                }
                '(' | ')' => return Err("parentheses are not supported in regular expressions".into()),
                '^' => return Err("'^' must start the expression (or an alternative)".into()),
                c if literal_ok(c) => Atom::Char(c),
                c => return Err(format!("the character '{c}' is not supported in regular expressions")),
            };
            b.items.push(Item { atom, min: 1, max: Some(1) });
            i += 1;
        }
        if b.items.is_empty() && !b.start && !b.end {
            return Err("an empty alternative".into());
        }
        Ok((b, i))
    }

    /// `[...]` from after the `[`; returns the class and the index after the `]`.
    fn class(chars: &[char], mut i: usize) -> Result<(Atom, usize), String> {
        let negated = chars.get(i) == Some(&'^');
        if negated {
            i += 1;
        }
        let mut ranges = Vec::new();
        let mut first = true;
        loop {
            let c = *chars.get(i).ok_or("a '[' is not closed")?;
            if c == ']' && !first {
                return Ok((Atom::Class { negated, ranges }, i));
            }
            first = false;
            let lo = if c == '\\' {
                i += 1;
                match escape(*chars.get(i).ok_or("a trailing '\\'")?)? {
                    Atom::Char(x) => x,
                    Atom::Class { negated: false, ranges: r } => {
                        ranges.extend(r);
                        i += 1;
                        continue;
                    }
                    _ => return Err("negated classes inside [...] are not supported".into()),
                }
            } else {
                c
            };
            if chars.get(i + 1) == Some(&'-') && chars.get(i + 2).is_some_and(|c| *c != ']') {
                let hi = chars[i + 2];
                if hi < lo {
                    return Err(format!("the range {lo}-{hi} is reversed"));
                }
                ranges.push((lo, hi));
                i += 3;
            } else {
                ranges.push((lo, lo));
                i += 1;
            }
        }
    }

    /// `{n}`, `{n,}` or `{n,m}` from after the `{`.
    fn braces(chars: &[char], i: usize) -> Result<(u32, Option<u32>, usize), String> {
        let close = chars[i..].iter().position(|c| *c == '}').ok_or("a '{' is not closed")? + i;
        let body: String = chars[i..close].iter().collect();
        let num = |s: &str| -> Result<u32, String> {
            match s.trim().parse::<u32>() {
                Ok(n) if n <= MAX_REPEAT => Ok(n),
                _ => Err(format!("invalid repetition {{{body}}}")),
            }
        };
        let (min, max) = match body.split_once(',') {
            None => {
                let n = num(&body)?;
                (n, Some(n))
            }
            Some((a, "")) => (num(a)?, None),
            Some((a, b)) => (num(a)?, Some(num(b)?)),
        };
        if max.is_some_and(|m| m < min) {
            return Err(format!("invalid repetition {{{body}}}"));
        }
        Ok((min, max, close + 1))
    }

    /// Whether the expression matches anywhere in `text`.
    pub(crate) fn is_match(&self, text: &str) -> bool {
        self.branches.iter().any(|b| b.is_match(text))
    }
}

impl Branch {
    fn is_match(&self, text: &str) -> bool {
        let n = self.items.len();
        // State (item, repetitions so far); an unbounded item's count is capped at its minimum.
        let cap = |it: &Item| it.max.unwrap_or(it.min) as usize;
        let mut offset = Vec::with_capacity(n + 1);
        let mut total = 0;
        for it in &self.items {
            offset.push(total);
            total += cap(it) + 1;
        }
        offset.push(total);
        let accept = total;
        let index = |i: usize, c: usize| if i == n { accept } else { offset[i] + c };

        // Adds a state and everything reachable from it without reading.
        let add = |set: &mut Vec<(usize, usize)>, seen: &mut Vec<bool>, i: usize, c: usize| {
            let mut stack = vec![(i, c)];
            while let Some((i, c)) = stack.pop() {
                let k = index(i, c);
                if seen[k] {
                    continue;
                }
                seen[k] = true;
                set.push((i, c));
                if i < n && c >= self.items[i].min as usize {
                    stack.push((i + 1, 0));
                }
            }
        };
        let mut seen = vec![false; total + 1];
        let mut current: Vec<(usize, usize)> = Vec::new();
        let chars: Vec<char> = text.chars().collect();
        for pos in 0..=chars.len() {
            if !self.start || pos == 0 {
                add(&mut current, &mut seen, 0, 0);
            }
            if seen[accept] && (!self.end || pos == chars.len()) {
                return true;
            }
            let Some(&ch) = chars.get(pos) else { break };
            let mut next = Vec::new();
            let mut next_seen = vec![false; total + 1];
            for &(i, c) in &current {
                if i == n {
                    continue;
                }
                let it = &self.items[i];
                if it.max.is_some_and(|m| c >= m as usize) || !it.atom.matches(ch) {
                    continue;
                }
                let c2 = if it.max.is_none() { (c + 1).min(it.min as usize) } else { c + 1 };
                add(&mut next, &mut next_seen, i, c2);
            }
            if next.is_empty() && self.start {
                return false;
            }
            current = next;
            seen = next_seen;
        }
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_as_documented_and_as_regexes_do() {
        // (expression, text, expected)
        let cases: &[(&str, &str, bool)] = &[
            // AWS's examples.
            ("AUTHORIZED", "[ERROR 401] UNAUTHORIZED REQUEST", true),
            ("AUTHORIZED", "[SUCCESS 200] AUTHORIZED REQUEST", true),
            ("AUTHORIZED", "[ERROR 400] BAD REQUEST", false),
            ("ERROR 4[0-9]{2}", "[ERROR 419] MISSING ARGUMENTS", true),
            ("ERROR 4[0-9]{2}", "[ERROR 5] x", false),
            ("gray|grey", "a grey cat", true),
            ("gray|grey", "a green cat", false),
            ("colou?r", "color", true),
            ("colou?r", "colour", true),
            ("colou?r", "colouur", false),
            ("10\\.10\\.0\\.1", "from 10.10.0.1:80", true),
            ("10\\.10\\.0\\.1", "from 10x10.0.1", false),
            ("^ERROR", "ERROR at start", true),
            ("^ERROR", "an ERROR", false),
            ("done$", "all done", true),
            ("done$", "done all", false),
            ("^a+$", "aaaa", true),
            ("^a+$", "aaab", false),
            ("^$", "", true),
            ("^$", "x", false),
            ("a.c", "abc", true),
            ("a.c", "ac", false),
            ("a*b", "b", true),
            ("x{2,3}y", "xxy", true),
            ("x{2,3}y", "xy", false),
            ("^x{2,3}y", "xxxxy", false),
            ("x{2,}y", "xxxxxy", true),
            ("[^0-9]+", "123", false),
            ("[^0-9]+", "12a3", true),
            ("\\d{3}", "code 404!", true),
            ("\\d{3}", "code 44!", false),
            ("\\w+@\\w+", "mail me: a@b", true),
            ("\\s", "nospace", false),
            ("[a-c\\d]x", "9x", true),
            ("^ab|cd$", "xcd", true),
            ("^ab|cd$", "xab", false),
            // Pathological for backtracking engines, linear here.
            ("^(a*)*b", "x", false),
        ];
        for (re, text, want) in cases {
            match Regex::parse(re) {
                Ok(r) => assert_eq!(r.is_match(text), *want, "%{re}% on {text:?}"),
                Err(e) if re.contains('(') => assert!(e.contains("parentheses"), "{e}"),
                Err(e) => panic!("%{re}%: {e}"),
            }
        }
        let long = format!("{}b", "a".repeat(100_000));
        let r = Regex::parse("a*a*a*a*a*c").expect("parse");
        assert!(!r.is_match(&long));
    }

    #[test]
    fn unsupported_expressions_are_refused() {
        for bad in [
            "",
            "something!",
            "(a)",
            "a|",
            "*a",
            "a**",
            "a{2",
            "a{3,1}",
            "a{5000}",
            "[a-",
            "[z-a]",
            "a$b",
            "b^a",
            "é",
            "\\q",
            "a*?",
        ] {
            assert!(Regex::parse(bad).is_err(), "{bad:?}");
        }
    }
}
