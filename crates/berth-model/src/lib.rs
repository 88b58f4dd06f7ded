//! berth-model: the AWS API shapes berth speaks, generated from the botocore service models.
//!
//! It owns the request and response types of every implemented operation (one module per AWS service,
//! written by `codegen/model.py`; never edited by hand), the closed `Operation` enum each request body is
//! decoded into exactly once, and the validation errors that decoding produces. For the Query and EC2
//! services it also carries the wire [`schema`] (member names on the wire, list and map spellings, result
//! wrappers) that berth-api's codecs walk. It must never hold
//! behaviour beyond decoding and encoding: what an operation does lives in the control plane.

use berth_core::{AwsError, ErrorCode};
use serde::{Deserialize, Serialize};

pub mod application_autoscaling;
pub mod cloudwatch;
pub mod ec2;
pub mod ecs;
pub mod elbv2;
pub mod iam;
pub mod logs;
pub mod schema;
pub mod secretsmanager;
pub mod ssm;
pub mod sts;

/// An AWS timestamp as the JSON protocols carry it: seconds since the Unix epoch.
#[derive(Debug, Clone, Copy, PartialEq, PartialOrd, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Timestamp(pub f64);

impl Timestamp {
    pub fn from_system_time(t: std::time::SystemTime) -> Self {
        let d = t.duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
        // Millisecond precision, as AWS returns.
        Timestamp((d.as_millis() as f64) / 1000.0)
    }
    pub fn now() -> Self {
        Self::from_system_time(std::time::SystemTime::now())
    }
}

/// Why a request body could not become an operation.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    #[error("operation {0} is not supported")]
    UnknownOperation(String),
    /// The body is not JSON (or not an object).
    #[error("{0}")]
    Malformed(String),
    /// The body is JSON but violates the model: missing required members or wrong types.
    #[error("{0}")]
    Invalid(String),
    /// Required members are absent (only [`decode_value`] tells this apart from [`DecodeError::Invalid`], so
    /// that the EC2 protocol can answer `MissingParameter`). The paths are the members' paths from the root.
    #[error("{message}")]
    Missing { paths: Vec<String>, message: String },
}

impl From<DecodeError> for AwsError {
    fn from(e: DecodeError) -> Self {
        match e {
            DecodeError::UnknownOperation(op) => {
                AwsError::new(ErrorCode::UnknownOperation, format!("Operation {op} is not supported by berth"))
            }
            DecodeError::Malformed(m) => AwsError::new(ErrorCode::Serialization, m),
            DecodeError::Invalid(m) | DecodeError::Missing { message: m, .. } => {
                AwsError::new(ErrorCode::InvalidParameter, m)
            }
        }
    }
}

/// Implemented by every generated request type: reports missing required members.
pub trait Validate {
    fn validate_required(&self, errors: &mut Vec<String>);
}

/// `a.b` path joining for validation messages.
pub fn join_path(parent: &str, member: &str) -> String {
    if parent.is_empty() { member.to_string() } else { format!("{parent}.{member}") }
}

/// Decodes and validates a JSON-protocol request body. An empty body means `{}`.
pub fn decode_json<T: for<'de> Deserialize<'de> + Validate>(body: &[u8]) -> Result<T, DecodeError> {
    let body = if body.iter().all(u8::is_ascii_whitespace) { b"{}".as_slice() } else { body };
    if body.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'{') {
        return Err(DecodeError::Malformed("Request body must be a JSON object".into()));
    }
    let mut de = serde_json::Deserializer::from_slice(body);
    let value: T = match serde_path_to_error::deserialize(&mut de) {
        Ok(v) => v,
        Err(e) => {
            let path = e.path().to_string();
            let inner = e.into_inner();
            return Err(match inner.classify() {
                serde_json::error::Category::Syntax
                | serde_json::error::Category::Eof
                | serde_json::error::Category::Io => {
                    DecodeError::Malformed(format!("Request body is not valid JSON: {inner}"))
                }
                serde_json::error::Category::Data => {
                    let msg = inner.to_string();
                    let msg = msg.split(" at line ").next().unwrap_or(&msg).to_string();
                    DecodeError::Invalid(format!(
                        "1 validation error detected: Value at '{path}' failed to satisfy constraint: {msg}"
                    ))
                }
            });
        }
    };
    if de.end().is_err() {
        return Err(DecodeError::Malformed("Request body has trailing characters after the JSON object".into()));
    }
    let mut errors = Vec::new();
    value.validate_required(&mut errors);
    if errors.is_empty() { Ok(value) } else { Err(DecodeError::Invalid(missing_message(&errors))) }
}

fn missing_message(paths: &[String]) -> String {
    let n = paths.len();
    let list: Vec<String> = paths
        .iter()
        .map(|p| format!("Value null at '{p}' failed to satisfy constraint: Member must not be null"))
        .collect();
    format!("{n} validation error{} detected: {}", if n == 1 { "" } else { "s" }, list.join("; "))
}

/// Decodes and validates a request from a JSON value keyed by member names, as the Query and EC2 codecs build
/// it from form parameters. Wrong types are [`DecodeError::Invalid`], absent required members
/// [`DecodeError::Missing`].
pub fn decode_value<T: for<'de> Deserialize<'de> + Validate>(value: serde_json::Value) -> Result<T, DecodeError> {
    let value: T = serde_path_to_error::deserialize(value).map_err(|e| {
        let path = e.path().to_string();
        DecodeError::Invalid(format!(
            "1 validation error detected: Value at '{path}' failed to satisfy constraint: {}",
            e.into_inner()
        ))
    })?;
    let mut paths = Vec::new();
    value.validate_required(&mut paths);
    if paths.is_empty() {
        Ok(value)
    } else {
        let message = missing_message(&paths);
        Err(DecodeError::Missing { paths, message })
    }
}

/// Builds a generated output type from a JSON value keyed by member names (no required-member checks:
/// outputs declare none that matter).
pub fn output_from_value<T: for<'de> Deserialize<'de>>(value: serde_json::Value) -> Result<T, DecodeError> {
    serde_path_to_error::deserialize(value).map_err(|e| {
        let path = e.path().to_string();
        DecodeError::Invalid(format!("Value at '{path}' does not fit the output shape: {}", e.into_inner()))
    })
}

/// A generated output as a JSON value keyed by member names (absent members omitted).
pub fn to_value<T: Serialize>(v: &T) -> serde_json::Value {
    // Plain data structs with string-keyed maps always serialize; NaN doubles become null.
    serde_json::to_value(v).unwrap_or(serde_json::Value::Null)
}

#[cfg(test)]
mod tests {
    use super::*;
    use ecs::Operation;

    fn decode(op: &str, body: &str) -> Result<Operation, DecodeError> {
        Operation::decode(op, body.as_bytes())
    }

    #[test]
    fn decodes_a_create_request() {
        let body = r#"{"infrastructureRoleArn":"arn:aws:iam::123456789012:role/infra",
            "primaryContainer":{"image":"berth-demo:latest","containerPort":8080,
            "environment":[{"name":"A","value":"1"}]},
            "scalingTarget":{"minTaskCount":2,"autoScalingMetric":"AVERAGE_CPU"},"tags":[{"key":"k","value":"v"}]}"#;
        let Ok(Operation::CreateExpressGatewayService(req)) = decode("CreateExpressGatewayService", body) else {
            panic!("decode failed");
        };
        let c = req.primary_container.expect("container");
        assert_eq!(c.image.as_deref(), Some("berth-demo:latest"));
        assert_eq!(c.container_port, Some(8080));
        let s = req.scaling_target.expect("scaling");
        assert_eq!(s.auto_scaling_metric, Some(ecs::ExpressGatewayServiceScalingMetric::AverageCpu));
    }

    #[test]
    fn table_of_bad_bodies() {
        // (operation, body, expected error kind, text the message must contain)
        let cases: &[(&str, &str, &str, &str)] = &[
            ("CreateExpressGatewayService", "{", "malformed", "not valid JSON"),
            ("CreateExpressGatewayService", "[1]", "malformed", "JSON object"),
            ("CreateExpressGatewayService", "{}", "invalid", "'infrastructureRoleArn'"),
            (
                "CreateExpressGatewayService",
                r#"{"infrastructureRoleArn":"a","primaryContainer":{}}"#,
                "invalid",
                "'primaryContainer.image'",
            ),
            ("CreateExpressGatewayService", r#"{"infrastructureRoleArn":5}"#, "invalid", "infrastructureRoleArn"),
            (
                "CreateExpressGatewayService",
                r#"{"infrastructureRoleArn":"a","scalingTarget":{"autoScalingMetric":"NOPE"}}"#,
                "invalid",
                "scalingTarget.autoScalingMetric",
            ),
            ("DescribeExpressGatewayService", "{}", "invalid", "'serviceArn'"),
            ("TagResource", r#"{"resourceArn":"x"}"#, "invalid", "'tags'"),
            (
                "CreateExpressGatewayService",
                r#"{"infrastructureRoleArn":"a","primaryContainer":{"image":"i","secrets":[{"name":"a","valueFrom":"b"},{}]}}"#,
                "invalid",
                "2 validation errors detected: Value null at 'primaryContainer.secrets.member.2.name'",
            ),
            ("NoSuchOperation", "{}", "unknown", "NoSuchOperation"),
        ];
        for (op, body, kind, text) in cases {
            let e = decode(op, body).expect_err(body);
            let (k, m) = match &e {
                DecodeError::Malformed(m) => ("malformed", m.clone()),
                DecodeError::Invalid(m) => ("invalid", m.clone()),
                DecodeError::UnknownOperation(m) => ("unknown", m.clone()),
                DecodeError::Missing { message, .. } => ("missing", message.clone()),
            };
            assert_eq!(k, *kind, "{op} {body}: {e}");
            assert!(m.contains(text), "{op} {body}: {m}");
        }
    }

    #[test]
    fn query_requests_decode_from_values() {
        let v = serde_json::json!({"RoleName": "r", "Tags": [{"Key": "k"}, {"Value": "v"}]});
        let e = iam::Operation::from_value("TagRole", v).expect_err("missing");
        let DecodeError::Missing { paths, message } = e else { panic!("{e:?}") };
        assert_eq!(paths, ["Tags.member.1.Value", "Tags.member.2.Key"]);
        assert!(message.starts_with("2 validation errors detected: Value null at 'Tags.member.1.Value'"), "{message}");
        let e = ec2::Operation::from_value("DescribeVpcs", serde_json::json!({"MaxResults": "x"})).expect_err("type");
        assert!(matches!(&e, DecodeError::Invalid(m) if m.contains("'MaxResults'")), "{e:?}");
        let ok = sts::Operation::from_value("GetCallerIdentity", serde_json::json!({})).expect("decodes");
        assert_eq!(ok.name(), "GetCallerIdentity");
        assert_eq!(ok.to_value(), serde_json::json!({}));
        let e = elbv2::Operation::from_value("Nope", serde_json::json!({})).expect_err("unknown");
        assert_eq!(e, DecodeError::UnknownOperation("Nope".into()));
    }

    #[test]
    fn query_schemas_cover_every_operation() {
        let services: [(&[&str], &[schema::OperationSchema]); 4] = [
            (elbv2::Operation::NAMES, elbv2::OPERATIONS),
            (iam::Operation::NAMES, iam::OPERATIONS),
            (sts::Operation::NAMES, sts::OPERATIONS),
            (ec2::Operation::NAMES, ec2::OPERATIONS),
        ];
        for (names, ops) in services {
            let schema_names: Vec<&str> = ops.iter().map(|o| o.name).collect();
            assert_eq!(names, schema_names.as_slice());
            for o in ops {
                // Query outputs sit in a result wrapper; EC2's sit directly in the response element.
                assert_eq!(o.result_wrapper.is_some(), o.output.is_some() && !std::ptr::eq(ops, ec2::OPERATIONS));
            }
        }
        assert_eq!(ec2::XML_NAMESPACE, "http://ec2.amazonaws.com/doc/2016-11-15/");
        assert_eq!(iam::operation("DeleteUser").map(|o| o.output.is_none()), Some(true));
    }

    #[test]
    fn empty_body_is_an_empty_object() {
        assert!(matches!(decode("ListClusters", ""), Ok(Operation::ListClusters(_))));
    }

    #[test]
    fn outputs_skip_absent_members_and_use_epoch_seconds() {
        let out = ecs::Output::DescribeClusters(ecs::DescribeClustersResponse {
            clusters: Some(vec![ecs::Cluster {
                cluster_name: Some("default".into()),
                status: Some("ACTIVE".into()),
                ..Default::default()
            }]),
            failures: None,
        });
        let json = String::from_utf8(out.to_json()).expect("utf8");
        assert_eq!(json, r#"{"clusters":[{"clusterName":"default","status":"ACTIVE"}]}"#);
        let t = serde_json::to_string(&Timestamp(1700000000.5)).expect("json");
        assert_eq!(t, "1700000000.5");
    }
}
