//! The local mailer: every message becomes an RFC 5322 `.eml` file in a folder.

use async_trait::async_trait;
use lettre::message::{Mailbox, MultiPart};
use lettre::Message;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::domain::email::OutgoingEmail;
use crate::ports::{Clock, MailError, Mailer, SentEmail};
use std::sync::Arc;

pub struct OutboxMailer {
    dir: PathBuf,
    clock: Arc<dyn Clock>,
    sequence: AtomicU64,
}

impl OutboxMailer {
    pub fn new(dir: impl Into<PathBuf>, clock: Arc<dyn Clock>) -> Self {
        Self {
            dir: dir.into(),
            clock,
            sequence: AtomicU64::new(0),
        }
    }
}

fn mailbox(name: Option<&str>, address: &str) -> Result<Mailbox, MailError> {
    let address = address
        .parse()
        .map_err(|e| MailError::Rejected(format!("bad address: {e}")))?;
    Ok(Mailbox::new(name.map(str::to_owned), address))
}

/// Builds the MIME message: multipart/alternative with the text part first, as mail readers
/// prefer the last part they can show.
pub fn build_message(email: &OutgoingEmail) -> Result<Vec<u8>, MailError> {
    let message = Message::builder()
        .from(mailbox(email.from_name.as_deref(), &email.from_email)?)
        .to(mailbox(email.to_name.as_deref(), &email.to_email)?)
        .subject(email.subject.clone())
        .multipart(MultiPart::alternative_plain_html(
            email.text.clone(),
            email.html.clone(),
        ))
        .map_err(|e| MailError::Rejected(e.to_string()))?;
    Ok(message.formatted())
}

#[async_trait]
impl Mailer for OutboxMailer {
    async fn send(&self, email: &OutgoingEmail) -> Result<SentEmail, MailError> {
        let bytes = build_message(email)?;
        let message_id = format!(
            "{:013}-{:06}-{}",
            self.clock.now().as_millis(),
            self.sequence.fetch_add(1, Ordering::Relaxed),
            std::process::id()
        );
        let name = format!("{message_id}.eml");
        let dir = self.dir.clone();
        tokio::task::spawn_blocking(move || {
            std::fs::create_dir_all(&dir)?;
            let tmp = dir.join(format!(".{name}.tmp"));
            std::fs::write(&tmp, bytes)?;
            // Readers never see a half-written message.
            std::fs::rename(&tmp, dir.join(name))
        })
        .await
        .map_err(|e| MailError::Unavailable(e.to_string()))?
        .map_err(|e| MailError::Unavailable(format!("cannot write to the outbox: {e}")))?;
        Ok(SentEmail { message_id })
    }
}
