//! `POST /api/passwordless/login` as an AWS Lambda function: the core crate's handler, wired to
//! `lambda_http`, serving the routes the route table gives this function.
//! Naming its type there (not its name at run time) makes the binary link only those routes.

use passwordless::http::routes::functions::PasswordlessLogin;

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    passwordless::http::lambda::run::<PasswordlessLogin>(env!("CARGO_PKG_NAME")).await
}
