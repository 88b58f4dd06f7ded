#!/usr/bin/env python3
"""Parses berth's encoded CloudWatch responses with botocore's own parsers, in the protocol each was written in
(`json`, `smithy-rpc-v2-cbor`, `query`), and compares them with the vectors' expected outputs. Reads, on stdin,
the JSON the Rust test `cloudwatch_protocols.rs` writes:

  {"outputs": [{"index": i, "protocol": "...", "status": 200, "headers": {...}, "body_base64": "...",
                "request_id": "..."}],
   "errors": [{"protocol": "...", "status": 400, "headers": {...}, "body_base64": "...", "code": "...",
               "message": "...", "type": "Sender"|"Receiver", "shape": "..."|null, "request_id": "..."}]}

`code` is what botocore must report as the error code (the Query code, from `x-amzn-query-error` in JSON and
CBOR); `shape` what it keeps as `QueryErrorCode` (the `__type`). Prints one line per mismatch and exits 1 if
there are any; prints "ok N" otherwise.
"""

import base64
import datetime
import json
import os
import sys

import botocore.parsers
import botocore.session


def normalize(v):
    """Datetimes as epoch seconds, numbers as floats, empty lists dropped (XML cannot tell them from absent)."""
    if isinstance(v, datetime.datetime):
        return v.timestamp()
    if isinstance(v, bool):
        return v
    if isinstance(v, (int, float)):
        return float(v)
    if isinstance(v, dict):
        return {k: normalize(x) for k, x in v.items() if x != []}
    if isinstance(v, list):
        return [normalize(x) for x in v]
    return v


def mistyped(shape, value, path=""):
    """Where botocore's parsed value does not have its shape's Python type: a timestamp that is not a datetime
    (an untagged CBOR number, a JSON string), a double that is not a number, ... (comparison alone cannot tell)."""
    kinds = {
        "timestamp": datetime.datetime, "double": (int, float), "float": (int, float), "integer": int, "long": int,
        "boolean": bool, "string": str, "blob": bytes,
    }
    if shape.type_name == "structure":
        return [p for name, member in shape.members.items() if name in value
                for p in mistyped(member, value[name], f"{path}.{name}")]
    if shape.type_name == "list":
        return [p for i, item in enumerate(value) for p in mistyped(shape.member, item, f"{path}[{i}]")]
    if shape.type_name == "map":
        return [p for k, item in value.items() for p in mistyped(shape.value, item, f"{path}.{k}")]
    want = kinds.get(shape.type_name)
    if want is not None and not isinstance(value, want):
        return [f"{path}: {type(value).__name__} {value!r} for a {shape.type_name}"]
    return []


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    vectors = json.load(open(os.path.join(here, "cloudwatch_vectors.json")))["vectors"]
    encoded = json.load(sys.stdin)
    model = botocore.session.get_session().get_service_model("cloudwatch")
    problems = []
    checked = 0
    for out in encoded["outputs"]:
        v = vectors[out["index"]]
        op = model.operation_model(v["operation"])
        parser = botocore.parsers.create_parser(out["protocol"])
        response = {
            "body": base64.b64decode(out["body_base64"]),
            "headers": {k.lower(): x for k, x in out["headers"].items()},
            "status_code": out["status"],
        }
        parsed = parser.parse(response, op.output_shape)
        metadata = parsed.pop("ResponseMetadata", {})
        name = "%s over %s" % (v["operation"], out["protocol"])
        if op.output_shape is not None:
            problems.extend("%s: %s" % (name, p) for p in mistyped(op.output_shape, parsed))
        got = normalize(parsed)
        expected = normalize(v["output"] or {})
        if got != expected:
            problems.append("%s: parsed %s\n  expected %s" % (name, json.dumps(got), json.dumps(expected)))
        # botocore's RPC v2 parser reads no metadata for an operation without output (its shape is None).
        no_metadata = out["protocol"] == "smithy-rpc-v2-cbor" and op.output_shape is None
        if metadata.get("RequestId") != out["request_id"] and not no_metadata:
            problems.append("%s: request id %r" % (name, metadata))
        checked += 1
    for err in encoded["errors"]:
        parser = botocore.parsers.create_parser(err["protocol"])
        response = {
            "body": base64.b64decode(err["body_base64"]),
            "headers": {k.lower(): x for k, x in err["headers"].items()},
            "status_code": err["status"],
        }
        parsed = parser.parse(response, None)
        e = parsed.get("Error", {})
        want = {"Code": err["code"], "Message": err["message"], "Type": err["type"]}
        if err.get("shape"):
            want["QueryErrorCode"] = err["shape"]
        got = {k: e.get(k) for k in want}
        if got != want or parsed.get("ResponseMetadata", {}).get("RequestId") != err["request_id"]:
            problems.append("error %s over %s: parsed %s, expected %s" % (err["code"], err["protocol"], parsed, want))
        checked += 1
    for p in problems:
        print(p)
    if problems:
        sys.exit(1)
    print("ok %d" % checked)


if __name__ == "__main__":
    main()
