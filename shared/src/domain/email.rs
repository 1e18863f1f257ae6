//! Rendering the passwordless email from a template. Pure: the mailer port sends the result.

use minijinja::{AutoEscape, Environment, UndefinedBehavior};
use serde::Serialize;

use super::freemarker;
use super::render;
use super::template::EmailTemplate;
use super::time::Instant;

/// What a passwordless email is made of before it becomes MIME.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutgoingEmail {
    pub from_email: String,
    pub from_name: Option<String>,
    pub to_email: String,
    pub to_name: Option<String>,
    pub subject: String,
    pub html: String,
    pub text: String,
}

pub use super::render::RenderError;

/// Renders subject, HTML and text with the same context. Only the HTML part is HTML-escaped,
/// so a user named `<script>` stays text in the HTML and reads naturally in the text part.
/// A FreeMarker source is translated first; `now` is its `.now`.
pub(crate) fn render_email<C: Serialize>(
    template: &EmailTemplate,
    preferred_languages: &[String],
    now: Instant,
    context: &C,
) -> Result<(String, String, String), RenderError> {
    let localized = template.localize(preferred_languages);
    let mut env = Environment::new();
    env.set_auto_escape_callback(|name| {
        if name == "html" {
            AutoEscape::Html
        } else {
            AutoEscape::None
        }
    });
    render::install(&mut env);
    env.set_formatter(html_formatter);
    freemarker::runtime::install(&mut env);
    let context = minijinja::context! {
        __now => now.as_millis(),
        ..minijinja::Value::from_serialize(context)
    };
    let render = |name: &str, source: &str| -> Result<String, RenderError> {
        let mut env = env.clone();
        let source = if freemarker::is_freemarker(source) {
            // FreeMarker keeps a template's last line break, and `a.b!` reaches through
            // missing parents.
            env.set_keep_trailing_newline(true);
            env.set_undefined_behavior(UndefinedBehavior::Chainable);
            freemarker::translate(source).map_err(|e| RenderError {
                message: e.message,
                line: Some(e.line),
            })?
        } else {
            source.to_owned()
        };
        env.add_template_owned(name.to_owned(), render::prepare(&source)?)?;
        let template = env.get_template(name)?;
        render::render(&template, &context)
    };
    let subject = render("subject", localized.subject)?;
    // Header injection: a subject is one line whatever the template or data say.
    let subject = subject
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join(" ");
    Ok((
        subject,
        render("html", localized.html)?,
        render("text", localized.text)?,
    ))
}

/// HTML-escapes strings the way mail readers expect (`& < > " '`), leaving `/` alone so links
/// in `href` stay readable; everything else formats as MiniJinja does.
fn html_formatter(
    out: &mut minijinja::Output<'_>,
    state: &minijinja::State<'_, '_>,
    value: &minijinja::Value,
) -> Result<(), minijinja::Error> {
    let value = &render::printable(value)?;
    match value.as_str() {
        Some(text) if state.auto_escape() == AutoEscape::Html && !value.is_safe() => out
            .write_str(&freemarker::runtime::escape_html(text))
            .map_err(|e| minijinja::Error::new(minijinja::ErrorKind::WriteFailure, e.to_string())),
        _ => minijinja::escape_formatter(out, state, value),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn template() -> EmailTemplate {
        serde_json::from_value(json!({
            "id": "00000000-0000-4000-8000-000000000001",
            "name": "t",
            "defaultSubject": "Hi {{ user.firstName }}\nBcc: evil@example.com",
            "defaultTextTemplate": "Hi {{ user.firstName }}, go to {{ url }}",
            "defaultHtmlTemplate": "<p>Hi {{ user.firstName }}</p><a href=\"{{ url }}\">in</a>"
        }))
        .unwrap()
    }

    #[test]
    fn html_is_escaped_and_text_is_not() {
        let ctx = json!({"user": {"firstName": "<script>"}, "url": "https://x.example/a?b=1&c=2"});
        let (subject, html, text) =
            render_email(&template(), &[], Instant::default(), &ctx).unwrap();
        assert!(html.contains("&lt;script&gt;"), "{html}");
        assert!(
            html.contains("href=\"https://x.example/a?b=1&amp;c=2\""),
            "{html}"
        );
        assert!(!html.contains("<script>"));
        assert!(text.contains("Hi <script>,"), "{text}");
        assert!(subject.starts_with("Hi <script>"));
    }

    #[test]
    fn m3_a_runaway_loop_runs_out_of_fuel() {
        let mut t = template();
        t.default_text_template =
            "{% for a in range(3000) %}{% for b in range(3000) %}{% endfor %}{% endfor %}".into();
        let ctx = json!({"user": {"firstName": "A"}, "url": "u"});
        let err = render_email(&t, &[], Instant::default(), &ctx).unwrap_err();
        assert!(err.to_string().contains("fuel"), "{err}");
    }

    #[test]
    fn m3_a_rendered_part_is_bounded() {
        let mut t = template();
        t.default_text_template = "{{ 'x' * 1000000 }}".into();
        let ctx = json!({"user": {"firstName": "A"}, "url": "u"});
        assert!(render_email(&t, &[], Instant::default(), &ctx).is_err());
    }

    #[test]
    fn a_subject_is_always_one_line() {
        let ctx = json!({"user": {"firstName": "A"}, "url": "u"});
        let (subject, _, _) = render_email(&template(), &[], Instant::default(), &ctx).unwrap();
        assert!(!subject.contains('\n'));
    }
}
