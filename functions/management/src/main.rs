//! The management API (tenants, applications, users, email templates) and the JWKS as one AWS
//! Lambda function: the core crate's handler, wired to `lambda_http`.

use passwordless::http::routes::functions::Management;

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    passwordless::http::lambda::run::<Management>(env!("CARGO_PKG_NAME")).await
}
