#!/usr/bin/env python3
"""Writes sigv4_vectors.json: requests signed by botocore's own SigV4Auth / SigV4QueryAuth at a fixed time,
plus tampered copies that must not verify. The Rust test `sigv4_vectors.rs` verifies every one.

Run with a Python that has botocore:  /tmp/venv/bin/python gen.py > sigv4_vectors.json
"""

import datetime
import hashlib
import json
import sys
from unittest import mock

import botocore
from botocore.auth import SigV4Auth, SigV4QueryAuth, _host_from_url
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from botocore.utils import percent_encode_sequence

AKID = "AKIDEXAMPLE"
SECRET = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"
TOKEN = "FQoGZXIvYXdzEXAMPLE//TOKEN+with/odd=chars=="
SIGNED_AT = datetime.datetime(2023, 10, 10, 0, 30, 0)
ECS = "https://ecs.us-east-1.amazonaws.com"
JSON_HEADERS = [
    ("X-Amz-Target", "AmazonEC2ContainerServiceV20141113.DescribeClusters"),
    ("Content-Type", "application/x-amz-json-1.1"),
]


def sign(method, url, headers=(), body=b"", params=None, token=None, service="ecs", region="us-east-1",
         presign_expires=None, at=SIGNED_AT):
    creds = Credentials(AKID, SECRET, token)
    req = AWSRequest(method=method, url=url, data=body, params=params or {})
    for k, v in headers:
        req.headers[k] = v  # HTTPHeaders appends: repeated names stay repeated
    if presign_expires is None:
        auth = SigV4Auth(creds, service, region)
    else:
        auth = SigV4QueryAuth(creds, service, region, expires=presign_expires)
    with mock.patch("botocore.auth.get_current_datetime", return_value=at):
        auth.add_auth(req)
    prepared = req.prepare()
    wire_headers = [[k, v] for k, v in req.headers.items()]
    if not any(k.lower() == "host" for k, _ in wire_headers):
        wire_headers.append(["Host", _host_from_url(prepared.url)])
    body = prepared.body or b""
    if isinstance(body, str):
        body = body.encode()
    return {
        "method": method,
        "url": prepared.url,
        "headers": wire_headers,
        "body": body.decode(),
        "access_key": AKID,
        "secret": SECRET,
        "token": token,
        "now": at.strftime("%Y%m%dT%H%M%SZ"),
        "valid": True,
        "error": None,
    }


def tampered(name, v):
    """Copies of a valid vector that must fail."""
    out = []

    def variant(suffix, error="InvalidSignature", **changes):
        t = json.loads(json.dumps(v))
        t.update(changes)
        t["name"] = f"{name}/{suffix}"
        t["valid"] = False
        t["error"] = error
        out.append(t)

    variant("body-changed", body=v["body"] + " ")
    variant("host-changed", headers=[[k, "evil.example.com" if k.lower() == "host" else x] for k, x in v["headers"]])
    variant("wrong-secret", secret=SECRET[:-1] + "Z")
    variant("query-added", url=v["url"] + ("&" if "?" in v["url"] else "?") + "extra=1")
    scheme, rest = v["url"].split("://", 1)
    host, _, path = rest.partition("/")
    variant("path-changed", url=f"{scheme}://{host}/x/{path}")
    variant("method-changed", method="PUT" if v["method"] != "PUT" else "POST")
    if v["token"]:
        variant("token-not-expected", error="UnrecognizedClient", token=None)
        variant("other-token", error="UnrecognizedClient", token=v["token"] + "x")
    else:
        variant("token-expected", error="UnrecognizedClient", token=TOKEN)
    return out


def cases():
    body = b'{"clusters":["default","web app"]}'
    yield "json-post", sign("POST", ECS + "/", JSON_HEADERS, body)
    yield "json-post-session-token", sign("POST", ECS + "/", JSON_HEADERS, body, token=TOKEN)
    yield "json-post-local-port", sign("POST", "http://localhost:4566/", JSON_HEADERS, body)
    yield "json-post-empty-body", sign("POST", ECS + "/", JSON_HEADERS, b"")
    yield "aws-doc-iam-example", sign(
        "GET", "https://iam.amazonaws.com/?Action=ListUsers&Version=2010-05-08",
        [("Content-Type", "application/x-www-form-urlencoded; charset=utf-8")], service="iam",
        at=datetime.datetime(2015, 8, 30, 12, 36, 0))
    special = [("a", "b c"), ("unicode", "\u00fc/+=&?#"), ("empty", ""), ("tilde", "~-_."), ("k", "b"), ("k", "a"),
               ("sub-delims", "*'()!$,;:@"), ("Z", "upper")]
    yield "get-query-special-chars", sign("GET", ECS + "/things?" + percent_encode_sequence(special))
    yield "get-params-plus-encoded", sign("GET", ECS + "/things", params={"q": "a b+c", "x": "y/z", "e": ""})
    yield "path-space-unicode", sign("GET", ECS + "/a%20b/%C3%BC%E2%82%AC/c%2Fd")
    yield "path-dot-segments", sign("GET", ECS + "/a/./b/../c//d/")
    yield "path-reserved-raw", sign("GET", ECS + "/a:b@c$d,e;f=g!'()*")
    yield "header-whitespace", sign(
        "POST", ECS + "/", JSON_HEADERS + [("X-Custom", "  a   b \t c  "), ("X-Multi", "one"),
                                          ("X-Multi", " two   three ")], body)
    yield "date-header", sign("POST", ECS + "/", JSON_HEADERS + [("Date", "placeholder")], body)
    yield "content-sha256-header", sign(
        "POST", ECS + "/", JSON_HEADERS + [("X-Amz-Content-SHA256", hashlib.sha256(body).hexdigest())], body)
    yield "presigned-get", sign("GET", ECS + "/?Action=ListClusters&Version=2014-11-13", presign_expires=3600)
    yield "presigned-get-session-token", sign(
        "GET", ECS + "/?Action=ListClusters&Version=2014-11-13", token=TOKEN, presign_expires=900)
    yield "presigned-post-form-body", sign(
        "POST", "https://sts.amazonaws.com/", [("Content-Type", "application/x-www-form-urlencoded; charset=utf-8")],
        {"Action": "GetCallerIdentity", "Version": "2011-06-15"}, service="sts", presign_expires=60)


def main():
    vectors = []
    for name, v in cases():
        v = {"name": name, **v}
        vectors.append(v)
        vectors.extend(tampered(name, v))
    json.dump({"generator": f"botocore {botocore.__version__}", "vectors": vectors}, sys.stdout, indent=1,
              ensure_ascii=False)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
