"""The task-role test app: an HTTP server on $PORT whose /whoami calls sts.get_caller_identity() with boto3's
default credential chain (in a berth task: the container credentials endpoint) and answers the result as JSON;
/env lists the names of the AWS_* variables the task got. Every other path answers 200 (health checks)."""

import json
import os
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import boto3


def whoami() -> dict:
    try:
        ident = boto3.client("sts").get_caller_identity()
        return {"ok": True, "Arn": ident["Arn"], "Account": ident["Account"], "UserId": ident["UserId"]}
    except Exception as e:  # reported to the caller, who decides what it means
        return {"ok": False, "error": f"{type(e).__name__}: {e}"}


class Handler(BaseHTTPRequestHandler):
    def do_GET(self):
        if self.path == "/whoami":
            body = whoami()
        elif self.path == "/env":
            body = sorted(k for k in os.environ if k.startswith("AWS_"))
        else:
            body = "ok"
        data = json.dumps(body).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):
        pass


if __name__ == "__main__":
    print(json.dumps({"startup_whoami": whoami()}), flush=True)
    ThreadingHTTPServer(("0.0.0.0", int(os.environ.get("PORT", "80"))), Handler).serve_forever()
