//! `POST /api/passwordless/send` as an AWS Lambda function: the core crate's handler, wired to
//! `lambda_http`, serving the routes the route table gives this function.
//! Naming its type there (not its name at run time) makes the binary link only those routes.

use passwordless::http::routes::functions::PasswordlessSend;

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    passwordless::http::lambda::run::<PasswordlessSend>(env!("CARGO_PKG_NAME")).await
}
