#!/usr/bin/env python3
"""Parses berth's encoded Query/EC2 responses with botocore's own parsers and compares them with the
vectors' expected outputs. Reads, on stdin, the JSON the Rust test `query_vectors.rs` writes:

  {"outputs": [{"index": i, "request_id": "...", "status": 200, "xml": "..."}],
   "errors": [{"protocol": "query"|"ec2", "status": 400, "xml": "...", "code": "...", "message": "...",
               "type": "Sender"|"Receiver"|null, "request_id": "..."}]}

Prints one line per mismatch and exits 1 if there are any; prints "ok N" otherwise.
"""

import copy
import datetime
import json
import os
import sys

import botocore.handlers
import botocore.parsers
import botocore.session


def normalize(v):
    if isinstance(v, datetime.datetime):
        return v.timestamp()
    if isinstance(v, dict):
        return {k: normalize(x) for k, x in v.items()}
    if isinstance(v, list):
        return [normalize(x) for x in v]
    return v


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    vectors = json.load(open(os.path.join(here, "query_vectors.json")))["vectors"]
    encoded = json.load(sys.stdin)
    session = botocore.session.get_session()
    problems = []
    checked = 0
    for out in encoded["outputs"]:
        v = vectors[out["index"]]
        model = session.get_service_model(v["service"])
        op = model.operation_model(v["operation"])
        parser = botocore.parsers.create_parser(model.metadata["protocol"])
        parsed = parser.parse(
            {"body": out["xml"].encode(), "headers": {}, "status_code": out["status"]}, op.output_shape
        )
        metadata = parsed.pop("ResponseMetadata", {})
        expected = copy.deepcopy(v["output"] or {})
        if v["service"] == "iam":
            # What the IAM client does after parsing: policy documents arrive percent-encoded, and become dicts.
            if "{&quot;" in out["xml"]:
                problems.append("iam %s: a policy document is not percent-encoded" % v["operation"])
            botocore.handlers.json_decode_policies(parsed, op)
            botocore.handlers.json_decode_policies(expected, op)
        got = normalize(parsed)
        name = "%s %s #%d" % (v["service"], v["operation"], out["index"])
        if got != expected:
            problems.append("%s: parsed %s\n  expected %s\n  xml %s" % (name, json.dumps(got), json.dumps(expected), out["xml"]))
        if metadata.get("RequestId") != out["request_id"]:
            problems.append("%s: request id %r" % (name, metadata))
        checked += 1
    for err in encoded["errors"]:
        parser = botocore.parsers.create_parser(err["protocol"])
        parsed = parser.parse({"body": err["xml"].encode(), "headers": {}, "status_code": err["status"]}, None)
        e = parsed.get("Error", {})
        want = {"Code": err["code"], "Message": err["message"]}
        if err.get("type"):
            want["Type"] = err["type"]
        got = {k: e.get(k) for k in want}
        if got != want or parsed.get("ResponseMetadata", {}).get("RequestId") != err["request_id"]:
            problems.append("error %s: parsed %s, expected %s\n  xml %s" % (err["code"], parsed, want, err["xml"]))
        checked += 1
    for p in problems:
        print(p)
    if problems:
        sys.exit(1)
    print("ok %d" % checked)


if __name__ == "__main__":
    main()
