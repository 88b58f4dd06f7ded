#!/usr/bin/env python3
"""Generates berth-model's Rust shapes from the botocore service models.

The AWS API models are the contract for shapes, names, enums and errors: this script reads
`botocore/data/<service>/<version>/service-2.json(.gz)` and writes one Rust module per service with
serde structs for every shape reachable from the operations berth implements, a closed `Operation`
enum that decodes a request body once, and an `Output` enum that encodes the response.

JSON services (`protocol: json`) get `Operation::decode` (JSON body) and `Output::to_json`. Query and EC2
services get `Operation::from_value` / `Output::to_value` (JSON values keyed by member names) plus the wire
schema the codecs in berth-api walk: static `Structure`/`List`/`Map` tables with every member reference's
effective `locationName`, `queryName`, `flattened` and `timestampFormat` (merged over its target shape as
botocore merges them), `OPERATIONS` (input, output, `resultWrapper`), `ERRORS` (modeled codes and HTTP
statuses), `XML_NAMESPACE` and `PROTOCOL`. Model features the codecs do not handle (XML attributes,
per-member namespaces, documents, recursive structures) fail the generation instead of being mis-encoded.

Usage: python3 codegen/model.py  (botocore must be importable; see tests/requirements.txt)
"""
import gzip
import json
import keyword
import os
import re
import subprocess
import sys

import botocore

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "crates", "berth-model", "src")

SERVICES = {
    "ecs": {
        "path": "ecs/2014-11-13",
        "operations": [
            "CreateExpressGatewayService",
            "DescribeExpressGatewayService",
            "UpdateExpressGatewayService",
            "DeleteExpressGatewayService",
            "CreateCluster",
            "DescribeClusters",
            "ListClusters",
            "DeleteCluster",
            "ListServices",
            "DescribeServices",
            "ListTasks",
            "DescribeTasks",
            "StopTask",
            "DescribeTaskDefinition",
            "ListTaskDefinitions",
            "TagResource",
            "UntagResource",
            "ListTagsForResource",
            "UpdateService",
            "ListServiceDeployments",
            "DescribeServiceDeployments",
            "DescribeServiceRevisions",
            "StopServiceDeployment",
            "ContinueServiceDeployment",
            "RegisterTaskDefinition",
            "DeregisterTaskDefinition",
            "DeleteTaskDefinitions",
        ],
    },
    "elbv2": {
        "path": "elbv2/2015-12-01",
        "operations": [
            "DescribeLoadBalancers",
            "DescribeListeners",
            "DescribeRules",
            "CreateRule",
            "ModifyRule",
            "DeleteRule",
            "SetRulePriorities",
            "DescribeTargetGroups",
            "ModifyTargetGroup",
            "DescribeTargetGroupAttributes",
            "ModifyTargetGroupAttributes",
            "DescribeLoadBalancerAttributes",
            "ModifyLoadBalancerAttributes",
            "DescribeTargetHealth",
            "RegisterTargets",
            "DeregisterTargets",
            "DescribeListenerCertificates",
            "DescribeTags",
            "AddTags",
            "RemoveTags",
        ],
    },
    "iam": {
        "path": "iam/2010-05-08",
        "operations": [
            "CreateUser",
            "GetUser",
            "ListUsers",
            "DeleteUser",
            "CreateAccessKey",
            "ListAccessKeys",
            "DeleteAccessKey",
            "CreateRole",
            "GetRole",
            "ListRoles",
            "DeleteRole",
            "UpdateAssumeRolePolicy",
            "PutRolePolicy",
            "GetRolePolicy",
            "ListRolePolicies",
            "DeleteRolePolicy",
            "CreatePolicy",
            "GetPolicy",
            "GetPolicyVersion",
            "ListPolicies",
            "DeletePolicy",
            "AttachRolePolicy",
            "DetachRolePolicy",
            "ListAttachedRolePolicies",
            "AttachUserPolicy",
            "DetachUserPolicy",
            "PutUserPolicy",
            "TagRole",
            "ListRoleTags",
        ],
    },
    "sts": {
        "path": "sts/2011-06-15",
        "operations": ["GetCallerIdentity", "AssumeRole"],
    },
    "ec2": {
        "path": "ec2/2016-11-15",
        "operations": [
            "DescribeVpcs",
            "DescribeSubnets",
            "CreateSubnet",
            "DeleteSubnet",
            "ModifySubnetAttribute",
            "CreateSecurityGroup",
            "DeleteSecurityGroup",
            "DescribeSecurityGroups",
            "DescribeSecurityGroupRules",
            "AuthorizeSecurityGroupIngress",
            "AuthorizeSecurityGroupEgress",
            "RevokeSecurityGroupIngress",
            "RevokeSecurityGroupEgress",
            "CreateTags",
            "DescribeTags",
        ],
    },
    "secretsmanager": {
        "path": "secretsmanager/2017-10-17",
        "operations": [
            "CreateSecret",
            "GetSecretValue",
            "PutSecretValue",
            "DescribeSecret",
            "ListSecrets",
            "UpdateSecret",
            "DeleteSecret",
            "RestoreSecret",
            "TagResource",
            "UntagResource",
        ],
    },
    "ssm": {
        "path": "ssm/2014-11-06",
        "operations": [
            "PutParameter",
            "GetParameter",
            "GetParameters",
            "GetParametersByPath",
            "DeleteParameter",
            "DeleteParameters",
            "DescribeParameters",
        ],
    },
    "logs": {
        "path": "logs/2014-03-28",
        "operations": [
            "CreateLogGroup",
            "DeleteLogGroup",
            "DescribeLogGroups",
            "CreateLogStream",
            "DeleteLogStream",
            "DescribeLogStreams",
            "PutLogEvents",
            "GetLogEvents",
            "FilterLogEvents",
            "PutRetentionPolicy",
            "DeleteRetentionPolicy",
            "TagResource",
            "UntagResource",
            "ListTagsForResource",
            "TagLogGroup",
            "UntagLogGroup",
            "ListTagsLogGroup",
            "StartLiveTail",
        ],
    },
    # CloudWatch's model lists smithy-rpc-v2-cbor, json (1.0) and query: it gets the JSON shapes and codec (json
    # and CBOR bodies carry the same member names) and the wire schema the Query codec walks.
    "cloudwatch": {
        "path": "cloudwatch/2010-08-01",
        "operations": [
            "PutMetricData",
            "GetMetricData",
            "GetMetricStatistics",
            "ListMetrics",
            "PutMetricAlarm",
            "DescribeAlarms",
            "DescribeAlarmsForMetric",
            "DeleteAlarms",
            "SetAlarmState",
            "DescribeAlarmHistory",
            "EnableAlarmActions",
            "DisableAlarmActions",
            "TagResource",
            "UntagResource",
            "ListTagsForResource",
            "PutDashboard",
            "GetDashboard",
            "ListDashboards",
            "DeleteDashboards",
        ],
    },
    "application_autoscaling": {
        "path": "application-autoscaling/2016-02-06",
        "operations": [
            "RegisterScalableTarget",
            "DescribeScalableTargets",
            "DeregisterScalableTarget",
            "PutScalingPolicy",
            "DescribeScalingPolicies",
            "DeleteScalingPolicy",
            "DescribeScalingActivities",
            "PutScheduledAction",
            "DescribeScheduledActions",
            "DeleteScheduledAction",
            "TagResource",
            "UntagResource",
            "ListTagsForResource",
        ],
    },
}

SCALARS = ("string", "integer", "long", "double", "float", "boolean", "timestamp", "blob")
# The serialization traits a member reference merges over its target shape (botocore's Shape.serialization).
SERIALIZED_ATTRS = ("locationName", "queryName", "flattened", "timestampFormat", "xmlAttribute", "xmlNamespace", "location")

# String shapes a service percent-encodes in its XML responses (botocore's `json_decode_policies` undoes it).
URL_ENCODED_SHAPES = {"iam": ("policyDocumentType",)}

RUST_KEYWORDS = set("as break const continue crate else enum extern false fn for if impl in let loop match mod move mut pub ref return self Self static struct super trait true type unsafe use where while async await dyn abstract become box do final macro override priv typeof unsized virtual yield try gen".split())


def load(path):
    base = os.path.join(os.path.dirname(botocore.__file__), "data", path)
    p = os.path.join(base, "service-2.json")
    if os.path.exists(p):
        return json.load(open(p))
    return json.load(gzip.open(p + ".gz"))


def snake(name):
    s = re.sub(r"([A-Z]+)([A-Z][a-z])", r"\1_\2", name)
    s = re.sub(r"([a-z0-9])([A-Z])", r"\1_\2", s).lower()
    if s in RUST_KEYWORDS:
        s = "r#" + s
    return s


def variant(value):
    parts = re.split(r"[^A-Za-z0-9]+", value)
    v = "".join(p[:1].upper() + p[1:].lower() if p.isupper() or p.islower() else p[:1].upper() + p[1:] for p in parts if p)
    if not v or v[0].isdigit():
        v = "V" + v
    return v


def rust_type_name(name):
    n = name[:1].upper() + name[1:]
    return re.sub(r"[^A-Za-z0-9]", "", n)


class Gen:
    def __init__(self, service, model, ops):
        self.service = service
        self.model = model
        self.shapes = model["shapes"]
        self.ops = ops
        self.protocol = model["metadata"]["protocol"]
        # JSON shapes and codec for JSON services and for services whose first protocol is RPC v2 CBOR (they list
        # `json` too); the Query wire schema for every service that is not JSON only.
        self.json = self.protocol in ("json", "smithy-rpc-v2-cbor")
        self.query = self.protocol != "json"
        self.reachable = []
        # Every reachable shape, in visiting order, and the modeled errors of the operations.
        self.all_shapes = []
        self.errors = []
        seen = set()

        def visit(name):
            if name in seen:
                return
            seen.add(name)
            self.all_shapes.append(name)
            s = self.shapes[name]
            t = s["type"]
            if t == "structure":
                self.reachable.append(name)
                for m in s["members"].values():
                    visit(m["shape"])
            elif t == "list":
                visit(s["member"]["shape"])
            elif t == "map":
                visit(s["key"]["shape"])
                visit(s["value"]["shape"])
            elif t == "string" and "enum" in s:
                self.reachable.append(name)

        for op in ops:
            o = model["operations"][op]
            visit(o["input"]["shape"])
            if "output" in o:
                visit(o["output"]["shape"])
            for e in o.get("errors", []):
                if e["shape"] not in self.errors:
                    self.errors.append(e["shape"])
        self.check()

    def check(self):
        """Fails on model features the generated code does not handle, rather than mis-encoding them."""
        names = {}
        for name in self.all_shapes:
            s = self.shapes[name]
            if s["type"] not in SCALARS and s["type"] not in ("structure", "list", "map"):
                raise ValueError("%s: unsupported shape type %s" % (name, s["type"]))
            # A union is written as a structure with one member set, which is how Query spells it too.
            if self.query and s.get("document"):
                raise ValueError("%s: documents are not supported" % name)
            rn = rust_type_name(name)
            if rn in names or rn in ("Operation", "Output"):
                raise ValueError("%s: Rust name %s collides with %s" % (name, rn, names.get(rn)))
            if s["type"] == "structure" or (s["type"] == "string" and "enum" in s):
                names[rn] = name
            if s["type"] == "structure":
                fields = [snake(m) for m in s["members"]]
                if len(set(fields)) != len(fields):
                    raise ValueError("%s: two members map to the same field" % name)
            for ref in self.refs_of(s):
                if ref.get("xmlAttribute") or ref.get("xmlNamespace") or ref.get("location"):
                    raise ValueError("%s: xmlAttribute/xmlNamespace/location members are not supported" % name)
        # A structure reaching itself through structure members alone would need a Box.
        def cycle(name, stack):
            for m in self.shapes[name]["members"].values():
                t = m["shape"]
                if self.shapes[t]["type"] != "structure":
                    continue
                if t in stack:
                    raise ValueError("recursive structure %s" % " -> ".join(stack + [t]))
                cycle(t, stack + [t])

        for name in self.all_shapes:
            if self.shapes[name]["type"] == "structure":
                cycle(name, [name])

    @staticmethod
    def refs_of(s):
        refs = [s[k] for k in ("member", "key", "value") if k in s]
        return refs + list(s.get("members", {}).values())

    def ty(self, name):
        s = self.shapes[name]
        t = s["type"]
        if t == "structure":
            return rust_type_name(name)
        if t == "string":
            return rust_type_name(name) if "enum" in s else "String"
        if t == "integer":
            return "i32"
        if t == "long":
            return "i64"
        if t in ("double", "float"):
            return "f64"
        if t == "boolean":
            return "bool"
        if t == "timestamp":
            return "crate::Timestamp"
        if t == "blob":
            return "String"
        if t == "list":
            return "Vec<%s>" % self.ty(s["member"]["shape"])
        if t == "map":
            return "std::collections::BTreeMap<String, %s>" % self.ty(s["value"]["shape"])
        raise ValueError(t)

    def has_required(self, name, stack=()):
        """Whether validating this shape can find anything (required members somewhere below)."""
        if name in stack:
            return False
        s = self.shapes[name]
        t = s["type"]
        if t == "structure":
            if s.get("required"):
                return True
            return any(self.has_required(m["shape"], stack + (name,)) for m in s["members"].values())
        if t == "list":
            return self.has_required(s["member"]["shape"], stack + (name,))
        if t == "map":
            return self.has_required(s["value"]["shape"], stack + (name,))
        return False

    def validate_expr(self, shape, expr, path_expr):
        """Rust statements validating `expr` (a reference to a value of `shape`)."""
        s = self.shapes[shape]
        t = s["type"]
        if not self.has_required(shape):
            return ""
        if t == "structure":
            return "%s.validate(&%s, errors);" % (expr, path_expr)
        if t == "list":
            inner = self.validate_expr(s["member"]["shape"], "item", 'format!("{}.member.{}", %s, i + 1)' % path_expr)
            return "for (i, item) in %s.iter().enumerate() { %s }" % (expr, inner)
        if t == "map":
            inner = self.validate_expr(s["value"]["shape"], "item", 'format!("{}.{}", %s, k)' % path_expr)
            return "for (k, item) in %s.iter() { %s }" % (expr, inner)
        return ""

    def emit(self, service, meta):
        out = []
        w = out.append
        w("// @generated by codegen/model.py from botocore %s (%s). Do not edit by hand." % (botocore.__version__, meta["path"]))
        if not self.query:
            w("#![allow(clippy::all, non_camel_case_types, missing_docs)]")
        else:
            w("#![allow(clippy::all, non_camel_case_types, non_upper_case_globals, missing_docs)]")
        w("")
        w("use serde::{Deserialize, Serialize};")
        if self.query:
            w("")
            w("use crate::schema as sc;")
        w("")
        md = self.model["metadata"]
        if self.json:
            w("/// `X-Amz-Target` prefix of this service's JSON protocol.")
            w("pub const TARGET_PREFIX: &str = %s;" % json.dumps(md.get("targetPrefix", "")))
        w("/// SigV4 signing name.")
        w("pub const SIGNING_NAME: &str = %s;" % json.dumps(md.get("signingName", md["endpointPrefix"])))
        w("/// API version.")
        w("pub const API_VERSION: &str = %s;" % json.dumps(md["apiVersion"]))
        if self.json:
            w("/// The JSON protocol's version (`application/x-amz-json-<version>`).")
            w("pub const JSON_VERSION: &str = %s;" % json.dumps(md.get("jsonVersion", "1.1")))
        if self.query:
            w("/// The wire protocol: `query` (form-encoded request, XML response), `ec2`, or `smithy-rpc-v2-cbor` (which")
            w("/// also speaks JSON and Query).")
            w("pub const PROTOCOL: &str = %s;" % json.dumps(self.protocol))
            ns = md["xmlNamespace"]
            if not ns.endswith("/"):
                # The EC2 model omits the trailing slash its responses carry.
                ns += "/"
            w("/// The XML namespace of the responses.")
            w("pub const XML_NAMESPACE: &str = %s;" % json.dumps(ns))
        w("")
        for name in sorted(self.reachable):
            s = self.shapes[name]
            rn = rust_type_name(name)
            if s["type"] == "string":
                w("#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]")
                w("pub enum %s {" % rn)
                seen = set()
                for v in s["enum"]:
                    var = variant(v)
                    while var in seen:
                        var += "_"
                    seen.add(var)
                    w("    #[serde(rename = %s)]" % json.dumps(v))
                    w("    %s," % var)
                w("}")
                w("")
                w("impl %s {" % rn)
                w("    pub const ALL: &'static [%s] = &[%s];" % (rn, ", ".join("Self::%s" % v for v in self._variants(s))))
                w("    pub fn as_str(&self) -> &'static str {")
                w("        match self {")
                for v, var in zip(s["enum"], self._variants(s)):
                    w("            Self::%s => %s," % (var, json.dumps(v)))
                w("        }")
                w("    }")
                w("    pub fn parse(s: &str) -> Option<Self> {")
                w("        Self::ALL.iter().copied().find(|v| v.as_str() == s)")
                w("    }")
                w("}")
                w("")
                continue
            w("#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]")
            w("pub struct %s {" % rn)
            for mname, m in s["members"].items():
                field = snake(mname)
                w("    #[serde(rename = %s, default, skip_serializing_if = \"Option::is_none\")]" % json.dumps(mname))
                w("    pub %s: Option<%s>," % (field, self.ty(m["shape"])))
            w("}")
            w("")
            w("impl %s {" % rn)
            w("    /// Records every missing required member below this value, with its path from the request root.")
            w("    #[allow(unused_variables)]")
            w("    pub fn validate(&self, path: &str, errors: &mut Vec<String>) {")
            for mname, m in s["members"].items():
                field = snake(mname)
                p = 'crate::join_path(path, %s)' % json.dumps(mname)
                if mname in s.get("required", []):
                    w("        match &self.%s {" % field)
                    w("            None => errors.push(%s),"% p)
                    inner = self.validate_expr(m["shape"], "v", p)
                    w("            Some(v) => { %s }" % inner)
                    w("        }")
                else:
                    inner = self.validate_expr(m["shape"], "v", p)
                    if inner:
                        w("        if let Some(v) = &self.%s { %s }" % (field, inner))
            w("    }")
            w("}")
            w("")
        # Operation and Output enums.
        w("/// Every operation berth implements for this service, decoded once from the request body.")
        w("#[derive(Debug, Clone, PartialEq)]")
        w("pub enum Operation {")
        for op in self.ops:
            w("    %s(%s)," % (op, rust_type_name(self.model["operations"][op]["input"]["shape"])))
        w("}")
        w("")
        w("/// The response of every operation in [`Operation`].")
        w("#[derive(Debug, Clone, PartialEq)]")
        w("pub enum Output {")
        for op in self.ops:
            o = self.model["operations"][op]
            w("    %s(%s)," % (op, rust_type_name(o["output"]["shape"]) if "output" in o else "()"))
        w("}")
        w("")
        w("impl Operation {")
        w("    /// The operation names, as in `X-Amz-Target` after the prefix.")
        w("    pub const NAMES: &'static [&'static str] = &[%s];" % ", ".join(json.dumps(o) for o in self.ops))
        w("    pub fn name(&self) -> &'static str {")
        w("        match self {")
        for op in self.ops:
            w("            Self::%s(_) => %s," % (op, json.dumps(op)))
        w("        }")
        w("    }")
        if self.json:
            w("    /// Decodes a JSON request body for the named operation, validating required members.")
            w("    pub fn decode(name: &str, body: &[u8]) -> Result<Self, crate::DecodeError> {")
            w("        match name {")
            for op in self.ops:
                w("            %s => crate::decode_json(body).map(Self::%s)," % (json.dumps(op), op))
            w("            other => Err(crate::DecodeError::UnknownOperation(other.to_string())),")
            w("        }")
            w("    }")
        if self.query:
            w("    /// Decodes the named operation's request from a JSON value keyed by member names (what the Query")
            w("    /// codec builds from the form parameters), validating required members.")
            w("    pub fn from_value(name: &str, value: serde_json::Value) -> Result<Self, crate::DecodeError> {")
            w("        match name {")
            for op in self.ops:
                w("            %s => crate::decode_value(value).map(Self::%s)," % (json.dumps(op), op))
            w("            other => Err(crate::DecodeError::UnknownOperation(other.to_string())),")
            w("        }")
            w("    }")
            w("    /// The request as a JSON value keyed by member names (absent members omitted), for logs and tests.")
            w("    pub fn to_value(&self) -> serde_json::Value {")
            w("        match self {")
            for op in self.ops:
                w("            Self::%s(v) => crate::to_value(v)," % op)
            w("        }")
            w("    }")
        w("}")
        w("")
        self.emit_operation_errors(w)
        for inp in dict.fromkeys(rust_type_name(self.model["operations"][op]["input"]["shape"]) for op in self.ops):
            w("impl crate::Validate for %s {" % inp)
            w("    fn validate_required(&self, errors: &mut Vec<String>) { self.validate(\"\", errors) }")
            w("}")
        w("")
        if self.query:
            self.emit_query_tail(w)
        if not self.json:
            return "\n".join(out) + "\n"
        w("impl Output {")
        w("    /// Encodes the response body.")
        w("    pub fn to_json(&self) -> Vec<u8> {")
        w("        let r = match self {")
        for op in self.ops:
            w("            Self::%s(v) => serde_json::to_vec(v)," % op)
        w("        };")
        w("        // Serializing plain data structs to a Vec cannot fail.")
        w("        r.unwrap_or_else(|_| b\"{}\".to_vec())")
        w("    }")
        w("}")
        return "\n".join(out) + "\n"

    def error_code(self, shape):
        """An error's name on the wire: the shape name in JSON protocols (`__type`), the model's `error.code` where
        it gives one in Query/EC2 (`<Code>`)."""
        if self.json:
            return shape
        return self.shapes[shape].get("error", {}).get("code", shape)

    def emit_operation_errors(self, w):
        """Each operation's modeled errors, so the control plane can check it returns only errors typed SDKs know."""
        w("/// The errors the model lists for each operation, by name on the wire (`__type` / `<Code>`). Errors every")
        w("/// operation may return (authentication, throttling, validation, an unknown operation) are not listed.")
        w("pub static OPERATION_ERRORS: &[(&str, &[&str])] = &[")
        for op in self.ops:
            codes = [self.error_code(e["shape"]) for e in self.model["operations"][op].get("errors", [])]
            w("    (%s, &[%s])," % (json.dumps(op), ", ".join(json.dumps(c) for c in codes)))
        w("];")
        w("")
        w("impl Operation {")
        w("    /// The errors the model lists for this operation (see [`OPERATION_ERRORS`]).")
        w("    pub fn errors(&self) -> &'static [&'static str] {")
        w("        operation_errors(self.name())")
        w("    }")
        w("}")
        w("")
        w("/// The errors the model lists for the named operation (none for an unknown one).")
        w("pub fn operation_errors(name: &str) -> &'static [&'static str] {")
        w("    OPERATION_ERRORS.iter().find(|(op, _)| *op == name).map_or(&[], |(_, errors)| *errors)")
        w("}")
        w("")

    def emit_query_tail(self, w):
        """The Output encoder and the wire schema the Query/EC2 codecs walk."""
        w("impl Output {")
        w("    /// The operation this output answers.")
        w("    pub fn name(&self) -> &'static str {")
        w("        match self {")
        for op in self.ops:
            w("            Self::%s(_) => %s," % (op, json.dumps(op)))
        w("        }")
        w("    }")
        w("    /// Builds the named operation's output from a JSON value keyed by member names (test vectors, fixtures).")
        w("    pub fn from_value(name: &str, value: serde_json::Value) -> Result<Self, crate::DecodeError> {")
        w("        match name {")
        for op in self.ops:
            if "output" in self.model["operations"][op]:
                w("            %s => crate::output_from_value(value).map(Self::%s)," % (json.dumps(op), op))
            else:
                w("            %s => Ok(Self::%s(()))," % (json.dumps(op), op))
        w("            other => Err(crate::DecodeError::UnknownOperation(other.to_string())),")
        w("        }")
        w("    }")
        w("    /// The output as a JSON value keyed by member names (absent members omitted), for the XML encoder.")
        w("    pub fn to_value(&self) -> serde_json::Value {")
        w("        match self {")
        for op in self.ops:
            w("            Self::%s(v) => crate::to_value(v)," % op)
        w("        }")
        w("    }")
        w("}")
        w("")
        w("/// Every operation's wire schema: input and output structures and the output's result wrapper.")
        w("pub static OPERATIONS: &[sc::OperationSchema] = &[")
        for op in self.ops:
            o = self.model["operations"][op]
            out = o.get("output")
            w("    sc::OperationSchema { name: %s, input: &S_%s, output: %s, result_wrapper: %s }," % (
                json.dumps(op), rust_type_name(o["input"]["shape"]),
                "Some(&S_%s)" % rust_type_name(out["shape"]) if out else "None",
                "Some(%s)" % json.dumps(out["resultWrapper"]) if out and "resultWrapper" in out else "None"))
        w("];")
        w("")
        w("/// The wire schema of the named operation.")
        w("pub fn operation(name: &str) -> Option<&'static sc::OperationSchema> {")
        w("    OPERATIONS.iter().find(|o| o.name == name)")
        w("}")
        w("")
        w("/// The errors the model declares for these operations: code on the wire, HTTP status, sender fault.")
        w("pub static ERRORS: &[sc::ModeledError] = &[")
        for e in self.errors:
            err = self.shapes[e].get("error", {})
            w("    sc::ModeledError { shape: %s, code: %s, http_status: %d, sender_fault: %s }," % (
                json.dumps(e), json.dumps(err.get("code", e)), err.get("httpStatusCode", 400),
                "true" if err.get("senderFault") else "false"))
        w("];")
        w("")
        for name in self.all_shapes:
            s = self.shapes[name]
            rn = rust_type_name(name)
            if s["type"] == "structure":
                w("static S_%s: sc::Structure = sc::Structure {" % rn)
                w("    name: %s," % json.dumps(name))
                w("    members: &[")
                for mname, m in s["members"].items():
                    w("        sc::Member { name: %s, required: %s, target: %s }," % (
                        json.dumps(mname), "true" if mname in s.get("required", []) else "false", self.ref_expr(m)))
                w("    ],")
                w("};")
            elif s["type"] == "list":
                w("static L_%s: sc::List = sc::List { name: %s, member: %s };" % (rn, json.dumps(name), self.ref_expr(s["member"])))
            elif s["type"] == "map":
                w("static M_%s: sc::Map = sc::Map { name: %s, key: %s, value: %s };" % (
                    rn, json.dumps(name), self.ref_expr(s["key"]), self.ref_expr(s["value"])))

    def shape_expr(self, name):
        s = self.shapes[name]
        t = s["type"]
        rn = rust_type_name(name)
        return {
            "structure": "sc::Shape::Structure(&S_%s)" % rn,
            "list": "sc::Shape::List(&L_%s)" % rn,
            "map": "sc::Shape::Map(&M_%s)" % rn,
            "string": "sc::Shape::String",
            "integer": "sc::Shape::Integer",
            "long": "sc::Shape::Long",
            "double": "sc::Shape::Double",
            "float": "sc::Shape::Double",
            "boolean": "sc::Shape::Boolean",
            "timestamp": "sc::Shape::Timestamp",
            "blob": "sc::Shape::Blob",
        }[t]

    def ref_expr(self, ref):
        """A member reference with the serialization traits it merges over its target shape."""
        eff = {k: v for k, v in self.shapes[ref["shape"]].items() if k in SERIALIZED_ATTRS}
        eff.update({k: v for k, v in ref.items() if k in SERIALIZED_ATTRS})
        fields = ["shape: %s" % self.shape_expr(ref["shape"])]
        if "locationName" in eff:
            fields.append("location_name: Some(%s)" % json.dumps(eff["locationName"]))
        if "queryName" in eff:
            fields.append("query_name: Some(%s)" % json.dumps(eff["queryName"]))
        if eff.get("flattened"):
            fields.append("flattened: true")
        if "timestampFormat" in eff:
            fields.append("timestamp_format: Some(%s)" % json.dumps(eff["timestampFormat"]))
        if ref["shape"] in URL_ENCODED_SHAPES.get(self.service, ()):
            fields.append("url_encoded: true")
        return "sc::Ref { %s, ..sc::Ref::DEFAULT }" % ", ".join(fields)

    def _variants(self, s):
        seen, res = set(), []
        for v in s["enum"]:
            var = variant(v)
            while var in seen:
                var += "_"
            seen.add(var)
            res.append(var)
        return res


def main():
    for service, meta in SERVICES.items():
        model = load(meta["path"])
        g = Gen(service, model, meta["operations"])
        code = g.emit(service, meta)
        path = os.path.join(OUT, service + ".rs")
        with open(path, "w") as f:
            f.write(code)
        subprocess.run(["rustfmt", "--edition", "2024", "--config-path", os.path.join(ROOT, "rustfmt.toml"), path], check=True)
        print("wrote %s.rs: %d shapes, %d operations" % (service, len(g.reachable), len(meta["operations"])))


if __name__ == "__main__":
    sys.exit(main())
