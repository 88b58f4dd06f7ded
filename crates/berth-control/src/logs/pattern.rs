//! CloudWatch Logs filter patterns: parsed once, matched against each event's message. Pure.
//!
//! Three forms, as AWS documents them (case-sensitive throughout):
//! - Unstructured terms: `ERROR`, `ERROR ARGUMENTS` (all terms), `"INVALID ARGUMENTS"` (an exact phrase),
//!   `ERROR -ARGUMENTS` (exclusion), `?ERROR ?WARN` (any of the terms). A term matches a whole word: it is not
//!   preceded or followed by a letter, digit or `_` in the message. The empty pattern matches every event.
//! - JSON: `{ $.eventType = "UpdateTrail" }`, `{ $.latency > 500 }`, `{ $.arrayKey[0] = "value" }`,
//!   `{ $.ip != 123.123.* }` (`*` is a wildcard in string values), `IS TRUE`/`IS FALSE`/`IS NULL`, `EXISTS`,
//!   `NOT EXISTS`, combined with `&&`, `||` and parentheses. Events that are not a JSON object never match.
//! - Space-delimited: `[ip, user, ..., status_code = 4*, bytes > 1000]` over fields split at spaces, where text in
//!   `"..."` or `[...]` is one field; `...` stands for any number of fields, and a field's conditions may be
//!   combined with `&&` and `||`.
//!
//! - Regular expressions between `%`: the whole pattern (`%AUTHORIZED%` searches the message), or a value in a
//!   JSON or space-delimited comparison (`{ $.code = %^4\d\d$% }`, at most two per pattern), in AWS's subset
//!   ([`super::regex`]).
//!
//! Anything else is refused with a reason, never matched loosely.

use serde_json::Value;

use super::regex::Regex;

/// Regular expressions allowed in one JSON or space-delimited pattern, as AWS limits them.
const MAX_REGEXES: usize = 2;

/// A parsed filter pattern.
#[derive(Debug, Clone, PartialEq)]
pub struct Pattern(Form);

#[derive(Debug, Clone, PartialEq)]
enum Form {
    /// Terms: every `all` term, none of `none`, and one of `any` when there are some.
    Terms {
        all: Vec<String>,
        none: Vec<String>,
        any: Vec<String>,
    },
    Json(Expr),
    Delimited(Vec<Field>),
    Regex(Regex),
}

impl Pattern {
    /// Parses a filter pattern; the error says what is wrong.
    pub fn parse(pattern: &str) -> Result<Pattern, String> {
        let p = pattern.trim();
        if p.len() > 1024 {
            return Err("a filter pattern can have at most 1024 characters".into());
        }
        if p.starts_with('{') {
            return json::parse(p).map(|e| Pattern(Form::Json(e)));
        }
        if p.starts_with('[') {
            return delimited::parse(p).map(|f| Pattern(Form::Delimited(f)));
        }
        if let Some(inner) = p.strip_prefix('%').and_then(|r| r.strip_suffix('%')) {
            return Regex::parse(inner)
                .map(|r| Pattern(Form::Regex(r)))
                .map_err(|e| format!("regular expression: {e}"));
        }
        terms(p)
    }

    /// Whether an event with this message matches.
    pub fn matches(&self, message: &str) -> bool {
        match &self.0 {
            Form::Terms { all, none, any } => {
                all.iter().all(|t| contains_word(message, t))
                    && !none.iter().any(|t| contains_word(message, t))
                    && (any.is_empty() || any.iter().any(|t| contains_word(message, t)))
            }
            Form::Json(e) => match serde_json::from_str::<Value>(message.trim()) {
                Ok(v @ Value::Object(_)) => e.eval(&v),
                _ => false,
            },
            Form::Delimited(fields) => delimited::matches(fields, message),
            Form::Regex(r) => r.is_match(message),
        }
    }
}

fn is_word(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

/// Whether `term` occurs in `message` not glued to a word character on a side where the term itself starts or
/// ends with one.
fn contains_word(message: &str, term: &str) -> bool {
    if term.is_empty() {
        return true;
    }
    let starts_word = term.chars().next().is_some_and(is_word);
    let ends_word = term.chars().next_back().is_some_and(is_word);
    message.match_indices(term).any(|(i, _)| {
        let before = message[..i].chars().next_back();
        let after = message[i + term.len()..].chars().next();
        let glued_before = starts_word && before.is_some_and(is_word);
        let glued_after = ends_word && after.is_some_and(is_word);
        !glued_before && !glued_after
    })
}

/// Reads a `"..."` string starting at `chars[*i] == '"'`, with `\"` and `\\` escapes.
fn quoted(chars: &[char], i: &mut usize) -> Result<String, String> {
    let mut out = String::new();
    *i += 1;
    while *i < chars.len() {
        match chars[*i] {
            '"' => {
                *i += 1;
                return Ok(out);
            }
            '\\' if *i + 1 < chars.len() && matches!(chars[*i + 1], '"' | '\\') => {
                out.push(chars[*i + 1]);
                *i += 2;
            }
            c => {
                out.push(c);
                *i += 1;
            }
        }
    }
    Err("a quoted term is not closed".into())
}

fn terms(p: &str) -> Result<Pattern, String> {
    let chars: Vec<char> = p.chars().collect();
    let (mut all, mut none, mut any) = (Vec::new(), Vec::new(), Vec::new());
    let mut i = 0;
    while i < chars.len() {
        if chars[i].is_whitespace() {
            i += 1;
            continue;
        }
        let kind = match chars[i] {
            '-' | '?' if i + 1 < chars.len() && !chars[i + 1].is_whitespace() => {
                i += 1;
                chars[i - 1]
            }
            _ => ' ',
        };
        let term = if chars[i] == '"' {
            quoted(&chars, &mut i)?
        } else {
            let start = i;
            while i < chars.len() && !chars[i].is_whitespace() {
                if chars[i] == '"' {
                    return Err(format!("unexpected quote in term at position {i}"));
                }
                i += 1;
            }
            let t: String = chars[start..i].iter().collect();
            if t.starts_with('%') {
                return Err("a regular expression (%...%) must be the whole pattern".into());
            }
            if let Some(c) = t.chars().find(|c| "{}[]()%".contains(*c)) {
                return Err(format!("'{c}' in the term '{t}': quote terms that contain symbols"));
            }
            t
        };
        if term.is_empty() {
            return Err("empty quoted term".into());
        }
        match kind {
            '-' => none.push(term),
            '?' => any.push(term),
            _ => all.push(term),
        }
    }
    if !any.is_empty() && (!all.is_empty() || !none.is_empty()) {
        return Err("?term (any of) cannot be combined with plain or -terms in one pattern".into());
    }
    Ok(Pattern(Form::Terms { all, none, any }))
}

/// `*`-wildcard matching of a whole string.
fn glob(pattern: &str, text: &str) -> bool {
    use berth_core::wildcard::{Token, Wildcard};
    let tokens =
        pattern.bytes().map(|b| if b == b'*' { Token::Star { colon: true } } else { Token::Byte(b) }).collect();
    Wildcard::new(tokens, false).matches(text)
}

/// A comparison operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
}

/// A value to compare with: a number, a string that may hold `*` wildcards, or a regular expression.
#[derive(Debug, Clone, PartialEq)]
enum Operand {
    Number(f64),
    Text(String),
    Regex(Regex),
}

impl Operand {
    /// A bare or quoted value: unquoted numbers are numbers.
    fn new(text: String, was_quoted: bool) -> Operand {
        match text.parse::<f64>() {
            Ok(n) if !was_quoted && n.is_finite() => Operand::Number(n),
            _ => Operand::Text(text),
        }
    }

    /// Compares a field's value (its text, and its number when it is one) with this operand.
    fn compare(&self, op: Op, text: &str, number: Option<f64>) -> bool {
        match (self, op) {
            (Operand::Number(n), _) => {
                let Some(v) = number else { return false };
                match op {
                    Op::Eq => v == *n,
                    Op::Ne => v != *n,
                    Op::Lt => v < *n,
                    Op::Le => v <= *n,
                    Op::Gt => v > *n,
                    Op::Ge => v >= *n,
                }
            }
            (Operand::Text(p), Op::Eq) => glob(p, text),
            (Operand::Text(p), Op::Ne) => !glob(p, text),
            (Operand::Regex(r), Op::Eq) => r.is_match(text),
            (Operand::Regex(r), Op::Ne) => !r.is_match(text),
            // Checked at parse time: strings and expressions only compare with = and !=.
            (Operand::Text(_) | Operand::Regex(_), _) => false,
        }
    }
}

fn op_of(s: &str) -> Option<Op> {
    Some(match s {
        "=" => Op::Eq,
        "!=" => Op::Ne,
        "<" => Op::Lt,
        "<=" => Op::Le,
        ">" => Op::Gt,
        ">=" => Op::Ge,
        _ => return None,
    })
}

/// A JSON pattern's condition tree.
#[derive(Debug, Clone, PartialEq)]
enum Expr {
    And(Box<Expr>, Box<Expr>),
    Or(Box<Expr>, Box<Expr>),
    Compare(Vec<Step>, Op, Operand),
    IsTrue(Vec<Step>, bool),
    IsNull(Vec<Step>),
    Exists(Vec<Step>, bool),
}

/// A selector step: `.key` or `[index]`.
#[derive(Debug, Clone, PartialEq)]
enum Step {
    Key(String),
    Index(usize),
}

impl Expr {
    fn eval(&self, doc: &Value) -> bool {
        let select = |path: &[Step]| {
            path.iter().try_fold(doc, |v, s| match s {
                Step::Key(k) => v.get(k.as_str()),
                Step::Index(i) => v.get(*i),
            })
        };
        match self {
            Expr::And(a, b) => a.eval(doc) && b.eval(doc),
            Expr::Or(a, b) => a.eval(doc) || b.eval(doc),
            Expr::Compare(path, op, operand) => match select(path) {
                Some(Value::String(s)) => operand.compare(*op, s, None),
                Some(Value::Number(n)) => operand.compare(*op, &n.to_string(), n.as_f64()),
                Some(Value::Bool(b)) => operand.compare(*op, if *b { "true" } else { "false" }, None),
                _ => false,
            },
            Expr::IsTrue(path, want) => select(path) == Some(&Value::Bool(*want)),
            Expr::IsNull(path) => select(path) == Some(&Value::Null),
            Expr::Exists(path, want) => select(path).is_some() == *want,
        }
    }
}

mod json {
    //! `{ ... }` patterns.

    use super::{Expr, MAX_REGEXES, Op, Operand, Regex, Step, op_of, quoted};

    #[derive(Debug, Clone, PartialEq)]
    enum Tok {
        Open,
        Close,
        And,
        Or,
        Op(Op),
        Selector(Vec<Step>),
        /// A value, and whether it was quoted.
        Value(String, bool),
        /// `%...%`.
        Regex(String),
        Word(String),
    }

    fn lex(p: &str) -> Result<Vec<Tok>, String> {
        let chars: Vec<char> = p.chars().collect();
        let mut out = Vec::new();
        let mut i = 0;
        while i < chars.len() {
            let c = chars[i];
            let next = chars.get(i + 1).copied();
            match c {
                _ if c.is_whitespace() => i += 1,
                '(' => {
                    out.push(Tok::Open);
                    i += 1
                }
                ')' => {
                    out.push(Tok::Close);
                    i += 1
                }
                '&' if next == Some('&') => {
                    out.push(Tok::And);
                    i += 2
                }
                '|' if next == Some('|') => {
                    out.push(Tok::Or);
                    i += 2
                }
                '=' | '!' | '<' | '>' => {
                    let two: String = chars[i..(i + 2).min(chars.len())].iter().collect();
                    let (op, n) = match op_of(&two) {
                        Some(op) => (op, 2),
                        None => (op_of(&c.to_string()).ok_or_else(|| format!("unknown operator '{c}'"))?, 1),
                    };
                    out.push(Tok::Op(op));
                    i += n;
                }
                '"' => {
                    let s = quoted(&chars, &mut i)?;
                    out.push(Tok::Value(s, true));
                }
                '%' => {
                    let end = chars[i + 1..].iter().position(|c| *c == '%').ok_or("a '%' expression is not closed")?;
                    out.push(Tok::Regex(chars[i + 1..i + 1 + end].iter().collect()));
                    i += end + 2;
                }
                '$' => out.push(Tok::Selector(selector(&chars, &mut i)?)),
                _ => {
                    let start = i;
                    while i < chars.len() && !chars[i].is_whitespace() && !"()=!<>&|\"".contains(chars[i]) {
                        i += 1;
                    }
                    let w: String = chars[start..i].iter().collect();
                    if w.is_empty() {
                        return Err(format!("unexpected '{c}'"));
                    }
                    out.push(Tok::Word(w));
                }
            }
        }
        Ok(out)
    }

    /// `$` followed by `.key` and `[n]` steps.
    fn selector(chars: &[char], i: &mut usize) -> Result<Vec<Step>, String> {
        *i += 1;
        let mut steps = Vec::new();
        loop {
            match chars.get(*i) {
                Some('.') => {
                    *i += 1;
                    let start = *i;
                    while *i < chars.len() && (chars[*i].is_alphanumeric() || "_-@:".contains(chars[*i])) {
                        *i += 1;
                    }
                    if start == *i {
                        return Err("a selector step '.' must name a key ($.key; wildcards are not supported)".into());
                    }
                    steps.push(Step::Key(chars[start..*i].iter().collect()));
                }
                Some('[') => {
                    *i += 1;
                    let start = *i;
                    while *i < chars.len() && chars[*i].is_ascii_digit() {
                        *i += 1;
                    }
                    let n: String = chars[start..*i].iter().collect();
                    if chars.get(*i) != Some(&']') || n.is_empty() {
                        return Err("an array index must be [number]".into());
                    }
                    *i += 1;
                    steps.push(Step::Index(n.parse().map_err(|_| "array index too large".to_string())?));
                }
                _ => break,
            }
        }
        if steps.is_empty() {
            return Err("a selector must start with $. or $[".into());
        }
        Ok(steps)
    }

    struct Parser {
        toks: Vec<Tok>,
        pos: usize,
    }

    impl Parser {
        fn peek(&self) -> Option<&Tok> {
            self.toks.get(self.pos)
        }
        fn next(&mut self) -> Option<Tok> {
            let t = self.toks.get(self.pos).cloned();
            self.pos += 1;
            t
        }
        fn or(&mut self) -> Result<Expr, String> {
            let mut e = self.and()?;
            while self.peek() == Some(&Tok::Or) {
                self.pos += 1;
                e = Expr::Or(Box::new(e), Box::new(self.and()?));
            }
            Ok(e)
        }
        fn and(&mut self) -> Result<Expr, String> {
            let mut e = self.unary()?;
            while self.peek() == Some(&Tok::And) {
                self.pos += 1;
                e = Expr::And(Box::new(e), Box::new(self.unary()?));
            }
            Ok(e)
        }
        fn unary(&mut self) -> Result<Expr, String> {
            match self.next() {
                Some(Tok::Open) => {
                    let e = self.or()?;
                    match self.next() {
                        Some(Tok::Close) => Ok(e),
                        _ => Err("missing ')'".into()),
                    }
                }
                Some(Tok::Selector(path)) => self.condition(path),
                other => Err(format!("expected a selector ($.key) or '(', found {}", describe(other.as_ref()))),
            }
        }
        fn condition(&mut self, path: Vec<Step>) -> Result<Expr, String> {
            match self.next() {
                Some(Tok::Op(op)) => {
                    let operand = match self.next() {
                        Some(Tok::Value(s, q)) => Operand::new(s, q),
                        Some(Tok::Word(w)) => Operand::new(w, false),
                        Some(Tok::Regex(r)) => {
                            Operand::Regex(Regex::parse(&r).map_err(|e| format!("regular expression: {e}"))?)
                        }
                        other => return Err(format!("expected a value, found {}", describe(other.as_ref()))),
                    };
                    if !matches!(operand, Operand::Number(_)) && !matches!(op, Op::Eq | Op::Ne) {
                        return Err("strings can only be compared with = and !=".into());
                    }
                    Ok(Expr::Compare(path, op, operand))
                }
                Some(Tok::Word(w)) if w == "IS" => match self.next() {
                    Some(Tok::Word(v)) if v == "TRUE" => Ok(Expr::IsTrue(path, true)),
                    Some(Tok::Word(v)) if v == "FALSE" => Ok(Expr::IsTrue(path, false)),
                    Some(Tok::Word(v)) if v == "NULL" => Ok(Expr::IsNull(path)),
                    other => Err(format!("expected TRUE, FALSE or NULL after IS, found {}", describe(other.as_ref()))),
                },
                Some(Tok::Word(w)) if w == "EXISTS" => Ok(Expr::Exists(path, true)),
                Some(Tok::Word(w)) if w == "NOT" => match self.next() {
                    Some(Tok::Word(v)) if v == "EXISTS" => Ok(Expr::Exists(path, false)),
                    other => Err(format!("expected EXISTS after NOT, found {}", describe(other.as_ref()))),
                },
                other => Err(format!("expected an operator after the selector, found {}", describe(other.as_ref()))),
            }
        }
    }

    fn describe(t: Option<&Tok>) -> String {
        match t {
            None => "the end of the pattern".into(),
            Some(Tok::Word(w)) | Some(Tok::Value(w, _)) => format!("'{w}'"),
            Some(t) => format!("{t:?}"),
        }
    }

    pub(super) fn parse(p: &str) -> Result<Expr, String> {
        let inner = p
            .strip_prefix('{')
            .and_then(|s| s.trim_end().strip_suffix('}'))
            .ok_or("a JSON pattern must be enclosed in { }")?;
        let toks = lex(inner)?;
        if toks.is_empty() {
            return Err("empty JSON pattern".into());
        }
        if toks.iter().filter(|t| matches!(t, Tok::Regex(_))).count() > MAX_REGEXES {
            return Err(format!("a JSON pattern can hold at most {MAX_REGEXES} regular expressions"));
        }
        let mut parser = Parser { toks, pos: 0 };
        let e = parser.or()?;
        if parser.pos != parser.toks.len() {
            return Err(format!("unexpected {} in the JSON pattern", describe(parser.peek())));
        }
        Ok(e)
    }
}

/// One field of a space-delimited pattern.
#[derive(Debug, Clone, PartialEq)]
enum Field {
    /// `...`: any number of fields.
    Ellipsis,
    /// A named field and its conditions (`None`: any value).
    Named(Option<Conditions>),
}

/// Alternatives (`||`) of conjunctions (`&&`) of comparisons.
type Conditions = Vec<Vec<(Op, Operand)>>;

mod delimited {
    //! `[a, b = x, ...]` patterns.

    use super::{Conditions, Field, MAX_REGEXES, Op, Operand, Regex, op_of, quoted};

    pub(super) fn parse(p: &str) -> Result<Vec<Field>, String> {
        let inner = p
            .strip_prefix('[')
            .and_then(|s| s.trim_end().strip_suffix(']'))
            .ok_or("a space-delimited pattern must be enclosed in [ ]")?;
        let chars: Vec<char> = inner.chars().collect();
        // Split at commas outside quotes.
        let mut parts = vec![String::new()];
        let mut i = 0;
        while i < chars.len() {
            match chars[i] {
                '"' => {
                    let s = quoted(&chars, &mut i)?;
                    if let Some(last) = parts.last_mut() {
                        last.push('"');
                        last.push_str(&s.replace('\\', "\\\\").replace('"', "\\\""));
                        last.push('"');
                    }
                    continue;
                }
                ',' => parts.push(String::new()),
                c => {
                    if let Some(last) = parts.last_mut() {
                        last.push(c);
                    }
                }
            }
            i += 1;
        }
        let mut fields = Vec::new();
        let mut names = Vec::new();
        for part in parts {
            let part = part.trim();
            if part == "..." {
                fields.push(Field::Ellipsis);
                continue;
            }
            let (name, conds) = field(part)?;
            if names.contains(&name) {
                return Err(format!("the field name '{name}' is used twice"));
            }
            names.push(name);
            fields.push(Field::Named(conds));
        }
        let regexes = fields
            .iter()
            .map(|f| match f {
                Field::Named(Some(alts)) => {
                    alts.iter().flatten().filter(|(_, o)| matches!(o, Operand::Regex(_))).count()
                }
                _ => 0,
            })
            .sum::<usize>();
        if regexes > MAX_REGEXES {
            return Err(format!("a space-delimited pattern can hold at most {MAX_REGEXES} regular expressions"));
        }
        Ok(fields)
    }

    fn ident_ok(s: &str) -> bool {
        !s.is_empty() && s.chars().all(|c| c.is_alphanumeric() || c == '_')
    }

    /// `name`, or `name op value` conditions joined by `&&`/`||` (each condition names the same field).
    fn field(part: &str) -> Result<(String, Option<Conditions>), String> {
        if ident_ok(part) {
            return Ok((part.to_string(), None));
        }
        let mut name: Option<String> = None;
        let mut alternatives = Vec::new();
        for alt in part.split("||") {
            let mut conj = Vec::new();
            for cond in alt.split("&&") {
                let (n, op, operand) = condition(cond.trim())?;
                if name.as_deref().is_some_and(|x| x != n) {
                    return Err(format!("conditions of one field must all name it: '{part}'"));
                }
                name = Some(n);
                conj.push((op, operand));
            }
            alternatives.push(conj);
        }
        Ok((name.unwrap_or_default(), Some(alternatives)))
    }

    fn condition(c: &str) -> Result<(String, Op, Operand), String> {
        let pos = c.find(['=', '!', '<', '>']).ok_or_else(|| format!("invalid field '{c}'"))?;
        let name = c[..pos].trim();
        if !ident_ok(name) {
            return Err(format!("invalid field name '{name}'"));
        }
        let rest = &c[pos..];
        let (op, len) = match rest.get(..2).and_then(op_of) {
            Some(op) => (op, 2),
            None => (rest.get(..1).and_then(op_of).ok_or_else(|| format!("invalid operator in '{c}'"))?, 1),
        };
        let value = rest[len..].trim();
        if value.is_empty() {
            return Err(format!("missing value in '{c}'"));
        }
        let operand = if let Some(inner) = value.strip_prefix('%') {
            let inner = inner.strip_suffix('%').ok_or_else(|| format!("a '%' expression is not closed in '{c}'"))?;
            Operand::Regex(Regex::parse(inner).map_err(|e| format!("regular expression: {e}"))?)
        } else if value.starts_with('"') {
            let chars: Vec<char> = value.chars().collect();
            let mut i = 0;
            let s = quoted(&chars, &mut i)?;
            if i != chars.len() {
                return Err(format!("unexpected text after the quoted value in '{c}'"));
            }
            Operand::new(s, true)
        } else {
            if value.contains(char::is_whitespace) {
                return Err(format!("quote values that contain spaces: '{c}'"));
            }
            Operand::new(value.to_string(), false)
        };
        if !matches!(operand, Operand::Number(_)) && !matches!(op, Op::Eq | Op::Ne) {
            return Err("strings can only be compared with = and !=".into());
        }
        Ok((name.to_string(), op, operand))
    }

    /// Splits a message into fields at spaces; `"..."` and `[...]` are one field each (without the brackets).
    fn split(message: &str) -> Vec<String> {
        let chars: Vec<char> = message.chars().collect();
        let mut out = Vec::new();
        let mut i = 0;
        while i < chars.len() {
            if chars[i] == ' ' {
                i += 1;
                continue;
            }
            let close = match chars[i] {
                '"' => Some('"'),
                '[' => Some(']'),
                _ => None,
            };
            if let Some(end) = close
                && let Some(j) = chars[i + 1..].iter().position(|c| *c == end)
            {
                out.push(chars[i + 1..i + 1 + j].iter().collect());
                i += j + 2;
                continue;
            }
            let start = i;
            while i < chars.len() && chars[i] != ' ' {
                i += 1;
            }
            out.push(chars[start..i].iter().collect());
        }
        out
    }

    fn field_ok(field: &Field, value: &str) -> bool {
        match field {
            Field::Ellipsis => true,
            Field::Named(None) => true,
            Field::Named(Some(alts)) => {
                let number = value.parse::<f64>().ok();
                alts.iter().any(|conj| conj.iter().all(|(op, operand)| operand.compare(*op, value, number)))
            }
        }
    }

    /// Whether `values` fit `fields`, `...` taking any number of values.
    fn fit(fields: &[Field], values: &[String]) -> bool {
        match fields.split_first() {
            None => values.is_empty(),
            Some((Field::Ellipsis, rest)) => (0..=values.len()).any(|k| fit(rest, &values[k..])),
            Some((f, rest)) => values.split_first().is_some_and(|(v, vs)| field_ok(f, v) && fit(rest, vs)),
        }
    }

    pub(super) fn matches(fields: &[Field], message: &str) -> bool {
        fit(fields, &split(message))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The log events of AWS's filter pattern documentation.
    const UNSTRUCTURED: &[&str] = &[
        "[ERROR 400] BAD REQUEST",
        "[ERROR 401] UNAUTHORIZED REQUEST",
        "[ERROR 419] MISSING ARGUMENTS",
        "[ERROR 420] INVALID ARGUMENTS",
    ];

    #[test]
    fn unstructured_terms_as_documented() {
        // (pattern, which of UNSTRUCTURED match)
        let cases: &[(&str, [bool; 4])] = &[
            ("", [true, true, true, true]),
            ("ERROR", [true, true, true, true]),
            ("ERROR ARGUMENTS", [false, false, true, true]),
            ("?ARGUMENTS ?UNAUTHORIZED", [false, true, true, true]),
            ("\"INVALID ARGUMENTS\"", [false, false, false, true]),
            ("ERROR -ARGUMENTS", [true, true, false, false]),
            ("-ARGUMENTS", [true, true, false, false]),
            ("\"[ERROR 4\"", [false, false, false, false]),
            ("\"[ERROR 40\"", [false, false, false, false]),
            ("\"[ERROR 401]\"", [false, true, false, false]),
            ("401", [false, true, false, false]),
            // Case-sensitive, whole words.
            ("error", [false, false, false, false]),
            ("AUTHORIZED", [false, false, false, false]),
            ("REQUEST", [true, true, false, false]),
            ("ERR", [false, false, false, false]),
            ("?MISSING ?INVALID", [false, false, true, true]),
        ];
        for (pattern, want) in cases {
            let p = Pattern::parse(pattern).unwrap_or_else(|e| panic!("{pattern}: {e}"));
            for (msg, w) in UNSTRUCTURED.iter().zip(want) {
                assert_eq!(p.matches(msg), *w, "pattern {pattern:?} on {msg:?}");
            }
        }
    }

    const JSON_EVENT: &str = r#"{
        "eventType": "UpdateTrail",
        "sourceIPAddress": "111.111.111.111",
        "arrayKey": ["value", "another value"],
        "objectList": [{"name": "a", "id": 1}, {"name": "b", "id": 2}],
        "SomeObject": null,
        "cluster.name": "c",
        "ThisFlag": true,
        "latency": 520.5,
        "user": {"id": 1, "email": "John.Stiles@example.com"},
        "users": [{"id": 2, "email": "John.Doe@example.com"}],
        "actions": ["GET", "PUT", "DELETE"],
        "coordinates": [[0, 1], [2, 3]]
    }"#;

    #[test]
    fn json_patterns_as_documented() {
        let cases: &[(&str, bool)] = &[
            (r#"{ $.eventType = "UpdateTrail" }"#, true),
            (r#"{ $.eventType = UpdateTrail }"#, true),
            (r#"{ $.eventType = "Update*" }"#, true),
            (r#"{ $.eventType != "UpdateTrail" }"#, false),
            ("{ $.sourceIPAddress != 123.123.* }", true),
            ("{ $.sourceIPAddress = 111.111.* }", true),
            (r#"{ $.arrayKey[0] = "value" }"#, true),
            (r#"{ $.arrayKey[1] = "value" }"#, false),
            ("{ $.objectList[1].id = 2 }", true),
            ("{ $.objectList[1].id = 1 }", false),
            ("{ $.SomeObject IS NULL }", true),
            ("{ $.eventType IS NULL }", false),
            ("{ $.SomeOtherObject NOT EXISTS }", true),
            ("{ $.SomeObject NOT EXISTS }", false),
            ("{ $.SomeObject EXISTS }", true),
            ("{ $.ThisFlag IS TRUE }", true),
            ("{ $.ThisFlag IS FALSE }", false),
            ("{ $.latency > 500 }", true),
            ("{ $.latency >= 520.5 }", true),
            ("{ $.latency < 500 }", false),
            ("{ $.latency != 520.5 }", false),
            ("{ $.missing > 1 }", false),
            ("{ $.eventType > 1 }", false),
            (r#"{ ($.user.id = 1) && ($.users[0].email = "John.Doe@example.com") }"#, true),
            (r#"{ ($.user.id = 2) && ($.users[0].email = "John.Doe@example.com") }"#, false),
            (
                r#"{ $.user.email = "John.Stiles@example.com" || $.coordinates[0][1] = nonmatch && $.actions[2] = nonmatch }"#,
                true,
            ),
            (
                r#"{ ($.user.email = "John.Stiles@example.com" || $.coordinates[0][1] = nonmatch) && $.actions[2] = nonmatch }"#,
                false,
            ),
            ("{ $.coordinates[1][0] = 2 }", true),
            (r#"{ $.actions[2] = "DEL*" && $.user.id = 1 }"#, true),
        ];
        for (pattern, want) in cases {
            let p = Pattern::parse(pattern).unwrap_or_else(|e| panic!("{pattern}: {e}"));
            assert_eq!(p.matches(JSON_EVENT), *want, "{pattern}");
        }
        // Not JSON, or not an object: no match.
        let p = Pattern::parse("{ $.a EXISTS }").expect("parse");
        assert!(!p.matches("plain text a"));
        assert!(!p.matches("[1, 2]"));
        assert!(p.matches(r#"{"a": 0}"#));
    }

    const ACCESS_LOG: &str = r#"127.0.0.1 - frank [10/Oct/2000:13:25:15 -0700] "GET /apache_pb.gif HTTP/1.0" 404 1534"#;

    #[test]
    fn space_delimited_patterns_as_documented() {
        let cases: &[(&str, bool)] = &[
            ("[ip, user, username, timestamp, request, status_code, bytes]", true),
            ("[ip, user, username, timestamp, request, status_code]", false),
            ("[ip, user, username, timestamp, request, status_code = 404, bytes]", true),
            ("[ip, user, username, timestamp, request, status_code = 4*, bytes]", true),
            ("[ip, user, username, timestamp, request, status_code = 200, bytes]", false),
            ("[..., status_code = 404, bytes]", true),
            ("[..., status_code >= 400, bytes > 1000]", true),
            ("[..., status_code >= 400, bytes > 2000]", false),
            (r#"[ip, user, username, timestamp, request = "*gif*", status_code, bytes]"#, true),
            (r#"[ip, user, username, timestamp, request = "*html*", status_code, bytes]"#, false),
            ("[ip = 127.0.0.1, ...]", true),
            ("[ip != 127.0.0.*, ...]", false),
            ("[ip, user, username = frank, ...]", true),
            ("[..., status_code = 4* && status_code != 404, bytes]", false),
            ("[..., status_code = 200 || status_code = 404, bytes]", true),
            (r#"[ip, user, username, timestamp = "10/Oct/2000*", ...]"#, true),
        ];
        for (pattern, want) in cases {
            let p = Pattern::parse(pattern).unwrap_or_else(|e| panic!("{pattern}: {e}"));
            assert_eq!(p.matches(ACCESS_LOG), *want, "{pattern}");
        }
    }

    #[test]
    fn regular_expressions_as_documented() {
        let unstructured: &[(&str, [bool; 4])] = &[
            ("%AUTHORIZED%", [false, true, false, false]),
            ("%ERROR 4[01][0-9]%", [true, true, true, false]),
            ("%^\\[ERROR 42%", [false, false, false, true]),
            ("%ARGUMENTS$%", [false, false, true, true]),
            ("%MISSING|INVALID%", [false, false, true, true]),
        ];
        for (pattern, want) in unstructured {
            let p = Pattern::parse(pattern).unwrap_or_else(|e| panic!("{pattern}: {e}"));
            for (msg, w) in UNSTRUCTURED.iter().zip(want) {
                assert_eq!(p.matches(msg), *w, "pattern {pattern:?} on {msg:?}");
            }
        }
        let json: &[(&str, bool)] = &[
            ("{ $.eventType = %Update% }", true),
            ("{ $.eventType = %^Trail% }", false),
            ("{ $.sourceIPAddress = %^111\\.111\\.% && $.eventType != %Delete% }", true),
            ("{ $.user.email = %@example\\.com$% }", true),
        ];
        for (pattern, want) in json {
            let p = Pattern::parse(pattern).unwrap_or_else(|e| panic!("{pattern}: {e}"));
            assert_eq!(p.matches(JSON_EVENT), *want, "{pattern}");
        }
        let delimited: &[(&str, bool)] = &[
            ("[..., status_code = %^4\\d\\d$%, bytes]", true),
            ("[..., status_code = %^5%, bytes]", false),
            ("[ip = %^127\\.%, ..., bytes != %^0$%]", true),
        ];
        for (pattern, want) in delimited {
            let p = Pattern::parse(pattern).unwrap_or_else(|e| panic!("{pattern}: {e}"));
            assert_eq!(p.matches(ACCESS_LOG), *want, "{pattern}");
        }
    }

    #[test]
    fn unsupported_or_broken_patterns_are_refused() {
        for bad in [
            "%AUTHORIZED!%",
            "%(a)%",
            "ERROR %AUTH%",
            "{ $.a = %x% || $.b = %y% || $.c = %z% }",
            "[a = %x%, b = %y%, c = %z%]",
            "{ $.a = %open }",
            "{ $.a > %x% }",
            "\"unterminated",
            "{ $.a = }",
            "{ $.a = 1",
            "{ a = 1 }",
            "{ $.a ~ 1 }",
            "{ $.* = 1 }",
            "{ $.a IS MAYBE }",
            r#"{ $.a > "text" }"#,
            "{ $.a = 1 } trailing",
            "{ ($.a = 1 }",
            "[a, b > abc]",
            "[a b]",
            "?ERROR WARN",
            "ERROR ?WARN",
            "ERR(OR",
            "{}",
        ] {
            assert!(Pattern::parse(bad).is_err(), "{bad:?} should be refused");
        }
    }

    #[test]
    fn globs_and_words() {
        let cases = [
            ("*", "", true),
            ("a*c", "abbbc", true),
            ("a*c", "abbbd", false),
            ("*.111", "111.111", true),
            ("1*1*1", "111", true),
            ("abc", "abcd", false),
        ];
        for (p, t, want) in cases {
            assert_eq!(glob(p, t), want, "{p} {t}");
        }
        assert!(contains_word("x ERROR: y", "ERROR"));
        assert!(contains_word("x ERROR: y", "ERROR:"));
        assert!(!contains_word("ERRORS", "ERROR"));
        assert!(contains_word("ERRORS ERROR", "ERROR"));
        assert!(contains_word("key=value", "value"));
        assert!(contains_word("Exception: Argument", "Exception: Argument"));
    }
}
