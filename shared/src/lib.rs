//! Passwordless magic-link login, wire-compatible with FusionAuth's passwordless API.
//!
//! `domain` holds the rules, `ports` the traits the flows need, `flows` the use cases,
//! `adapters` the stores and mailers, `http` the edge that every entry point shares.

pub mod adapters;
pub mod app;
pub mod config;
pub mod domain;
pub mod flows;
pub mod http;
pub mod kickstart;
pub mod ports;
pub mod telemetry;

pub use app::App;
