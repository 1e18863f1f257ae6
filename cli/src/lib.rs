//! The local server and operator commands of `passwordless`. No product logic lives here: every
//! request goes through the same route table and handlers as the Lambda functions.

pub mod demo;
pub mod demo_pages;
pub mod server;
