//! Implementations of the ports.

pub mod clock;
#[cfg(feature = "aws")]
pub mod dynamodb;
pub mod entropy;
pub mod files;
pub mod keys;
pub mod outbox;
#[cfg(feature = "aws")]
pub mod sesv2;
pub mod sqlite;
pub mod vault;
