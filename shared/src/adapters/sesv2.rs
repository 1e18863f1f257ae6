//! The SES v2 mailer: `SendEmail` with simple content (subject, text and HTML parts). Templates
//! are rendered by the product, not by SES, so that the outbox and SES send the same message.

use async_trait::async_trait;
use aws_sdk_sesv2::types::{Body, Content, Destination, EmailContent, Message};
use aws_sdk_sesv2::Client;
use lettre::message::Mailbox;

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
}

/// `"Name" <address>`, with the name encoded for headers when it is not plain ASCII.
fn address(name: Option<&str>, email: &str) -> Result<String, MailError> {
    let address = email
        .parse()
        .map_err(|e| MailError::Rejected(format!("bad address: {e}")))?;
    Ok(Mailbox::new(name.map(str::to_owned), address).to_string())
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
                let detail = aws_sdk_sesv2::error::DisplayErrorContext(e).to_string();
                Err(if rejected {
                    MailError::Rejected(detail)
                } else {
                    MailError::Unavailable(detail)
                })
            }
        }
    }
}
