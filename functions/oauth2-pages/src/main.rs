//! The magic link's hosted page (`GET`, `HEAD` and `POST /oauth2/passwordless/{code}`) as an AWS
//! Lambda function: the core crate's handler, wired to `lambda_http`, serving the routes the
//! route table gives this function.

use passwordless::http::routes::functions::OAuth2Pages;

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    passwordless::http::lambda::run::<OAuth2Pages>(env!("CARGO_PKG_NAME")).await
}
