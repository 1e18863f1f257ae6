#!/usr/bin/env python3
"""A loopback soak of the local server: `python3 bench/soak.py` from the repository root.

Builds the server (release), starts `passwordless serve` on a fresh store seeded by a kickstart
file, and runs mixed traffic against it from several threads for --seconds (default 600): the
hosted flow (authorize page, email form, the short code from the outbox, the token exchange),
API logins (start, send, login, refresh), bad input (malformed JSON, wrong types, unknown ids,
oversized bodies, forms without their CSRF token) and management (users created, read,
searched and deleted). Every 10 seconds it samples the server's resident memory and open
files. It fails (exit 1) on any 5xx, on an answer a step did not expect, or when memory or open
files keep growing: the last minute's median against the second minute's (after warm-up),
more than 20 % memory or 16 files more.

Not part of the test command: it takes ten minutes. Needs the Rust toolchain and Python 3.
Options: --seconds N, --threads N (1 to 8, default 4), --binary PATH (skip the build).
"""
import argparse
import email
import email.policy
import html
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from coldstart import free_port  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
TARGET = Path(os.environ.get("CARGO_TARGET_DIR", ROOT / "target"))
API_KEY = "soak-api-key-0123456789abcdef0123456789ab"
APP = "50a50a50-0000-4000-8000-000000000001"
CALLBACK = "https://app.example/callback"
# Eight addresses a thread for the hosted flow and eight for API logins, so that no two threads
# ask for the same address at once (the short code read from the outbox is then the right one).
MAX_THREADS = 8
USERS = [f"soak-{i}@example.com" for i in range(16 * MAX_THREADS)]


def address_of(kind, worker, i):
    offset = 0 if kind == "hosted" else 8 * MAX_THREADS
    return USERS[offset + worker * 8 + i % 8]


def log(message):
    print(f"[soak {time.strftime('%H:%M:%S')}] {message}", flush=True)


def kickstart():
    requests = [
        # The soak speaks from one address: the send limits would answer most of it 429.
        {"method": "PATCH", "url": "/api/tenant/#{FUSIONAUTH_TENANT_ID}", "body": {"tenant": {
            "rateLimitConfiguration": {"sendPasswordless": {"enabled": False}}}}},
        {"method": "POST", "url": f"/api/application/{APP}", "body": {"application": {
            "name": "Soak", "passwordlessConfiguration": {"enabled": True},
            "roles": [{"name": "user", "isDefault": True}],
            "loginConfiguration": {"generateRefreshTokens": True},
            "oauthConfiguration": {"authorizedRedirectURLs": [CALLBACK],
                                   "clientAuthenticationPolicy": "NotRequiredWhenUsingPKCE"}}}},
    ]
    for i, address in enumerate(USERS):
        requests.append({"method": "POST", "url": f"/api/user/registration/50a50a50-0000-4000-9000-{i:012d}",
                         "body": {"user": {"email": address}, "registration": {"applicationId": APP},
                                  "skipVerification": True}})
    return {"apiKeys": [{"key": "#{ENV.KICKSTART_SOAK_API_KEY}", "description": "soak"}],
            "requests": requests}


class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


class Client:
    """One HTTP client with its own cookies, as a browser would have."""

    def __init__(self, base):
        self.base = base
        self.cookies = {}
        self.opener = urllib.request.build_opener(NoRedirect)

    def call(self, method, path, body=None, headers=None, form=None):
        headers = dict(headers or {})
        data = None
        if form is not None:
            data = urllib.parse.urlencode(form).encode()
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        elif body is not None:
            data = body if isinstance(body, bytes) else json.dumps(body).encode()
            headers.setdefault("Content-Type", "application/json")
        if self.cookies:
            headers["Cookie"] = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
        request = urllib.request.Request(self.base + path, data=data, method=method, headers=headers)
        try:
            response = self.opener.open(request, timeout=30)
        except urllib.error.HTTPError as error:
            response = error
        for header in response.headers.get_all("Set-Cookie") or []:
            name, _, rest = header.partition("=")
            self.cookies[name] = rest.split(";")[0]
        return response.status, response.headers, response.read().decode("utf-8", "replace")


class Soak:
    def __init__(self, base, outbox):
        self.base = base
        self.outbox = outbox
        self.lock = threading.Lock()
        self.counts = {}
        self.failures = []

    def expect(self, step, status, expected, body):
        with self.lock:
            self.counts[step] = self.counts.get(step, 0) + 1
            if status >= 500 or status not in expected:
                self.failures.append(f"{step}: {status} (expected {sorted(expected)}): {body[:300]}")
                return False
        return True

    def api(self, worker, i):
        client = Client(self.base)
        key = {"Authorization": API_KEY}
        address = address_of("api", worker, i)
        status, _, body = client.call("POST", "/api/passwordless/start", {"applicationId": APP, "loginId": address}, key)
        if not self.expect("api start", status, {200}, body):
            return
        code = json.loads(body)["code"]
        status, _, body = client.call("POST", "/api/passwordless/send", {"code": code})
        self.expect("api send", status, {200}, body)
        status, _, body = client.call("POST", "/api/passwordless/login", {"code": code, "applicationId": APP})
        if not self.expect("api login", status, {200}, body):
            return
        refresh = json.loads(body).get("refreshToken")
        status, _, body = client.call("POST", "/api/jwt/refresh", {"refreshToken": refresh})
        self.expect("api refresh", status, {200}, body)

    def newest_short_code(self, address, after):
        # The outbox names each message by the millisecond it was written: the newest sort last.
        for _ in range(50):
            names = sorted((n for n in os.listdir(self.outbox) if n.endswith(".eml")), reverse=True)
            for name in names[:64]:
                if int(name.split("-")[0]) < after * 1000:
                    break
                path = self.outbox / name
                message = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
                if address not in str(message["To"]):
                    continue
                part = message.get_body(preferencelist=("html", "plain"))
                found = re.search(r"<strong>(\d{6})</strong>|\b(\d{6})\b", part.get_content())
                if found:
                    return found.group(1) or found.group(2)
            time.sleep(0.05)
        return None

    def hosted(self, worker, i):
        browser = Client(self.base)
        address = address_of("hosted", worker, i)
        query = urllib.parse.urlencode({"client_id": APP, "redirect_uri": CALLBACK, "response_type": "code",
                                        "scope": "openid", "state": f"s{i}",
                                        "code_challenge": "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM",
                                        "code_challenge_method": "S256"})
        status, _, page = browser.call("GET", f"/oauth2/authorize?{query}")
        if not self.expect("hosted authorize", status, {200}, page):
            return
        hidden = dict(re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)"', page))
        form = {k: html.unescape(v) for k, v in hidden.items()}
        form["email"] = address
        asked_at = time.time() - 1
        status, _, page = browser.call("POST", "/oauth2/passwordless", form=form)
        if not self.expect("hosted ask", status, {200}, page):
            return
        csrf = re.search(r'name="csrf" value="([^"]+)"', page).group(1)
        short = self.newest_short_code(address, asked_at)
        if short is None:
            self.expect("hosted mail", 0, {200}, f"no mail for {address}")
            return
        status, headers, page = browser.call("POST", "/oauth2/one-time-code",
                                             form={"csrf": csrf, "code": short, "client_id": APP})
        if not self.expect("hosted short code", status, {302}, page):
            return
        code = urllib.parse.parse_qs(urllib.parse.urlparse(headers["Location"]).query)["code"][0]
        status, _, body = browser.call("POST", "/oauth2/token", form={
            "grant_type": "authorization_code", "code": code, "redirect_uri": CALLBACK, "client_id": APP,
            "code_verifier": "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"})
        self.expect("hosted token", status, {200}, body)

    def bad_input(self, worker, i):
        client = Client(self.base)
        key = {"Authorization": API_KEY}
        cases = [
            ("POST", "/api/passwordless/start", b"{not json", key, {400}),
            ("POST", "/api/passwordless/start", {"applicationId": 5, "loginId": []}, key, {400}),
            ("POST", "/api/passwordless/login", {"code": "x" * 300}, {}, {400}),
            ("POST", "/api/passwordless/login", {"code": "unknown"}, {}, {404}),
            ("GET", "/api/user/50a50a50-0000-4000-9000-999999999999", None, key, {404}),
            ("POST", "/api/user", b"{" + b" " * 70000 + b"}", key, {400, 413}),
            ("POST", "/oauth2/one-time-code", {"code": "123456"}, {}, {403, 400}),
            ("GET", "/oauth2/authorize?client_id=nope", None, {}, {400}),
        ]
        method, path, body, headers, expected = cases[(worker + i) % len(cases)]
        if path == "/oauth2/one-time-code":
            status, _, page = client.call(method, path, form=body, headers=headers)
        else:
            status, _, page = client.call(method, path, body, headers)
        self.expect(f"bad input {path}", status, expected, page)

    def management(self, worker, i):
        client = Client(self.base)
        key = {"Authorization": API_KEY}
        address = f"managed-{worker}-{i}@example.com"
        status, _, body = client.call("POST", "/api/user", {"user": {"email": address}}, key)
        if not self.expect("management create", status, {200}, body):
            return
        user = json.loads(body)["user"]["id"]
        status, _, body = client.call("GET", f"/api/user/{user}", None, key)
        self.expect("management read", status, {200}, body)
        status, _, body = client.call("GET", f"/api/user/search?queryString={urllib.parse.quote(address)}", None, key)
        self.expect("management search", status, {200}, body)
        status, _, body = client.call("DELETE", f"/api/user/{user}", None, key)
        self.expect("management delete", status, {200}, body)

    def worker(self, worker, deadline):
        kinds = [self.hosted, self.api, self.api, self.bad_input, self.management]
        i = 0
        while time.time() < deadline:
            try:
                kinds[i % len(kinds)](worker, i)
            except Exception as error:  # a dropped connection is a failure too
                with self.lock:
                    self.failures.append(f"{kinds[i % len(kinds)].__name__}: {error!r}")
            i += 1


def sample(pid):
    status = Path(f"/proc/{pid}/status").read_text()
    rss = int(re.search(r"VmRSS:\s+(\d+) kB", status).group(1))
    files = len(os.listdir(f"/proc/{pid}/fd"))
    return rss, files


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=600)
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument("--binary")
    args = parser.parse_args()
    if not 1 <= args.threads <= MAX_THREADS:
        parser.error(f"--threads is 1 to {MAX_THREADS}")
    binary = args.binary
    if not binary:
        subprocess.run(["cargo", "build", "--locked", "--release", "--bin", "passwordless"], cwd=ROOT, check=True)
        binary = str(TARGET / "release" / "passwordless")
    folder = Path(tempfile.mkdtemp(prefix="soak-"))
    (folder / "kickstart.json").write_text(json.dumps(kickstart()))
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = dict(os.environ, KICKSTART_SOAK_API_KEY=API_KEY, RUST_LOG="warn")
    server_log = open(folder / "server.log", "wb")
    process = subprocess.Popen(
        [binary, "serve", "--port", str(port), "--public-url", base,
         "--store", f"sqlite:{folder / 'store.db'}", "--outbox", str(folder / "outbox"),
         "--kickstart", str(folder / "kickstart.json")],
        env=env, stdout=server_log, stderr=subprocess.STDOUT)
    try:
        for _ in range(600):
            try:
                urllib.request.urlopen(f"{base}/.well-known/openid-configuration", timeout=1)
                break
            except OSError:
                time.sleep(0.1)
        soak = Soak(base, folder / "outbox")
        deadline = time.time() + args.seconds
        threads = [threading.Thread(target=soak.worker, args=(w, deadline)) for w in range(args.threads)]
        for thread in threads:
            thread.start()
        samples = []
        while time.time() < deadline:
            time.sleep(10)
            if process.poll() is not None:
                soak.failures.append(f"the server stopped (exit {process.returncode})")
                break
            samples.append((time.time(), *sample(process.pid)))
            rss, files = samples[-1][1:]
            log(f"{sum(soak.counts.values())} requests, RSS {rss / 1024:.1f} MB, {files} open files, "
                f"{len(soak.failures)} failures")
        for thread in threads:
            thread.join()
        verdict = report(soak, samples, args.seconds)
    finally:
        process.terminate()
        process.wait(10)
        server_log.close()
    log(f"server log and store: {folder}")
    sys.exit(0 if verdict else 1)


def report(soak, samples, seconds):
    ok = not soak.failures
    for failure in soak.failures[:20]:
        log(f"FAILURE {failure}")
    log("requests by step: " + ", ".join(f"{k} {v}" for k, v in sorted(soak.counts.items())))
    if len(samples) >= 12:
        second_minute = [s for s in samples if samples[0][0] + 60 <= s[0] < samples[0][0] + 120]
        last_minute = [s for s in samples if s[0] >= samples[-1][0] - 60]
        early_rss = statistics.median(s[1] for s in second_minute)
        late_rss = statistics.median(s[1] for s in last_minute)
        early_files = statistics.median(s[2] for s in second_minute)
        late_files = statistics.median(s[2] for s in last_minute)
        log(f"RSS {early_rss / 1024:.1f} MB in the second minute, {late_rss / 1024:.1f} MB in the last; "
            f"open files {early_files:.0f} and {late_files:.0f}")
        if late_rss > early_rss * 1.2:
            log("FAILURE memory grew by more than 20 %")
            ok = False
        if late_files > early_files + 16:
            log("FAILURE open files grew by more than 16")
            ok = False
    else:
        log(f"{seconds} s is too short to judge growth (two minutes at least)")
    log("PASS" if ok else "FAIL")
    return ok


if __name__ == "__main__":
    main()
