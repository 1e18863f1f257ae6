// Drives a running server with FusionAuth's official TypeScript client
// (npm `@fusionauth/typescript-client@1.69.0`), unchanged: the management calls, keys and the
// JWT helpers. Usage: node smoke.mjs BASE_URL API_KEY
// Exits non-zero on the first broken expectation; prints "all checks passed" at the end.
import assert from "node:assert/strict";
import { generateKeyPairSync, randomUUID } from "node:crypto";
import fusionauth from "@fusionauth/typescript-client";

const { FusionAuthClient } = fusionauth;
const [baseUrl, apiKey] = process.argv.slice(2);
const client = new FusionAuthClient(apiKey, baseUrl);

/** The body of a call that must succeed. */
async function ok(call) {
  try {
    const response = await call;
    assert.ok(response.wasSuccessful(), `status ${response.statusCode}`);
    return response.response;
  } catch (failure) {
    throw new Error(`expected success, got ${failure.statusCode}: ${JSON.stringify(failure.exception)}`);
  }
}

/** A call that must fail with `status` (and, for a 400, the error `code`). */
async function fails(call, status, code) {
  try {
    await call;
  } catch (failure) {
    assert.equal(failure.statusCode, status, JSON.stringify(failure.exception));
    if (code) {
      assert.ok(JSON.stringify(failure.exception).includes(code), JSON.stringify(failure.exception));
    }
    return;
  }
  assert.fail(`expected ${status}`);
}

// Tenants: create, retrieve, patch (delete at the end).
const tenantId = randomUUID();
await ok(client.createTenant(tenantId, { tenant: { name: "TypeScript tenant" } }));
assert.equal((await ok(client.retrieveTenant(tenantId))).tenant.name, "TypeScript tenant");
const patchedTenant = await ok(client.patchTenant(tenantId, { tenant: { data: { owner: "ts" } } }));
assert.equal(patchedTenant.tenant.data.owner, "ts");
const originalKid = patchedTenant.tenant.jwtConfiguration.accessTokenKeyId;
const inTenant = new FusionAuthClient(apiKey, baseUrl, tenantId);

// Applications: create, retrieve, patch, roles, deactivate and reactivate.
const applicationId = randomUUID();
await ok(inTenant.createApplication(applicationId, {
  application: {
    name: "TypeScript app",
    passwordlessConfiguration: { enabled: true },
    loginConfiguration: { generateRefreshTokens: true },
    roles: [{ name: "user", isDefault: true }],
  },
}));
assert.equal((await ok(inTenant.retrieveApplication(applicationId))).application.tenantId, tenantId);
await ok(inTenant.patchApplication(applicationId, { application: { data: { tier: "gold" } } }));
const withRole = await ok(inTenant.createApplicationRole(applicationId, randomUUID(), { role: { name: "admin" } }));
assert.deepEqual(withRole.role.name, "admin");
await ok(inTenant.deactivateApplication(applicationId));
assert.equal((await ok(inTenant.retrieveApplication(applicationId))).application.active, false);
await ok(inTenant.reactivateApplication(applicationId));
assert.equal((await ok(inTenant.retrieveApplication(applicationId))).application.active, true);

// Users and registrations: create, register, retrieve, patch, search, deactivate, reactivate.
const userId = randomUUID();
const email = `gavin.${userId.slice(0, 8)}@hooli.example`;
await ok(inTenant.createUser(userId, { user: { email, firstName: "Gavin", lastName: "Belson" } }));
await ok(inTenant.register(userId, { registration: { applicationId, roles: ["user"] } }));
assert.deepEqual((await ok(inTenant.retrieveRegistration(userId, applicationId))).registration.roles, ["user"]);
await ok(inTenant.patchRegistration(userId, { registration: { applicationId, roles: ["user", "admin"] } }));
assert.equal((await ok(inTenant.retrieveUserByEmail(email))).user.id, userId);
await ok(inTenant.patchUser(userId, { user: { middleName: "Hooli" } }));
const found = await ok(inTenant.searchUsersByQuery({ search: { queryString: "gavin", numberOfResults: 10 } }));
assert.ok(found.total >= 1 && found.users.some((u) => u.id === userId), JSON.stringify(found));
await ok(inTenant.deactivateUser(userId));
assert.equal((await ok(inTenant.retrieveUser(userId))).user.active, false);
await ok(inTenant.reactivateUser(userId));
assert.equal((await ok(inTenant.retrieveUser(userId))).user.active, true);

// Email templates: create, retrieve, patch, preview, delete.
const templateId = randomUUID();
await ok(inTenant.createEmailTemplate(templateId, {
  emailTemplate: { name: "TS", defaultSubject: "Sign in", defaultTextTemplate: "Go to ${url}" },
}));
await ok(inTenant.patchEmailTemplate(templateId, { emailTemplate: { defaultSubject: "Sign in, ${user.firstName!}" } }));
assert.equal((await ok(inTenant.retrieveEmailTemplate(templateId))).emailTemplate.defaultSubject, "Sign in, ${user.firstName!}");
const preview = await ok(inTenant.retrieveEmailTemplatePreview({
  emailTemplate: (await ok(inTenant.retrieveEmailTemplate(templateId))).emailTemplate,
}));
assert.ok(preview.email.text.startsWith("Go to https://"), JSON.stringify(preview));
await ok(inTenant.deleteEmailTemplate(templateId));
await fails(inTenant.retrieveEmailTemplate(templateId), 404);

// API keys: create (shown once), retrieve, update, use within its permissions, delete.
const apiKeyId = randomUUID();
const made = await ok(client.createAPIKey(apiKeyId, {
  apiKey: { permissions: { endpoints: { "/api/user": ["GET"] } }, tenantId },
}));
const limited = new FusionAuthClient(made.apiKey.key, baseUrl);
assert.equal((await ok(limited.retrieveUser(userId))).user.id, userId);
await fails(limited.retrieveTenant(tenantId), 401);
assert.equal((await ok(client.retrieveAPIKey(apiKeyId))).apiKey.key, undefined);
await ok(client.updateAPIKey(apiKeyId, {
  apiKey: { permissions: { endpoints: { "/api/user": ["GET", "PATCH"] } }, tenantId, metaData: { attributes: { description: "ts" } } },
}));
await ok(client.deleteAPIKey(apiKeyId));
await fails(limited.retrieveUser(userId), 401);

// A sign-in, the JWT helpers and refresh tokens.
async function signIn() {
  const started = await ok(inTenant.startPasswordlessLogin({ applicationId, loginId: email }));
  return ok(inTenant.passwordlessLogin({ code: started.code }));
}
const first = await signIn();
assert.equal((await ok(client.validateJWT(first.token))).jwt.sub, userId);
const refreshed = await ok(client.exchangeRefreshTokenForJWT({ refreshToken: first.refreshToken }));
assert.notEqual(refreshed.refreshToken, first.refreshToken);
const listed = await ok(client.retrieveRefreshTokens(userId));
assert.deepEqual(listed.refreshTokens.map((t) => t.id), [refreshed.refreshTokenId]);
await ok(client.revokeRefreshToken(refreshed.refreshToken, null, null));
await fails(client.exchangeRefreshTokenForJWT({ refreshToken: refreshed.refreshToken }), 404);
const second = await signIn();
await ok(client.revokeRefreshTokensByUserId(userId));
await fails(client.exchangeRefreshTokenForJWT({ refreshToken: second.refreshToken }), 404);

// Keys: generate, import a key made elsewhere, rotate the tenant onto it, delete.
const generatedKid = randomUUID();
const generated = await ok(client.generateKey(generatedKid, { key: { algorithm: "ES384", name: "TS EC" } }));
assert.equal(generated.key.type, "EC");
const { privateKey, publicKey } = generateKeyPairSync("rsa", { modulusLength: 2048 });
const importedKid = randomUUID();
const imported = await ok(client.importKey(importedKid, {
  key: {
    name: "TS imported",
    privateKey: privateKey.export({ type: "pkcs8", format: "pem" }),
    publicKey: publicKey.export({ type: "spki", format: "pem" }),
  },
}));
assert.equal(imported.key.algorithm, "RS256");
assert.equal(imported.key.privateKey, undefined);
assert.equal((await ok(client.retrieveKey(importedKid))).key.hasPrivateKey, true);
const beforeRotation = await signIn();
await ok(client.patchTenant(tenantId, { tenant: { jwtConfiguration: { accessTokenKeyId: importedKid } } }));
const afterRotation = await signIn();
const kidOf = (jwt) => JSON.parse(Buffer.from(jwt.split(".")[0], "base64url")).kid;
assert.equal(kidOf(beforeRotation.token), originalKid);
assert.equal(kidOf(afterRotation.token), importedKid);
await ok(client.validateJWT(beforeRotation.token));
await ok(client.validateJWT(afterRotation.token));
const publicKeys = (await ok(client.retrieveJWTPublicKeys())).publicKeys;
assert.ok(publicKeys[originalKid] && publicKeys[importedKid], Object.keys(publicKeys).join());
await fails(client.deleteKey(importedKid), 400, "[inUse]keyId");
await ok(client.deleteKey(generatedKid));
await fails(client.retrieveKey(generatedKid), 404);

// Hard deletes: the registration, the user, the application, the tenant.
await ok(inTenant.deleteRegistration(userId, applicationId));
await fails(inTenant.retrieveRegistration(userId, applicationId), 404);
await ok(inTenant.deleteUser(userId));
await fails(inTenant.retrieveUser(userId), 404);
await ok(inTenant.deleteApplication(applicationId));
await fails(client.retrieveApplication(applicationId), 404);
await ok(client.deleteTenant(tenantId));
await fails(client.retrieveTenant(tenantId), 404);

// The system configuration: patch CORS on and replace it with the defaults again.
const corsOn = { corsConfiguration: { enabled: true, allowedOrigins: ["https://spa.example"] } };
const patchedSystem = await ok(client.patchSystemConfiguration({ systemConfiguration: corsOn }));
assert.deepEqual(patchedSystem.systemConfiguration.corsConfiguration.allowedOrigins, ["https://spa.example"]);
assert.deepEqual(patchedSystem.systemConfiguration.corsConfiguration.allowedMethods, ["GET", "OPTIONS"]);
await ok(client.updateSystemConfiguration({ systemConfiguration: {} }));
assert.equal((await ok(client.retrieveSystemConfiguration())).systemConfiguration.corsConfiguration.enabled, false);

console.log("all checks passed");
