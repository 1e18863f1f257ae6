//! Pure types and rules. No I/O, no async, no HTTP, no AWS.

pub mod api_key;
pub mod application;
pub mod claims;
pub mod code;
pub mod email;
pub mod freemarker;
pub mod generator;
pub mod ids;
pub mod kept;
pub mod oauth;
pub mod render;
pub mod secret;
pub mod signing;
pub mod system;
pub mod template;
pub mod tenant;
pub mod time;
pub mod two_factor;
pub mod user;
pub mod validation;
pub mod verification;

pub use api_key::{ApiKey, ApiKeyPermissions};
pub use application::Application;
pub use code::{LoginStrategy, PasswordlessCode};
pub use generator::{CodeGenerator, Entropy, EntropyError, GeneratorType};
pub use ids::{ApplicationId, KeyId, TemplateId, TenantId, UserId};
pub use secret::{Secret, SecretHash};
pub use signing::{SigningAlgorithm, SigningKey};
pub use template::EmailTemplate;
pub use tenant::Tenant;
pub use time::Instant;
pub use user::{Registration, User};
pub use validation::{FieldError, ValidationErrors};
