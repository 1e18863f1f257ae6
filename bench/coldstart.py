#!/usr/bin/env python3
"""Cold start and warm invocations of a Lambda function binary under the CPU share Lambda gives
a memory size, on this machine.

Lambda gives a function CPU in proportion to its memory: one vCPU at 1 769 MB, so 128 MB gets
about 7 % of one. The function's process runs in a Linux cgroup whose CPU quota is that share
(`cpu.cfs_quota_us` of 100 000 × MB / 1 769 per 100 000 µs), against a local Lambda Runtime
API on loopback, with the AWS APIs (moto, at AWS_ENDPOINT_URL) behind a TLS endpoint on
loopback, so the cold start pays for its TLS handshakes as on AWS. Reported: init (process
start to the first poll for an event, which the runtime makes once the function's set-up is
done), the first invocation, warm invocations (p50, p99), and the peak resident memory.

  python3 bench/coldstart.py --function passwordless-start --binary PATH --cli PATH \\
      --memory 128 [--invocations 50] [--smoke]

--smoke: one function, a few invocations, checks that every part works and that the answers
are right, not how fast (the test command runs it). Where the cgroup CPU controller is not
writable (not root, no controller) it says so and exits 0 without measuring.
Needs: moto at AWS_ENDPOINT_URL (plain http), openssl on the PATH for the loopback TLS
certificate, the local CLI binary (`passwordless`) to create the tables and seed them.
"""
import argparse
import asyncio
import base64
import http.server
import json
import os
import queue
import shutil
import socket
import ssl
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

API_KEY = "coldstart-api-key-0123456789abcdef012345"
APPLICATION = "0c01d57a-0000-4000-8000-000000000001"
USER_EMAIL = "cold@example.com"
# One vCPU at 1 769 MB (Lambda's documented proportion).
MB_PER_VCPU = 1769
CPU_PERIOD_US = 100_000


def log(message):
    print(f"[coldstart {time.strftime('%H:%M:%S')}] {message}", flush=True)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# ---------------------------------------------------------------------------------------------
# The CPU share: a cgroup with a CFS quota.

class CpuShare:
    """A cgroup (v1 `cpu` controller, or v2 `cpu.max`) limiting its processes to the CPU share
    of `memory_mb` on Lambda."""

    def __init__(self, memory_mb):
        self.quota_us = round(CPU_PERIOD_US * memory_mb / MB_PER_VCPU)
        name = f"passwordless-coldstart-{memory_mb}-{os.getpid()}"
        v1 = Path("/sys/fs/cgroup/cpu")
        v2 = Path("/sys/fs/cgroup")
        if (v1 / "cpu.cfs_quota_us").exists():
            self.path = v1 / name
            self.path.mkdir()
            (self.path / "cpu.cfs_period_us").write_text(str(CPU_PERIOD_US))
            (self.path / "cpu.cfs_quota_us").write_text(str(self.quota_us))
        elif (v2 / "cgroup.controllers").exists():
            if "cpu" not in (v2 / "cgroup.subtree_control").read_text().split():
                (v2 / "cgroup.subtree_control").write_text("+cpu")
            self.path = v2 / name
            self.path.mkdir()
            (self.path / "cpu.max").write_text(f"{self.quota_us} {CPU_PERIOD_US}")
        else:
            raise PermissionError("no cgroup CPU controller under /sys/fs/cgroup")

    @staticmethod
    def unavailable_reason():
        """Why no cgroup can be made here, or None when one can."""
        for controller in (Path("/sys/fs/cgroup/cpu"), Path("/sys/fs/cgroup")):
            if (controller / "cpu.cfs_quota_us").exists() or (controller / "cgroup.controllers").exists():
                if os.access(controller, os.W_OK):
                    return None
                return f"{controller} is not writable by this user (the CPU quota needs root)"
        return "this machine has no cgroup CPU controller"

    def command(self, argv):
        """`argv` started inside the cgroup: a shell joins it, then becomes the program."""
        return ["sh", "-c", f'echo $$ > "{self.path / "cgroup.procs"}" && exec "$0" "$@"', *argv]

    def throttled(self):
        stat = self.path / "cpu.stat"
        if not stat.exists():
            return None
        values = dict(line.split() for line in stat.read_text().splitlines() if line.strip())
        return int(values.get("nr_throttled", 0))

    def remove(self):
        try:
            self.path.rmdir()
        except OSError:
            pass


# ---------------------------------------------------------------------------------------------
# TLS on loopback in front of moto.

def certificate(folder):
    """A throwaway CA (the file the function trusts, through SSL_CERT_FILE) and a certificate
    for localhost it signed (webpki refuses a self-signed certificate as a server's own)."""
    ca_key, ca, key, request, cert = (folder / n for n in ("ca.key", "ca.pem", "tls.key", "tls.csr", "tls.pem"))
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"]
    openssl = lambda *args: subprocess.run(["openssl", *args], check=True, capture_output=True)  # noqa: E731
    openssl("req", "-x509", *ec, "-keyout", ca_key, "-out", ca, "-days", "2", "-subj", "/CN=coldstart CA",
            "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign")
    openssl("req", "-new", *ec, "-keyout", key, "-out", request, "-subj", "/CN=localhost")
    extensions = folder / "leaf.ext"
    extensions.write_text("basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\n"
                          "extendedKeyUsage=serverAuth\nsubjectAltName=DNS:localhost,IP:127.0.0.1\n")
    openssl("x509", "-req", "-in", request, "-CA", ca, "-CAkey", ca_key, "-CAcreateserial", "-out", cert,
            "-days", "2", "-extfile", extensions)
    return key, cert, ca


class TlsProxy:
    """Terminates TLS on a loopback port and passes each HTTP request on to moto's plain port.

    moto closes its connection after every answer; AWS keeps it open. So the proxy keeps the
    function's connection open (its answers say keep-alive and carry their length) and opens a
    new one to moto per request, as a function on AWS pays one TLS handshake per endpoint, not
    one per request. It also adds up the time moto takes to answer, and counts the requests, so
    that an invocation's own time can be told from the emulator's."""

    def __init__(self, key, cert, upstream_port):
        self.port = free_port()
        self.upstream_port = upstream_port
        self.upstream_seconds = 0.0
        self.requests = 0
        self.handshakes = 0
        self.context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        self.context.load_cert_chain(cert, key)
        self.loop = asyncio.new_event_loop()
        ready = threading.Event()
        threading.Thread(target=self._serve, args=(ready,), daemon=True).start()
        ready.wait(10)

    def totals(self):
        return self.upstream_seconds, self.requests, self.handshakes

    async def _forward(self, request):
        """One request to moto; its whole answer as (head lines, body)."""
        began = time.perf_counter()
        reader, writer = await asyncio.open_connection("127.0.0.1", self.upstream_port)
        writer.write(request)
        await writer.drain()
        answer = await reader.read()
        writer.close()
        self.upstream_seconds += time.perf_counter() - began
        self.requests += 1
        head, _, body = answer.partition(b"\r\n\r\n")
        lines = head.split(b"\r\n")
        fields = {line.split(b":", 1)[0].strip().lower(): line for line in lines[1:] if b":" in line}
        if b"chunked" in fields.get(b"transfer-encoding", b"").lower():
            body = dechunk(body)
        return lines[0], [line for name, line in fields.items()
                          if name not in (b"connection", b"content-length", b"transfer-encoding", b"keep-alive")], body

    def _serve(self, ready):
        asyncio.set_event_loop(self.loop)

        async def client(reader, writer):
            self.handshakes += 1
            try:
                while True:
                    head = await reader.readuntil(b"\r\n\r\n")
                    length = 0
                    for line in head.split(b"\r\n")[1:]:
                        name, _, value = line.partition(b":")
                        if name.strip().lower() == b"content-length":
                            length = int(value.strip())
                    body = await reader.readexactly(length)
                    status, fields, answer = await self._forward(head + body)
                    out = b"\r\n".join([status, *fields, b"Content-Length: " + str(len(answer)).encode(),
                                         b"Connection: keep-alive"]) + b"\r\n\r\n" + answer
                    writer.write(out)
                    await writer.drain()
            except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError, ssl.SSLError, OSError):
                pass
            finally:
                writer.close()

        async def main():
            server = await asyncio.start_server(client, "127.0.0.1", self.port, ssl=self.context)
            ready.set()
            async with server:
                await server.serve_forever()

        self.loop.run_until_complete(main())


def dechunk(body):
    out = b""
    while body:
        size_line, _, rest = body.partition(b"\r\n")
        size = int(size_line.split(b";")[0], 16)
        if size == 0:
            break
        out += rest[:size]
        body = rest[size + 2:]
    return out


# ---------------------------------------------------------------------------------------------
# The Lambda Runtime API, as much of it as a function uses.

class RuntimeApi:
    def __init__(self):
        self.events = queue.Queue()
        self.answers = queue.Queue()
        self.first_poll = None
        api = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            # Each answer leaves at once: with Nagle's algorithm the event's body would wait for
            # the function's delayed acknowledgement of the headers (40 ms on Linux), which is
            # this stub's cost, not the function's.
            disable_nagle_algorithm = True

            def log_message(self, *args):
                pass

            def do_GET(self):
                if not self.path.endswith("/runtime/invocation/next"):
                    self.send_error(404)
                    return
                if api.first_poll is None:
                    api.first_poll = time.perf_counter()
                request_id, event = api.events.get()
                api.delivered = time.perf_counter()
                self.send_response(200)
                self.send_header("Lambda-Runtime-Aws-Request-Id", request_id)
                self.send_header("Lambda-Runtime-Deadline-Ms", str(int(time.time() * 1000) + 30_000))
                self.send_header("Lambda-Runtime-Invoked-Function-Arn",
                                 "arn:aws:lambda:us-east-1:123456789012:function:coldstart")
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(event)))
                self.end_headers()
                self.wfile.write(event)

            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                at = time.perf_counter()
                self.send_response(202)
                self.send_header("Content-Length", "0")
                self.end_headers()
                api.answers.put((self.path, at, api.delivered, body))

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def invoke(self, request_id, event, process, timeout):
        """Queues one event and waits for its answer: (status, body, seconds delivered→answered,
        when answered). Fails as soon as the function's process ends."""
        self.events.put((request_id, json.dumps(event).encode()))
        deadline = time.time() + timeout
        while True:
            try:
                path, at, delivered, body = self.answers.get(timeout=0.2)
                break
            except queue.Empty:
                if process.poll() is not None:
                    raise RuntimeError(f"the function exited ({process.returncode}) before answering")
                if time.time() > deadline:
                    raise RuntimeError(f"no answer to {request_id} in {timeout} s")
        if not path.endswith(f"/{request_id}/response"):
            raise RuntimeError(f"invocation {request_id} failed: {path} {body[:300]!r}")
        answer = json.loads(body)
        return answer.get("statusCode"), answer.get("body") or "", at - delivered, at


def http_event(method, path, body=None, headers=None, query=""):
    """An API Gateway HTTP API (payload 2.0) event."""
    headers = {"content-type": "application/json", **(headers or {})}
    return {
        "version": "2.0", "routeKey": "$default", "rawPath": path, "rawQueryString": query,
        "headers": headers,
        "requestContext": {"http": {"method": method, "path": path, "sourceIp": "127.0.0.1",
                                    "protocol": "HTTP/1.1", "userAgent": "coldstart"},
                           "requestId": "coldstart", "accountId": "123456789012", "apiId": "local",
                           "domainName": "localhost", "stage": "$default", "time": "", "timeEpoch": 0},
        "body": None if body is None else json.dumps(body), "isBase64Encoded": False,
    }


# ---------------------------------------------------------------------------------------------
# What each function is asked, invocation after invocation.

def start_event(_environment, _i):
    return http_event("POST", "/api/passwordless/start", {"applicationId": APPLICATION, "loginId": USER_EMAIL},
                      {"authorization": API_KEY}), 200


def login_event(environment, _i):
    # A fresh code each time: a code logs in once.
    return http_event("POST", "/api/passwordless/login",
                      {"code": environment.code(), "applicationId": APPLICATION}), 200


def send_event(environment, _i):
    # A fresh code each time: sending marks a code as emailed.
    return http_event("POST", "/api/passwordless/send", {"code": environment.code()}), 200


FUNCTIONS = {
    "passwordless-start": start_event,
    "passwordless-send": send_event,
    "passwordless-login": login_event,
}


# ---------------------------------------------------------------------------------------------

class Environment:
    """Tables in moto with a prefix of their own, seeded by the local CLI; the environment a
    function binary gets."""

    def __init__(self, cli, folder, moto_endpoint, tls_endpoint, cert):
        self.prefix = f"coldstart{os.getpid()}"
        key = base64.b64encode(os.urandom(32)).decode()
        common = {
            "AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test", "AWS_REGION": "us-east-1",
            "PASSWORDLESS_STORE": f"dynamodb:{self.prefix}", "PASSWORDLESS_KEY_ENCRYPTION_KEY": key,
            "PASSWORDLESS_PUBLIC_URL": "https://auth.example.com",
        }
        seed_env = dict(os.environ, **common, AWS_ENDPOINT_URL=moto_endpoint, KICKSTART_COLDSTART_API_KEY=API_KEY)
        for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN"):
            seed_env.pop(name, None)
        kickstart = folder / "kickstart.json"
        kickstart.write_text(json.dumps({
            "apiKeys": [{"key": "#{ENV.KICKSTART_COLDSTART_API_KEY}", "description": "coldstart"}],
            "requests": [
                # One address receives every code here: its send limit (5 a minute) is off.
                {"method": "PATCH", "url": "/api/tenant/#{FUSIONAUTH_TENANT_ID}", "body": {"tenant": {
                    "emailConfiguration": {"defaultFromEmail": "login@example.com"},
                    "rateLimitConfiguration": {"sendPasswordless": {"enabled": False}}}}},
                {"method": "POST", "url": f"/api/application/{APPLICATION}", "body": {"application": {
                    "name": "Cold start", "passwordlessConfiguration": {"enabled": True},
                    "roles": [{"name": "user"}], "loginConfiguration": {"generateRefreshTokens": True}}}},
                {"method": "POST", "url": "/api/user/registration", "body": {
                    "user": {"email": USER_EMAIL},
                    "registration": {"applicationId": APPLICATION, "roles": ["user"]},
                    "skipVerification": True}},
            ],
        }))
        subprocess.run([cli, "create-tables"], env=seed_env, check=True, capture_output=True)
        # SES sends only from a verified identity.
        request = urllib.request.Request(
            f"{moto_endpoint}/v2/email/identities", method="POST",
            data=json.dumps({"EmailIdentity": "example.com"}).encode(),
            headers={"content-type": "application/json", "authorization":
                     "AWS4-HMAC-SHA256 Credential=test/20260101/us-east-1/ses/aws4_request, "
                     "SignedHeaders=host, Signature=0"})
        try:
            urllib.request.urlopen(request, timeout=10).read()
        except urllib.error.HTTPError as e:
            if e.code != 400:  # 400: it exists already
                raise
        subprocess.run([cli, "kickstart", kickstart], env=seed_env, check=True, capture_output=True)
        # The local server on the same tables hands out codes for the functions that need one.
        self.port = free_port()
        self.server = subprocess.Popen([cli, "serve", "--port", str(self.port)], env=seed_env,
                                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.function_env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"), **common,
            "AWS_ENDPOINT_URL": tls_endpoint, "SSL_CERT_FILE": str(cert),
            "PASSWORDLESS_MAILER": "ses", "PASSWORDLESS_SES_IDENTITY": "example.com", "RUST_LOG": "warn",
        }

    def code(self):
        """A new one-time code of the seeded user, from the local server."""
        request = urllib.request.Request(
            f"http://127.0.0.1:{self.port}/api/passwordless/start", method="POST",
            data=json.dumps({"applicationId": APPLICATION, "loginId": USER_EMAIL}).encode(),
            headers={"authorization": API_KEY, "content-type": "application/json"})
        deadline = time.time() + 30
        while True:
            try:
                with urllib.request.urlopen(request, timeout=10) as response:
                    return json.loads(response.read())["code"]
            except urllib.error.URLError:
                if self.server.poll() is not None or time.time() > deadline:
                    raise

    def close(self):
        self.server.terminate()
        self.server.wait(10)


def peak_rss_kb(pid):
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    except OSError:
        return None
    return None


def cpu_ms(pid):
    """The process's CPU time so far (user + system), in milliseconds."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    fields = stat[stat.rindex(")") + 2:].split()
    return (int(fields[11]) + int(fields[12])) * 1000 / os.sysconf("SC_CLK_TCK")


def measure(binary, function, memory_mb, environment, invocations, proxy):
    share = CpuShare(memory_mb)
    runtime = RuntimeApi()
    env = dict(environment.function_env,
               AWS_LAMBDA_RUNTIME_API=f"127.0.0.1:{runtime.port}",
               AWS_LAMBDA_FUNCTION_NAME=function,
               AWS_LAMBDA_FUNCTION_MEMORY_SIZE=str(memory_mb),
               AWS_LAMBDA_FUNCTION_VERSION="$LATEST",
               AWS_LAMBDA_LOG_STREAM_NAME="local", AWS_LAMBDA_LOG_GROUP_NAME="local")
    event_of = FUNCTIONS[function]
    log_file = tempfile.TemporaryFile()
    began = time.perf_counter()
    process = subprocess.Popen(share.command([binary]), env=env, stdout=log_file, stderr=subprocess.STDOUT)
    try:
        durations = []
        handler = []
        first_answer_at = None
        for i in range(invocations):
            event, expected = event_of(environment, i)
            emulator_before, requests_before, handshakes_before = proxy.totals()
            status, body, seconds, at = runtime.invoke(f"invocation-{i}", event, process, timeout=120)
            emulator_after, requests_after, handshakes_after = proxy.totals()
            handler.append((seconds - (emulator_after - emulator_before)) * 1000)
            if i == 0:
                cold_requests = requests_after - requests_before
                warm_from = (requests_after, handshakes_after)
            if status != expected:
                raise RuntimeError(f"{function}: invocation {i} answered {status}, not {expected}: {body[:300]}")
            if i == 0:
                first_answer_at = at
                cold_cpu = cpu_ms(process.pid)
            durations.append(seconds * 1000)
        warm_cpu = cpu_ms(process.pid) - cold_cpu
        _, requests_end, handshakes_end = proxy.totals()
        if runtime.first_poll is None:
            raise RuntimeError(f"{function} never polled the Runtime API")
        result = {
            "function": function,
            "memoryMb": memory_mb,
            "cpuQuotaUs": share.quota_us,
            "initMs": (runtime.first_poll - began) * 1000,
            "firstInvocationMs": durations[0],
            "coldStartMs": (first_answer_at - began) * 1000,
            # CPU time, not wall time: what the quota rations (clock ticks of 10 ms, so only
            # meaningful over many invocations).
            "coldCpuMs": cold_cpu,
            "firstInvocationAwsRequests": cold_requests,
            "warm": {"count": len(durations) - 1,
                     "cpuMsPerInvocation": warm_cpu / max(1, len(durations) - 1),
                     "awsRequestsPerInvocation": (requests_end - warm_from[0]) / max(1, len(durations) - 1),
                     "tlsHandshakes": handshakes_end - warm_from[1]},
            "peakRssMb": (peak_rss_kb(process.pid) or 0) / 1024,
            "throttledPeriods": share.throttled(),
        }
        warm = sorted(durations[1:])
        own = sorted(handler[1:])
        quantile = lambda values, q: values[min(len(values) - 1, int(q * len(values)))]  # noqa: E731
        if warm:
            result["warm"].update({
                "p50Ms": statistics.median(warm),
                "p99Ms": quantile(warm, 0.99),
                # Without the time moto took to answer: the function's own time.
                "handlerP50Ms": statistics.median(own),
                "handlerP99Ms": quantile(own, 0.99),
            })
        return result
    except Exception:
        log_file.seek(0)
        sys.stderr.write(log_file.read().decode(errors="replace")[-4000:])
        raise
    finally:
        process.kill()
        process.wait()
        share.remove()
        runtime.server.shutdown()


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--function", action="append", required=True, choices=sorted(FUNCTIONS))
    parser.add_argument("--binary-dir", required=True, type=Path,
                        help="the folder holding the function binaries (x86_64, named as the functions)")
    parser.add_argument("--cli", required=True, type=Path, help="the local CLI binary, to seed the tables")
    parser.add_argument("--memory", action="append", type=int, required=True)
    parser.add_argument("--invocations", type=int, default=50)
    parser.add_argument("--smoke", action="store_true")
    parser.add_argument("--json", type=Path, help="also write the results to this file")
    args = parser.parse_args()

    reason = CpuShare.unavailable_reason()
    if reason is not None:
        print(f"cold-start harness skipped: {reason}")
        return
    moto = os.environ.get("AWS_ENDPOINT_URL")
    if not moto or not moto.startswith("http://"):
        sys.exit("AWS_ENDPOINT_URL must name moto's plain http endpoint on loopback")
    if shutil.which("openssl") is None:
        sys.exit("openssl is needed for the loopback TLS certificate")
    moto_port = int(moto.rsplit(":", 1)[1].rstrip("/"))
    invocations = 3 if args.smoke else args.invocations
    results = []
    with tempfile.TemporaryDirectory(prefix="coldstart-") as folder:
        folder = Path(folder)
        key, cert, ca = certificate(folder)
        proxy = TlsProxy(key, cert, moto_port)
        # The proxy answers TLS before any function starts.
        urllib.request.urlopen(f"https://localhost:{proxy.port}/moto-api/",
                               context=ssl.create_default_context(cafile=str(ca)), timeout=10).read()
        environment = Environment(args.cli, folder, moto, f"https://localhost:{proxy.port}", ca)
        try:
            for function in args.function:
                for memory in args.memory:
                    result = measure(args.binary_dir / function, function, memory, environment, invocations,
                                     proxy)
                    results.append(result)
                    log(json.dumps(result))
        finally:
            environment.close()
    if args.smoke:
        for result in results:
            assert result["initMs"] > 0 and result["coldStartMs"] >= result["initMs"], result
            assert result["warm"]["count"] == invocations - 1, result
            # The connection the cold start opened serves the warm invocations.
            assert result["warm"]["tlsHandshakes"] == 0, result
        print(f"cold-start harness works: {len(results)} function(s) started under a CPU quota, "
              f"every invocation answered as expected")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
