//! The crate's integration tests, in one binary: the store conformance suite on SQLite and on
//! DynamoDB (moto), the SES mailer and the KMS vault against moto through the real SDK
//! clients, the Lambda functions' wiring, and the property tests of the HTTP edge.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a failed step is a failed test

mod conformance;
mod dynamodb_store;
mod kms_vault;
mod lambda_wiring;
mod robustness;
mod sesv2_mailer;
mod sqlite_store;
mod support;
