//! The Query protocol (ELBv2, IAM, STS, CloudWatch) and its EC2 variant.
//!
//! Requests are form parameters (a `application/x-www-form-urlencoded` POST body, or a GET query string):
//! `Action`, `Version` and the input members, flattened by the model's wire schema. Query spells list
//! elements `Names.member.1` (or the list member's `locationName`), map entries `Tags.entry.1.key`, nested
//! members with dots; EC2 spells list elements `VpcId.1` and names members by `queryName` or capitalised
//! `locationName`. The parameters become a JSON value keyed by member names, which the generated types
//! decode and validate.
//!
//! Responses are XML: `<{Action}Response><{Action}Result>...</{Action}Result><ResponseMetadata>...` for
//! Query, `<{Action}Response><requestId/>...` for EC2; errors `<ErrorResponse><Error><Type/><Code/>
//! <Message/></Error><RequestId/></ErrorResponse>` and `<Response><Errors><Error>...</Errors><RequestID/>`.

use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet};
use std::ops::Bound;

use berth_core::{AwsError, ErrorCode};
use berth_model::schema::{Map as MapShape, Member, OperationSchema, Ref, Shape, Structure, join_param};
use berth_model::{DecodeError, cloudwatch, ec2, elbv2, iam, sts};
use bytes::Bytes;
use http::{HeaderValue, StatusCode};
use serde_json::{Map, Value};

use super::{Route, Service, xml};
use crate::sigv4::AuthError;
use crate::{Request, Response};

pub(crate) const CONTENT_TYPE: &str = "text/xml";
const XML_DECLARATION: &str = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n";

/// Query proper, or EC2's variant of it.
pub(crate) use berth_model::schema::Flavor;

/// Whether an unsigned request looks like a Query request: a form body, or a GET naming an `Action`.
pub(crate) fn looks_like_query(parts: &http::request::Parts) -> bool {
    let form = parts
        .headers
        .get(http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| ct.trim_start().to_ascii_lowercase().starts_with("application/x-www-form-urlencoded"));
    form || (parts.method == http::Method::GET && query_parameter(parts, "Action").is_some())
}

/// A parameter of the URI query string.
pub(crate) fn query_parameter(parts: &http::request::Parts, name: &str) -> Option<String> {
    let query = parts.uri.query()?;
    form_pairs(query.as_bytes()).ok()?.into_iter().find(|(k, _)| k == name).map(|(_, v)| v)
}

/// A parameter of the body or the URI query string, for protocol detection (errors are ignored).
pub(crate) fn parameter(parts: &http::request::Parts, body: &[u8], name: &str) -> Option<String> {
    form_pairs(body).ok()?.into_iter().find(|(k, _)| k == name).map(|(_, v)| v).or_else(|| query_parameter(parts, name))
}

/// Splits `application/x-www-form-urlencoded` text into decoded pairs (`+` is a space).
fn form_pairs(raw: &[u8]) -> Result<Vec<(String, String)>, AwsError> {
    let malformed = || AwsError::new(ErrorCode::MalformedQueryString, "The request parameters are not valid UTF-8");
    let mut pairs = Vec::new();
    for piece in raw.split(|b| *b == b'&').filter(|p| !p.is_empty()) {
        let (k, v) = match piece.iter().position(|b| *b == b'=') {
            Some(i) => (&piece[..i], &piece[i + 1..]),
            None => (piece, &b""[..]),
        };
        let k = String::from_utf8(berth_core::percent::decode_form(k)).map_err(|_| malformed())?;
        let v = String::from_utf8(berth_core::percent::decode_form(v)).map_err(|_| malformed())?;
        pairs.push((k, v));
    }
    Ok(pairs)
}

/// The request's parameters: the URI query string, then the body (whose values win).
fn params(parts: &http::request::Parts, body: &[u8]) -> Result<Form, AwsError> {
    let mut map = BTreeMap::new();
    if let Some(q) = parts.uri.query() {
        map.extend(form_pairs(q.as_bytes())?);
    }
    map.extend(form_pairs(body)?);
    Ok(Form { map })
}

pub(crate) fn auth_error(flavor: Flavor, e: &AuthError) -> AwsError {
    let (code, message) = match (flavor, e) {
        (_, AuthError::Missing) => {
            (ErrorCode::MissingAuthenticationTokenQuery, "Request is missing Authentication Token".to_string())
        }
        (_, AuthError::Incomplete(m)) => (ErrorCode::IncompleteSignatureQuery, m.clone()),
        (_, AuthError::ExpiredToken) => (ErrorCode::ExpiredTokenQuery, e.to_string()),
        (Flavor::Query, AuthError::UnrecognizedClient) => (ErrorCode::InvalidClientTokenId, e.to_string()),
        // IAM and STS answer a stale signature with SignatureDoesNotMatch ("Signature expired: ...").
        (Flavor::Query, AuthError::Expired(m) | AuthError::InvalidSignature(m)) => {
            (ErrorCode::SignatureDoesNotMatch, m.clone())
        }
        (Flavor::Ec2, AuthError::UnrecognizedClient) => {
            (ErrorCode::AuthFailure, "AWS was not able to validate the provided access credentials".to_string())
        }
        (Flavor::Ec2, AuthError::Expired(m)) => (ErrorCode::RequestExpired, m.clone()),
        (Flavor::Ec2, AuthError::InvalidSignature(m)) => (ErrorCode::AuthFailure, m.clone()),
    };
    AwsError::new(code, message)
}

fn flavor_of(service: Service) -> Option<Flavor> {
    match service {
        Service::Elbv2 | Service::Iam | Service::Sts | Service::CloudWatch => Some(Flavor::Query),
        Service::Ec2 => Some(Flavor::Ec2),
        Service::Ecs | Service::SecretsManager | Service::Ssm | Service::Logs | Service::ApplicationAutoScaling => None,
    }
}

fn operation_schema(service: Service, name: &str) -> Option<&'static OperationSchema> {
    match service {
        Service::Elbv2 => elbv2::operation(name),
        Service::Iam => iam::operation(name),
        Service::Sts => sts::operation(name),
        Service::Ec2 => ec2::operation(name),
        Service::CloudWatch => cloudwatch::operation(name),
        Service::Ecs | Service::SecretsManager | Service::Ssm | Service::Logs | Service::ApplicationAutoScaling => None,
    }
}

fn invalid_action(flavor: Flavor, action: &str, version: &str) -> AwsError {
    let message = match flavor {
        Flavor::Query => format!("Could not find operation {action} for version {version}"),
        Flavor::Ec2 => format!("The action {action} is not valid for this web service."),
    };
    AwsError::new(ErrorCode::InvalidAction, message)
}

pub(crate) fn route(
    flavor: Flavor,
    parts: &http::request::Parts,
    body: &[u8],
    scope_service: &str,
) -> Result<Route, AwsError> {
    let form = params(parts, body)?;
    let action = form.get("Action").unwrap_or("");
    if action.is_empty() {
        return Err(AwsError::new(ErrorCode::MissingAction, "The request must contain the parameter Action"));
    }
    let service = Service::query_service(scope_service).filter(|s| flavor_of(*s) == Some(flavor)).ok_or_else(|| {
        AwsError::new(ErrorCode::InvalidAction, format!("berth does not serve '{scope_service}' over this protocol"))
    })?;
    let version = form.get("Version").unwrap_or(service.api_version());
    if version != service.api_version() || operation_schema(service, action).is_none() {
        return Err(invalid_action(flavor, action, version));
    }
    Ok(Route { service, operation: action.to_string() })
}

pub(crate) fn decode(route: &Route, parts: &http::request::Parts, body: &[u8]) -> Result<Request, AwsError> {
    let flavor = flavor_of(route.service).ok_or_else(|| AwsError::internal("not a Query service"))?;
    let schema = operation_schema(route.service, &route.operation)
        .ok_or_else(|| invalid_action(flavor, &route.operation, route.service.api_version()))?;
    let form = params(parts, body)?;
    let op = &route.operation;
    if route.service == Service::CloudWatch {
        // CloudWatch spells model violations as in its other protocols (MissingParameter, InvalidParameterValue).
        let value = Builder { flavor, form: &form }
            .structure(schema.input, "")
            .map_err(super::compat::cloudwatch_decode_error)?;
        return cloudwatch::Operation::from_value(op, Value::Object(value))
            .map(Request::CloudWatch)
            .map_err(super::compat::cloudwatch_decode_error);
    }
    let value = Value::Object(
        Builder { flavor, form: &form }.structure(schema.input, "").map_err(|m| decode_error(flavor, m))?,
    );
    let decoded = match route.service {
        Service::Elbv2 => elbv2::Operation::from_value(op, value).map(Request::Elbv2),
        Service::Iam => iam::Operation::from_value(op, value).map(Request::Iam),
        Service::Sts => sts::Operation::from_value(op, value).map(Request::Sts),
        Service::Ec2 => ec2::Operation::from_value(op, value).map(Request::Ec2),
        Service::CloudWatch
        | Service::Ecs
        | Service::SecretsManager
        | Service::Ssm
        | Service::Logs
        | Service::ApplicationAutoScaling => {
            return Err(AwsError::internal("not a Query service"));
        }
    };
    decoded.map_err(|e| decode_error(flavor, e))
}

/// Query answers every model violation with `ValidationError`; EC2 tells absent (`MissingParameter`) from
/// invalid (`InvalidParameterValue`).
fn decode_error(flavor: Flavor, e: DecodeError) -> AwsError {
    match (flavor, e) {
        (_, DecodeError::UnknownOperation(op)) => AwsError::new(ErrorCode::InvalidAction, op),
        (
            Flavor::Query,
            DecodeError::Malformed(m) | DecodeError::Invalid(m) | DecodeError::Missing { message: m, .. },
        ) => AwsError::new(ErrorCode::ValidationError, m),
        (Flavor::Ec2, DecodeError::Missing { paths, .. }) => AwsError::new(
            ErrorCode::MissingParameter,
            format!("The request must contain the parameter {}", paths.join(", ")),
        ),
        (Flavor::Ec2, DecodeError::Malformed(m) | DecodeError::Invalid(m)) => {
            AwsError::new(ErrorCode::InvalidParameterValue, m)
        }
    }
}

/// The form parameters, sorted so that everything below a prefix is one range.
struct Form {
    map: BTreeMap<String, String>,
}

impl Form {
    fn get(&self, key: &str) -> Option<&str> {
        self.map.get(key).map(String::as_str)
    }

    /// Whether any parameter lies below `prefix` (`prefix.…`).
    fn has_below(&self, prefix: &str) -> bool {
        let start = format!("{prefix}.");
        self.map
            .range::<str, _>((Bound::Included(start.as_str()), Bound::Unbounded))
            .next()
            .is_some_and(|(k, _)| k.starts_with(&start))
    }

    /// The indices `N` of the parameters `prefix.N` and `prefix.N.…`, ascending.
    fn indices(&self, prefix: &str) -> BTreeSet<u32> {
        let start = format!("{prefix}.");
        self.map
            .range::<str, _>((Bound::Included(start.as_str()), Bound::Unbounded))
            .take_while(|(k, _)| k.starts_with(&start))
            .filter_map(|(k, _)| k[start.len()..].split('.').next().and_then(|n| n.parse().ok()))
            .collect()
    }
}

/// Builds the JSON value of a request from its form parameters, walking the input's wire schema.
struct Builder<'a> {
    flavor: Flavor,
    form: &'a Form,
}

impl Builder<'_> {
    /// The parameter name of a reference (`default` when the model names none), as botocore spells it.
    fn wire_name<'n>(&self, r: &Ref, default: &'n str) -> Cow<'n, str> {
        self.flavor.param_name(r, default)
    }

    fn structure(&self, st: &Structure, prefix: &str) -> Result<Map<String, Value>, DecodeError> {
        let mut obj = Map::new();
        for m in st.members {
            if let Some(v) = self.member(m, prefix)? {
                obj.insert(m.name.to_string(), v);
            }
        }
        Ok(obj)
    }

    fn member(&self, m: &Member, prefix: &str) -> Result<Option<Value>, DecodeError> {
        let key = join_param(prefix, &self.wire_name(&m.target, m.name));
        self.value(&m.target, &key)
    }

    fn value(&self, r: &Ref, key: &str) -> Result<Option<Value>, DecodeError> {
        match r.shape {
            Shape::Structure(st) => {
                // Only descend where parameters exist, so the walk is bounded by the request.
                if !self.form.has_below(key) {
                    return Ok(None);
                }
                Ok(Some(Value::Object(self.structure(st, key)?)))
            }
            Shape::List(list) => self.list(r, &list.member, key),
            Shape::Map(map) => self.map(r, map, key),
            _ => self.form.get(key).map(|text| scalar(r, key, text)).transpose(),
        }
    }

    fn list(&self, r: &Ref, member: &Ref, key: &str) -> Result<Option<Value>, DecodeError> {
        let items_prefix = self.flavor.list_items_prefix(r, member, key);
        let indices = self.form.indices(&items_prefix);
        if indices.is_empty() {
            // Query spells an empty list as the bare parameter with an empty value.
            return Ok(self.form.get(key).filter(|v| v.is_empty()).map(|_| Value::Array(Vec::new())));
        }
        let mut items = Vec::with_capacity(indices.len());
        for i in indices {
            let item_key = format!("{items_prefix}.{i}");
            match self.value(member, &item_key)? {
                Some(v) => items.push(v),
                // Parameters below the index that the element's shape does not know.
                None if matches!(member.shape, Shape::Structure(_)) => items.push(Value::Object(Map::new())),
                None => {}
            }
        }
        Ok(Some(Value::Array(items)))
    }

    fn map(&self, r: &Ref, map: &MapShape, key: &str) -> Result<Option<Value>, DecodeError> {
        let entries_prefix =
            if r.flattened || self.flavor == Flavor::Ec2 { key.to_string() } else { format!("{key}.entry") };
        let indices = self.form.indices(&entries_prefix);
        if indices.is_empty() {
            return Ok(None);
        }
        let key_name = self.wire_name(&map.key, "key");
        let value_name = self.wire_name(&map.value, "value");
        let mut obj = Map::new();
        for i in indices {
            let Some(k) = self.form.get(&format!("{entries_prefix}.{i}.{key_name}")) else { continue };
            if let Some(v) = self.value(&map.value, &format!("{entries_prefix}.{i}.{value_name}"))? {
                obj.insert(k.to_string(), v);
            }
        }
        Ok(Some(Value::Object(obj)))
    }
}

fn invalid(key: &str, text: &str, what: &str) -> DecodeError {
    DecodeError::Invalid(format!(
        "1 validation error detected: Value '{text}' at '{key}' failed to satisfy constraint: Member must be {what}"
    ))
}

/// A scalar parameter as the JSON value the generated types expect.
fn scalar(r: &Ref, key: &str, text: &str) -> Result<Value, DecodeError> {
    match r.shape {
        Shape::Integer | Shape::Long => {
            text.trim().parse::<i64>().map(Value::from).map_err(|_| invalid(key, text, "an integer"))
        }
        Shape::Double => text
            .trim()
            .parse::<f64>()
            .ok()
            .and_then(serde_json::Number::from_f64)
            .map(Value::Number)
            .ok_or_else(|| invalid(key, text, "a number")),
        Shape::Boolean => match text.trim().to_ascii_lowercase().as_str() {
            "true" => Ok(Value::Bool(true)),
            "false" => Ok(Value::Bool(false)),
            _ => Err(invalid(key, text, "true or false")),
        },
        Shape::Timestamp => parse_timestamp(text)
            .and_then(serde_json::Number::from_f64)
            .map(Value::Number)
            .ok_or_else(|| invalid(key, text, "an ISO 8601 timestamp")),
        Shape::String | Shape::Blob | Shape::Structure(_) | Shape::List(_) | Shape::Map(_) => {
            Ok(Value::String(text.to_string()))
        }
    }
}

/// ISO 8601 (`2023-10-10T00:30:00Z`, fractions and offsets allowed) or epoch seconds, as epoch seconds.
fn parse_timestamp(text: &str) -> Option<f64> {
    let text = text.trim();
    if let Ok(secs) = text.parse::<f64>() {
        return secs.is_finite().then_some(secs);
    }
    let t = time::OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339).ok()?;
    Some(t.unix_timestamp() as f64 + f64::from(t.nanosecond()) / 1e9)
}

fn xml_response(status: StatusCode, body: String, request_id: &str) -> http::Response<Bytes> {
    let mut resp = http::Response::new(Bytes::from(body));
    *resp.status_mut() = status;
    let h = resp.headers_mut();
    h.insert(http::header::CONTENT_TYPE, HeaderValue::from_static(CONTENT_TYPE));
    if let Ok(id) = HeaderValue::from_str(request_id) {
        h.insert("x-amzn-requestid", id);
    }
    resp
}

/// Writes a Query or EC2 service's response; other services' responses go to their own protocol.
pub(crate) fn encode(response: &Response, request_id: &str) -> http::Response<Bytes> {
    let (flavor, namespace, name, value) = match response {
        Response::Elbv2(o) => (Flavor::Query, elbv2::XML_NAMESPACE, o.name(), o.to_value()),
        Response::Iam(o) => (Flavor::Query, iam::XML_NAMESPACE, o.name(), o.to_value()),
        Response::Sts(o) => (Flavor::Query, sts::XML_NAMESPACE, o.name(), o.to_value()),
        Response::Ec2(o) => (Flavor::Ec2, ec2::XML_NAMESPACE, o.name(), o.to_value()),
        Response::CloudWatch(o) => (Flavor::Query, cloudwatch::XML_NAMESPACE, o.name(), o.to_value()),
        Response::Ecs(_)
        | Response::SecretsManager(_)
        | Response::Ssm(_)
        | Response::Logs(_)
        | Response::ApplicationAutoScaling(_) => {
            return super::json::encode(response, request_id);
        }
    };
    let schema = match response {
        Response::Elbv2(_) => elbv2::operation(name),
        Response::Iam(_) => iam::operation(name),
        Response::Sts(_) => sts::operation(name),
        Response::CloudWatch(_) => cloudwatch::operation(name),
        _ => ec2::operation(name),
    };
    let body = encode_body(flavor, namespace, name, schema, &value, request_id);
    xml_response(StatusCode::OK, body, request_id)
}

/// The XML document of a successful response.
pub(crate) fn encode_body(
    flavor: Flavor,
    namespace: &str,
    operation: &str,
    schema: Option<&OperationSchema>,
    value: &Value,
    request_id: &str,
) -> String {
    let mut out = String::with_capacity(512);
    out.push_str(XML_DECLARATION);
    let root = format!("{operation}Response");
    out.push('<');
    out.push_str(&root);
    out.push_str(" xmlns=\"");
    xml::escape(&mut out, namespace);
    out.push_str("\">");
    let output = schema.and_then(|s| s.output);
    match flavor {
        Flavor::Query => {
            if let Some(st) = output {
                match schema.and_then(|s| s.result_wrapper) {
                    Some(wrapper) => {
                        out.push_str(&format!("<{wrapper}>"));
                        xml::write_members(&mut out, st, value);
                        out.push_str(&format!("</{wrapper}>"));
                    }
                    None => xml::write_members(&mut out, st, value),
                }
            }
            out.push_str("<ResponseMetadata>");
            xml::text_element(&mut out, "RequestId", request_id);
            out.push_str("</ResponseMetadata>");
        }
        Flavor::Ec2 => {
            xml::text_element(&mut out, "requestId", request_id);
            if let Some(st) = output {
                xml::write_members(&mut out, st, value);
            }
        }
    }
    out.push_str(&format!("</{root}>"));
    out
}

/// Writes an error: `ErrorResponse` (Query) or `Response/Errors` (EC2), with the code's HTTP status. The
/// generic `AccessDenied` is spelled as each protocol spells it.
pub(crate) fn encode_error(
    flavor: Flavor,
    namespace: Option<&str>,
    error: &AwsError,
    request_id: &str,
) -> http::Response<Bytes> {
    let code = match (flavor, error.code) {
        (Flavor::Query, ErrorCode::AccessDenied) => ErrorCode::AccessDeniedQuery,
        (Flavor::Ec2, ErrorCode::AccessDenied) => ErrorCode::UnauthorizedOperation,
        (_, code) => code,
    };
    match flavor {
        Flavor::Query => {
            let wire = super::compat::WireError {
                shape: code.name(),
                query_code: code.name(),
                status: code.http_status(),
                sender_fault: code.is_sender_fault(),
            };
            encode_wire_error(namespace, &wire, &error.message, request_id)
        }
        Flavor::Ec2 => {
            let mut out = String::with_capacity(256);
            out.push_str(XML_DECLARATION);
            out.push_str("<Response><Errors><Error>");
            xml::text_element(&mut out, "Code", code.name());
            xml::text_element(&mut out, "Message", &error.message);
            out.push_str("</Error></Errors>");
            xml::text_element(&mut out, "RequestID", request_id);
            out.push_str("</Response>");
            let status = StatusCode::from_u16(code.http_status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            xml_response(status, out, request_id)
        }
    }
}

/// Writes a Query `ErrorResponse` with the error's Query code, fault and status.
pub(crate) fn encode_wire_error(
    namespace: Option<&str>,
    wire: &super::compat::WireError,
    message: &str,
    request_id: &str,
) -> http::Response<Bytes> {
    let mut out = String::with_capacity(256);
    out.push_str(XML_DECLARATION);
    match namespace {
        Some(ns) => {
            out.push_str("<ErrorResponse xmlns=\"");
            xml::escape(&mut out, ns);
            out.push_str("\">");
        }
        None => out.push_str("<ErrorResponse>"),
    }
    out.push_str("<Error>");
    xml::text_element(&mut out, "Type", wire.fault());
    xml::text_element(&mut out, "Code", wire.query_code);
    xml::text_element(&mut out, "Message", message);
    out.push_str("</Error>");
    xml::text_element(&mut out, "RequestId", request_id);
    out.push_str("</ErrorResponse>");
    let status = StatusCode::from_u16(wire.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    xml_response(status, out, request_id)
}

#[cfg(test)]
mod tests {
    use super::*;
    use berth_model::schema::List;

    // A hand-made schema with what the implemented models happen not to use: flattened lists and maps,
    // named map keys, queryName.
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
    static S_INPUT: Structure = Structure {
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
        ],
    };

    fn build(flavor: Flavor, body: &str) -> Result<Value, DecodeError> {
        let form = Form { map: form_pairs(body.as_bytes()).expect("form").into_iter().collect() };
        Builder { flavor, form: &form }.structure(&S_INPUT, "").map(Value::Object)
    }

    #[test]
    fn query_parameters_become_member_values() {
        let cases: &[(&str, Value)] = &[
            ("", serde_json::json!({})),
            ("Names=", serde_json::json!({"Names": []})),
            ("Names.member.2=b&Names.member.10=c&Names.member.1=a", serde_json::json!({"Names": ["a", "b", "c"]})),
            // Gaps keep the order of the indices.
            ("Names.member.7=y&Names.member.3=x", serde_json::json!({"Names": ["x", "y"]})),
            ("item.1=a&item.2=b", serde_json::json!({"Flat": ["a", "b"]})),
            (
                "Tags.member.1.Key=k&Tags.member.1.Value=v%20w&Tags.member.2.Key=only",
                serde_json::json!({"Tags": [{"Key": "k", "Value": "v w"}, {"Key": "only"}]}),
            ),
            (
                "Attrs.entry.1.Name=a&Attrs.entry.1.Count=1&Attrs.entry.2.Name=b&Attrs.entry.2.Count=2",
                serde_json::json!({"Attrs": {"a": 1, "b": 2}}),
            ),
            ("FlatMap.1.key=k&FlatMap.1.value=v", serde_json::json!({"FlatMap": {"k": "v"}})),
            ("size=5&Ratio=0.5&on=TRUE", serde_json::json!({"Size": 5, "Ratio": 0.5, "On": true})),
            ("At=2023-10-10T00%3A30%3A00Z", serde_json::json!({"At": 1_696_897_800.0})),
            ("At=2023-10-10T00:30:00.250Z", serde_json::json!({"At": 1_696_897_800.25})),
            ("At=2023-10-10T02:30:00%2B02:00", serde_json::json!({"At": 1_696_897_800.0})),
            ("At=1696897800", serde_json::json!({"At": 1_696_897_800.0})),
            ("Tag.Key=k&Unknown=1&Tag.Nope=2", serde_json::json!({"Tag": {"Key": "k"}})),
            // Parameters below a structure that it does not declare make it present but empty.
            ("Tag.Nope=2", serde_json::json!({"Tag": {}})),
            ("Names.member.x=1&Names.member=2", serde_json::json!({})),
        ];
        for (body, expected) in cases {
            assert_eq!(build(Flavor::Query, body).expect(body), *expected, "{body}");
        }
    }

    #[test]
    fn ec2_parameters_become_member_values() {
        let cases: &[(&str, Value)] = &[
            // queryName wins over the capitalised locationName; lists number right after the name.
            ("Bytes=7&On=false&Names.1=a&Names.2=b", serde_json::json!({"Size": 7, "On": false, "Names": ["a", "b"]})),
            ("Size=7&size=8&on=true", serde_json::json!({})),
            ("Tags.1.Key=k", serde_json::json!({"Tags": [{"Key": "k"}]})),
            ("Attrs.1.Name=a&Attrs.1.Count=3", serde_json::json!({"Attrs": {"a": 3}})),
        ];
        for (body, expected) in cases {
            assert_eq!(build(Flavor::Ec2, body).expect(body), *expected, "{body}");
        }
    }

    #[test]
    fn bad_scalars_name_the_parameter() {
        for (body, text) in [
            ("size=x", "Value 'x' at 'size' failed to satisfy constraint: Member must be an integer"),
            ("Ratio=NaN", "'Ratio'"),
            ("Ratio=1e999", "'Ratio'"),
            ("on=yes", "Member must be true or false"),
            ("At=yesterday", "ISO 8601"),
            ("Attrs.entry.1.Name=a&Attrs.entry.1.Count=many", "'Attrs.entry.1.Count'"),
        ] {
            let Err(DecodeError::Invalid(m)) = build(Flavor::Query, body) else { panic!("{body} decoded") };
            assert!(m.contains(text), "{body}: {m}");
        }
    }

    #[test]
    fn form_decoding() {
        let pairs = form_pairs(b"a=1&&b=x+y%2B%3d&c&d=%zz%4&e=%41%").expect("pairs");
        let expected = [("a", "1"), ("b", "x y+="), ("c", ""), ("d", "%zz%4"), ("e", "A%")];
        assert_eq!(pairs, expected.map(|(k, v)| (k.to_string(), v.to_string())));
        let e = form_pairs(b"a=%ff").expect_err("not utf-8");
        assert_eq!(e.code, ErrorCode::MalformedQueryString);
    }

    #[test]
    fn decode_errors_per_flavor() {
        let missing = || DecodeError::Missing { paths: vec!["GroupName".into()], message: "m".into() };
        assert_eq!(decode_error(Flavor::Query, missing()).code, ErrorCode::ValidationError);
        let e = decode_error(Flavor::Ec2, missing());
        assert_eq!(
            (e.code, e.message.as_str()),
            (ErrorCode::MissingParameter, "The request must contain the parameter GroupName")
        );
        assert_eq!(decode_error(Flavor::Ec2, DecodeError::Invalid("x".into())).code, ErrorCode::InvalidParameterValue);
        assert_eq!(decode_error(Flavor::Query, DecodeError::Invalid("x".into())).code, ErrorCode::ValidationError);
    }

    #[test]
    fn auth_errors_per_flavor() {
        let cases = [
            (Flavor::Query, AuthError::Missing, "MissingAuthenticationToken", 403),
            (Flavor::Query, AuthError::UnrecognizedClient, "InvalidClientTokenId", 403),
            (Flavor::Query, AuthError::InvalidSignature("x".into()), "SignatureDoesNotMatch", 403),
            (Flavor::Query, AuthError::Expired("Signature expired: x".into()), "SignatureDoesNotMatch", 403),
            (Flavor::Query, AuthError::ExpiredToken, "ExpiredToken", 400),
            (Flavor::Query, AuthError::Incomplete("x".into()), "IncompleteSignature", 400),
            (Flavor::Ec2, AuthError::UnrecognizedClient, "AuthFailure", 401),
            (Flavor::Ec2, AuthError::InvalidSignature("x".into()), "AuthFailure", 401),
            (Flavor::Ec2, AuthError::Expired("x".into()), "RequestExpired", 400),
        ];
        for (flavor, e, code, status) in cases {
            let err = auth_error(flavor, &e);
            assert_eq!((err.code.name(), err.code.http_status()), (code, status), "{flavor:?} {e:?}");
        }
    }

    #[test]
    fn xml_writes_flattened_members_and_maps() {
        let value = serde_json::json!({
            "Names": ["a", "b"], "Flat": ["x", "y"], "Tags": [{"Key": "k", "Value": "<v>"}, null],
            "Attrs": {"a": 1}, "FlatMap": {"k": "v"}, "Size": 5, "Ratio": 0.5, "On": false,
            "At": 1_696_897_800.0, "Tag": null, "Unknown": 1
        });
        let mut out = String::new();
        xml::write_members(&mut out, &S_INPUT, &value);
        assert_eq!(
            out,
            "<Names><member>a</member><member>b</member></Names><item>x</item><item>y</item>\
             <Tags><member><Key>k</Key><Value>&lt;v&gt;</Value></member></Tags>\
             <Attrs><entry><Name>a</Name><Count>1</Count></entry></Attrs>\
             <FlatMap><key>k</key><value>v</value></FlatMap><size>5</size><Ratio>0.5</Ratio><on>false</on>\
             <At>2023-10-10T00:30:00Z</At>"
        );
    }

    #[test]
    fn error_documents() {
        let e = AwsError::new(ErrorCode::AccessDenied, "not <allowed>");
        let resp = encode_error(Flavor::Query, Some("https://iam.amazonaws.com/doc/2010-05-08/"), &e, "rid");
        assert_eq!(resp.status(), 403);
        assert_eq!(
            std::str::from_utf8(resp.body()).expect("utf8"),
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<ErrorResponse xmlns=\"https://iam.amazonaws.com/doc/2010-05-08/\">\
             <Error><Type>Sender</Type><Code>AccessDenied</Code><Message>not &lt;allowed&gt;</Message></Error>\
             <RequestId>rid</RequestId></ErrorResponse>"
        );
        let resp = encode_error(Flavor::Ec2, None, &AwsError::internal("boom"), "rid");
        assert_eq!(resp.status(), 500);
        assert_eq!(
            std::str::from_utf8(resp.body()).expect("utf8"),
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Response><Errors><Error><Code>ServerException</Code>\
             <Message>boom</Message></Error></Errors><RequestID>rid</RequestID></Response>"
        );
    }

    #[test]
    fn routes_by_scope_and_action() {
        let parts = |uri: &str| http::Request::builder().uri(uri).body(()).expect("req").into_parts().0;
        let p = parts("/");
        let r = route(Flavor::Query, &p, b"Action=GetUser&Version=2010-05-08", "iam").expect("route");
        assert_eq!(r, Route { service: Service::Iam, operation: "GetUser".into() });
        // GET query strings work too, and Version may be left out.
        let r = route(Flavor::Query, &parts("/?Action=GetCallerIdentity"), b"", "sts").expect("route");
        assert_eq!(r, Route { service: Service::Sts, operation: "GetCallerIdentity".into() });
        for (flavor, body, scope, code, text) in [
            (
                Flavor::Query,
                "Action=GetUser&Version=2011-06-15",
                "iam",
                ErrorCode::InvalidAction,
                "for version 2011-06-15",
            ),
            (Flavor::Query, "Action=DescribeVpcs", "iam", ErrorCode::InvalidAction, "DescribeVpcs"),
            (Flavor::Query, "Action=GetUser", "ec2", ErrorCode::InvalidAction, "'ec2'"),
            (Flavor::Query, "Version=2010-05-08", "iam", ErrorCode::MissingAction, "Action"),
            (Flavor::Ec2, "Action=GetUser", "ec2", ErrorCode::InvalidAction, "not valid for this web service"),
        ] {
            let e = route(flavor, &p, body.as_bytes(), scope).expect_err(body);
            assert_eq!(e.code, code, "{body}");
            assert!(e.message.contains(text), "{body}: {}", e.message);
        }
    }
}
