//! Metric math (reference §2.1–2.4): a parser and evaluator for the expressions berth's alarms and the console
//! need. Supported: numbers, query ids, `+ - * / ^`, unary `-`, comparisons `== != <= >= < >`, `AND`/`&&`,
//! `OR`/`||`, parentheses, and the functions `SUM AVG MIN MAX` (series → scalar, array → point-wise series),
//! `METRICS()`/`METRICS("str")`, `IF`, `FILL` (scalar, series, `REPEAT`, `LINEAR`), `RATE`, `DIFF`, `ABS`, `CEIL`,
//! `FLOOR`. Anything else is refused with [`MathError::Unsupported`].
//!
//! Missing values: arithmetic and comparisons count a missing point as 0 when the other side has one (§2.2); a
//! point that would divide by zero is dropped; `AVG` over an array counts missing as 0; `IF` follows §2.4.

use std::collections::{BTreeMap, BTreeSet};

use crate::error::Invalid;

/// A sparse time series: period start (epoch seconds) → value.
pub type Series = BTreeMap<i64, f64>;

/// What an expression evaluates to.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Scalar(f64),
    Series(Series),
    /// (id, series), as `METRICS()` returns them.
    Array(Vec<(String, Series)>),
}

/// Longest expression (reference §2.1).
pub const MAX_EXPRESSION: usize = 2048;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MathError {
    #[error("Syntax error at position {at} in the expression: {message}.")]
    Syntax { at: usize, message: String },
    #[error("The expression references the unknown id {0}.")]
    UnknownId(String),
    #[error("The function {0} is not supported by berth's metric math.")]
    Unsupported(String),
    #[error("{0}")]
    Type(String),
    #[error("The expression must not be longer than 2048 characters.")]
    TooLong,
}

impl From<MathError> for Invalid {
    fn from(e: MathError) -> Self {
        Invalid::value(e.to_string())
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum Expr {
    Number(f64),
    Str(String),
    Id(String),
    /// `REPEAT` / `LINEAR` inside FILL.
    Keyword(String),
    Neg(Box<Expr>),
    Binary(Op, Box<Expr>, Box<Expr>),
    Call(String, Vec<Expr>),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Add,
    Sub,
    Mul,
    Div,
    Pow,
    Eq,
    Ne,
    Le,
    Ge,
    Lt,
    Gt,
    And,
    Or,
}

const SUPPORTED: [&str; 13] =
    ["SUM", "AVG", "MIN", "MAX", "METRICS", "IF", "FILL", "RATE", "DIFF", "ABS", "CEIL", "FLOOR", "PERIOD"];

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Num(f64),
    Str(String),
    Word(String),
    Sym(&'static str),
}

fn lex(s: &str) -> Result<Vec<(usize, Tok)>, MathError> {
    let b = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        let c = b[i] as char;
        if c.is_ascii_whitespace() {
            i += 1;
            continue;
        }
        let start = i;
        if c.is_ascii_digit() || (c == '.' && b.get(i + 1).is_some_and(u8::is_ascii_digit)) {
            while i < b.len() && (b[i].is_ascii_digit() || b[i] == b'.') {
                i += 1;
            }
            if i < b.len() && (b[i] == b'e' || b[i] == b'E') {
                i += 1;
                if i < b.len() && (b[i] == b'+' || b[i] == b'-') {
                    i += 1;
                }
                while i < b.len() && b[i].is_ascii_digit() {
                    i += 1;
                }
            }
            let v: f64 = s[start..i]
                .parse()
                .map_err(|_| MathError::Syntax { at: start, message: format!("bad number {}", &s[start..i]) })?;
            out.push((start, Tok::Num(v)));
        } else if c.is_ascii_alphabetic() || c == '_' {
            while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'_') {
                i += 1;
            }
            out.push((start, Tok::Word(s[start..i].to_string())));
        } else if c == '"' || c == '\'' {
            i += 1;
            while i < b.len() && b[i] as char != c {
                i += 1;
            }
            if i >= b.len() {
                return Err(MathError::Syntax { at: start, message: "unterminated string".into() });
            }
            out.push((start, Tok::Str(s[start + 1..i].to_string())));
            i += 1;
        } else {
            let two = s.get(i..i + 2).unwrap_or("");
            let sym = ["==", "!=", "<=", ">=", "&&", "||"].into_iter().find(|t| *t == two);
            if let Some(t) = sym {
                out.push((start, Tok::Sym(t)));
                i += 2;
            } else {
                let one =
                    ["+", "-", "*", "/", "^", "<", ">", "(", ")", ","].into_iter().find(|t| t.as_bytes()[0] == b[i]);
                match one {
                    Some(t) => out.push((start, Tok::Sym(t))),
                    None => return Err(MathError::Syntax { at: start, message: format!("unexpected character {c}") }),
                }
                i += 1;
            }
        }
    }
    Ok(out)
}

struct Parser {
    toks: Vec<(usize, Tok)>,
    at: usize,
    len: usize,
    /// Nesting of parentheses, calls and unary minus, bounded so that no expression can exhaust the stack.
    depth: usize,
}

/// Deepest nesting an expression may have.
pub const MAX_DEPTH: usize = 64;

impl Parser {
    fn peek(&self) -> Option<&Tok> {
        self.toks.get(self.at).map(|(_, t)| t)
    }
    fn pos(&self) -> usize {
        self.toks.get(self.at).map_or(self.len, |(p, _)| *p)
    }
    fn err(&self, message: &str) -> MathError {
        MathError::Syntax { at: self.pos(), message: message.into() }
    }
    fn eat(&mut self, sym: &str) -> bool {
        let hit = match self.peek() {
            Some(Tok::Sym(s)) => *s == sym,
            Some(Tok::Word(w)) => w == sym,
            _ => false,
        };
        if hit {
            self.at += 1;
        }
        hit
    }
    fn binary(
        &mut self,
        ops: &[(&str, Op)],
        next: fn(&mut Parser) -> Result<Expr, MathError>,
    ) -> Result<Expr, MathError> {
        let mut left = next(self)?;
        'outer: loop {
            for (s, op) in ops {
                if self.eat(s) {
                    let right = next(self)?;
                    left = Expr::Binary(*op, Box::new(left), Box::new(right));
                    continue 'outer;
                }
            }
            return Ok(left);
        }
    }
    fn or(&mut self) -> Result<Expr, MathError> {
        self.binary(&[("OR", Op::Or), ("||", Op::Or)], Parser::and)
    }
    fn and(&mut self) -> Result<Expr, MathError> {
        self.binary(&[("AND", Op::And), ("&&", Op::And)], Parser::cmp)
    }
    fn cmp(&mut self) -> Result<Expr, MathError> {
        self.binary(
            &[("==", Op::Eq), ("!=", Op::Ne), ("<=", Op::Le), (">=", Op::Ge), ("<", Op::Lt), (">", Op::Gt)],
            Parser::add,
        )
    }
    fn add(&mut self) -> Result<Expr, MathError> {
        self.binary(&[("+", Op::Add), ("-", Op::Sub)], Parser::mul)
    }
    fn mul(&mut self) -> Result<Expr, MathError> {
        self.binary(&[("*", Op::Mul), ("/", Op::Div)], Parser::unary)
    }
    fn enter(&mut self) -> Result<(), MathError> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(self.err("the expression is nested too deeply"));
        }
        Ok(())
    }
    fn unary(&mut self) -> Result<Expr, MathError> {
        self.enter()?;
        let e = self.unary_inner();
        self.depth -= 1;
        e
    }
    fn unary_inner(&mut self) -> Result<Expr, MathError> {
        if self.eat("-") {
            return Ok(Expr::Neg(Box::new(self.unary()?)));
        }
        let base = self.primary()?;
        if self.eat("^") {
            return Ok(Expr::Binary(Op::Pow, Box::new(base), Box::new(self.unary()?)));
        }
        Ok(base)
    }
    fn primary(&mut self) -> Result<Expr, MathError> {
        let Some(tok) = self.peek().cloned() else { return Err(self.err("unexpected end")) };
        self.at += 1;
        match tok {
            Tok::Num(v) => Ok(Expr::Number(v)),
            Tok::Str(s) => Ok(Expr::Str(s)),
            Tok::Sym("(") => {
                let e = self.or()?;
                if !self.eat(")") {
                    return Err(self.err("expected )"));
                }
                Ok(e)
            }
            Tok::Word(w) if w == "REPEAT" || w == "LINEAR" => Ok(Expr::Keyword(w)),
            Tok::Word(w) if w.starts_with(|c: char| c.is_ascii_lowercase()) => {
                if self.peek() == Some(&Tok::Sym("(")) {
                    return Err(MathError::Unsupported(w));
                }
                Ok(Expr::Id(w))
            }
            Tok::Word(w) => {
                if self.peek() != Some(&Tok::Sym("(")) {
                    return Err(MathError::Syntax {
                        at: self.pos(),
                        message: format!(
                            "{w} is neither an id (ids start with a lowercase letter) nor a function call"
                        ),
                    });
                }
                if !SUPPORTED.contains(&w.as_str()) {
                    return Err(MathError::Unsupported(w));
                }
                self.at += 1;
                let mut args = Vec::new();
                if !self.eat(")") {
                    loop {
                        args.push(self.or()?);
                        if self.eat(")") {
                            break;
                        }
                        if !self.eat(",") {
                            return Err(self.err("expected , or )"));
                        }
                    }
                }
                Ok(Expr::Call(w, args))
            }
            Tok::Sym(s) => {
                Err(MathError::Syntax { at: self.pos().saturating_sub(1), message: format!("unexpected {s}") })
            }
        }
    }
}

/// Parses an expression.
pub fn parse(s: &str) -> Result<Expr, MathError> {
    if s.chars().count() > MAX_EXPRESSION {
        return Err(MathError::TooLong);
    }
    let toks = lex(s)?;
    let mut p = Parser { toks, at: 0, len: s.len(), depth: 0 };
    let e = p.or()?;
    if p.at < p.toks.len() {
        return Err(p.err("unexpected trailing input"));
    }
    Ok(e)
}

/// What an expression can see: the metric queries' series (in request order, for `METRICS()`), the results of
/// expressions evaluated so far, the timestamps of the request (for `FILL`) and the period.
#[derive(Debug, Clone, Default)]
pub struct Context {
    pub metrics: Vec<(String, Series)>,
    pub expressions: BTreeMap<String, Value>,
    pub timestamps: Vec<i64>,
    pub period: i64,
}

impl Context {
    fn get(&self, id: &str) -> Option<Value> {
        if let Some((_, s)) = self.metrics.iter().find(|(i, _)| i == id) {
            return Some(Value::Series(s.clone()));
        }
        self.expressions.get(id).cloned()
    }
    fn is_metric(&self, id: &str) -> bool {
        self.metrics.iter().any(|(i, _)| i == id)
    }
}

/// Evaluates a parsed expression.
pub fn eval(e: &Expr, ctx: &Context) -> Result<Value, MathError> {
    match e {
        Expr::Number(v) => Ok(Value::Scalar(*v)),
        Expr::Str(_) | Expr::Keyword(_) => {
            Err(MathError::Type("A string or keyword is only valid as a function argument.".into()))
        }
        Expr::Id(id) => ctx.get(id).ok_or_else(|| MathError::UnknownId(id.clone())),
        Expr::Neg(x) => map_values(eval(x, ctx)?, |v| Some(-v)),
        Expr::Binary(op, a, b) => binary(*op, eval(a, ctx)?, eval(b, ctx)?),
        Expr::Call(f, args) => call(f, args, ctx),
    }
}

/// Parses and evaluates; the result must be a series or an array of series (a scalar alone is refused, §2.1).
pub fn evaluate(expression: &str, ctx: &Context) -> Result<Value, MathError> {
    let v = eval(&parse(expression)?, ctx)?;
    if matches!(v, Value::Scalar(_)) {
        return Err(MathError::Type("The expression must produce a time series, not a single value.".into()));
    }
    Ok(v)
}

fn apply(op: Op, a: f64, b: f64) -> Option<f64> {
    let t = |c: bool| Some(if c { 1.0 } else { 0.0 });
    match op {
        Op::Add => Some(a + b),
        Op::Sub => Some(a - b),
        Op::Mul => Some(a * b),
        Op::Div => (b != 0.0).then(|| a / b),
        Op::Pow => Some(a.powf(b)).filter(|v| v.is_finite()),
        Op::Eq => t(a == b),
        Op::Ne => t(a != b),
        Op::Le => t(a <= b),
        Op::Ge => t(a >= b),
        Op::Lt => t(a < b),
        Op::Gt => t(a > b),
        Op::And => t(a != 0.0 && b != 0.0),
        Op::Or => t(a != 0.0 || b != 0.0),
    }
}

fn series_op(op: Op, a: &Series, b: &Series) -> Series {
    let keys: BTreeSet<i64> = a.keys().chain(b.keys()).copied().collect();
    keys.into_iter()
        .filter_map(|t| apply(op, *a.get(&t).unwrap_or(&0.0), *b.get(&t).unwrap_or(&0.0)).map(|v| (t, v)))
        .collect()
}

fn binary(op: Op, a: Value, b: Value) -> Result<Value, MathError> {
    use Value::*;
    Ok(match (a, b) {
        (Scalar(x), Scalar(y)) => Scalar(apply(op, x, y).unwrap_or(f64::NAN)),
        (Series(s), Scalar(y)) => Series(s.iter().filter_map(|(t, v)| apply(op, *v, y).map(|r| (*t, r))).collect()),
        (Scalar(x), Series(s)) => Series(s.iter().filter_map(|(t, v)| apply(op, x, *v).map(|r| (*t, r))).collect()),
        (Series(a), Series(b)) => Series(series_op(op, &a, &b)),
        (Array(arr), other) => Array(
            arr.into_iter()
                .map(|(id, s)| match binary(op, Series(s), other.clone()) {
                    Ok(Series(r)) => Ok((id, r)),
                    Ok(_) => Err(MathError::Type("Arrays of arrays are not supported.".into())),
                    Err(e) => Err(e),
                })
                .collect::<Result<_, _>>()?,
        ),
        (other, Array(arr)) => Array(
            arr.into_iter()
                .map(|(id, s)| match binary(op, other.clone(), Series(s)) {
                    Ok(Series(r)) => Ok((id, r)),
                    Ok(_) => Err(MathError::Type("Arrays of arrays are not supported.".into())),
                    Err(e) => Err(e),
                })
                .collect::<Result<_, _>>()?,
        ),
    })
}

fn map_values(v: Value, f: impl Fn(f64) -> Option<f64> + Copy) -> Result<Value, MathError> {
    let m = |s: Series| s.into_iter().filter_map(|(t, v)| f(v).map(|r| (t, r))).collect::<Series>();
    Ok(match v {
        Value::Scalar(x) => Value::Scalar(f(x).unwrap_or(f64::NAN)),
        Value::Series(s) => Value::Series(m(s)),
        Value::Array(a) => Value::Array(a.into_iter().map(|(id, s)| (id, m(s))).collect()),
    })
}

fn map_series(v: Value, f: impl Fn(&Series) -> Series) -> Result<Value, MathError> {
    match v {
        Value::Series(s) => Ok(Value::Series(f(&s))),
        Value::Array(a) => Ok(Value::Array(a.into_iter().map(|(id, s)| (id, f(&s))).collect())),
        Value::Scalar(_) => {
            Err(MathError::Type("This function takes a time series or an array of time series.".into()))
        }
    }
}

fn arity(f: &str, args: &[Expr], min: usize, max: usize) -> Result<(), MathError> {
    if args.len() < min || args.len() > max {
        return Err(MathError::Type(format!("{f} takes {min} to {max} arguments; {} given.", args.len())));
    }
    Ok(())
}

fn call(f: &str, args: &[Expr], ctx: &Context) -> Result<Value, MathError> {
    match f {
        "METRICS" => {
            arity(f, args, 0, 1)?;
            let filter = match args.first() {
                None => None,
                Some(Expr::Str(s)) => Some(s.as_str()),
                Some(_) => return Err(MathError::Type("METRICS takes an optional string.".into())),
            };
            Ok(Value::Array(
                ctx.metrics.iter().filter(|(id, _)| filter.is_none_or(|f| id.contains(f))).cloned().collect(),
            ))
        }
        "SUM" | "AVG" | "MIN" | "MAX" => {
            arity(f, args, 1, 1)?;
            let fold = |vals: &[f64]| -> Option<f64> {
                if vals.is_empty() {
                    return None;
                }
                Some(match f {
                    "SUM" => vals.iter().sum(),
                    "AVG" => vals.iter().sum::<f64>() / vals.len() as f64,
                    "MIN" => vals.iter().copied().fold(f64::INFINITY, f64::min),
                    _ => vals.iter().copied().fold(f64::NEG_INFINITY, f64::max),
                })
            };
            match eval(&args[0], ctx)? {
                Value::Series(s) => {
                    Ok(Value::Scalar(fold(&s.values().copied().collect::<Vec<_>>()).unwrap_or(f64::NAN)))
                }
                Value::Array(arr) => {
                    let keys: BTreeSet<i64> = arr.iter().flat_map(|(_, s)| s.keys().copied()).collect();
                    let out = keys
                        .into_iter()
                        .filter_map(|t| {
                            // SUM and AVG count a missing point as 0; MIN and MAX use the points present.
                            let vals: Vec<f64> = if f == "SUM" || f == "AVG" {
                                arr.iter().map(|(_, s)| *s.get(&t).unwrap_or(&0.0)).collect()
                            } else {
                                arr.iter().filter_map(|(_, s)| s.get(&t).copied()).collect()
                            };
                            fold(&vals).map(|v| (t, v))
                        })
                        .collect();
                    Ok(Value::Series(out))
                }
                Value::Scalar(_) => {
                    Err(MathError::Type(format!("{f} takes a time series or an array of time series.")))
                }
            }
        }
        "ABS" | "CEIL" | "FLOOR" => {
            arity(f, args, 1, 1)?;
            let g: fn(f64) -> f64 = match f {
                "ABS" => f64::abs,
                "CEIL" => f64::ceil,
                _ => f64::floor,
            };
            map_values(eval(&args[0], ctx)?, move |v| Some(g(v)))
        }
        "PERIOD" => {
            arity(f, args, 1, 1)?;
            match &args[0] {
                Expr::Id(id) if ctx.is_metric(id) => Ok(Value::Scalar(ctx.period as f64)),
                _ => Err(MathError::Type("PERIOD takes the id of a metric query.".into())),
            }
        }
        "RATE" | "DIFF" => {
            arity(f, args, 1, 1)?;
            let per_second = f == "RATE";
            map_series(eval(&args[0], ctx)?, |s| {
                s.iter()
                    .zip(s.iter().skip(1))
                    .map(|((t0, v0), (t1, v1))| {
                        let d = v1 - v0;
                        (*t1, if per_second { d / (t1 - t0) as f64 } else { d })
                    })
                    .collect()
            })
        }
        "FILL" => {
            arity(f, args, 2, 2)?;
            let x = eval(&args[0], ctx)?;
            let how = match &args[1] {
                Expr::Keyword(k) => Fill::Keyword(k.clone()),
                other => match eval(other, ctx)? {
                    Value::Scalar(v) => Fill::Scalar(v),
                    Value::Series(s) => Fill::Series(s),
                    Value::Array(_) => {
                        return Err(MathError::Type(
                            "FILL's second argument must be a scalar, a series, REPEAT or LINEAR.".into(),
                        ));
                    }
                },
            };
            map_series(x, |s| fill(s, &how, &ctx.timestamps))
        }
        "IF" => {
            arity(f, args, 2, 3)?;
            let cond = eval(&args[0], ctx)?;
            let a = eval(&args[1], ctx)?;
            let b = args.get(2).map(|e| eval(e, ctx)).transpose()?;
            if_(cond, a, b)
        }
        other => Err(MathError::Unsupported(other.to_string())),
    }
}

enum Fill {
    Scalar(f64),
    Series(Series),
    Keyword(String),
}

fn fill(s: &Series, how: &Fill, timestamps: &[i64]) -> Series {
    let mut out = s.clone();
    for t in timestamps {
        if s.contains_key(t) {
            continue;
        }
        let before = s.range(..*t).next_back();
        let after = s.range(*t..).next();
        let v = match how {
            Fill::Scalar(v) => Some(*v),
            Fill::Series(f) => f.get(t).copied(),
            // [inference] REPEAT: the last real value (the next one before any data); LINEAR: interpolation,
            // the nearest value at the edges.
            Fill::Keyword(k) if k == "REPEAT" => before.or(after).map(|(_, v)| *v),
            Fill::Keyword(_) => match (before, after) {
                (Some((t0, v0)), Some((t1, v1))) => Some(v0 + (v1 - v0) * (t - t0) as f64 / (t1 - t0) as f64),
                (Some((_, v)), None) | (None, Some((_, v))) => Some(*v),
                (None, None) => None,
            },
        };
        if let Some(v) = v {
            out.insert(*t, v);
        }
    }
    out
}

/// IF (§2.4): per timestamp of the condition: true → the second argument (0 where that series has no point);
/// false → the third (dropped where it is missing or omitted); no condition point → dropped.
fn if_(cond: Value, a: Value, b: Option<Value>) -> Result<Value, MathError> {
    let pick = |v: &Value, t: i64, missing_zero: bool| -> Option<f64> {
        match v {
            Value::Scalar(x) => Some(*x),
            Value::Series(s) => s.get(&t).copied().or(missing_zero.then_some(0.0)),
            Value::Array(_) => None,
        }
    };
    if matches!(a, Value::Array(_)) || matches!(b, Some(Value::Array(_))) || matches!(cond, Value::Array(_)) {
        return Err(MathError::Type("IF does not take arrays.".into()));
    }
    match cond {
        Value::Scalar(c) => {
            let chosen = if c != 0.0 { Some(a) } else { b };
            match chosen {
                Some(Value::Series(s)) => Ok(Value::Series(s)),
                _ => Err(MathError::Type("IF with a scalar condition takes two time series.".into())),
            }
        }
        Value::Series(c) => {
            let out = c
                .iter()
                .filter_map(|(t, v)| {
                    let r = if *v != 0.0 { pick(&a, *t, true) } else { b.as_ref().and_then(|b| pick(b, *t, false)) };
                    r.map(|r| (*t, r))
                })
                .collect();
            Ok(Value::Series(out))
        }
        Value::Array(_) => Err(MathError::Type("IF does not take arrays.".into())),
    }
}

/// One `MetricDataQuery` as far as validation and ordering need it.
#[derive(Debug, Clone, PartialEq)]
pub struct Query {
    pub id: String,
    /// `None` for a `MetricStat` query.
    pub expression: Option<String>,
    pub return_data: bool,
}

/// Most queries in one GetMetricData call, and in one alarm (reference §2.1, §1.6).
pub const MAX_QUERIES: usize = 500;
pub const MAX_ALARM_QUERIES: usize = 20;
pub const MAX_ALARM_METRICS: usize = 10;

/// The query-set rules of GetMetricData (`for_alarm` false) and PutMetricAlarm's `Metrics` (true): ids start with
/// a lowercase letter and hold letters, digits and `_` (1–255), unique; at most 500 queries, or for an alarm at
/// most 20 with ≤ 10 metrics and ≤ 10 expressions and exactly one `ReturnData`.
pub fn validate_queries(queries: &[Query], for_alarm: bool) -> Result<(), Invalid> {
    let max = if for_alarm { MAX_ALARM_QUERIES } else { MAX_QUERIES };
    let what = if for_alarm { "Metrics" } else { "MetricDataQueries" };
    if queries.is_empty() {
        return Err(Invalid::missing(what));
    }
    if queries.len() > max {
        return Err(Invalid::value(format!("The collection {what} must not have a size greater than {max}.")));
    }
    let mut seen = BTreeSet::new();
    for (i, q) in queries.iter().enumerate() {
        let at = format!("{what}.member.{}.Id", i + 1);
        let valid = (1..=255).contains(&q.id.len())
            && q.id.starts_with(|c: char| c.is_ascii_lowercase())
            && q.id.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
        if !valid {
            return Err(Invalid::value(format!(
                "The value {} for parameter {at} is invalid: an id starts with a lowercase letter and holds only letters, digits and underscores.",
                q.id
            )));
        }
        if !seen.insert(q.id.as_str()) {
            return Err(Invalid::value(format!("The value {} for parameter {at} is not unique.", q.id)));
        }
    }
    if for_alarm {
        let expressions = queries.iter().filter(|q| q.expression.is_some()).count();
        if queries.len() - expressions > MAX_ALARM_METRICS || expressions > MAX_ALARM_METRICS {
            return Err(Invalid::value("An alarm can have at most 10 metrics and 10 expressions in Metrics."));
        }
        if queries.iter().filter(|q| q.return_data).count() != 1 {
            return Err(Invalid::value("Exactly one element of the Metrics list must have ReturnData set to true."));
        }
    }
    Ok(())
}

fn references(e: &Expr, out: &mut BTreeSet<String>) {
    match e {
        Expr::Id(id) => {
            out.insert(id.clone());
        }
        Expr::Neg(x) => references(x, out),
        Expr::Binary(_, a, b) => {
            references(a, out);
            references(b, out);
        }
        Expr::Call(_, args) => args.iter().for_each(|a| references(a, out)),
        Expr::Number(_) | Expr::Str(_) | Expr::Keyword(_) => {}
    }
}

/// Evaluates every expression query, each after the expressions it references (any order in the request),
/// refusing cycles. `ctx.metrics` holds the metric queries' series; returns every expression's value by id.
pub fn evaluate_queries(queries: &[Query], mut ctx: Context) -> Result<BTreeMap<String, Value>, MathError> {
    let mut pending: Vec<(String, Expr, BTreeSet<String>)> = Vec::new();
    for q in queries {
        if let Some(text) = &q.expression {
            let e = parse(text)?;
            let mut refs = BTreeSet::new();
            references(&e, &mut refs);
            pending.push((q.id.clone(), e, refs));
        }
    }
    let expression_ids: BTreeSet<String> = pending.iter().map(|(id, _, _)| id.clone()).collect();
    let mut done = BTreeSet::new();
    while !pending.is_empty() {
        let ready = pending
            .iter()
            .position(|(_, _, refs)| refs.iter().all(|r| !expression_ids.contains(r) || done.contains(r)));
        let Some(i) = ready else {
            let ids: Vec<&str> = pending.iter().map(|(id, _, _)| id.as_str()).collect();
            return Err(MathError::Type(format!("The expressions {} refer to each other in a cycle.", ids.join(", "))));
        };
        let (id, e, _) = pending.remove(i);
        let v = eval(&e, &ctx)?;
        done.insert(id.clone());
        ctx.expressions.insert(id, v);
    }
    Ok(ctx.expressions)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `[1, -, 3]` at timestamps 0, 60, 120…
    fn ts(pattern: &[Option<f64>]) -> Series {
        pattern.iter().enumerate().filter_map(|(i, v)| v.map(|v| (i as i64 * 60, v))).collect()
    }

    fn ctx() -> Context {
        Context {
            metrics: vec![
                ("m1".into(), ts(&[Some(1.0), Some(2.0), None, Some(4.0), Some(5.0)])),
                ("m2".into(), ts(&[Some(10.0), None, Some(0.0), Some(2.0), Some(5.0)])),
                ("cond".into(), ts(&[Some(1.0), Some(1.0), Some(0.0), Some(0.0), None])),
                ("a".into(), ts(&[Some(30.0), None, Some(0.0), Some(0.0), Some(30.0)])),
                ("b".into(), ts(&[Some(0.0), Some(0.0), Some(20.0), None, Some(20.0)])),
            ],
            expressions: [("e1".to_string(), Value::Series(ts(&[Some(7.0)])))].into_iter().collect(),
            timestamps: (0..5).map(|i| i * 60).collect(),
            period: 60,
        }
    }

    fn series(expr: &str) -> Vec<Option<f64>> {
        match evaluate(expr, &ctx()) {
            Ok(Value::Series(s)) => (0..5).map(|i| s.get(&(i * 60)).copied()).collect(),
            other => panic!("{expr}: {other:?}"),
        }
    }

    #[test]
    fn expressions_table() {
        let n = None;
        let cases: Vec<(&str, Vec<Option<f64>>)> = vec![
            // §2.2: missing counts as 0 in arithmetic.
            ("m1 + m2", vec![Some(11.0), Some(2.0), Some(0.0), Some(6.0), Some(10.0)]),
            ("m1 * 2 + 1", vec![Some(3.0), Some(5.0), n, Some(9.0), Some(11.0)]),
            ("-m1", vec![Some(-1.0), Some(-2.0), n, Some(-4.0), Some(-5.0)]),
            ("2 ^ m1", vec![Some(2.0), Some(4.0), n, Some(16.0), Some(32.0)]),
            ("(m1 + 1) * 2", vec![Some(4.0), Some(6.0), n, Some(10.0), Some(12.0)]),
            // §2.2: a point that would divide by zero is dropped (m2 missing at 60 counts as 0).
            ("m1 / m2", vec![Some(0.1), n, n, Some(2.0), Some(1.0)]),
            ("m1 > m2", vec![Some(0.0), Some(1.0), Some(0.0), Some(1.0), Some(0.0)]),
            ("m1 >= 4 AND m2 > 1", vec![Some(0.0), Some(0.0), Some(0.0), Some(1.0), Some(1.0)]),
            // At 120 m1 has no point, so `m1 < 2` has none either; OR then counts it as 0.
            ("m1 < 2 || m2 == 5", vec![Some(1.0), Some(0.0), Some(0.0), Some(0.0), Some(1.0)]),
            // §2.3: over an array point-wise; AVG counts missing as 0.
            ("SUM(METRICS(\"m\"))", vec![Some(11.0), Some(2.0), Some(0.0), Some(6.0), Some(10.0)]),
            ("AVG(METRICS('m'))", vec![Some(5.5), Some(1.0), Some(0.0), Some(3.0), Some(5.0)]),
            ("MAX(METRICS(\"m\"))", vec![Some(10.0), Some(2.0), Some(0.0), Some(4.0), Some(5.0)]),
            ("MIN(METRICS(\"m\"))", vec![Some(1.0), Some(2.0), Some(0.0), Some(2.0), Some(5.0)]),
            // Over one series: a scalar, usable inside a larger expression.
            ("m1 - AVG(m1)", vec![Some(-2.0), Some(-1.0), n, Some(1.0), Some(2.0)]),
            ("m1 + SUM(m2) - MAX(m2)", vec![Some(8.0), Some(9.0), n, Some(11.0), Some(12.0)]),
            // §2.4's example: cond [1,1,0,0,-], a [30,-,0,0,30], b [0,0,20,-,20] → [30,0,20,-,-].
            ("IF(cond, a, b)", vec![Some(30.0), Some(0.0), Some(20.0), n, n]),
            ("IF(cond, a)", vec![Some(30.0), Some(0.0), n, n, n]),
            ("IF(m1 > 3, 1, 0)", vec![Some(0.0), Some(0.0), n, Some(1.0), Some(1.0)]),
            ("IF(1, m1, m2)", vec![Some(1.0), Some(2.0), n, Some(4.0), Some(5.0)]),
            ("FILL(m1, 0)", vec![Some(1.0), Some(2.0), Some(0.0), Some(4.0), Some(5.0)]),
            ("FILL(m1, m2)", vec![Some(1.0), Some(2.0), Some(0.0), Some(4.0), Some(5.0)]),
            ("FILL(m1, REPEAT)", vec![Some(1.0), Some(2.0), Some(2.0), Some(4.0), Some(5.0)]),
            ("FILL(m1, LINEAR)", vec![Some(1.0), Some(2.0), Some(3.0), Some(4.0), Some(5.0)]),
            ("FILL(m2, REPEAT)", vec![Some(10.0), Some(10.0), Some(0.0), Some(2.0), Some(5.0)]),
            // RATE: per second between consecutive points (the first is dropped).
            ("RATE(m1)", vec![n, Some(1.0 / 60.0), n, Some(2.0 / 120.0), Some(1.0 / 60.0)]),
            ("DIFF(m1)", vec![n, Some(1.0), n, Some(2.0), Some(1.0)]),
            ("ABS(m1 - 3)", vec![Some(2.0), Some(1.0), n, Some(1.0), Some(2.0)]),
            ("m1 * PERIOD(m1)", vec![Some(60.0), Some(120.0), n, Some(240.0), Some(300.0)]),
            ("e1 + 1", vec![Some(8.0), n, n, n, n]),
        ];
        for (expr, want) in cases {
            assert_eq!(series(expr), want, "{expr}");
        }
    }

    /// Express's deployment alarm (`100 * (e4a + e5a + e4b + e5b) / (ra + rb)`) over ALB's series: requests are
    /// published for every group each period (0 when idle), error counts only when non-zero.
    #[test]
    fn the_deployment_alarm_expression() {
        let n = None;
        let ctx = Context {
            metrics: vec![
                // Periods: errors on a; none anywhere; only b errs; no requests; no data at all.
                ("e4a".into(), ts(&[Some(1.0), n, n, n, n])),
                ("e5a".into(), ts(&[Some(1.0), n, n, n, n])),
                ("e4b".into(), ts(&[n, n, n, n, n])),
                ("e5b".into(), ts(&[n, n, Some(5.0), n, n])),
                ("ra".into(), ts(&[Some(100.0), Some(100.0), Some(95.0), Some(0.0), n])),
                ("rb".into(), ts(&[Some(0.0), n, Some(5.0), Some(0.0), n])),
            ],
            timestamps: (0..5).map(|i| i * 60).collect(),
            period: 60,
            ..Default::default()
        };
        let Ok(Value::Series(s)) = evaluate("100 * (e4a + e5a + e4b + e5b) / (ra + rb)", &ctx) else {
            panic!("a series")
        };
        let got: Vec<Option<f64>> = (0..5).map(|i| s.get(&(i * 60)).copied()).collect();
        assert_eq!(got, vec![Some(2.0), Some(0.0), Some(5.0), n, n]);
    }

    #[test]
    fn metrics_lists_only_metric_queries() {
        let Ok(Value::Array(all)) = evaluate("METRICS()", &ctx()) else { panic!("array") };
        let ids: Vec<&str> = all.iter().map(|(id, _)| id.as_str()).collect();
        assert_eq!(ids, ["m1", "m2", "cond", "a", "b"], "e1 is an expression, not a metric");
        let Ok(Value::Array(arr)) = evaluate("METRICS(\"m\") * 2", &ctx()) else { panic!("array") };
        assert_eq!(arr.len(), 2);
        assert_eq!(arr[0].1.get(&0), Some(&2.0));
    }

    fn q(id: &str, expression: Option<&str>, return_data: bool) -> Query {
        Query { id: id.into(), expression: expression.map(String::from), return_data }
    }

    #[test]
    fn queries_are_evaluated_after_what_they_reference() {
        let queries = vec![
            q("e3", Some("e2 * 2"), true),
            q("e2", Some("SUM(METRICS()) + e1"), false),
            q("e1", Some("m1 - m1"), false),
            q("m1", None, false),
            q("m2", None, false),
        ];
        assert_eq!(validate_queries(&queries, false), Ok(()));
        assert_eq!(validate_queries(&queries, true), Ok(()), "one ReturnData");
        let mut c = ctx();
        c.expressions.clear();
        c.metrics.truncate(2);
        let out = evaluate_queries(&queries, c).expect("evaluates");
        let Some(Value::Series(e3)) = out.get("e3") else { panic!("{out:?}") };
        // m1 + m2 with missing as 0, plus e1 (m1 - m1: 0 where m1 has a point), doubled.
        assert_eq!(e3.values().copied().collect::<Vec<_>>(), vec![22.0, 4.0, 0.0, 12.0, 20.0]);
        let cyclic = vec![q("e1", Some("e2 + 1"), true), q("e2", Some("e1 + m1"), false), q("m1", None, false)];
        assert_eq!(
            evaluate_queries(&cyclic, ctx()).expect_err("cycle"),
            MathError::Type("The expressions e1, e2 refer to each other in a cycle.".into())
        );
    }

    #[test]
    fn query_set_rules() {
        let m = |i: usize| q(&format!("m{i}"), None, false);
        let e = |i: usize| q(&format!("e{i}"), Some("m1"), false);
        let cases: Vec<(Vec<Query>, bool, &str)> = vec![
            (vec![], false, "MissingParameter: The parameter MetricDataQueries is required."),
            (
                vec![q("M1", None, true)],
                false,
                "InvalidParameterValue: The value M1 for parameter MetricDataQueries.member.1.Id is invalid: an id starts with a lowercase letter and holds only letters, digits and underscores.",
            ),
            (
                vec![q("m-1", None, true)],
                false,
                "InvalidParameterValue: The value m-1 for parameter MetricDataQueries.member.1.Id is invalid: an id starts with a lowercase letter and holds only letters, digits and underscores.",
            ),
            (
                vec![q("m1", None, true), q("m1", None, true)],
                false,
                "InvalidParameterValue: The value m1 for parameter MetricDataQueries.member.2.Id is not unique.",
            ),
            (
                (0..501).map(m).collect(),
                false,
                "InvalidParameterValue: The collection MetricDataQueries must not have a size greater than 500.",
            ),
            (
                (0..21).map(m).collect(),
                true,
                "InvalidParameterValue: The collection Metrics must not have a size greater than 20.",
            ),
            (
                (0..11).map(m).chain([q("x", Some("m1"), true)]).collect(),
                true,
                "InvalidParameterValue: An alarm can have at most 10 metrics and 10 expressions in Metrics.",
            ),
            (
                (0..2).map(m).chain((0..2).map(e)).collect(),
                true,
                "InvalidParameterValue: Exactly one element of the Metrics list must have ReturnData set to true.",
            ),
            (
                vec![q("m1", None, true), q("e1", Some("m1"), true)],
                true,
                "InvalidParameterValue: Exactly one element of the Metrics list must have ReturnData set to true.",
            ),
        ];
        for (queries, alarm, want) in cases {
            assert_eq!(validate_queries(&queries, alarm).expect_err(want).to_string(), want);
        }
        assert_eq!(validate_queries(&(0..500).map(m).collect::<Vec<_>>(), false), Ok(()));
    }

    #[test]
    fn errors_table() {
        let long = format!("m1{}", " + m1".repeat(500));
        let deep = format!("{}m1{}", "(".repeat(1000), ")".repeat(1000));
        let minus = format!("{}m1", "-".repeat(2000));
        let cases: Vec<(&str, MathError)> = vec![
            ("SEARCH('{AWS/EC2} CPU', 'Average')", MathError::Unsupported("SEARCH".into())),
            ("ANOMALY_DETECTION_BAND(m1)", MathError::Unsupported("ANOMALY_DETECTION_BAND".into())),
            ("sum(m1)", MathError::Unsupported("sum".into())),
            ("m9 + 1", MathError::UnknownId("m9".into())),
            ("m1 +", MathError::Syntax { at: 4, message: "unexpected end".into() }),
            ("(m1", MathError::Syntax { at: 3, message: "expected )".into() }),
            ("m1 m2", MathError::Syntax { at: 3, message: "unexpected trailing input".into() }),
            ("m1 # 2", MathError::Syntax { at: 3, message: "unexpected character #".into() }),
            (
                "M1 + 1",
                MathError::Syntax {
                    at: 3,
                    message: "M1 is neither an id (ids start with a lowercase letter) nor a function call".into(),
                },
            ),
            ("SUM(m1)", MathError::Type("The expression must produce a time series, not a single value.".into())),
            ("IF(m1, METRICS(), m2)", MathError::Type("IF does not take arrays.".into())),
            ("RATE(1)", MathError::Type("This function takes a time series or an array of time series.".into())),
            ("FILL(m1)", MathError::Type("FILL takes 2 to 2 arguments; 1 given.".into())),
            (&long, MathError::TooLong),
            (&deep, MathError::Syntax { at: 64, message: "the expression is nested too deeply".into() }),
            (&minus, MathError::Syntax { at: 64, message: "the expression is nested too deeply".into() }),
        ];
        for (expr, want) in cases {
            assert_eq!(evaluate(expr, &ctx()).expect_err(expr), want, "{expr}");
        }
        assert_eq!(
            evaluate("PERIOD(e1)", &ctx()).expect_err("expression"),
            MathError::Type("PERIOD takes the id of a metric query.".into())
        );
        let e: Invalid = MathError::Unsupported("SEARCH".into()).into();
        assert_eq!(
            e.to_string(),
            "InvalidParameterValue: The function SEARCH is not supported by berth's metric math."
        );
    }
}
