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

/// A mailbox whose display name cannot break a header. Names are refused at write time when
/// they hold control characters (M1); one that slipped in earlier loses them here, because
/// lettre panics on a CR or LF in a name.
pub fn mailbox(name: Option<&str>, address: &str) -> Result<Mailbox, MailError> {
    let address = address
        .parse()
        .map_err(|e| MailError::Rejected(format!("bad address: {e}")))?;
    let name = name
        .map(|n| n.chars().filter(|c| !c.is_control()).collect::<String>())
        .filter(|n| !n.trim().is_empty());
    Ok(Mailbox::new(name, address))
}

/// `Name <address>` as it stands in a header: the name RFC 2047-encoded when it is not plain
/// ASCII, by lettre's own header encoder. SES's raw messages use it too.
#[cfg_attr(not(feature = "aws"), allow(dead_code))]
pub(crate) fn encoded_mailbox(name: Option<&str>, address: &str) -> Result<String, MailError> {
    let mut headers = lettre::message::header::Headers::new();
    headers.set(lettre::message::header::From::from(
        lettre::message::Mailboxes::from(mailbox(name, address)?),
    ));
    let line = headers.to_string();
    let value = line
        .strip_prefix("From: ")
        .ok_or_else(|| MailError::Rejected("the sender header did not encode".into()))?;
    // Unfold: SES takes the address as one line.
    Ok(value.trim_end().replace("\r\n ", " "))
}

/// Builds the MIME message: multipart/alternative with the text part first, as mail readers
/// prefer the last part they can show.
pub(crate) fn build_message(email: &OutgoingEmail) -> Result<Vec<u8>, MailError> {
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
            // A message holds a live link: owner-only, like the store (S26).
            super::files::create_private_dir(&dir)?;
            let tmp = dir.join(format!(".{name}.tmp"));
            super::files::write_private(&tmp, &bytes)?;
            // Readers never see a half-written message.
            std::fs::rename(&tmp, dir.join(name))
        })
        .await
        .map_err(|e| MailError::Unavailable(e.to_string()))?
        .map_err(|e| MailError::Unavailable(format!("cannot write to the outbox: {e}")))?;
        Ok(SentEmail { message_id })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn m1_a_name_with_a_line_break_neither_panics_nor_injects_a_header() {
        let encoded =
            encoded_mailbox(Some("Eve\r\nBcc: victim@example.com"), "eve@example.com").unwrap();
        assert!(
            !encoded.contains('\n') && !encoded.contains('\r'),
            "{encoded}"
        );
        assert!(encoded.ends_with("<eve@example.com>"), "{encoded}");
    }

    #[test]
    fn m1_non_ascii_names_are_rfc_2047_encoded() {
        let encoded = encoded_mailbox(Some("Zoë Müller"), "zoe@example.com").unwrap();
        assert!(encoded.is_ascii(), "{encoded}");
        assert!(encoded.starts_with("=?utf-8?"), "{encoded}");
        assert!(encoded.ends_with("<zoe@example.com>"), "{encoded}");
    }
}
