//! Writing XML responses from a JSON value keyed by member names, guided by the model's wire schema:
//! element names from `locationName`, lists wrapped in `<member>` (or the list member's `locationName`,
//! `<item>` in EC2) unless flattened, maps as `<entry><key/><value/></entry>`, timestamps in ISO 8601,
//! booleans lowercase. Text is escaped; characters XML 1.0 cannot carry become U+FFFD.

use berth_model::schema::{Ref, Shape, Structure};
use serde_json::Value;

/// Appends `s` escaped for element content or a double-quoted attribute.
pub(crate) fn escape(out: &mut String, s: &str) {
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            // A raw CR would be normalised to LF by the reader; the reference survives.
            '\r' => out.push_str("&#13;"),
            '\t' | '\n' => out.push(c),
            c if (c as u32) < 0x20 || c == '\u{FFFE}' || c == '\u{FFFF}' => out.push('\u{FFFD}'),
            c => out.push(c),
        }
    }
}

/// `<name>escaped text</name>`.
pub(crate) fn text_element(out: &mut String, name: &str, text: &str) {
    out.push('<');
    out.push_str(name);
    out.push('>');
    escape(out, text);
    out.push_str("</");
    out.push_str(name);
    out.push('>');
}

fn open(out: &mut String, name: &str) {
    out.push('<');
    out.push_str(name);
    out.push('>');
}

fn close(out: &mut String, name: &str) {
    out.push_str("</");
    out.push_str(name);
    out.push('>');
}

/// Writes the members of `value` (an object keyed by member names) that `st` declares, in model order.
/// Absent and null members are skipped; keys the schema does not know are ignored.
pub(crate) fn write_members(out: &mut String, st: &Structure, value: &Value) {
    let Some(obj) = value.as_object() else { return };
    for m in st.members {
        let Some(v) = obj.get(m.name).filter(|v| !v.is_null()) else { continue };
        let name = m.target.location_name.unwrap_or(m.name);
        match m.target.shape {
            Shape::List(list) if m.target.flattened => {
                // Each element repeats in place, named after the list member if it has a name of its own.
                let item_name = list.member.location_name.unwrap_or(name);
                for item in v.as_array().map(Vec::as_slice).unwrap_or_default() {
                    write_element(out, item_name, &list.member, item);
                }
            }
            Shape::Map(map) if m.target.flattened => {
                for (k, val) in v.as_object().into_iter().flatten() {
                    open(out, name);
                    write_entry(out, map.key, map.value, k, val);
                    close(out, name);
                }
            }
            _ => write_element(out, name, &m.target, v),
        }
    }
}

fn write_entry(out: &mut String, key: Ref, value: Ref, k: &str, v: &Value) {
    text_element(out, key.location_name.unwrap_or("key"), k);
    write_element(out, value.location_name.unwrap_or("value"), &value, v);
}

/// Writes `<name>...</name>` for a value of the referenced shape.
pub(crate) fn write_element(out: &mut String, name: &str, r: &Ref, v: &Value) {
    match r.shape {
        Shape::Structure(st) => {
            open(out, name);
            write_members(out, st, v);
            close(out, name);
        }
        Shape::List(list) => {
            open(out, name);
            let item_name = list.member.location_name.unwrap_or("member");
            for item in v.as_array().map(Vec::as_slice).unwrap_or_default() {
                if !item.is_null() {
                    write_element(out, item_name, &list.member, item);
                }
            }
            close(out, name);
        }
        Shape::Map(map) => {
            open(out, name);
            for (k, val) in v.as_object().into_iter().flatten() {
                open(out, "entry");
                write_entry(out, map.key, map.value, k, val);
                close(out, "entry");
            }
            close(out, name);
        }
        Shape::Timestamp => {
            let text = match (v.as_f64(), r.timestamp_format) {
                (Some(secs), Some("unixTimestamp")) => format_number(secs),
                (Some(secs), _) => iso8601(secs),
                (None, _) => scalar_text(v),
            };
            text_element(out, name, &text);
        }
        Shape::String if r.url_encoded => {
            text_element(out, name, &berth_core::percent::encode(scalar_text(v).as_bytes(), false))
        }
        Shape::String | Shape::Integer | Shape::Long | Shape::Double | Shape::Boolean | Shape::Blob => {
            text_element(out, name, &scalar_text(v));
        }
    }
}

fn scalar_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

fn format_number(secs: f64) -> String {
    if secs.fract() == 0.0 && secs.abs() < 1e15 { format!("{}", secs as i64) } else { secs.to_string() }
}

/// Seconds since the epoch as ISO 8601 UTC: `2023-10-10T00:30:00Z`, or `...00.250Z` with milliseconds.
pub(crate) fn iso8601(secs: f64) -> String {
    berth_core::time::iso8601_millis((secs * 1000.0).round() as i64).unwrap_or_else(|| format_number(secs))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_text() {
        let mut s = String::new();
        escape(&mut s, "a<b>&\"c'\r\n\t\u{1}é");
        assert_eq!(s, "a&lt;b&gt;&amp;&quot;c&apos;&#13;\n\t\u{FFFD}é");
    }

    #[test]
    fn timestamps() {
        assert_eq!(iso8601(1_696_897_800.0), "2023-10-10T00:30:00Z");
        assert_eq!(iso8601(1_696_897_800.25), "2023-10-10T00:30:00.250Z");
        assert_eq!(iso8601(0.0), "1970-01-01T00:00:00Z");
    }
}
