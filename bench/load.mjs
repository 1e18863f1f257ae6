// The load generator both servers are measured with: WORKERS concurrent loops, each running
// start + login cycles for its own user as fast as the server answers, for a warm-up and then
// a measured period. The server's CPU time over the measured period (from /proc/PID/stat) over
// the cycles completed is the figure that matters: it does not depend on how fast this client is.
//
//   node bench/load.mjs '{"target":"ours","base":"http://127.0.0.1:9011","pid":123,
//     "apiKey":"…","applicationId":"…","users":["bench-0@example.com", …],
//     "workers":8,"warmupSeconds":3,"seconds":10}'
//
// target "ours": POST /api/passwordless/start (API key) answers the code, POST
// /api/passwordless/login exchanges it for a signed JWT and a refresh token.
// target "better-auth": POST /bench/start runs better-auth's magic-link sign-in and answers the
// token its sendMagicLink hook received, GET /api/auth/magic-link/verify exchanges it for a
// session. Any answer other than the expected one stops the run with an error.
import http from "node:http";
import { readFileSync } from "node:fs";

const options = JSON.parse(process.argv[2]);
const base = new URL(options.base);
const agent = new http.Agent({ keepAlive: true, maxSockets: options.workers });
const ticksPerSecond = 100; // USER_HZ on Linux

function request(method, path, headers, body) {
  return new Promise((resolve, reject) => {
    const payload = body === undefined ? undefined : JSON.stringify(body);
    const req = http.request(
      {
        host: base.hostname,
        port: base.port,
        method,
        path,
        agent,
        headers: payload === undefined
          ? headers
          : { ...headers, "content-type": "application/json", "content-length": Buffer.byteLength(payload) },
      },
      (res) => {
        const chunks = [];
        res.on("data", (c) => chunks.push(c));
        res.on("end", () => resolve({ status: res.statusCode, body: Buffer.concat(chunks).toString() }));
      },
    );
    req.on("error", reject);
    if (payload !== undefined) req.write(payload);
    req.end();
  });
}

function expect(response, status, what) {
  if (response.status !== status) {
    throw new Error(`${what}: HTTP ${response.status} ${response.body.slice(0, 300)}`);
  }
  return JSON.parse(response.body);
}

const cycles = {
  async ours(user) {
    const started = expect(
      await request("POST", "/api/passwordless/start", { authorization: options.apiKey },
        { applicationId: options.applicationId, loginId: user }),
      200, "start");
    const login = expect(
      await request("POST", "/api/passwordless/login", {},
        { code: started.code, applicationId: options.applicationId }),
      200, "login");
    if (!login.token) throw new Error("login answered no token");
  },
  async "better-auth"(user) {
    const started = expect(await request("POST", "/bench/start", {}, { email: user }), 200, "start");
    const verified = expect(
      await request("GET", `/api/auth/magic-link/verify?token=${encodeURIComponent(started.token)}`, {}),
      200, "verify");
    if (!verified.token) throw new Error("verify answered no session token");
  },
}[options.target];

function cpuTicks(pid) {
  // Fields 14 and 15 (utime, stime) after the parenthesised command name.
  const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return Number(fields[11]) + Number(fields[12]);
}

let measuring = false;
let stopping = false;
const latencies = [];
let completed = 0;

async function worker(user) {
  while (!stopping) {
    const began = process.hrtime.bigint();
    await cycles(user);
    if (measuring && !stopping) {
      latencies.push(Number(process.hrtime.bigint() - began) / 1e6);
      completed += 1;
    }
  }
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const running = Array.from({ length: options.workers }, (_, i) => worker(options.users[i % options.users.length]));
const failure = Promise.all(running).then(() => null, (e) => e);

const outcome = await Promise.race([
  (async () => {
    await sleep(options.warmupSeconds * 1000);
    const ticks0 = cpuTicks(options.pid);
    const t0 = process.hrtime.bigint();
    measuring = true;
    await sleep(options.seconds * 1000);
    const ticks1 = cpuTicks(options.pid);
    const elapsed = Number(process.hrtime.bigint() - t0) / 1e9;
    const done = completed;
    stopping = true;
    return { ticks: ticks1 - ticks0, elapsed, done };
  })(),
  failure.then((e) => { stopping = true; throw e ?? new Error("workers stopped"); }),
]);
await failure;

latencies.sort((a, b) => a - b);
const quantile = (q) => latencies[Math.min(latencies.length - 1, Math.floor(q * latencies.length))];
const serverCpuMs = (outcome.ticks / ticksPerSecond) * 1000;
console.log(JSON.stringify({
  target: options.target,
  workers: options.workers,
  seconds: outcome.elapsed,
  cycles: outcome.done,
  cyclesPerSecond: outcome.done / outcome.elapsed,
  serverCpuMs,
  serverCpuMsPerCycle: serverCpuMs / outcome.done,
  latencyMs: { p50: quantile(0.5), p99: quantile(0.99) },
}));
agent.destroy();
