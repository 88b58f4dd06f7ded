//! The client side of the wire protocols: an operation's input (the model's JSON shape) becomes a request body
//! in the service's protocol, and the answer (or the error) comes back as the model's JSON shape.
//!
//! - AWS JSON 1.1/1.0 (`json.rs`): the JSON shape is the body; errors from `__type`/`x-amzn-ErrorType`.
//! - Query and EC2 (`query.rs` encodes the form, `xml.rs` decodes the XML), both walking
//!   [`berth_model::schema`], the inverse of berth-api's codec.

mod json;
mod query;
mod xml;

use serde_json::Value;

use crate::ClientError;
use crate::service::{Service, Wire};
use crate::transport::Answer;

/// A request body with the headers its protocol needs.
#[derive(Debug)]
pub(crate) struct Encoded {
    pub(crate) content_type: &'static str,
    /// `X-Amz-Target` (JSON protocols).
    pub(crate) target: Option<String>,
    pub(crate) body: Vec<u8>,
}

/// The request body of `action` with `input` (an object keyed by member names, or null for no members).
pub(crate) fn encode(service: Service, action: &str, input: &Value) -> Result<Encoded, ClientError> {
    let empty = Value::Object(serde_json::Map::new());
    let input = if input.is_null() { &empty } else { input };
    if !input.is_object() {
        return Err(ClientError::Config(format!(
            "the input of {action} must be a JSON object keyed by member names, not {input}"
        )));
    }
    match service.wire() {
        Wire::Json { target_prefix, version } => json::encode(target_prefix, version, action, input),
        Wire::Query => query::encode(service, query::Flavor::Query, action, input),
        Wire::Ec2 => query::encode(service, query::Flavor::Ec2, action, input),
    }
}

/// The answer as the model's JSON shape, or the error it carries.
pub(crate) fn decode(service: Service, action: &str, answer: &Answer) -> Result<Value, ClientError> {
    let success = (200..300).contains(&answer.status);
    match (service.wire(), success) {
        (Wire::Json { .. }, true) => json::decode(action, &answer.body),
        (Wire::Json { .. }, false) => Err(json::error(answer)),
        (Wire::Query, true) => xml::decode(service, xml::Flavor::Query, action, &answer.body),
        (Wire::Ec2, true) => xml::decode(service, xml::Flavor::Ec2, action, &answer.body),
        (Wire::Query | Wire::Ec2, false) => Err(xml::error(answer)),
    }
}

/// The request id berth sent in its headers.
fn header_request_id(answer: &Answer) -> Option<String> {
    ["x-amzn-requestid", "x-amz-request-id"]
        .iter()
        .find_map(|h| answer.headers.get(*h).and_then(|v| v.to_str().ok()).map(str::to_string))
}

/// An answer in no protocol (a proxy's HTML page, an empty 5xx): the status and the start of the body.
fn unreadable(answer: &Answer, why: &str) -> ClientError {
    let text = String::from_utf8_lossy(&answer.body);
    let snippet: String = text.chars().take(200).collect();
    ClientError::Decode(format!("HTTP {} with {why}: {}", answer.status, snippet.trim()))
}

/// A hand-made wire schema with what the implemented models happen not to use (flattened lists and maps, named
/// map keys, `queryName`), the same as berth-api's codec tests use, so both directions are checked against the
/// spellings the server reads and writes.
#[cfg(test)]
pub(crate) mod test_schema {
    use berth_model::schema::{List, Map as MapShape, Member, Ref, Shape, Structure};

    static S_TAG: Structure = Structure {
        name: "Tag",
        members: &[
            Member { name: "Key", required: true, target: Ref::DEFAULT },
            Member { name: "Value", required: false, target: Ref::DEFAULT },
        ],
    };
    static L_NAMES: List = List { name: "Names", member: Ref::DEFAULT };
    static L_ITEMS: List = List { name: "Items", member: Ref { location_name: Some("item"), ..Ref::DEFAULT } };
    static L_TAGS: List = List { name: "Tags", member: Ref { shape: Shape::Structure(&S_TAG), ..Ref::DEFAULT } };
    static M_ATTRS: MapShape = MapShape {
        name: "Attrs",
        key: Ref { location_name: Some("Name"), ..Ref::DEFAULT },
        value: Ref { shape: Shape::Integer, location_name: Some("Count"), ..Ref::DEFAULT },
    };
    static M_PLAIN: MapShape = MapShape { name: "Plain", key: Ref::DEFAULT, value: Ref::DEFAULT };
    pub(crate) static S_INPUT: Structure = Structure {
        name: "Input",
        members: &[
            Member { name: "Names", required: false, target: Ref { shape: Shape::List(&L_NAMES), ..Ref::DEFAULT } },
            Member {
                name: "Flat",
                required: false,
                target: Ref { shape: Shape::List(&L_ITEMS), flattened: true, ..Ref::DEFAULT },
            },
            Member { name: "Tags", required: false, target: Ref { shape: Shape::List(&L_TAGS), ..Ref::DEFAULT } },
            Member { name: "Attrs", required: false, target: Ref { shape: Shape::Map(&M_ATTRS), ..Ref::DEFAULT } },
            Member {
                name: "FlatMap",
                required: false,
                target: Ref { shape: Shape::Map(&M_PLAIN), flattened: true, ..Ref::DEFAULT },
            },
            Member {
                name: "Size",
                required: false,
                target: Ref {
                    shape: Shape::Long,
                    location_name: Some("size"),
                    query_name: Some("Bytes"),
                    ..Ref::DEFAULT
                },
            },
            Member { name: "Ratio", required: false, target: Ref { shape: Shape::Double, ..Ref::DEFAULT } },
            Member {
                name: "On",
                required: false,
                target: Ref { shape: Shape::Boolean, location_name: Some("on"), ..Ref::DEFAULT },
            },
            Member { name: "At", required: false, target: Ref { shape: Shape::Timestamp, ..Ref::DEFAULT } },
            Member { name: "Tag", required: false, target: Ref { shape: Shape::Structure(&S_TAG), ..Ref::DEFAULT } },
            Member { name: "Doc", required: false, target: Ref { url_encoded: true, ..Ref::DEFAULT } },
        ],
    };
}
