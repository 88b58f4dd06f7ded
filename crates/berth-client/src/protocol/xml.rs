//! Query and EC2 answers: the XML (`<{Action}Response><{Action}Result>…` for Query, `<{Action}Response>…` for
//! EC2) read back into the model's JSON shape by walking the operation's wire schema, the inverse of berth-api's
//! writer: element names from `locationName`, lists wrapped in `<member>` (or the list member's name, `<item>`
//! in EC2) unless flattened, maps as `<entry><key/><value/></entry>`, ISO 8601 timestamps as epoch seconds
//! (what [`berth_model::Timestamp`] holds), IAM's percent-encoded policy documents decoded. Errors are
//! `<ErrorResponse><Error><Code/><Message/></Error><RequestId/>` and EC2's `<Response><Errors><Error>…`.

use berth_model::schema::{Ref, Shape, Structure};
use quick_xml::events::Event;
use serde_json::{Map, Value};

use super::{header_request_id, unreadable};
use crate::ClientError;
use crate::service::Service;
use crate::transport::Answer;

/// How deep an answer may nest (berth's deepest shapes are a handful of levels).
const MAX_DEPTH: usize = 64;

pub(crate) use berth_model::schema::Flavor;

/// An element: its local name (namespace prefix dropped), its text, its child elements.
#[derive(Debug, Default)]
pub(crate) struct Node {
    name: String,
    text: String,
    children: Vec<Node>,
}

impl Node {
    fn child(&self, name: &str) -> Option<&Node> {
        self.children.iter().find(|c| c.name == name)
    }

    fn children_named<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a Node> + 'a {
        self.children.iter().filter(move |c| c.name == name)
    }

    /// The first element named `name` at or below this one, depth first.
    fn find(&self, name: &str) -> Option<&Node> {
        if self.name == name {
            return Some(self);
        }
        self.children.iter().find_map(|c| c.find(name))
    }
}

/// Parses a document into its root element.
pub(crate) fn parse(body: &[u8]) -> Result<Node, String> {
    let mut reader = quick_xml::Reader::from_reader(body);
    let mut stack: Vec<Node> = Vec::new();
    let mut root: Option<Node> = None;
    loop {
        let event = reader.read_event().map_err(|e| format!("at byte {}: {e}", reader.buffer_position()))?;
        match event {
            Event::Start(e) => {
                if stack.len() >= MAX_DEPTH {
                    return Err(format!("elements nest deeper than {MAX_DEPTH}"));
                }
                let name = String::from_utf8_lossy(e.local_name().as_ref()).into_owned();
                stack.push(Node { name, ..Node::default() });
            }
            Event::Empty(e) => {
                let node =
                    Node { name: String::from_utf8_lossy(e.local_name().as_ref()).into_owned(), ..Node::default() };
                match stack.last_mut() {
                    Some(parent) => parent.children.push(node),
                    None => root = root.or(Some(node)),
                }
            }
            Event::End(_) => {
                let node = stack.pop().ok_or("an end tag without a start")?;
                match stack.last_mut() {
                    Some(parent) => parent.children.push(node),
                    None => root = root.or(Some(node)),
                }
            }
            Event::Text(t) => {
                if let Some(node) = stack.last_mut() {
                    node.text.push_str(&t.xml_content().map_err(|e| e.to_string())?);
                }
            }
            Event::CData(t) => {
                if let Some(node) = stack.last_mut() {
                    node.text.push_str(&t.decode().map_err(|e| e.to_string())?);
                }
            }
            Event::GeneralRef(r) => {
                let name = r.decode().map_err(|e| e.to_string())?;
                let reference = format!("&{name};");
                let text = quick_xml::escape::unescape(&reference).map_err(|e| format!("{reference}: {e}"))?;
                if let Some(node) = stack.last_mut() {
                    node.text.push_str(&text);
                }
            }
            Event::Eof => break,
            Event::Decl(_) | Event::PI(_) | Event::Comment(_) | Event::DocType(_) => {}
        }
    }
    if !stack.is_empty() {
        return Err("the document ends inside an element".into());
    }
    root.ok_or_else(|| "the document has no element".to_string())
}

/// A successful answer as the operation's output shape (an empty object for operations without output).
pub(super) fn decode(service: Service, flavor: Flavor, action: &str, body: &[u8]) -> Result<Value, ClientError> {
    let bad = |why: String| ClientError::Decode(format!("{action}: {why}"));
    let schema = service.operation_schema(action).ok_or_else(|| bad("not an operation berth serves".into()))?;
    let root = parse(body).map_err(|e| bad(format!("the answer is not XML: {e}")))?;
    let expected = format!("{action}Response");
    if root.name != expected {
        return Err(bad(format!("expected <{expected}>, got <{}>", root.name)));
    }
    let Some(output) = schema.output else { return Ok(Value::Object(Map::new())) };
    let node = match (flavor, schema.result_wrapper) {
        (Flavor::Query, Some(wrapper)) => match root.child(wrapper) {
            Some(node) => node,
            None => return Ok(Value::Object(Map::new())),
        },
        _ => &root,
    };
    structure(output, node).map(Value::Object).map_err(bad)
}

fn structure(st: &Structure, node: &Node) -> Result<Map<String, Value>, String> {
    let mut obj = Map::new();
    for m in st.members {
        let name = m.target.location_name.unwrap_or(m.name);
        let value = match m.target.shape {
            Shape::List(list) if m.target.flattened => {
                let item_name = list.member.location_name.unwrap_or(name);
                let items =
                    node.children_named(item_name).map(|c| element(&list.member, c)).collect::<Result<Vec<_>, _>>()?;
                if items.is_empty() { None } else { Some(Value::Array(items)) }
            }
            Shape::Map(map) if m.target.flattened => {
                let mut entries = Map::new();
                for entry in node.children_named(name) {
                    let (k, v) = map_entry(map.key, map.value, entry)?;
                    entries.insert(k, v);
                }
                if entries.is_empty() { None } else { Some(Value::Object(entries)) }
            }
            _ => node.child(name).map(|c| element(&m.target, c)).transpose()?,
        };
        if let Some(v) = value {
            obj.insert(m.name.to_string(), v);
        }
    }
    Ok(obj)
}

fn map_entry(key: Ref, value: Ref, entry: &Node) -> Result<(String, Value), String> {
    let key_name = key.location_name.unwrap_or("key");
    let value_name = value.location_name.unwrap_or("value");
    let k = entry.child(key_name).ok_or_else(|| format!("<{}> has no <{key_name}>", entry.name))?.text.clone();
    let v = match entry.child(value_name) {
        Some(node) => element(&value, node)?,
        None => Value::Null,
    };
    Ok((k, v))
}

fn element(r: &Ref, node: &Node) -> Result<Value, String> {
    let text = || node.text.trim();
    let invalid = |what: &str| format!("<{}> holds '{}', not {what}", node.name, node.text.trim());
    Ok(match r.shape {
        Shape::Structure(st) => Value::Object(structure(st, node)?),
        Shape::List(list) => {
            let item_name = list.member.location_name.unwrap_or("member");
            Value::Array(node.children_named(item_name).map(|c| element(&list.member, c)).collect::<Result<_, _>>()?)
        }
        Shape::Map(map) => {
            let mut entries = Map::new();
            for entry in node.children_named("entry") {
                let (k, v) = map_entry(map.key, map.value, entry)?;
                entries.insert(k, v);
            }
            Value::Object(entries)
        }
        Shape::Integer | Shape::Long => Value::from(text().parse::<i64>().map_err(|_| invalid("an integer"))?),
        Shape::Double => text()
            .parse::<f64>()
            .ok()
            .and_then(serde_json::Number::from_f64)
            .map(Value::Number)
            .ok_or_else(|| invalid("a number"))?,
        Shape::Boolean => match text() {
            "true" => Value::Bool(true),
            "false" => Value::Bool(false),
            _ => return Err(invalid("true or false")),
        },
        Shape::Timestamp => parse_timestamp(text())
            .and_then(serde_json::Number::from_f64)
            .map(Value::Number)
            .ok_or_else(|| invalid("a timestamp"))?,
        Shape::String if r.url_encoded => Value::String(
            percent_encoding::percent_decode_str(&node.text)
                .decode_utf8()
                .map_err(|_| invalid("percent-encoded UTF-8"))?
                .into_owned(),
        ),
        Shape::String | Shape::Blob => Value::String(node.text.clone()),
    })
}

/// ISO 8601 (`2023-10-10T00:30:00Z`, fractions and offsets allowed) or epoch seconds, as epoch seconds.
fn parse_timestamp(text: &str) -> Option<f64> {
    if let Ok(secs) = text.parse::<f64>() {
        return secs.is_finite().then_some(secs);
    }
    let t = time::OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339).ok()?;
    Some(t.unix_timestamp() as f64 + f64::from(t.millisecond()) / 1e3)
}

/// A Query or EC2 error answer.
pub(super) fn error(answer: &Answer) -> ClientError {
    let Ok(root) = parse(&answer.body) else { return unreadable(answer, "no XML error document") };
    let Some(error) = root.find("Error") else { return unreadable(answer, "no <Error> in the document") };
    let Some(code) = error.child("Code").map(|c| c.text.trim().to_string()).filter(|c| !c.is_empty()) else {
        return unreadable(answer, "no error <Code>");
    };
    let message = error.child("Message").map(|m| m.text.trim().to_string()).unwrap_or_default();
    let request_id = root
        .find("RequestId")
        .or_else(|| root.find("RequestID"))
        .map(|n| n.text.trim().to_string())
        .filter(|r| !r.is_empty())
        .or_else(|| header_request_id(answer));
    ClientError::Api { code, message, status: answer.status, request_id }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(status: u16, body: &str) -> Answer {
        Answer { status, headers: http::HeaderMap::new(), body: bytes::Bytes::copy_from_slice(body.as_bytes()) }
    }

    #[test]
    fn parses_text_with_references_and_cdata() {
        let root =
            parse(b"<?xml version=\"1.0\"?>\n<a xmlns=\"x\"><b>x &amp; y&#13;&lt;</b><c/><d><![CDATA[<raw>]]></d></a>")
                .expect("parses");
        assert_eq!(root.name, "a");
        assert_eq!(root.child("b").expect("b").text, "x & y\r<");
        assert!(root.child("c").expect("c").children.is_empty());
        assert_eq!(root.child("d").expect("d").text, "<raw>");
        for bad in ["<a><b></a>", "<a>", "", "<a>&nosuch;</a>"] {
            assert!(parse(bad.as_bytes()).is_err(), "{bad}");
        }
    }

    #[test]
    fn error_documents_of_both_flavors() {
        let query = "<ErrorResponse xmlns=\"https://iam.amazonaws.com/doc/2010-05-08/\"><Error><Type>Sender</Type>\
                     <Code>NoSuchEntity</Code><Message>The role x &lt;y&gt; cannot be found.</Message></Error>\
                     <RequestId>rid-q</RequestId></ErrorResponse>";
        let ec2 = "<?xml version=\"1.0\"?><Response><Errors><Error><Code>InvalidGroup.NotFound</Code>\
                   <Message>gone</Message></Error></Errors><RequestID>rid-e</RequestID></Response>";
        for (body, status, code, message, rid) in [
            (query, 404, "NoSuchEntity", "The role x <y> cannot be found.", "rid-q"),
            (ec2, 400, "InvalidGroup.NotFound", "gone", "rid-e"),
        ] {
            match error(&answer(status, body)) {
                ClientError::Api { code: c, message: m, status: s, request_id } => {
                    assert_eq!((c.as_str(), m.as_str(), s, request_id.as_deref()), (code, message, status, Some(rid)));
                }
                other => panic!("{other:?}"),
            }
        }
        for body in ["", "<html>oops</html>", "<ErrorResponse><Error><Message>m</Message></Error></ErrorResponse>"] {
            assert!(matches!(error(&answer(500, body)), ClientError::Decode(m) if m.contains("HTTP 500")), "{body}");
        }
    }

    /// The inverse of berth-api's `xml_writes_flattened_members_and_maps`: its exact output reads back.
    #[test]
    fn the_server_writing_reads_back() {
        let written = "<R><Names><member>a</member><member>b</member></Names><item>x</item><item>y</item>\
             <Tags><member><Key>k</Key><Value>&lt;v&gt;</Value></member></Tags>\
             <Attrs><entry><Name>a</Name><Count>1</Count></entry></Attrs>\
             <FlatMap><key>k</key><value>v</value></FlatMap><size>5</size><Ratio>0.5</Ratio><on>false</on>\
             <At>2023-10-10T00:30:00Z</At><Doc>%7B%22a%22%3A%20%22b%2Bc%22%7D</Doc><Unknown>1</Unknown></R>";
        let node = parse(written.as_bytes()).expect("parses");
        let got = structure(&crate::protocol::test_schema::S_INPUT, &node).expect("decodes");
        assert_eq!(
            Value::Object(got),
            serde_json::json!({
                "Names": ["a", "b"], "Flat": ["x", "y"], "Tags": [{"Key": "k", "Value": "<v>"}],
                "Attrs": {"a": 1}, "FlatMap": {"k": "v"}, "Size": 5, "Ratio": 0.5, "On": false,
                "At": 1_696_897_800.0, "Doc": "{\"a\": \"b+c\"}"
            })
        );
        // Empty wrappers are empty lists and maps; absent members stay absent.
        let node = parse(b"<R><Names/><Attrs></Attrs></R>").expect("parses");
        let got = structure(&crate::protocol::test_schema::S_INPUT, &node).expect("decodes");
        assert_eq!(Value::Object(got), serde_json::json!({"Names": [], "Attrs": {}}));
        for (bad, text) in [
            ("<R><size>five</size></R>", "<size> holds 'five', not an integer"),
            ("<R><on>yes</on></R>", "not true or false"),
            ("<R><At>noon</At></R>", "not a timestamp"),
            ("<R><Attrs><entry><Count>1</Count></entry></Attrs></R>", "<entry> has no <Name>"),
            ("<R><Doc>%FF</Doc></R>", "percent-encoded UTF-8"),
        ] {
            let node = parse(bad.as_bytes()).expect("parses");
            let e = structure(&crate::protocol::test_schema::S_INPUT, &node).expect_err(bad);
            assert!(e.contains(text), "{bad}: {e}");
        }
    }

    #[test]
    fn timestamps() {
        assert_eq!(parse_timestamp("2023-10-10T00:30:00Z"), Some(1_696_897_800.0));
        assert_eq!(parse_timestamp("2023-10-10T00:30:00.250Z"), Some(1_696_897_800.25));
        assert_eq!(parse_timestamp("2023-10-10T02:30:00+02:00"), Some(1_696_897_800.0));
        assert_eq!(parse_timestamp("1696897800"), Some(1_696_897_800.0));
        assert_eq!(parse_timestamp("yesterday"), None);
    }
}
