//! The SES v2 mailer: `SendEmail` with simple content (subject, text and HTML parts). Templates
//! are rendered by the product, not by SES, so that the outbox and SES send the same message.

use async_trait::async_trait;
use aws_sdk_sesv2::types::{Body, Content, Destination, EmailContent, Message};
use aws_sdk_sesv2::Client;

use super::outbox::encoded_mailbox;

use crate::domain::email::OutgoingEmail;
use crate::ports::{MailError, Mailer, SentEmail};

pub struct SesMailer {
    client: Client,
    configuration_set: Option<String>,
}

impl SesMailer {
    pub fn new(client: Client, configuration_set: Option<String>) -> Self {
        Self {
            client,
            configuration_set,
        }
    }

    /// Whether SES lets `identity` send (it exists and is verified: either of the two answers
    /// that say so): one `GetEmailIdentity`.
    /// The functions ask during init, which also opens their SES connection, so that the first
    /// mail of an instance does not pay the TLS handshake at the function's CPU share.
    pub async fn identity_can_send(&self, identity: &str) -> Result<bool, MailError> {
        self.client
            .get_email_identity()
            .email_identity(identity)
            .send()
            .await
            .map(|found| {
                found.verified_for_sending_status()
                    || found.verification_status()
                        == Some(&aws_sdk_sesv2::types::VerificationStatus::Success)
            })
            .map_err(|e| MailError::Unavailable(ses_error_summary(&e)))
    }
}

/// `Name <address>`, the name RFC 2047-encoded when it is not plain ASCII, as SES wants it.
fn address(name: Option<&str>, email: &str) -> Result<String, MailError> {
    encoded_mailbox(name, email)
}

fn content(text: &str) -> Result<Content, MailError> {
    Content::builder()
        .data(text)
        .charset("UTF-8")
        .build()
        .map_err(|e| MailError::Rejected(e.to_string()))
}

#[async_trait]
impl Mailer for SesMailer {
    async fn send(&self, email: &OutgoingEmail) -> Result<SentEmail, MailError> {
        let message = Message::builder()
            .subject(content(&email.subject)?)
            .body(
                Body::builder()
                    .text(content(&email.text)?)
                    .html(content(&email.html)?)
                    .build(),
            )
            .build();
        let result = self
            .client
            .send_email()
            .from_email_address(address(email.from_name.as_deref(), &email.from_email)?)
            .destination(
                Destination::builder()
                    .to_addresses(address(email.to_name.as_deref(), &email.to_email)?)
                    .build(),
            )
            .content(EmailContent::builder().simple(message).build())
            .set_configuration_set_name(self.configuration_set.clone())
            .send()
            .await;
        match result {
            Ok(sent) => Ok(SentEmail {
                message_id: sent.message_id.unwrap_or_default(),
            }),
            Err(e) => {
                let rejected = e.as_service_error().is_some_and(|s| {
                    s.is_message_rejected()
                        || s.is_mail_from_domain_not_verified_exception()
                        || s.is_account_suspended_exception()
                        || s.is_sending_paused_exception()
                });
                // SES's messages name the sender and recipient: only the error code and the
                // request id reach the logs (S12, L2).
                let detail = ses_error_summary(&e);
                Err(if rejected {
                    MailError::Rejected(detail)
                } else {
                    MailError::Unavailable(detail)
                })
            }
        }
    }
}

/// What an SES failure says that is safe to log: the service's error code and request id, or
/// the kind of transport failure.
fn ses_error_summary<E, R>(e: &aws_sdk_sesv2::error::SdkError<E, R>) -> String
where
    E: aws_sdk_sesv2::error::ProvideErrorMetadata + aws_sdk_sesv2::operation::RequestId,
    R: std::fmt::Debug,
{
    use aws_sdk_sesv2::error::SdkError;
    match e {
        SdkError::ServiceError(service) => {
            let err = service.err();
            format!(
                "SES {} (request id {})",
                err.code().unwrap_or("error"),
                aws_sdk_sesv2::operation::RequestId::request_id(err).unwrap_or("unknown")
            )
        }
        SdkError::TimeoutError(_) => "SES timed out".to_owned(),
        SdkError::DispatchFailure(_) => "SES could not be reached".to_owned(),
        SdkError::ResponseError(_) => "SES sent a response that could not be read".to_owned(),
        SdkError::ConstructionFailure(_) => "the SES request could not be built".to_owned(),
        _ => "SES failed".to_owned(),
    }
}
