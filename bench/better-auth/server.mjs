// better-auth with its magic-link plugin on SQLite (better-sqlite3), as its documentation sets
// it up, served by Node's http module. Rate limiting is off, as ours is for starts with an API
// key. POST /bench/start {email} runs better-auth's own sign-in-with-magic-link endpoint
// in-process and answers the token its sendMagicLink hook received (ours answers the code of
// /api/passwordless/start the same way); /api/auth/* is better-auth's handler.
//   node server.mjs PORT DATABASE_FILE
import http from "node:http";
import Database from "better-sqlite3";
import { betterAuth } from "better-auth";
import { magicLink } from "better-auth/plugins";
import { toNodeHandler } from "better-auth/node";
import { getMigrations } from "better-auth/db/migration";

const [port, file] = process.argv.slice(2);
const base = `http://127.0.0.1:${port}`;
const tokens = new Map();

const auth = betterAuth({
  database: new Database(file),
  baseURL: base,
  secret: "bench-secret-bench-secret-bench-secret-0123",
  trustedOrigins: [base],
  rateLimit: { enabled: false },
  telemetry: { enabled: false },
  plugins: [
    magicLink({
      sendMagicLink: async ({ email, token }) => {
        tokens.set(email, token);
      },
    }),
  ],
});

const { runMigrations } = await getMigrations(auth.options);
await runMigrations();

const handler = toNodeHandler(auth);
const server = http.createServer(async (req, res) => {
  if (req.method === "POST" && req.url === "/bench/start") {
    const chunks = [];
    for await (const chunk of req) chunks.push(chunk);
    const { email } = JSON.parse(Buffer.concat(chunks).toString());
    try {
      await auth.api.signInMagicLink({ body: { email }, headers: new Headers() });
      const token = tokens.get(email);
      tokens.delete(email);
      res.writeHead(200, { "content-type": "application/json" });
      res.end(JSON.stringify({ token }));
    } catch (e) {
      res.writeHead(500, { "content-type": "application/json" });
      res.end(JSON.stringify({ error: String(e) }));
    }
    return;
  }
  handler(req, res);
});
server.keepAliveTimeout = 60_000;
server.listen(Number(port), "127.0.0.1", () => console.log(`listening on ${base}`));
