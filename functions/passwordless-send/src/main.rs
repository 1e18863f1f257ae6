//! `POST /api/passwordless/send` as an AWS Lambda function.

use passwordless::http::routes::Route;

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    passwordless::http::lambda::run(&[Route::PasswordlessSend]).await
}
