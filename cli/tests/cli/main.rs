//! The CLI's process-level tests, in one binary: the README's commands, the local Lambda loop
//! and the hosted pages in a real browser.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a failed step is a failed test

mod browser;
mod lambda_watch;
mod readme;
mod support;
