//! OpenID discovery and `userinfo` as an AWS Lambda function: the core crate's handler, wired
//! to `lambda_http`, serving the routes the route table gives this function.

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    passwordless::http::lambda::run(env!("CARGO_PKG_NAME")).await
}
