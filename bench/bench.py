#!/usr/bin/env python3
"""Builds, runs and writes BENCHMARKS.md: `python3 bench/bench.py` from the repository root.

What it measures, each on this machine and in the same run:
- the server CPU time of one passwordless start + login cycle on the local server (release
  optimisation, embedded store), RS256 and ES256, against better-auth's magic-link plugin
  (Node + SQLite, installed from npm into bench/.work), the same Node load generator
  (bench/load.mjs) driving both;
- CPU profiles of the local server under the RS256 and the ES256 load (perf, drawn as flame
  graphs by inferno, installed with cargo into bench/.work), written to docs/bench/;
- cold start, warm invocations and peak memory of the start, send and login functions under
  the CPU quota of 128, 256, 512 and 1 024 MB (bench/coldstart.py, moto from the test
  command's Python environment, .venv or PASSWORDLESS_VENV), the cost of 1 000 logins at each
  size, and a chart of latency against memory size (docs/bench/latency-by-memory.svg);
- the DynamoDB requests of a start and a login (the round-trip test);
- the size of each function as deployed (arm64, `cargo lambda build --release`).

Needs: the Rust toolchain, Node.js and npm, Python 3, openssl, perf for the profiles (skipped
with a note when missing or not permitted), root for the CPU quota (skipped with a note).
Options: --seconds N (measured seconds per load run, default 10), --rounds N (default 3; the
report shows the median), --invocations N (per function and size, default 60),
--skip-profile, --skip-lambda-build (report the arm64 binaries already built).
"""
import argparse
import json
import math
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from coldstart import free_port

ROOT = Path(__file__).resolve().parent.parent
WORK = ROOT / "bench" / ".work"
TARGET = Path(os.environ.get("CARGO_TARGET_DIR", ROOT / "target"))
API_KEY = "bench-api-key-0123456789abcdef0123456789"
RS_APP = "0b1e4a7e-0000-4000-8000-000000000256"
ES_APP = "0b1e4a7e-0000-4000-8000-0000000e5256"
ES_KEY = "0b1e4a7e-0000-4000-8000-00000000ce25"
WORKERS = 8
USERS = [f"bench-{i}@example.com" for i in range(WORKERS)]


def log(message):
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", flush=True)


def run(command, **kwargs):
    log(" ".join(str(c) for c in command))
    return subprocess.run(command, check=True, **kwargs)


def wait_for(url, process, seconds=60):
    deadline = time.time() + seconds
    while time.time() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the server stopped (exit {process.returncode}) before answering {url}")
        try:
            with urllib.request.urlopen(url, timeout=1):
                return
        except urllib.error.HTTPError:
            return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"no answer from {url} in {seconds} s")


def kickstart():
    """The bench tenant: an RS256 application (the default tenant key), an ES256 one, and one
    user per worker registered to both."""
    registration = lambda app: {"applicationId": app, "roles": ["user"]}  # noqa: E731
    application = lambda name, jwt: {  # noqa: E731
        "application": {
            "name": name,
            "passwordlessConfiguration": {"enabled": True},
            "roles": [{"name": "user"}],
            "loginConfiguration": {"generateRefreshTokens": True},
            "jwtConfiguration": jwt,
        }
    }
    requests = [
        {"method": "POST", "url": f"/api/key/generate/{ES_KEY}",
         "body": {"key": {"algorithm": "ES256", "name": "Bench ES256"}}},
        {"method": "POST", "url": f"/api/application/{RS_APP}",
         "body": application("Bench RS256", {"enabled": True})},
        {"method": "POST", "url": f"/api/application/{ES_APP}",
         "body": application("Bench ES256", {"enabled": True, "accessTokenKeyId": ES_KEY})},
    ]
    for i, email in enumerate(USERS):
        user_id = f"0b1e4a7e-0000-4000-9000-{i:012d}"
        requests.append({"method": "POST", "url": f"/api/user/registration/{user_id}",
                         "body": {"user": {"email": email}, "registration": registration(RS_APP),
                                  "skipVerification": True}})
        requests.append({"method": "POST", "url": f"/api/user/registration/{user_id}",
                         "body": {"registration": registration(ES_APP)}})
    return {"apiKeys": [{"key": "#{ENV.KICKSTART_BENCH_API_KEY}", "description": "bench"}], "requests": requests}


class Ours:
    """The local server, built with the release optimisation (the `profiling` profile keeps
    symbols for perf; the code is the release build's)."""

    def __init__(self, binary, folder):
        self.port = free_port()
        (folder / "kickstart.json").write_text(json.dumps(kickstart()))
        env = dict(os.environ, KICKSTART_BENCH_API_KEY=API_KEY, RUST_LOG=os.environ.get("RUST_LOG", "info"))
        self.log = open(folder / "server.log", "wb")
        self.process = subprocess.Popen(
            [binary, "serve", "--port", str(self.port),
             "--store", f"sqlite:{folder / 'store.db'}", "--outbox", str(folder / "outbox"),
             "--kickstart", str(folder / "kickstart.json")],
            env=env, stdout=self.log, stderr=subprocess.STDOUT)
        wait_for(f"http://127.0.0.1:{self.port}/.well-known/openid-configuration", self.process)

    def load(self, application, seconds):
        return load({"target": "ours", "base": f"http://127.0.0.1:{self.port}", "pid": self.process.pid,
                     "apiKey": API_KEY, "applicationId": application}, seconds)

    def stop(self):
        self.process.terminate()
        self.process.wait(10)
        self.log.close()


class BetterAuth:
    def __init__(self, folder):
        self.port = free_port()
        self.log = open(folder / "better-auth.log", "wb")
        self.process = subprocess.Popen(
            ["node", WORK / "better-auth" / "server.mjs", str(self.port), str(folder / "better-auth.db")],
            stdout=self.log, stderr=subprocess.STDOUT, cwd=WORK / "better-auth")
        wait_for(f"http://127.0.0.1:{self.port}/api/auth/ok", self.process)

    def load(self, seconds):
        return load({"target": "better-auth", "base": f"http://127.0.0.1:{self.port}",
                     "pid": self.process.pid}, seconds)

    def stop(self):
        self.process.terminate()
        self.process.wait(10)
        self.log.close()


def load(options, seconds):
    options = dict(options, users=USERS, workers=WORKERS, warmupSeconds=3, seconds=seconds)
    out = subprocess.run(["node", ROOT / "bench" / "load.mjs", json.dumps(options)],
                         check=True, capture_output=True, text=True)
    result = json.loads(out.stdout.strip().splitlines()[-1])
    log(f"{options['target']}: {result['cycles']} cycles, {result['serverCpuMsPerCycle']:.3f} ms server CPU per cycle")
    return result


FUNCTIONS = ["passwordless-start", "passwordless-send", "passwordless-login"]
MEMORY_SIZES = [128, 256, 512, 1024]


def build_ours():
    """The local server and the functions the cold-start part runs, for this machine (x86_64),
    in one build so they share it."""
    bins = [arg for name in ["passwordless", *FUNCTIONS] for arg in ("--bin", name)]
    run(["cargo", "build", "--locked", "--profile", "profiling", "--workspace", "--features", "passwordless-cli/aws", *bins], cwd=ROOT)
    return TARGET / "profiling" / "passwordless"


def venv():
    """The Python tools the test command installs (moto among them), in the same folder."""
    folder = Path(os.environ.get("PASSWORDLESS_VENV", ROOT / ".venv"))
    if not (folder / "bin" / "python").exists():
        run([sys.executable, "-m", "venv", folder])
    run([folder / "bin" / "python", "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
         "-r", ROOT / "tests" / "compat" / "requirements.txt"])
    return folder / "bin" / "python"


ALL_FUNCTIONS = ["passwordless-start", "passwordless-send", "passwordless-login", "management",
                 "oauth2-pages", "oauth2-token", "oidc"]


def lambda_sizes(python, build):
    """The deployed binaries (arm64, release, stripped) as the test command builds them, and
    their sizes."""
    if build:
        env = dict(os.environ, PATH=f"{Path(python).parent}{os.pathsep}{os.environ['PATH']}")
        run(["rustup", "target", "add", "aarch64-unknown-linux-gnu"], cwd=ROOT)
        run([Path(python).parent / "cargo-lambda", "lambda", "build", "--release", "--arm64", "--locked",
             *[arg for f in ALL_FUNCTIONS for arg in ("-p", f)]], cwd=ROOT, env=env)
    sizes = {}
    for function in ALL_FUNCTIONS:
        bootstrap = TARGET / "lambda" / function / "bootstrap"
        if bootstrap.exists():
            sizes[function] = (bootstrap.stat().st_size, time.strftime("%Y-%m-%d %H:%M", time.gmtime(bootstrap.stat().st_mtime)))
    return sizes


# A Rust symbol's crate: the first path that is not the standard library's, so that
# `core::ptr::drop_in_place<aws_sdk_dynamodb::X>` counts for the SDK. A path starts where no
# `::` precedes it.
RUST_PATH_START = re.compile(r"(?<![A-Za-z0-9_:])([a-z_][a-z0-9_]*)::")
STANDARD_LIBRARY = {"core", "alloc", "std"}
SIZE_ROWS = 14


def crate_of(symbol):
    if "::" not in symbol:
        # The release functions link no SQLite: C code there is aws-lc's cryptography.
        return "C (aws-lc's cryptography)"
    crates = RUST_PATH_START.findall(symbol)
    for crate in crates:
        if crate not in STANDARD_LIBRARY:
            return crate.replace("_", "-")
    return "Rust standard library"


def size_by_crate(binary):
    """The bytes of a binary's defined symbols (code and data) by crate, from `nm`."""
    listing = subprocess.run(["nm", "-S", "-C", "--defined-only", binary],
                             check=True, capture_output=True, text=True).stdout
    totals = {}
    for line in listing.splitlines():
        parts = line.split(" ", 3)
        # Zero-filled (bss) and undefined symbols take no room in the file.
        if len(parts) < 4 or parts[2] in "bBuUvVwW":
            continue
        try:
            size = int(parts[1], 16)
        except ValueError:
            continue
        crate = crate_of(parts[3])
        totals[crate] = totals.get(crate, 0) + size
    return totals


def size_breakdown(binary_dir):
    """What each measured function's bytes are, by crate, or a note when nm is missing."""
    if shutil.which("nm") is None:
        return None, "nm (binutils) is not installed"
    return {f: (size_by_crate(binary_dir / f), (binary_dir / f).stat().st_size) for f in FUNCTIONS}, None


def size_section(breakdown_by_function, note):
    lines = ["", "### What the bytes are", ""]
    if breakdown_by_function is None:
        return lines + [f"Not broken down in this run: {note}."]
    largest = {}
    for totals, _ in breakdown_by_function.values():
        for crate, size in totals.items():
            largest[crate] = max(largest.get(crate, 0), size)
    shown = sorted(largest, key=largest.get, reverse=True)[:SIZE_ROWS]
    lines += [
        "The symbols (code and data) of the same functions built for x86_64 with symbols (the",
        "`profiling` profile: the release optimisation, not stripped), by crate, each generic",
        "instantiation counted for the first crate its name mentions outside the standard library.",
        "Strings and tables without a symbol are not counted; arm64 code differs in detail (aws-lc's",
        "assembly is written per architecture) but not in what dominates.",
        "",
        "| crate | " + " | ".join(FUNCTIONS) + " |",
        "|---|" + "---|" * len(FUNCTIONS),
    ]
    for crate in shown:
        lines.append(f"| {crate} | " + " | ".join(
            f"{totals.get(crate, 0) / 1e6:.2f} MB" for totals, _ in breakdown_by_function.values()) + " |")
    lines.append("| everything else | " + " | ".join(
        f"{sum(size for crate, size in totals.items() if crate not in shown) / 1e6:.2f} MB"
        for totals, _ in breakdown_by_function.values()) + " |")
    lines.append("| all symbols | " + " | ".join(
        f"{sum(totals.values()) / 1e6:.2f} MB" for totals, _ in breakdown_by_function.values()) + " |")
    return lines


def dynamodb_requests(env):
    """The DynamoDB requests of a start and a login, as the round-trip test counts them (an
    interceptor on the real SDK client, against moto)."""
    finished = subprocess.run(
        ["cargo", "test", "--locked", "--workspace", "--test", "integration",
         "start_and_login_stay_within_two_dynamodb_requests_each", "--", "--show-output"],
        cwd=ROOT, env=env, capture_output=True, text=True)
    if finished.returncode != 0:
        return [f"not counted: the round-trip test failed ({finished.stdout[-500:].strip()})"]
    return [line.strip() for line in finished.stdout.splitlines() if line.startswith("DynamoDB requests")]


def cold_starts(python, binary_dir, invocations):
    """bench/coldstart.py for every function and memory size, against moto on loopback."""
    port = free_port()
    moto = subprocess.Popen([python, ROOT / "scripts" / "moto_server.py", "-H", "127.0.0.1", "-p", str(port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for(f"http://127.0.0.1:{port}/moto-api/", moto)
        out = WORK / "coldstart.json"
        env = dict(os.environ, AWS_ENDPOINT_URL=f"http://127.0.0.1:{port}", AWS_ACCESS_KEY_ID="test",
                   AWS_SECRET_ACCESS_KEY="test", AWS_REGION="us-east-1")
        command = [python, ROOT / "bench" / "coldstart.py", "--binary-dir", binary_dir,
                   "--cli", binary_dir / "passwordless", "--invocations", str(invocations), "--json", out]
        command += [arg for f in FUNCTIONS for arg in ("--function", f)]
        command += [arg for m in MEMORY_SIZES for arg in ("--memory", str(m))]
        finished = subprocess.run(command, env=env, capture_output=True, text=True)
        if finished.returncode != 0:
            sys.stderr.write(finished.stdout[-3000:] + finished.stderr[-3000:])
            raise RuntimeError("bench/coldstart.py failed")
        skipped = finished.stdout
        requests = dynamodb_requests(env)
        if not out.exists():
            return None, skipped.strip(), requests
        return json.loads(out.read_text()), None, requests
    finally:
        moto.terminate()
        moto.wait(10)


def install_better_auth():
    folder = WORK / "better-auth"
    folder.mkdir(parents=True, exist_ok=True)
    for name in ("package.json", "server.mjs"):
        shutil.copy(ROOT / "bench" / "better-auth" / name, folder / name)
    if not (folder / "node_modules" / "better-auth").is_dir():
        run(["npm", "install", "--no-audit", "--no-fund", "--loglevel=error"], cwd=folder)
    version = json.loads((folder / "node_modules" / "better-auth" / "package.json").read_text())["version"]
    return version


def inferno():
    tools = WORK / "tools" / "bin"
    if not (tools / "inferno-flamegraph").exists():
        run(["cargo", "install", "--locked", "--root", WORK / "tools", "inferno", "--version", "0.12.3"])
    return tools


def profile(binary, folder, seconds, application, name):
    """perf samples of the local server under the load of one application, as a flame graph
    (docs/bench/profile-NAME.svg), and the breakdown of its samples."""
    if shutil.which("perf") is None:
        return None, "perf is not installed"
    tools = inferno()
    server = Ours(binary, folder)
    data = folder / "perf.data"
    try:
        recorder = subprocess.Popen(
            ["perf", "record", "-F", "499", "--call-graph", "dwarf,16384", "-p", str(server.process.pid),
             "-o", data, "--", "sleep", str(seconds + 3)],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        server.load(application, seconds)
        _, error = recorder.communicate()
        if recorder.returncode != 0 or not data.exists():
            return None, f"perf record failed: {error.decode(errors='replace').strip()[-300:]}"
    finally:
        server.stop()
    script = subprocess.run(["perf", "script", "-i", data], check=True, capture_output=True)
    collapsed = subprocess.run([tools / "inferno-collapse-perf"], input=script.stdout,
                               check=True, capture_output=True).stdout
    # Kept for a closer look: `perf report -i bench/.work/perf-NAME.data --no-children`.
    shutil.copy(data, WORK / f"perf-{name}.data")
    (WORK / f"collapsed-{name}.txt").write_bytes(collapsed)
    svg = subprocess.run(
        [tools / "inferno-flamegraph", "--title",
         f"Local server, start + login cycles, {name.upper()} (perf, 499 Hz)", "--width", "1600", "--minwidth", "0.5"],
        input=collapsed, check=True, capture_output=True).stdout
    out = ROOT / "docs" / "bench" / f"profile-{name}.svg"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_bytes(svg)
    return breakdown(collapsed.decode(errors="replace")), None


# Where a sample's time goes, by the first matching frame anywhere on its stack, in this order.
CATEGORIES = [
    ("RSA/ECDSA signature", ["RSA_sign", "rsa_sign", "RSA_private", "ECDSA_do_sign", "ecdsa_sign",
                             "bn_mod_exp", "BN_mod_exp", "ec_GFp", "p256"]),
    ("SHA-256 and HMAC (code and token hashes)", ["sha256", "SHA256", "HMAC"]),
    ("SQLite", ["sqlite3", "rusqlite"]),
    ("logging (tracing)", ["tracing_subscriber", "tracing_core"]),
    ("JSON (serde_json)", ["serde_json"]),
    ("HTTP (hyper)", ["hyper::", "hyper_util"]),
    ("thread wake-ups and locks", ["futex", "Condvar", "try_to_wake_up"]),
    ("kernel (syscalls, network)", ["[k]", "entry_SYSCALL", "do_syscall"]),
]


def breakdown(collapsed):
    totals = {name: 0 for name, _ in CATEGORIES}
    totals["other"] = 0
    all_samples = 0
    for line in collapsed.splitlines():
        stack, _, count = line.rpartition(" ")
        if not count.isdigit():
            continue
        count = int(count)
        all_samples += count
        for name, needles in CATEGORIES:
            if any(n in stack for n in needles):
                totals[name] += count
                break
        else:
            totals["other"] += count
    return {name: (count, count / all_samples if all_samples else 0) for name, count in totals.items()}


def machine():
    cpu = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{os.cpu_count()} × {cpu}, Linux {platform.release()}"


def median_round(rounds, key):
    ordered = sorted(rounds, key=lambda r: r[key]["serverCpuMsPerCycle"])
    return ordered[len(ordered) // 2]


def targets_section(rs, es, ba, breakdowns, cold, sizes):
    """The issue's targets, each with whether this run meets it."""
    def verdict(ok):
        return "met" if ok else "**not met**"
    lines = ["", "### Targets", "", "| target | this run | |", "|---|---|---|"]
    rs_sign = breakdowns["rs256"]["RSA/ECDSA signature"][1] * rs if breakdowns else None
    lines.append(f"| RS256 cycle ≥ 15× less CPU than better-auth | {ba / rs:.1f}× | {verdict(ba / rs >= 15)} |")
    lines.append(f"| ES256 cycle ≥ 35× less CPU than better-auth | {ba / es:.1f}× | {verdict(ba / es >= 35)} |")
    lines.append(f"| RS256 cycle ≤ 0.40 ms | {rs:.3f} ms | {verdict(rs <= 0.40)} |")
    lines.append(f"| ES256 cycle ≤ 0.15 ms | {es:.3f} ms | {verdict(es <= 0.15)} |")
    if sizes:
        largest = max(size for size, _ in sizes.values())
        lines.append(f"| every function ≤ 8 MB stripped (arm64) | {largest / 1e6:.1f} MB | {verdict(largest <= 8e6)} |")
        size_note = None if largest <= 8e6 else ("Binary sizes below say what each function's bytes are, "
                                                  "crate by crate.")
    if cold:
        peak = max(r["peakRssMb"] for r in cold)
        lines.append(f"| peak RSS ≤ 30 MB | {peak:.1f} MB | {verdict(peak <= 30)} |")
    lines.append("")
    if sizes and size_note:
        lines += [size_note, ""]
    if rs_sign is not None:
        lines.append(f"The RSA-2048 signature alone is {rs_sign:.3f} ms of the RS256 cycle here (the profile "
                     f"below): no RS256 cycle on this machine can be cheaper than that, and better-auth's "
                     f"{ba:.1f} ms over 15 is {ba / 15:.3f} ms.")
    if breakdowns:
        es_shares = breakdowns["es256"]
        largest = sorted((name for name in es_shares if name != "other"),
                         key=lambda name: es_shares[name][1], reverse=True)[:3]
        parts = ", ".join(f"{name} {es_shares[name][1] * es:.3f} ms" for name in largest)
        lines += ["", f"Of the ES256 cycle's {es:.3f} ms, the P-256 signature is "
                  f"{es_shares['RSA/ECDSA signature'][1] * es:.3f} ms; the largest parts are {parts} "
                  "(the profile below): two HTTP requests with JSON bodies and the embedded store's "
                  "statements, each a SQLite transaction with its file locks, since several processes "
                  "may share the store's file."]
    return lines


def write_report(results, breakdowns, profile_note, better_auth_version, seconds, cold, cold_note, requests,
                 sizes, sizes_by_crate):
    rs = statistics.median(r["rs256"]["serverCpuMsPerCycle"] for r in results)
    es = statistics.median(r["es256"]["serverCpuMsPerCycle"] for r in results)
    ba = statistics.median(r["better-auth"]["serverCpuMsPerCycle"] for r in results)
    lines = [
        "# Benchmarks",
        "",
        "Written by `python3 bench/bench.py` (see the README). Every figure below was measured on",
        f"**{machine()}**, in one run, on {time.strftime('%Y-%m-%d')}; compare ratios, not absolute",
        "times, across machines.",
        "",
        "## Server CPU per passwordless start + login cycle",
        "",
        f"{WORKERS} concurrent workers of one Node load generator (`bench/load.mjs`) run start + login",
        f"cycles for {seconds} s after a 3 s warm-up; the server's CPU time (user + system, from",
        "`/proc/PID/stat`) over the cycles completed. Ours: the local server on the embedded store,",
        "`POST /api/passwordless/start` with an API key, then `POST /api/passwordless/login`",
        "(a signed access token and a refresh token). better-auth "
        f"{better_auth_version}: its magic-link plugin on",
        "SQLite (better-sqlite3), sign-in then verify (a session). Median of "
        f"{len(results)} rounds, each round",
        "running the three back to back.",
        "",
        "| server | CPU per cycle | cycles/s | latency p50 | latency p99 | vs better-auth |",
        "|---|---|---|---|---|---|",
    ]
    for label, key, value in (("ours, RS256 (default key)", "rs256", rs), ("ours, ES256", "es256", es),
                              (f"better-auth {better_auth_version}", "better-auth", ba)):
        row = median_round(results, key)[key]
        ratio = "1×" if key == "better-auth" else f"**{ba / value:.1f}× less CPU**"
        lines.append(f"| {label} | {value:.3f} ms | {row['cyclesPerSecond']:.0f} | "
                     f"{row['latencyMs']['p50']:.2f} ms | {row['latencyMs']['p99']:.2f} ms | {ratio} |")
    lines += targets_section(rs, es, ba, breakdowns, cold, sizes)
    lines += [
        "",
        "Every round:",
        "",
        "| round | RS256 | ES256 | better-auth |",
        "|---|---|---|---|",
    ]
    for i, r in enumerate(results, 1):
        lines.append(f"| {i} | {r['rs256']['serverCpuMsPerCycle']:.3f} ms | "
                     f"{r['es256']['serverCpuMsPerCycle']:.3f} ms | {r['better-auth']['serverCpuMsPerCycle']:.3f} ms |")
    lines += ["", "## Where a cycle's CPU goes", ""]
    if breakdowns is None:
        lines.append(f"Not profiled in this run: {profile_note}.")
    else:
        lines += [
            "perf samples (499 Hz, DWARF stacks) of the local server under each load, each sample",
            "counted once under the first category any frame of its stack matches, in the order",
            "listed, and that share of the cycle's CPU; the flame graphs are",
            "[docs/bench/profile-rs256.svg](docs/bench/profile-rs256.svg) and",
            "[docs/bench/profile-es256.svg](docs/bench/profile-es256.svg).",
            "",
            "| where | RS256 share | RS256 per cycle | ES256 share | ES256 per cycle |",
            "|---|---|---|---|---|",
        ]
        for name in breakdowns["rs256"]:
            _, rs_share = breakdowns["rs256"][name]
            _, es_share = breakdowns["es256"][name]
            lines.append(f"| {name} | {rs_share * 100:.1f}% | {rs_share * rs:.3f} ms | "
                         f"{es_share * 100:.1f}% | {es_share * es:.3f} ms |")
    lines += ["", "## Binary sizes", "",
              "The functions as deployed: `cargo lambda build --release --arm64` (LTO, one codegen unit,",
              "stripped).", "", "| function | bootstrap | built (UTC) |", "|---|---|---|"]
    lines += [f"| {f} | {size / 1e6:.1f} MB | {built} |" for f, (size, built) in sizes.items()]
    if not sizes:
        lines.append("| (none built) | | |")
    lines += size_section(*sizes_by_crate)
    lines += cold_start_section(cold, cold_note)
    lines += ["", "## DynamoDB requests per endpoint", "",
              "From `start_and_login_stay_within_two_dynamodb_requests_each` (shared/tests/dynamodb_store.rs),",
              "which counts the requests the real SDK client sends (moto answering):", ""]
    lines += [f"- {line}" for line in requests]
    (ROOT / "BENCHMARKS.md").write_text("\n".join(lines) + "\n")
    log("wrote BENCHMARKS.md")


# us-east-1 list prices (arm64 Lambda, on-demand DynamoDB, SES, HTTP API), per unit.
LAMBDA_GB_SECOND = 0.0000133334
LAMBDA_REQUEST = 0.20 / 1e6
HTTP_API_REQUEST = 1.00 / 1e6
DYNAMODB_WRITE_UNIT = 0.625 / 1e6
DYNAMODB_READ_UNIT = 0.125 / 1e6
SES_EMAIL = 0.10 / 1000
# One login's DynamoDB units (README, Cost of 1 000 logins: start, send and login together).
LOGIN_WRITE_UNITS = 12
LOGIN_READ_UNITS = 6
P99_BUDGET_MS = 50


# What one DynamoDB or SES request adds to a billed duration on AWS (single-digit milliseconds
# within a region); moto's own time is taken out of the measurement and this put back.
AWS_REQUEST_MS = 5


def billed_ms(row):
    """A warm invocation's billed duration on AWS: its own time here plus its AWS requests."""
    warm = row["warm"]
    return math.ceil(warm["handlerP50Ms"] + warm["awsRequestsPerInvocation"] * AWS_REQUEST_MS)


def cost_per_thousand_logins(cold, memory):
    """Dollars for 1 000 logins (a start, a send and a login each) at one memory size."""
    rows = [r for r in cold if r["memoryMb"] == memory]
    gb_seconds = sum(billed_ms(r) / 1000 * memory / 1024 for r in rows)
    per_login = (gb_seconds * LAMBDA_GB_SECOND + len(rows) * (LAMBDA_REQUEST + HTTP_API_REQUEST)
                 + LOGIN_WRITE_UNITS * DYNAMODB_WRITE_UNIT + LOGIN_READ_UNITS * DYNAMODB_READ_UNIT
                 + SES_EMAIL)
    lambda_only = gb_seconds * LAMBDA_GB_SECOND * 1000
    return per_login * 1000, lambda_only


def latency_chart(cold):
    """Warm p50 and p99 of each function against memory size, as an SVG line chart."""
    width, height, left, bottom, top, right = 760, 420, 70, 50, 40, 190
    sizes = sorted({r["memoryMb"] for r in cold})
    values = [r["warm"][k] for r in cold for k in ("handlerP50Ms", "handlerP99Ms")]
    top_value = max(values) * 1.1
    x = lambda m: left + (sizes.index(m) / max(1, len(sizes) - 1)) * (width - left - right)  # noqa: E731
    y = lambda v: height - bottom - v / top_value * (height - bottom - top)  # noqa: E731
    colours = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd"]
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
             'font-family="sans-serif" font-size="12">',
             f'<rect width="{width}" height="{height}" fill="white"/>',
             f'<text x="{left}" y="22" font-size="14">Warm invocation time against memory size '
             "(under the size's CPU quota; the emulator's answering time taken out)</text>",
             f'<line x1="{left}" y1="{height - bottom}" x2="{width - right}" y2="{height - bottom}" stroke="black"/>',
             f'<line x1="{left}" y1="{top}" x2="{left}" y2="{height - bottom}" stroke="black"/>',
             f'<text x="{(left + width - right) / 2}" y="{height - 12}" text-anchor="middle">memory (MB)</text>',
             f'<text x="16" y="{(top + height - bottom) / 2}" transform="rotate(-90 16 {(top + height - bottom) / 2})" '
             'text-anchor="middle">ms</text>']
    for m in sizes:
        parts.append(f'<text x="{x(m)}" y="{height - bottom + 16}" text-anchor="middle">{m}</text>')
    for i in range(6):
        v = top_value * i / 5
        parts.append(f'<text x="{left - 6}" y="{y(v) + 4}" text-anchor="end">{v:.0f}</text>')
        parts.append(f'<line x1="{left}" y1="{y(v)}" x2="{width - right}" y2="{y(v)}" stroke="#ddd"/>')
    for i, function in enumerate(dict.fromkeys(r["function"] for r in cold)):
        colour = colours[i % len(colours)]
        rows = sorted((r for r in cold if r["function"] == function), key=lambda r: r["memoryMb"])
        for key, dash in (("handlerP50Ms", ""), ("handlerP99Ms", ' stroke-dasharray="5,4"')):
            points = " ".join(f"{x(r['memoryMb']):.1f},{y(r['warm'][key]):.1f}" for r in rows)
            parts.append(f'<polyline points="{points}" fill="none" stroke="{colour}" stroke-width="2"{dash}/>')
        legend_y = top + 10 + i * 40
        parts.append(f'<line x1="{width - right + 15}" y1="{legend_y}" x2="{width - right + 40}" y2="{legend_y}" '
                     f'stroke="{colour}" stroke-width="2"/>')
        parts.append(f'<text x="{width - right + 45}" y="{legend_y + 4}">{function} p50</text>')
        parts.append(f'<line x1="{width - right + 15}" y1="{legend_y + 16}" x2="{width - right + 40}" '
                     f'y2="{legend_y + 16}" stroke="{colour}" stroke-width="2" stroke-dasharray="5,4"/>')
        parts.append(f'<text x="{width - right + 45}" y="{legend_y + 20}">{function} p99</text>')
    parts.append("</svg>")
    return "\n".join(parts) + "\n"


def cold_start_section(cold, note):
    lines = ["", "## Cold start and warm invocations under the CPU share of each memory size", ""]
    if cold is None:
        return lines + [f"Not measured in this run: {note}."]
    out = ROOT / "docs" / "bench" / "latency-by-memory.svg"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(latency_chart(cold))
    lines += [
        "`bench/coldstart.py`: each function binary (x86_64, release optimisation; deployed they",
        "are arm64) in a cgroup whose CPU quota is the share Lambda gives the memory size (one vCPU",
        "at 1 769 MB), against a local Lambda Runtime API, the AWS APIs being moto behind a TLS",
        "endpoint on loopback that keeps connections open as AWS does (so a cold start pays its TLS",
        "handshakes and warm invocations reuse them). Init: process start to the first poll for an",
        "event (configuration, SDK clients, the warm-up requests done); cold start: process start to",
        "the first answer. Warm: the invocations after the first, each from delivery to answer; its",
        "own time is that without moto's answering time (moto is Python and slower than AWS), and",
        "includes the loopback TLS endpoint's relaying. CPU: the function's CPU time per warm",
        "invocation. AWS requests: per warm invocation (DynamoDB and SES).",
        "",
        "| function | memory | init | first invocation | cold start | warm own p50 | warm own p99 | warm with moto p50 | CPU per warm invocation | AWS requests | peak RSS |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in cold:
        w = r["warm"]
        lines.append(
            f"| {r['function']} | {r['memoryMb']} MB | {r['initMs']:.0f} ms | {r['firstInvocationMs']:.0f} ms | "
            f"{r['coldStartMs']:.0f} ms | {w['handlerP50Ms']:.1f} ms | {w['handlerP99Ms']:.1f} ms | "
            f"{w['p50Ms']:.1f} ms | {w['cpuMsPerInvocation']:.1f} ms | {w['awsRequestsPerInvocation']:.0f} | "
            f"{r['peakRssMb']:.1f} MB |")
    lines += ["", "![Warm latency against memory size](docs/bench/latency-by-memory.svg)", "",
              "## Cost of 1 000 logins by memory size", "",
              "A login is a start, a send and a login: three invocations, each billed its warm own p50",
              f"here plus {AWS_REQUEST_MS} ms per AWS request (rounded up to the millisecond), three HTTP API",
              f"requests, {LOGIN_WRITE_UNITS} DynamoDB write and {LOGIN_READ_UNITS} read units, one email;",
              "us-east-1 list prices, arm64 Lambda.",
              "",
              "| memory | Lambda | total | warm login own p99 |",
              "|---|---|---|---|"]
    chosen = None
    for memory in sorted({r["memoryMb"] for r in cold}):
        total, lambda_only = cost_per_thousand_logins(cold, memory)
        login = next(r for r in cold if r["memoryMb"] == memory and r["function"] == "passwordless-login")
        p99 = login["warm"]["handlerP99Ms"]
        if chosen is None and p99 < P99_BUDGET_MS:
            chosen = memory
        lines.append(f"| {memory} MB | ${lambda_only:.5f} | ${total:.4f} | {p99:.1f} ms |")
    lines.append("")
    if chosen is None:
        lines.append(f"No size measured keeps the warm login's own p99 under {P99_BUDGET_MS} ms here.")
    else:
        lines.append(f"The cheapest size whose warm login's own p99 stays under {P99_BUDGET_MS} ms here: "
                     f"**{chosen} MB**.")
    return lines


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--skip-profile", action="store_true")
    parser.add_argument("--skip-lambda-build", action="store_true",
                        help="report the arm64 binaries already built instead of building them")
    parser.add_argument("--invocations", type=int, default=60,
                        help="invocations per function and memory size in the cold-start part")
    args = parser.parse_args()
    WORK.mkdir(parents=True, exist_ok=True)
    binary = build_ours()
    better_auth_version = install_better_auth()
    results = []
    with tempfile.TemporaryDirectory(prefix="bench-") as scratch:
        scratch = Path(scratch)
        for round_ in range(args.rounds):
            folder = scratch / f"round-{round_}"
            folder.mkdir()
            ours = Ours(binary, folder)
            try:
                rs256 = ours.load(RS_APP, args.seconds)
                es256 = ours.load(ES_APP, args.seconds)
            finally:
                ours.stop()
            theirs = BetterAuth(folder)
            try:
                their = theirs.load(args.seconds)
            finally:
                theirs.stop()
            results.append({"rs256": rs256, "es256": es256, "better-auth": their})
        breakdowns, note = (None, "skipped (--skip-profile)")
        if not args.skip_profile:
            breakdowns = {}
            for name, application in (("rs256", RS_APP), ("es256", ES_APP)):
                folder = scratch / f"profile-{name}"
                folder.mkdir()
                breakdowns[name], note = profile(binary, folder, args.seconds, application, name)
                if breakdowns[name] is None:
                    breakdowns = None
                    break
    # Everything measured so far, for a closer look (bench/.work/results.json).
    (WORK / "results.json").write_text(json.dumps({"rounds": results, "breakdowns": breakdowns}, indent=2))
    python = venv()
    cold, cold_note, requests = cold_starts(python, binary.parent, args.invocations)
    sizes = lambda_sizes(python, build=not args.skip_lambda_build)
    write_report(results, breakdowns, note, better_auth_version, args.seconds, cold, cold_note, requests, sizes,
                 size_breakdown(binary.parent))


if __name__ == "__main__":
    try:
        main()
    except subprocess.CalledProcessError as e:
        sys.exit(f"bench: {e}")
