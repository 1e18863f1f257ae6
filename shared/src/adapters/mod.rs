//! Implementations of the ports.

pub mod clock;
pub mod entropy;
pub mod keys;
pub mod outbox;
pub mod sqlite;
