#!/usr/bin/env python3
"""Generates berth-model's Rust shapes from the botocore service models.

The AWS API models are the contract for shapes, names, enums and errors: this script reads
`botocore/data/<service>/<version>/service-2.json(.gz)` and writes one Rust module per service with
serde structs for every shape reachable from the operations berth implements, a closed `Operation`
enum that decodes a request body once, and an `Output` enum that encodes the response.

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
        ],
    },
}

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
    def __init__(self, model, ops):
        self.model = model
        self.shapes = model["shapes"]
        self.ops = ops
        self.reachable = []
        seen = set()

        def visit(name):
            if name in seen:
                return
            seen.add(name)
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
        w("#![allow(clippy::all, non_camel_case_types, missing_docs)]")
        w("")
        w("use serde::{Deserialize, Serialize};")
        w("")
        md = self.model["metadata"]
        w("/// `X-Amz-Target` prefix of this service's JSON protocol.")
        w("pub const TARGET_PREFIX: &str = %s;" % json.dumps(md.get("targetPrefix", "")))
        w("/// SigV4 signing name.")
        w("pub const SIGNING_NAME: &str = %s;" % json.dumps(md.get("signingName", md["endpointPrefix"])))
        w("/// API version.")
        w("pub const API_VERSION: &str = %s;" % json.dumps(md["apiVersion"]))
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
        w("    /// Decodes a JSON request body for the named operation, validating required members.")
        w("    pub fn decode(name: &str, body: &[u8]) -> Result<Self, crate::DecodeError> {")
        w("        match name {")
        for op in self.ops:
            w("            %s => crate::decode_json(body).map(Self::%s)," % (json.dumps(op), op))
        w("            other => Err(crate::DecodeError::UnknownOperation(other.to_string())),")
        w("        }")
        w("    }")
        w("}")
        w("")
        for op in self.ops:
            inp = rust_type_name(self.model["operations"][op]["input"]["shape"])
            w("impl crate::Validate for %s {" % inp)
            w("    fn validate_required(&self, errors: &mut Vec<String>) { self.validate(\"\", errors) }")
            w("}")
        w("")
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
        g = Gen(model, meta["operations"])
        code = g.emit(service, meta)
        path = os.path.join(OUT, service + ".rs")
        with open(path, "w") as f:
            f.write(code)
        subprocess.run(["rustfmt", "--edition", "2024", "--config-path", os.path.join(ROOT, "rustfmt.toml"), path], check=True)
        print("wrote %s.rs: %d shapes, %d operations" % (service, len(g.reachable), len(meta["operations"])))


if __name__ == "__main__":
    sys.exit(main())
