//! Implementations of the ports.

pub mod clock;
pub mod dynamodb;
pub mod entropy;
pub mod files;
pub mod keys;
pub mod outbox;
pub mod sesv2;
pub mod sqlite;
pub mod vault;
