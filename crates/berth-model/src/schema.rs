//! The wire schema of the Query and EC2 services: for every member, the names and traits the codecs need
//! (`locationName`, `queryName`, `flattened`, `timestampFormat`), each reference already merged over its
//! target shape as botocore merges them. Generated alongside the serde types; the serde types carry the
//! values, this carries how they are spelled on the wire.

use std::borrow::Cow;
use std::fmt;

/// A shape as the codecs see it. Enums are strings (serde checks their values).
#[derive(Clone, Copy)]
pub enum Shape {
    String,
    Integer,
    Long,
    Double,
    Boolean,
    Timestamp,
    /// Base64 text on the wire and in the serde types.
    Blob,
    Structure(&'static Structure),
    List(&'static List),
    Map(&'static Map),
}

impl fmt::Debug for Shape {
    // Names only: shapes reference each other, and printing them whole would repeat the model.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Shape::Structure(s) => write!(f, "Structure({})", s.name),
            Shape::List(l) => write!(f, "List({})", l.name),
            Shape::Map(m) => write!(f, "Map({})", m.name),
            Shape::String => f.write_str("String"),
            Shape::Integer => f.write_str("Integer"),
            Shape::Long => f.write_str("Long"),
            Shape::Double => f.write_str("Double"),
            Shape::Boolean => f.write_str("Boolean"),
            Shape::Timestamp => f.write_str("Timestamp"),
            Shape::Blob => f.write_str("Blob"),
        }
    }
}

/// A reference to a shape (a structure member, a list member, a map key or value) with its effective
/// serialization traits.
#[derive(Debug, Clone, Copy)]
pub struct Ref {
    pub shape: Shape,
    /// `locationName`: the XML element name, and the Query parameter name (capitalised for EC2).
    pub location_name: Option<&'static str>,
    /// `queryName`: the EC2 request parameter name, which wins over `locationName`.
    pub query_name: Option<&'static str>,
    /// A flattened list or map repeats its elements in place instead of wrapping them.
    pub flattened: bool,
    /// `timestampFormat`; `None` means ISO 8601, the Query and XML default.
    pub timestamp_format: Option<&'static str>,
    /// The string travels percent-encoded in responses: IAM's policy documents (`policyDocumentType`), which
    /// botocore URL-decodes and parses into a dict. Requests carry them plain.
    pub url_encoded: bool,
}

impl Ref {
    pub const DEFAULT: Ref = Ref {
        shape: Shape::String,
        location_name: None,
        query_name: None,
        flattened: false,
        timestamp_format: None,
        url_encoded: false,
    };
}

#[derive(Debug)]
pub struct Member {
    /// The member name: the serde key of the generated types.
    pub name: &'static str,
    pub required: bool,
    pub target: Ref,
}

#[derive(Debug)]
pub struct Structure {
    pub name: &'static str,
    pub members: &'static [Member],
}

#[derive(Debug)]
pub struct List {
    pub name: &'static str,
    pub member: Ref,
}

#[derive(Debug)]
pub struct Map {
    pub name: &'static str,
    pub key: Ref,
    pub value: Ref,
}

/// One operation's wire schema.
#[derive(Debug)]
pub struct OperationSchema {
    pub name: &'static str,
    pub input: &'static Structure,
    /// `None` for operations that answer with only the response metadata.
    pub output: Option<&'static Structure>,
    /// The element wrapping the output inside `<{Operation}Response>` (Query protocol).
    pub result_wrapper: Option<&'static str>,
}

/// An error the model declares, as it appears on the wire.
#[derive(Debug)]
pub struct ModeledError {
    pub shape: &'static str,
    pub code: &'static str,
    pub http_status: u16,
    pub sender_fault: bool,
}

/// How a Query-family service spells its request parameters: Query (ELBv2, IAM, STS, CloudWatch) or EC2's variant.
/// The server's decoder and berth's own client's encoder both follow these rules.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flavor {
    Query,
    Ec2,
}

impl Flavor {
    /// The request parameter name of a reference (`default` when the model names none), as botocore spells it:
    /// Query takes `locationName`; EC2 its `queryName`, else the capitalised `locationName`.
    pub fn param_name<'n>(self, r: &Ref, default: &'n str) -> Cow<'n, str> {
        match self {
            Flavor::Query => Cow::Borrowed(r.location_name.unwrap_or(default)),
            Flavor::Ec2 => match (r.query_name, r.location_name) {
                (Some(q), _) => Cow::Borrowed(q),
                (None, Some(l)) => Cow::Owned(capitalize(l).into_owned()),
                (None, None) => Cow::Borrowed(default),
            },
        }
    }

    /// The prefix of the numbered parameters of the list `list` (elements `member`) at `key`: `key.member` (or
    /// the member's `locationName`) for Query; for a flattened list `key`, or the member's own name in place of the
    /// list's when it has one; for EC2 `key`, numbered right after the member's name.
    pub fn list_items_prefix(self, list: &Ref, member: &Ref, key: &str) -> String {
        match self {
            Flavor::Ec2 => key.to_string(),
            Flavor::Query if list.flattened => match member.location_name {
                Some(name) => match key.rsplit_once('.') {
                    Some((parent, _)) => format!("{parent}.{name}"),
                    None => name.to_string(),
                },
                None => key.to_string(),
            },
            Flavor::Query => format!("{key}.{}", member.location_name.unwrap_or("member")),
        }
    }
}

/// `prefix.name`, or `name` at the top level.
pub fn join_param(prefix: &str, name: &str) -> String {
    if prefix.is_empty() { name.to_string() } else { format!("{prefix}.{name}") }
}

fn capitalize(s: &str) -> Cow<'_, str> {
    let mut chars = s.chars();
    match chars.next() {
        Some(c) if c.is_lowercase() => Cow::Owned(c.to_uppercase().chain(chars).collect()),
        _ => Cow::Borrowed(s),
    }
}
