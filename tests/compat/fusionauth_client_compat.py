"""Drives a running server with FusionAuth's official Python client, unchanged.

Usage: python fusionauth_client_compat.py BASE_URL API_KEY MAILBOX TENANT_ID
MAILBOX is the server's outbox folder, or the URL of the SES emulator it sends through.
Exits non-zero on the first broken expectation.
"""
import base64
import email
import email.policy
import glob
import hashlib
import hmac as hmac_lib
import json
import os
import re
import struct
import sys
import time
import urllib.error
import urllib.request
import uuid

import jwt
from fusionauth.fusionauth_client import FusionAuthClient

base_url, api_key, mailbox, tenant_id = sys.argv[1:5]
client = FusionAuthClient(api_key, base_url)


def last_mail_to(recipient):
    """(subject, HTML body) of the newest message to recipient."""
    if mailbox.startswith("http"):
        # moto dumps its whole state for this and answers 500 when another client changes it
        # mid-dump: try again.
        for attempt in range(1, 21):
            try:
                with urllib.request.urlopen(mailbox + "/moto-api/data.json") as response:
                    kept = json.load(response).get("ses", {}).get("Message", [])
                break
            except urllib.error.HTTPError:
                if attempt == 20:
                    raise
                time.sleep(0.02 * attempt)
        mine = [m for m in kept if any(recipient in a for a in m["destinations"]["ToAddresses"])]
        assert mine, "send gave SES no message"
        return mine[-1]["subject"], mine[-1]["body"]
    messages = sorted(glob.glob(os.path.join(mailbox, "*.eml")))
    assert messages, "send wrote no message"
    with open(messages[-1], "rb") as f:
        message = email.message_from_binary_file(f, policy=email.policy.default)
    assert recipient in message["To"], message["To"]
    return message["Subject"], message.get_body(preferencelist=("html",)).get_content()


def check(response, status=200):
    assert response.status == status, f"expected {status}, got {response.status}: {response.response.text}"
    return response.success_response


template_id = str(uuid.uuid4())
check(client.create_email_template({"emailTemplate": {
    "name": "Compat",
    "defaultSubject": "Log in to Compat",
    "defaultTextTemplate": "Hi {{ user.firstName }}, log in: {{ url }}",
    "defaultHtmlTemplate": "<p>Hi {{ user.firstName }}, <a href=\"{{ url }}\">log in</a></p>",
    "fromEmail": "login@compat.example",
}}, template_id))

tenant = check(client.patch_tenant(tenant_id, {"tenant": {
    "emailConfiguration": {"passwordlessEmailTemplateId": template_id},
    "externalIdentifierConfiguration": {"passwordlessLoginTimeToLiveInSeconds": 300},
}}))["tenant"]
assert tenant["externalIdentifierConfiguration"]["passwordlessLoginTimeToLiveInSeconds"] == 300

application_id = str(uuid.uuid4())
application = check(client.create_application({"application": {
    "name": "Compat",
    "passwordlessConfiguration": {"enabled": True},
    "roles": [{"name": "user"}],
    "loginConfiguration": {"generateRefreshTokens": True},
    "jwtConfiguration": {"enabled": True, "timeToLiveInSeconds": 600},
}}, application_id))["application"]
assert application["id"] == application_id

registered = check(client.register({
    "user": {"email": "monica@raviga.example", "firstName": "Monica", "password": "ignored-here"},
    "registration": {"applicationId": application_id, "roles": ["user"]},
    "skipVerification": True,
}))
user_id = registered["user"]["id"]
assert "password" not in registered["user"]
# The combined create answers with the new user's tokens, as FusionAuth's does.
assert registered["token"] and registered["tokenExpirationInstant"], registered

found = check(client.retrieve_user_by_email("Monica@Raviga.example"))["user"]
assert found["id"] == user_id, found

started = check(client.start_passwordless_login({
    "applicationId": application_id, "loginId": "monica@raviga.example", "state": {"next": "/dashboard"},
}))
code = started["code"]

sent = client.send_passwordless_code({"code": code})
check(sent)
subject, html = last_mail_to("monica@raviga.example")
assert subject == "Log in to Compat", subject
linked = re.search(r"/oauth2/passwordless/([A-Za-z0-9_-]+)", html).group(1)
assert linked == code

login = client.passwordless_login({"code": linked, "ipAddress": "198.51.100.7"})
body = check(login)
assert body["user"]["id"] == user_id
assert body["state"] == {"next": "/dashboard"}, body
assert body["refreshToken"] and body["refreshTokenId"]

jwks = jwt.PyJWKClient(base_url + "/.well-known/jwks.json")
signing_key = jwks.get_signing_key_from_jwt(body["token"])
claims = jwt.decode(body["token"], signing_key.key, algorithms=["RS256"], audience=application_id)
assert claims["sub"] == user_id and claims["roles"] == ["user"], claims
assert claims["authenticationType"] == "PASSWORDLESS"
assert claims["sid"] == body["refreshTokenId"]

# The refresh token rotates through /api/jwt/refresh; the old one is then used up, and
# presenting it again ends the whole family.
refreshed = check(client.exchange_refresh_token_for_jwt({"refreshToken": body["refreshToken"]}))
assert refreshed["token"] and refreshed["refreshToken"] != body["refreshToken"], refreshed
reused = client.exchange_refresh_token_for_jwt({"refreshToken": body["refreshToken"]})
assert reused.status == 404, reused.status
ended = client.exchange_refresh_token_for_jwt({"refreshToken": refreshed["refreshToken"]})
assert ended.status == 404, "a reuse revokes the family (S20)"


def new_session():
    started = check(client.start_passwordless_login({"applicationId": application_id, "loginId": "monica@raviga.example"}))
    return check(client.passwordless_login({"code": started["code"]}))


# Sessions are listed by user and revoked by token, id, user, application or request body.
# The combined create gave the user a session of its own; end every one first.
check(client.revoke_refresh_tokens_by_user_id(user_id))
session = new_session()
listed = check(client.retrieve_refresh_tokens(user_id))["refreshTokens"]
assert [t["id"] for t in listed] == [session["refreshTokenId"]], listed
assert "token" not in listed[0]
assert check(client.retrieve_refresh_token_by_id(session["refreshTokenId"]))["refreshToken"]["userId"] == user_id
for revoke in (
    lambda s: client.revoke_refresh_token_by_token(s["refreshToken"]),
    lambda s: client.revoke_refresh_token_by_id(s["refreshTokenId"]),
    lambda s: client.revoke_refresh_tokens_by_user_id(user_id),
    lambda s: client.revoke_refresh_tokens_by_application_id(application_id),
    lambda s: client.revoke_refresh_tokens_by_user_id_for_application(user_id, application_id),
    lambda s: client.revoke_refresh_tokens_with_request({"userId": user_id}),
    lambda s: client.revoke_refresh_token(token=s["refreshToken"]),
):
    check(revoke(session))
    assert client.exchange_refresh_token_for_jwt({"refreshToken": session["refreshToken"]}).status == 404
    session = new_session()

# The logout API ends the session of the token it names (in the query, as the client sends it).
assert client.logout(False, session["refreshToken"]).status == 200
assert client.exchange_refresh_token_for_jwt({"refreshToken": session["refreshToken"]}).status == 404
session = new_session()

# A used code is gone: the client sees a 404 with no body.
again = client.passwordless_login({"code": linked})
assert again.status == 404 and not again.was_successful()

# Validation errors reach the client in FusionAuth's shape.
bad = client.start_passwordless_login({"applicationId": str(uuid.uuid4()), "loginId": "monica@raviga.example"})
assert bad.status == 400 and "[invalid]applicationId" in str(bad.error_response), bad.error_response

# A wrong key is a 401.
assert FusionAuthClient("wrong-key", base_url).retrieve_user_by_email("monica@raviga.example").status == 401

# Signing keys: generate (RSA of three sizes, EC, HMAC), retrieve and list with the public
# half only, rotate a tenant onto a new key (tokens of the old one still verify against the
# JWKS meanwhile), and delete a key no longer used.
from cryptography.hazmat.primitives import serialization  # PyJWT's own dependency
rotated_id = str(uuid.uuid4())
rotated = check(client.generate_key({"key": {"algorithm": "RS256", "name": "Rotated", "length": 3072}}, rotated_id))["key"]
assert rotated["id"] == rotated_id and rotated["length"] == 3072 and rotated["type"] == "RSA", rotated
public = serialization.load_pem_public_key(rotated["publicKey"].encode())
assert public.key_size == 3072
for forbidden in ("privateKey", "secret"):
    assert forbidden not in rotated
ec = check(client.generate_key({"key": {"algorithm": "ES256", "name": "EC"}}))["key"]
assert serialization.load_pem_public_key(ec["publicKey"].encode()).curve.name == "secp256r1"
hmac = check(client.generate_key({"key": {"algorithm": "HS256", "name": "Shared"}}))["key"]
assert "publicKey" not in hmac and "secret" not in hmac, hmac
es384 = check(client.generate_key({"key": {"algorithm": "ES384"}}))["key"]
assert serialization.load_pem_public_key(es384["publicKey"].encode()).curve.name == "secp384r1"
assert check(client.generate_key({"key": {"algorithm": "HS512"}}))["key"]["length"] == 512
# Imports: a private key made elsewhere (its public half answered), a public key alone, a secret.
from cryptography.hazmat.primitives.asymmetric import ec as ec_keys
outside = ec_keys.generate_private_key(ec_keys.SECP384R1())
outside_private = outside.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()).decode()
outside_public = outside.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode()
imported_id = str(uuid.uuid4())
imported = check(client.import_key({"key": {"name": "Imported", "privateKey": outside_private}}, imported_id))["key"]
assert imported["id"] == imported_id and imported["algorithm"] == "ES384" and imported["hasPrivateKey"], imported
assert imported["publicKey"].strip() == outside_public.strip() and "privateKey" not in imported
public_only = check(client.import_key({"key": {"publicKey": outside_public}}))["key"]
assert public_only["hasPrivateKey"] is False
secret = check(client.import_key({"key": {"algorithm": "HS256", "secret": "x" * 32}}))["key"]
assert secret["type"] == "HMAC" and "secret" not in secret
short = client.import_key({"key": {"algorithm": "HS256", "secret": "x" * 31}})
assert short.status == 400 and "[invalid]key.secret" in str(short.error_response)
listed = {k["id"] for k in check(client.retrieve_keys())["keys"]}
assert {rotated_id, ec["id"], hmac["id"], imported_id, public_only["id"]} <= listed
assert check(client.retrieve_key(ec["id"]))["key"]["algorithm"] == "ES256"
bad = client.generate_key({"key": {"algorithm": "RS256", "length": 1024}})
assert bad.status == 400 and "[invalid]key.length" in str(bad.error_response)
old_token = body["token"]
old_kid = jwt.get_unverified_header(old_token)["kid"]
check(client.patch_tenant(tenant_id, {"tenant": {"jwtConfiguration": {"accessTokenKeyId": rotated_id}}}))
started = check(client.start_passwordless_login({"applicationId": application_id, "loginId": "monica@raviga.example"}))
new_token = check(client.passwordless_login({"code": started["code"]}))["token"]
assert jwt.get_unverified_header(new_token)["kid"] == rotated_id
fresh_jwks = jwt.PyJWKClient(base_url + "/.well-known/jwks.json", cache_keys=False)
for token in (old_token, new_token):
    key = fresh_jwks.get_signing_key_from_jwt(token)
    jwt.decode(token, key.key, algorithms=["RS256"], audience=application_id)
# The JWT helpers: validate a token, and the public keys as PEM.
validated = check(client.validate_jwt(new_token))["jwt"]
assert validated["sub"] == user_id and validated["applicationId"] == application_id, validated
assert client.validate_jwt(new_token[:-4] + "AAAA").status == 401
assert client.validate_jwt("not-a-token").status == 401
assert check(client.retrieve_jwt_public_key(rotated_id))["publicKey"] == rotated["publicKey"]
assert check(client.retrieve_jwt_public_key_by_application_id(application_id))["publicKey"] == rotated["publicKey"]
all_keys = check(client.retrieve_jwt_public_keys())["publicKeys"]
assert all_keys[rotated_id] == rotated["publicKey"] and old_kid in all_keys and hmac["id"] not in all_keys
assert client.retrieve_jwt_public_key(hmac["id"]).status == 404, "an HMAC secret has no public half"
in_use = client.delete_key(rotated_id)
assert in_use.status == 400 and "[inUse]keyId" in str(in_use.error_response), in_use.error_response
check(client.delete_key(ec["id"]))
assert client.retrieve_key(ec["id"]).status == 404
assert old_kid in {k["id"] for k in check(client.retrieve_keys())["keys"]}

# Email templates: retrieve, list, replace, patch, preview and delete (not while in use).
assert check(client.retrieve_email_template(template_id))["emailTemplate"]["name"] == "Compat"
assert template_id in {t["id"] for t in check(client.retrieve_email_templates())["emailTemplates"]}
patched = check(client.patch_email_template(template_id, {"emailTemplate": {
    "localizedSubjects": {"de": "Bei Compat anmelden"},
}}))["emailTemplate"]
assert patched["defaultSubject"] == "Log in to Compat" and patched["localizedSubjects"]["de"] == "Bei Compat anmelden"
in_use = client.delete_email_template(template_id)
assert in_use.status == 400 and "[inUse]emailTemplateId" in str(in_use.error_response), in_use.error_response
preview = check(client.retrieve_email_template_preview({
    "emailTemplate": {"name": "P", "defaultSubject": "Hi {{ user.firstName }}", "defaultTextTemplate": "{{ url }}",
                      "localizedSubjects": {"de": "Hallo {{ user.firstName }}"}},
    "locale": "de",
}))
assert preview["email"]["subject"] == "Hallo Jared" and "/oauth2/passwordless/" in preview["email"]["text"], preview
broken = client.retrieve_email_template_preview({"emailTemplate": {"name": "P", "defaultSubject": "{{ oops", "defaultTextTemplate": "x"}})
assert broken.status == 400 and "[invalid]emailTemplate.defaultSubject" in str(broken.error_response), broken.error_response
spare_template = str(uuid.uuid4())
check(client.create_email_template({"emailTemplate": {"name": "Spare", "defaultSubject": "s", "defaultTextTemplate": "t"}}, spare_template))
replaced = check(client.update_email_template(spare_template, {"emailTemplate": {"name": "Spare 2", "defaultSubject": "s2", "defaultTextTemplate": "t2"}}))["emailTemplate"]
assert replaced["name"] == "Spare 2" and replaced["id"] == spare_template
check(client.delete_email_template(spare_template))
assert client.retrieve_email_template(spare_template).status == 404

# API keys: made (the key shown once), read, changed and deleted; a limited key manages none.
made = check(client.create_api_key({"apiKey": {
    "metaData": {"attributes": {"description": "Starts logins"}},
    "permissions": {"endpoints": {"/api/passwordless/start": ["POST"]}},
}}))["apiKey"]
start_key = made["key"]
assert len(start_key) >= 32 and made["metaData"]["attributes"]["description"] == "Starts logins", made
shown = check(client.retrieve_api_key(made["id"]))["apiKey"]
assert "key" not in shown and shown["permissions"] == made["permissions"], shown
limited = FusionAuthClient(start_key, base_url)
check(limited.start_passwordless_login({"applicationId": application_id, "loginId": "monica@raviga.example"}))
assert limited.retrieve_api_key(made["id"]).status == 401, "a limited key manages no keys"
assert limited.retrieve_user(user_id).status == 401
changed = check(client.update_api_key(made["id"], {"apiKey": {
    "metaData": {"attributes": {"description": "Reads users"}},
    "permissions": {"endpoints": {"/api/user": ["GET"]}},
}}))["apiKey"]
assert changed["permissions"] == {"endpoints": {"/api/user": ["GET"]}}, changed
check(limited.retrieve_user(user_id))
refused = client.update_api_key(made["id"], {"apiKey": {"permissions": {"endpoints": {"/api/api-key": ["GET"]}}}})
assert refused.status == 400, refused.status
check(client.delete_api_key(made["id"]))
assert limited.retrieve_user(user_id).status == 401
assert client.retrieve_api_key(made["id"]).status == 404
named_id = str(uuid.uuid4())
named = check(client.create_api_key({"apiKey": {"key": "a-key-of-my-own-that-is-long-enough-0123"}}, named_id))["apiKey"]
assert named["id"] == named_id and named["key"] == "a-key-of-my-own-that-is-long-enough-0123"
short = client.create_api_key({"apiKey": {"key": "short"}})
assert short.status == 400 and "[tooShort]apiKey.key" in str(short.error_response)
check(client.delete_api_key(named_id))

# Registrations: retrieve, replace, patch and delete; an unknown user is a 404.
registration = check(client.retrieve_registration(user_id, application_id))["registration"]
assert registration["verified"] is True and registration["roles"] == ["user"], registration
replaced = check(client.update_registration(user_id, {"registration": {
    "applicationId": application_id, "roles": ["user"], "data": {"seat": "12A"}, "timezone": "Europe/Berlin",
}}))["registration"]
assert replaced["id"] == registration["id"] and replaced["data"] == {"seat": "12A"}, replaced
patched = check(client.patch_registration(user_id, {"registration": {
    "applicationId": application_id, "preferredLanguages": ["de"],
}}))["registration"]
assert patched["timezone"] == "Europe/Berlin" and patched["preferredLanguages"] == ["de"], patched
wrong_role = client.update_registration(user_id, {"registration": {"applicationId": application_id, "roles": ["god"]}})
assert wrong_role.status == 400 and "[invalid]registration.roles" in str(wrong_role.error_response)
assert client.retrieve_registration(str(uuid.uuid4()), application_id).status == 404
temp = check(client.register({"user": {"email": "erlich@aviato.example"}, "registration": {"applicationId": application_id}}))
check(client.delete_registration(temp["user"]["id"], application_id))
assert client.retrieve_registration(temp["user"]["id"], application_id).status == 404
assert check(client.retrieve_user(temp["user"]["id"]))["user"]["registrations"] == []

# Users: create, retrieve by id, email, username and login id, replace, patch, search,
# deactivate, reactivate and hard delete.
dinesh_id = str(uuid.uuid4())
dinesh = check(client.create_user({"user": {
    "email": "Dinesh@PiedPiper.example", "username": "dinesh", "firstName": "Dinesh",
    "lastName": "Chugtai", "password": "dropped", "data": {"team": "core"},
}}, dinesh_id))["user"]
assert dinesh["id"] == dinesh_id and dinesh["email"] == "dinesh@piedpiper.example", dinesh
assert "password" not in dinesh and dinesh["data"] == {"team": "core"}
assert check(client.retrieve_user(dinesh_id))["user"]["username"] == "dinesh"
assert check(client.retrieve_user_by_username("dinesh"))["user"]["id"] == dinesh_id
assert client.retrieve_user_by_username("dinesh@piedpiper.example").status == 404, "usernames only"
assert check(client.retrieve_user_by_login_id("dinesh"))["user"]["id"] == dinesh_id
found = client.retrieve_user_by_login_id_with_login_id_types("dinesh", ["email"])
assert found.status == 404, found.status
assert check(client.retrieve_user_by_login_id_with_login_id_types("dinesh", ["email", "username"]))["user"]["id"] == dinesh_id
replaced = check(client.update_user(dinesh_id, {"user": {"email": "dinesh@piedpiper.example", "firstName": "D."}}))["user"]
assert replaced["firstName"] == "D." and "username" not in replaced and "lastName" not in replaced, replaced
patched = check(client.patch_user(dinesh_id, {"user": {"lastName": "Chugtai", "username": "dinesh"}}))["user"]
assert patched["firstName"] == "D." and patched["lastName"] == "Chugtai", patched
taken = client.patch_user(dinesh_id, {"user": {"email": "monica@raviga.example"}})
assert taken.status == 400 and "[duplicate]user.email" in str(taken.error_response), taken.error_response
page = check(client.search_users_by_query({"search": {"queryString": "chug*", "numberOfResults": 10}}))
assert page["total"] == 1 and page["users"][0]["id"] == dinesh_id, page
everyone = check(client.search_users_by_query({"search": {"queryString": "*", "numberOfResults": 1, "startRow": 0}}))
assert everyone["total"] >= 2 and len(everyone["users"]) == 1, everyone
by_ids = check(client.search_users_by_ids([dinesh_id, user_id]))
assert {u["id"] for u in by_ids["users"]} == {dinesh_id, user_id}, by_ids
check(client.deactivate_user(dinesh_id))
assert check(client.retrieve_user(dinesh_id))["user"]["active"] is False
check(client.reactivate_user(dinesh_id))
assert check(client.retrieve_user(dinesh_id))["user"]["active"] is True
check(client.delete_user(dinesh_id))
assert client.retrieve_user(dinesh_id).status == 404
again = check(client.create_user({"user": {"email": "dinesh@piedpiper.example", "username": "dinesh"}}))["user"]
assert again["id"] != dinesh_id, "a hard delete frees the email and the username"

# Applications: retrieve, list, replace, patch, roles, deactivate, reactivate, hard delete.
assert check(client.retrieve_application(application_id))["application"]["name"] == "Compat"
assert application_id in {a["id"] for a in check(client.retrieve_applications())["applications"]}
spare_id = str(uuid.uuid4())
spare = check(client.create_application({"application": {"name": "Spare", "roles": [{"name": "admin"}]}}, spare_id))["application"]
assert spare["oauthConfiguration"]["clientId"] == spare_id and spare["oauthConfiguration"]["clientSecret"]
replaced = check(client.update_application(spare_id, {"application": {"name": "Spare, renamed"}}))["application"]
assert replaced["name"] == "Spare, renamed" and [r["name"] for r in replaced["roles"]] == ["admin"], replaced
assert "clientSecret" not in replaced["oauthConfiguration"], "a secret is shown once, when made"
patched = check(client.patch_application(spare_id, {"application": {
    "passwordlessConfiguration": {"enabled": True},
}}))["application"]
assert patched["name"] == "Spare, renamed" and patched["passwordlessConfiguration"]["enabled"] is True
role = check(client.create_application_role(spare_id, {"role": {"name": "editor", "description": "Edits"}}))["role"]
role = check(client.update_application_role(spare_id, role["id"], {"role": {"name": "editor", "isDefault": True}}))["role"]
assert role["isDefault"] is True and "description" not in role, role
role = check(client.patch_application_role(spare_id, role["id"], {"role": {"description": "Edits things"}}))["role"]
assert role["isDefault"] is True and role["description"] == "Edits things", role
fixed_role = str(uuid.uuid4())
check(client.create_application_role(spare_id, {"role": {"name": "viewer"}}, fixed_role))
check(client.delete_application_role(spare_id, fixed_role))
roles = {r["name"] for r in check(client.retrieve_application(spare_id))["application"]["roles"]}
assert roles == {"admin", "editor"}, roles
check(client.register({
    "user": {"email": "jared@piedpiper.example"},
    "registration": {"applicationId": spare_id},
}))
jared = check(client.retrieve_user_by_email("jared@piedpiper.example"))["user"]
assert jared["registrations"][0]["roles"] == ["editor"], jared["registrations"]
check(client.deactivate_application(spare_id))
assert check(client.retrieve_application(spare_id))["application"]["active"] is False
assert spare_id in {a["id"] for a in check(client.retrieve_inactive_applications())["applications"]}
assert spare_id not in {a["id"] for a in check(client.retrieve_applications())["applications"]}
refused = client.start_passwordless_login({"applicationId": spare_id, "loginId": "jared@piedpiper.example"})
assert refused.status == 400, refused.status
check(client.reactivate_application(spare_id))
assert check(client.retrieve_application(spare_id))["application"]["active"] is True
check(client.start_passwordless_login({"applicationId": spare_id, "loginId": "jared@piedpiper.example"}))
check(client.delete_application(spare_id))
assert client.retrieve_application(spare_id).status == 404
jared = check(client.retrieve_user(jared["id"]))["user"]
assert jared["registrations"] == [], "a hard delete takes the application's registrations"

# Tenants: create, retrieve, list, replace, patch and delete. Deleting one takes its
# applications, users and keys with it at once.
other_id = str(uuid.uuid4())
other = check(client.create_tenant({"tenant": {"name": "Other"}}, other_id))["tenant"]
assert other["id"] == other_id and other["issuer"].endswith(other_id), other
assert check(client.retrieve_tenant(other_id))["tenant"]["name"] == "Other"
names = {t["name"] for t in check(client.retrieve_tenants())["tenants"]}
assert {"Other"} < names, names
replaced = check(client.update_tenant(other_id, {"tenant": {"name": "Other, renamed"}}))["tenant"]
assert replaced["name"] == "Other, renamed" and replaced["issuer"] == other["issuer"], replaced
assert replaced["insertInstant"] == other["insertInstant"]
patched = check(client.patch_tenant(other_id, {"tenant": {
    "externalIdentifierConfiguration": {"passwordlessLoginTimeToLiveInSeconds": 120},
}}))["tenant"]
assert patched["name"] == "Other, renamed", patched
assert patched["externalIdentifierConfiguration"]["passwordlessLoginTimeToLiveInSeconds"] == 120
wrong = client.patch_tenant(other_id, {"tenant": {"name": 7}})
assert wrong.status == 400 and "[invalidJSON]" in str(wrong.error_response), wrong.error_response

in_other = FusionAuthClient(api_key, base_url)
in_other.set_tenant_id(other_id)
other_app = check(in_other.create_application({"application": {
    "name": "Other app", "passwordlessConfiguration": {"enabled": True},
}}))["application"]
assert other_app["tenantId"] == other_id
other_user = check(in_other.register({
    "user": {"email": "gavin@hooli.example"},
    "registration": {"applicationId": other_app["id"]},
}))["user"]
check(in_other.start_passwordless_login({"applicationId": other_app["id"], "loginId": "gavin@hooli.example"}))

check(client.delete_tenant(other_id))
assert client.retrieve_tenant(other_id).status == 404
assert client.retrieve_user(other_user["id"]).status == 404
gone = client.start_passwordless_login({"applicationId": other_app["id"], "loginId": "gavin@hooli.example"})
assert gone.status == 400 and "[invalid]applicationId" in str(gone.error_response), gone.error_response
assert urllib.request.urlopen(base_url + "/.well-known/jwks.json").status == 200
try:
    urllib.request.urlopen(f"{base_url}/{other_id}/.well-known/jwks.json")
    raise AssertionError("a deleted tenant's key set is still served")
except urllib.error.HTTPError as e:
    assert e.code == 404, e.code
assert client.delete_tenant(other_id).status == 404
default_delete = client.delete_tenant(tenant_id)
assert default_delete.status == 400, default_delete.status

# Email and registration verification, in a tenant of their own.
verify_tenant_id = str(uuid.uuid4())
check(client.create_tenant({"tenant": {"name": "Verifying"}}, verify_tenant_id))
in_verify = FusionAuthClient(api_key, base_url)
in_verify.set_tenant_id(verify_tenant_id)
verify_template = check(in_verify.create_email_template({"emailTemplate": {
    "name": "Verify", "defaultSubject": "Confirm",
    "defaultHtmlTemplate": "<a href=\"https://x.example/email/verify/${verificationId}\">Confirm</a>",
    "defaultTextTemplate": "Confirm: ${verificationId}",
}}))["emailTemplate"]["id"]
check(in_verify.patch_tenant(verify_tenant_id, {"tenant": {"emailConfiguration": {
    "verifyEmail": True, "verificationEmailTemplateId": verify_template, "unverified": {"behavior": "Gated"},
}}}))
strict = check(in_verify.create_application({"application": {
    "name": "Strict", "passwordlessConfiguration": {"enabled": True},
    "verifyRegistration": True, "verificationEmailTemplateId": verify_template,
}}))["application"]
made = check(in_verify.register({"user": {"email": "vera@example.com"}, "registration": {"applicationId": strict["id"]}}))
assert made["user"]["verified"] is False and made["registration"]["verified"] is False, made
vera_code = check(in_verify.start_passwordless_login({"applicationId": strict["id"], "loginId": "vera@example.com"}))["code"]
assert in_verify.passwordless_login({"code": vera_code}).status == 213
check(client.verify_user_registration({"verificationId": made["registrationVerificationId"]}))
vera_code = check(in_verify.start_passwordless_login({"applicationId": strict["id"], "loginId": "vera@example.com"}))["code"]
assert in_verify.passwordless_login({"code": vera_code}).status == 212
generated = check(in_verify.generate_email_verification_id("vera@example.com"))
check(in_verify.resend_email_verification("vera@example.com"))
check(client.verify_email_address({"verificationId": generated["verificationId"]}))
vera_code = check(in_verify.start_passwordless_login({"applicationId": strict["id"], "loginId": "vera@example.com"}))["code"]
assert in_verify.passwordless_login({"code": vera_code}).status == 200
check(in_verify.resend_registration_verification("vera@example.com", strict["id"]))
assert check(in_verify.generate_registration_verification_id("vera@example.com", strict["id"]))["verificationId"]
check(in_verify.verify_email_address_by_user_id({"userId": made["user"]["id"]}))
check(client.delete_tenant(verify_tenant_id))

# The system configuration: CORS for browser callers of the API, off by default.
system = check(client.retrieve_system_configuration())["systemConfiguration"]
assert system["corsConfiguration"]["enabled"] is False, system
cors = {"enabled": True, "allowedOrigins": ["https://spa.example"], "allowedMethods": ["POST", "OPTIONS"]}
system = check(client.patch_system_configuration({"systemConfiguration": {"corsConfiguration": cors}}))
assert system["systemConfiguration"]["corsConfiguration"]["allowedOrigins"] == ["https://spa.example"], system
preflight = urllib.request.Request(base_url + "/api/passwordless/login", method="OPTIONS", headers={
    "Origin": "https://spa.example", "Access-Control-Request-Method": "POST",
    "Access-Control-Request-Headers": "Content-Type",
})
with urllib.request.urlopen(preflight) as answer:
    assert answer.status == 204, answer.status
    assert answer.headers["Access-Control-Allow-Origin"] == "https://spa.example", dict(answer.headers)
bad = client.update_system_configuration({"systemConfiguration": {"corsConfiguration": {"allowedOrigins": ["spa.example"]}}})
assert bad.status == 400 and "allowedOrigins" in str(bad.error_response), bad.error_response
check(client.update_system_configuration({"systemConfiguration": {}}))
assert check(client.retrieve_system_configuration())["systemConfiguration"]["corsConfiguration"]["enabled"] is False

# Two-factor after the magic link: an authenticator app (the code computed here), 242 and
# /api/two-factor/login, a trusted browser, recovery codes, and removal.
def totp(secret_b64, steps_ahead=0):
    key = base64.b64decode(secret_b64)
    counter = int(time.time() // 30) + steps_ahead
    digest = hmac_lib.new(key, struct.pack(">Q", counter), hashlib.sha1).digest()
    offset = digest[-1] & 15
    value = struct.unpack(">I", digest[offset:offset + 4])[0] & 0x7FFFFFFF
    return f"{value % 1000000:06d}"


def wrong_code(secret_b64):
    near = {totp(secret_b64, step) for step in (-1, 0, 1, 2)}
    return next(c for c in ("000000", "111111", "222222", "333333", "444444") if c not in near)


two = check(client.register({"user": {"email": "dinesh@example.com"}, "registration": {"applicationId": application_id}}))
two_user = two["user"]["id"]
secret = check(client.generate_two_factor_secret())
assert base64.b32decode(secret["secretBase32Encoded"] + "=" * (-len(secret["secretBase32Encoded"]) % 8)) == base64.b64decode(secret["secret"]), secret
assert client.enable_two_factor(two_user, {"code": wrong_code(secret["secret"]), "method": "authenticator", "secret": secret["secret"]}).status == 421
enabled = check(client.enable_two_factor(two_user, {"code": totp(secret["secret"]), "method": "authenticator", "secret": secret["secret"]}))
recovery = enabled["recoveryCodes"]
assert len(recovery) == 10 and all(re.fullmatch(r"[A-Z0-9]{5}-[A-Z0-9]{5}", c) for c in recovery), recovery
methods = check(client.retrieve_user(two_user))["user"]["twoFactor"]["methods"]
assert [m["method"] for m in methods] == ["authenticator"] and "secret" not in json.dumps(methods), methods
method_id = methods[0]["id"]


def first_step():
    code = check(client.start_passwordless_login({"applicationId": application_id, "loginId": "dinesh@example.com"}))["code"]
    answer = client.passwordless_login({"code": code})
    assert answer.status == 242, answer.status
    body = answer.success_response
    assert "token" not in body and "user" not in body, body
    assert body["methods"][0]["authenticator"]["algorithm"] == "HmacSHA1", body
    return body["twoFactorId"]


step = first_step()
assert client.two_factor_login({"twoFactorId": step, "code": wrong_code(secret["secret"])}).status == 421
done = check(client.two_factor_login({"twoFactorId": step, "code": totp(secret["secret"], 1), "trustComputer": True, "applicationId": application_id}))
assert done["user"]["id"] == two_user and done["token"] and done["twoFactorTrustId"], done
assert client.two_factor_login({"twoFactorId": step, "code": totp(secret["secret"], 1)}).status == 404
trust = done["twoFactorTrustId"]
status = client.retrieve_two_factor_status(two_user, application_id, trust)
assert status.status == 200 and status.success_response["trusts"][0]["applicationId"] == application_id, status.response.text
assert client.retrieve_two_factor_status(two_user, application_id, "not-a-trust").status == 242
code = check(client.start_passwordless_login({"applicationId": application_id, "loginId": "dinesh@example.com"}))["code"]
trusted = check(client.passwordless_login({"code": code, "twoFactorTrustId": trust}))
assert trusted["token"] and trusted["user"]["id"] == two_user, trusted
step = first_step()
check(client.two_factor_login({"twoFactorId": step, "code": recovery[0]}))
step = first_step()
assert client.two_factor_login({"twoFactorId": step, "code": recovery[0]}).status == 421, "a recovery code works once"
assert check(client.retrieve_two_factor_recovery_codes(two_user))["remaining"] == 9
assert client.disable_two_factor(two_user, method_id, wrong_code(secret["secret"])).status == 421
check(client.disable_two_factor(two_user, method_id, recovery[1]))
assert "twoFactor" not in check(client.retrieve_user(two_user))["user"]
code = check(client.start_passwordless_login({"applicationId": application_id, "loginId": "dinesh@example.com"}))["code"]
assert check(client.passwordless_login({"code": code}))["token"]

# Load balancers and uptime probes: health without a key and no body, status, the version.
health = client.retrieve_system_health()
assert health.status == 200 and not health.response.text, health.response.text
assert check(client.retrieve_system_status())["status"] == "ok"
assert check(client.retrieve_version())["version"]

print("fusionauth-client compatibility: all checks passed")
