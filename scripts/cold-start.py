#!/usr/bin/env python3
"""Measures a function binary's cold start: the time from process start to the answer of its
first invocation, through a minimal local Lambda Runtime API on loopback.

Usage: python3 scripts/cold-start.py BINARY EVENT_FILE [ENV=VALUE ...]
The binary runs with the environment given (for example PASSWORDLESS_STORE=sqlite:/tmp/s.db).
"""
import http.server
import json
import os
import subprocess
import sys
import threading
import time

binary, event_file, *assignments = sys.argv[1:]
event = open(event_file, "rb").read()
answered = threading.Event()
result = {}


class RuntimeApi(http.server.BaseHTTPRequestHandler):
    served = False

    def log_message(self, *args):
        pass

    def do_GET(self):
        if not self.path.endswith("/invocation/next"):
            self.send_error(404)
            return
        if RuntimeApi.served:
            # Only one invocation: park the poll until the measurement is over.
            answered.wait(30)
            time.sleep(30)
            return
        RuntimeApi.served = True
        self.send_response(200)
        self.send_header("Lambda-Runtime-Aws-Request-Id", "cold-start-1")
        self.send_header("Lambda-Runtime-Deadline-Ms", str(int(time.time() * 1000) + 30000))
        self.send_header("Lambda-Runtime-Invoked-Function-Arn", "arn:aws:lambda:us-east-1:123456789012:function:cold-start")
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(event)))
        self.end_headers()
        self.wfile.write(event)

    def do_POST(self):
        length = int(self.headers.get("Content-Length", 0))
        body = self.rfile.read(length)
        result["at"] = time.perf_counter()
        result["path"] = self.path
        result["body"] = body
        self.send_response(202)
        self.send_header("Content-Length", "0")
        self.end_headers()
        answered.set()


server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), RuntimeApi)
threading.Thread(target=server.serve_forever, daemon=True).start()
env = dict(os.environ)
env.update(dict(a.split("=", 1) for a in assignments))
env.update({
    "AWS_LAMBDA_RUNTIME_API": f"127.0.0.1:{server.server_address[1]}",
    "AWS_LAMBDA_FUNCTION_NAME": "cold-start",
    "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "128",
    "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
    "AWS_LAMBDA_LOG_STREAM_NAME": "local",
    "AWS_LAMBDA_LOG_GROUP_NAME": "local",
    "RUST_LOG": env.get("RUST_LOG", "warn"),
})
started = time.perf_counter()
process = subprocess.Popen([binary], env=env)
ok = answered.wait(30)
process.kill()
process.wait()
if not ok:
    sys.exit("no answer within 30 s")
response = json.loads(result["body"])
print(json.dumps({"binary": os.path.basename(binary), "ms_to_first_response": round((result["at"] - started) * 1000, 1),
                  "status": response.get("statusCode"), "runtime_path": result["path"]}))
