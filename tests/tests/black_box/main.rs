//! The black-box tests, in one binary: the real server on port 0 with an injected clock,
//! spoken to over HTTP, on SQLite and the outbox, or on DynamoDB and SES (moto) with
//! `PASSWORDLESS_TEST_BACKEND=aws`. One binary links the server and the support module once.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a failed step is a failed test

mod api_keys_and_tenants;
mod applications;
mod bad_input;
mod cors;
mod events;
mod fusionauth_client;
mod jwt;
mod kickstart;
mod oauth;
mod passwordless_api;
mod probes;
mod repeated_parameters;
mod security_audit;
mod server_limits;
mod support;
mod template;
mod two_factor;
mod typescript_client;
mod users;
mod verification;
