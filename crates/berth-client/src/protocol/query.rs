//! Query and EC2 request encoding: the input object (keyed by member names) becomes form parameters by walking
//! the operation's wire schema, the inverse of berth-api's decoder. Query spells list elements `Names.member.1`
//! (or the list member's `locationName`; flattened lists repeat in place), an empty list as `Names=`, map entries
//! `Tags.entry.1.key`; EC2 names members by `queryName`, else the capitalised `locationName`, and numbers list
//! elements right after the name (`Filter.1.Value.1`).

use std::borrow::Cow;

use berth_model::schema::{Map as MapShape, Ref, Shape, Structure, join_param};
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use serde_json::Value;

use super::Encoded;
use crate::ClientError;
use crate::service::Service;

const CONTENT_TYPE: &str = "application/x-www-form-urlencoded; charset=utf-8";

/// RFC 3986's unreserved characters stay; everything else is percent-encoded (as botocore encodes).
const FORM: &AsciiSet = &NON_ALPHANUMERIC.remove(b'-').remove(b'_').remove(b'.').remove(b'~');

/// Query proper, or EC2's variant of it.
pub(crate) use berth_model::schema::Flavor;

pub(super) fn encode(service: Service, flavor: Flavor, action: &str, input: &Value) -> Result<Encoded, ClientError> {
    let schema = service.operation_schema(action).ok_or_else(|| {
        ClientError::Config(format!("{action} is not an operation of {} that berth serves", service.signing_name()))
    })?;
    let mut params =
        vec![("Action".to_string(), action.to_string()), ("Version".to_string(), service.api_version().to_string())];
    Writer { flavor, action, params: &mut params }.structure(schema.input, "", input, "")?;
    Ok(Encoded { content_type: CONTENT_TYPE, target: None, body: form(&params).into_bytes() })
}

/// The parameters as `application/x-www-form-urlencoded` text.
pub(crate) fn form(params: &[(String, String)]) -> String {
    params
        .iter()
        .map(|(k, v)| format!("{}={}", utf8_percent_encode(k, FORM), utf8_percent_encode(v, FORM)))
        .collect::<Vec<_>>()
        .join("&")
}

struct Writer<'a> {
    flavor: Flavor,
    action: &'a str,
    params: &'a mut Vec<(String, String)>,
}

impl Writer<'_> {
    fn wire_name<'n>(&self, r: &Ref, default: &'n str) -> Cow<'n, str> {
        self.flavor.param_name(r, default)
    }

    fn bad(&self, path: &str, what: &str) -> ClientError {
        let at = if path.is_empty() { "the input".to_string() } else { format!("'{path}'") };
        ClientError::Config(format!("{}: {at} {what}", self.action))
    }

    /// `path` is the member path for messages (`TargetGroupArns[0]`), `prefix` the wire name.
    fn structure(&mut self, st: &Structure, prefix: &str, value: &Value, path: &str) -> Result<(), ClientError> {
        let obj = value.as_object().ok_or_else(|| self.bad(path, &format!("must be an object ({})", st.name)))?;
        if let Some(unknown) = obj.keys().find(|k| !st.members.iter().any(|m| m.name == k.as_str())) {
            let known: Vec<&str> = st.members.iter().map(|m| m.name).collect();
            return Err(self.bad(
                &join_param(path, unknown),
                &format!("is not a member of {} (members: {})", st.name, known.join(", ")),
            ));
        }
        for m in st.members {
            let Some(v) = obj.get(m.name).filter(|v| !v.is_null()) else { continue };
            let key = join_param(prefix, &self.wire_name(&m.target, m.name));
            self.value(&m.target, &key, v, &join_param(path, m.name))?;
        }
        Ok(())
    }

    fn value(&mut self, r: &Ref, key: &str, v: &Value, path: &str) -> Result<(), ClientError> {
        match r.shape {
            Shape::Structure(st) => self.structure(st, key, v, path),
            Shape::List(list) => self.list(r, &list.member, key, v, path),
            Shape::Map(map) => self.map(r, map, key, v, path),
            _ => {
                let text = self.scalar(r, v, path)?;
                self.params.push((key.to_string(), text));
                Ok(())
            }
        }
    }

    fn list(&mut self, r: &Ref, member: &Ref, key: &str, v: &Value, path: &str) -> Result<(), ClientError> {
        let items = v.as_array().ok_or_else(|| self.bad(path, "must be a list"))?;
        let items_prefix = self.flavor.list_items_prefix(r, member, key);
        if items.is_empty() {
            // Query spells an empty list as the bare parameter; EC2 leaves it out.
            if self.flavor == Flavor::Query {
                self.params.push((key.to_string(), String::new()));
            }
            return Ok(());
        }
        for (i, item) in items.iter().enumerate() {
            let item_path = format!("{path}[{i}]");
            if item.is_null() {
                return Err(self.bad(&item_path, "is null"));
            }
            self.value(member, &format!("{items_prefix}.{}", i + 1), item, &item_path)?;
        }
        Ok(())
    }

    fn map(&mut self, r: &Ref, map: &MapShape, key: &str, v: &Value, path: &str) -> Result<(), ClientError> {
        let obj = v.as_object().ok_or_else(|| self.bad(path, "must be an object (a map)"))?;
        let entries_prefix =
            if r.flattened || self.flavor == Flavor::Ec2 { key.to_string() } else { format!("{key}.entry") };
        let key_name = self.wire_name(&map.key, "key").into_owned();
        let value_name = self.wire_name(&map.value, "value").into_owned();
        for (i, (k, val)) in obj.iter().enumerate() {
            let entry = format!("{entries_prefix}.{}", i + 1);
            self.params.push((format!("{entry}.{key_name}"), k.clone()));
            if !val.is_null() {
                self.value(&map.value, &format!("{entry}.{value_name}"), val, &format!("{path}.{k}"))?;
            }
        }
        Ok(())
    }

    fn scalar(&self, r: &Ref, v: &Value, path: &str) -> Result<String, ClientError> {
        match (r.shape, v) {
            (Shape::String | Shape::Blob, Value::String(s)) => Ok(s.clone()),
            (Shape::Integer | Shape::Long, Value::Number(n)) if n.is_i64() || n.is_u64() => Ok(n.to_string()),
            (Shape::Double, Value::Number(n)) => Ok(n.to_string()),
            (Shape::Boolean, Value::Bool(b)) => Ok(b.to_string()),
            (Shape::Timestamp, Value::Number(n)) => {
                let secs = n.as_f64().ok_or_else(|| self.bad(path, "must be seconds since the epoch"))?;
                match r.timestamp_format {
                    Some("unixTimestamp") => Ok(n.to_string()),
                    _ => iso8601(secs).ok_or_else(|| self.bad(path, "is not a representable time")),
                }
            }
            (Shape::Timestamp, Value::String(s)) => Ok(s.clone()),
            (shape, _) => Err(self.bad(path, &format!("must be a {}", scalar_kind(shape)))),
        }
    }
}

fn scalar_kind(shape: Shape) -> &'static str {
    match shape {
        Shape::Integer | Shape::Long => "whole number",
        Shape::Double => "number",
        Shape::Boolean => "boolean",
        Shape::Timestamp => "timestamp (seconds since the epoch)",
        Shape::String | Shape::Blob => "string",
        Shape::Structure(_) | Shape::List(_) | Shape::Map(_) => "structure",
    }
}

/// Seconds since the epoch as ISO 8601 UTC with milliseconds: `2023-10-10T00:30:00.250Z`.
fn iso8601(secs: f64) -> Option<String> {
    if !secs.is_finite() {
        return None;
    }
    // Millisecond precision, as AWS carries it (rounding first keeps 0.25 from printing as .249).
    let nanos = (secs * 1e3).round() as i128 * 1_000_000;
    let t = time::OffsetDateTime::from_unix_timestamp_nanos(nanos).ok()?;
    let format =
        time::macros::format_description!("[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z");
    t.format(&format).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_are_iso8601() {
        assert_eq!(iso8601(1_696_897_800.25).as_deref(), Some("2023-10-10T00:30:00.250Z"));
        assert_eq!(iso8601(0.0).as_deref(), Some("1970-01-01T00:00:00.000Z"));
        assert_eq!(iso8601(f64::NAN), None);
    }

    fn encode_with(flavor: Flavor, input: Value) -> Result<String, ClientError> {
        let mut params = Vec::new();
        Writer { flavor, action: "Test", params: &mut params }.structure(
            &crate::protocol::test_schema::S_INPUT,
            "",
            &input,
            "",
        )?;
        Ok(form(&params))
    }

    /// The inverse of berth-api's `query_parameters_become_member_values` and `ec2_parameters_become_member_values`.
    #[test]
    fn members_become_the_parameters_the_server_reads() {
        use serde_json::json;
        let cases = [
            (Flavor::Query, json!({}), ""),
            (Flavor::Query, json!({"Names": []}), "Names="),
            (Flavor::Query, json!({"Names": ["a", "b"]}), "Names.member.1=a&Names.member.2=b"),
            (Flavor::Query, json!({"Flat": ["a", "b"]}), "item.1=a&item.2=b"),
            (
                Flavor::Query,
                json!({"Tags": [{"Key": "k", "Value": "v w"}, {"Key": "only"}]}),
                "Tags.member.1.Key=k&Tags.member.1.Value=v%20w&Tags.member.2.Key=only",
            ),
            (
                Flavor::Query,
                json!({"Attrs": {"a": 1, "b": 2}}),
                "Attrs.entry.1.Name=a&Attrs.entry.1.Count=1&Attrs.entry.2.Name=b&Attrs.entry.2.Count=2",
            ),
            (Flavor::Query, json!({"FlatMap": {"k": "v"}}), "FlatMap.1.key=k&FlatMap.1.value=v"),
            (Flavor::Query, json!({"Size": 5, "Ratio": 0.5, "On": true}), "size=5&Ratio=0.5&on=true"),
            (Flavor::Query, json!({"At": 1_696_897_800.25}), "At=2023-10-10T00%3A30%3A00.250Z"),
            (Flavor::Query, json!({"Tag": {"Key": "k"}, "Size": null}), "Tag.Key=k"),
            (Flavor::Query, json!({"Doc": "{\"a\": \"b c\"}"}), "Doc=%7B%22a%22%3A%20%22b%20c%22%7D"),
            (Flavor::Ec2, json!({"Size": 7, "On": false, "Names": ["a", "b"]}), "Bytes=7&Names.1=a&Names.2=b&On=false"),
            (Flavor::Ec2, json!({"Names": []}), ""),
            (Flavor::Ec2, json!({"Tags": [{"Key": "k"}]}), "Tags.1.Key=k"),
            (Flavor::Ec2, json!({"Attrs": {"a": 3}}), "Attrs.1.Name=a&Attrs.1.Count=3"),
        ];
        for (flavor, input, expected) in cases {
            let got = encode_with(flavor, input.clone()).unwrap_or_else(|e| panic!("{input}: {e}"));
            // Parameter order is not significant on the wire.
            let mut got: Vec<&str> = got.split('&').filter(|p| !p.is_empty()).collect();
            let mut expected: Vec<&str> = expected.split('&').filter(|p| !p.is_empty()).collect();
            got.sort_unstable();
            expected.sort_unstable();
            assert_eq!(got, expected, "{flavor:?} {input}");
        }
    }

    #[test]
    fn wrong_values_name_their_member() {
        use serde_json::json;
        for (input, text) in [
            (json!({"Names": [null]}), "'Names[0]' is null"),
            (json!({"Tags": [{"Key": 1}]}), "'Tags[0].Key' must be a string"),
            (json!({"Tags": [{"Nope": "x"}]}), "'Tags[0].Nope' is not a member of Tag"),
            (json!({"Attrs": {"a": "x"}}), "'Attrs.a' must be a whole number"),
            (json!({"Attrs": ["a"]}), "'Attrs' must be an object"),
            (json!({"On": "yes"}), "'On' must be a boolean"),
            (json!({"Size": 1.5}), "'Size' must be a whole number"),
            (json!({"Tag": "k"}), "'Tag' must be an object"),
        ] {
            match encode_with(Flavor::Query, input.clone()) {
                Err(ClientError::Config(m)) => assert!(m.contains(text), "{input}: {m}"),
                other => panic!("{input}: {other:?}"),
            }
        }
    }

    #[test]
    fn form_encoding_is_rfc3986() {
        let params = vec![("A.b".to_string(), "x y+/=&~é".to_string())];
        assert_eq!(form(&params), "A.b=x%20y%2B%2F%3D%26~%C3%A9");
    }
}
