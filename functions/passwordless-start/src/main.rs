//! `POST /api/passwordless/start` as an AWS Lambda function.

use passwordless::http::routes::Route;

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    passwordless::http::lambda::run(&[Route::PasswordlessStart]).await
}
