use serde::{Deserialize, Serialize};

use super::freemarker;
use super::kept::Kept;
use std::collections::BTreeMap;

use super::ids::{TemplateId, TenantId};
use super::time::Instant;
use super::validation::{FieldError, ValidationErrors};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EmailTemplate {
    #[serde(default)]
    pub id: TemplateId,
    /// The tenant the template belongs to (S29); `None` for a global template, which only an
    /// unrestricted key makes and every tenant may use (the built-in one is global).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tenant_id: Option<TenantId>,
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub default_subject: String,
    #[serde(default)]
    pub default_html_template: String,
    #[serde(default)]
    pub default_text_template: String,
    #[serde(default)]
    pub localized_subjects: BTreeMap<String, String>,
    #[serde(default)]
    pub localized_html_templates: BTreeMap<String, String>,
    #[serde(default)]
    pub localized_text_templates: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from_email: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default_from_name: Option<String>,
    #[serde(default)]
    pub insert_instant: Instant,
    #[serde(default)]
    pub last_update_instant: Instant,
    /// FusionAuth's properties of this object that are stored and returned, not read.
    #[serde(flatten)]
    pub kept: Kept,
}

/// The three sources of one email, picked for one reader's language.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct LocalizedTemplate<'a> {
    pub subject: &'a str,
    pub html: &'a str,
    pub text: &'a str,
}

/// The largest source of one template part (S29).
pub(crate) const MAX_TEMPLATE_SOURCE_BYTES: usize = 48 * 1024;

/// Checks a page template source when it is saved: at most [`MAX_TEMPLATE_SOURCE_BYTES`],
/// and it compiles, so a syntax error is the author's 400 with its line, not a failure at
/// render time that someone else pays for (S29).
pub(crate) fn check_template_source(errors: &mut ValidationErrors, field: &str, source: &str) {
    if check_size(errors, field, source) {
        check_compiles(errors, field, source);
    }
}

/// Checks an email template source when it is saved: as [`check_template_source`], and a
/// FreeMarker source must stay within the subset this product translates, the error naming
/// the construct and its line.
pub(crate) fn check_email_template_source(
    errors: &mut ValidationErrors,
    field: &str,
    source: &str,
) {
    if !check_size(errors, field, source) {
        return;
    }
    if !freemarker::is_freemarker(source) {
        check_compiles(errors, field, source);
        return;
    }
    match freemarker::translate(source) {
        Ok(translated) => check_compiles(errors, field, &translated),
        Err(e) => errors.push(FieldError::invalid(
            field,
            format!(
                "The FreeMarker template is not supported on line {}: {}.",
                e.line, e.message
            ),
        )),
    }
}

fn check_size(errors: &mut ValidationErrors, field: &str, source: &str) -> bool {
    if source.len() > MAX_TEMPLATE_SOURCE_BYTES {
        errors.push(FieldError::new(
            "tooLarge",
            field,
            format!("A template may hold at most {MAX_TEMPLATE_SOURCE_BYTES} bytes."),
        ));
        return false;
    }
    true
}

fn check_compiles(errors: &mut ValidationErrors, field: &str, source: &str) {
    if let Err(e) = super::render::check(source) {
        let line = e.line.map(|l| format!(" on line {l}")).unwrap_or_default();
        errors.push(FieldError::invalid(
            field,
            format!("The template does not compile{line}: {}", e.message),
        ));
    }
}

impl EmailTemplate {
    /// Whether objects of `tenant` may use this template (S22, S29).
    pub(crate) fn usable_by(&self, tenant: TenantId) -> bool {
        self.tenant_id.is_none_or(|owner| owner == tenant)
    }

    pub fn validate(&self) -> Result<(), ValidationErrors> {
        let mut errors = ValidationErrors::new();
        if self.name.trim().is_empty() {
            errors.push(FieldError::blank("emailTemplate.name"));
        }
        if self.default_subject.trim().is_empty() {
            errors.push(FieldError::blank("emailTemplate.defaultSubject"));
        }
        if self.default_html_template.trim().is_empty()
            && self.default_text_template.trim().is_empty()
        {
            errors.push(FieldError::blank("emailTemplate.defaultTextTemplate"));
        }
        errors.require_single_line(
            "emailTemplate.defaultFromName",
            self.default_from_name.as_deref(),
        );
        errors.require_email("emailTemplate.fromEmail", self.from_email.as_deref());
        // Compiled when saved, so a syntax error is the author's 400 with its line, not a 500
        // at send time that someone else pays for (S29).
        for (field, source) in self.sources() {
            check_email_template_source(&mut errors, &format!("emailTemplate.{field}"), source);
        }
        super::kept::check_kept(
            &mut errors,
            "emailTemplate",
            &self.kept,
            super::kept::EMAIL_TEMPLATE,
        );
        errors.into_result()
    }

    pub fn sources(&self) -> Vec<(&'static str, &str)> {
        let mut all = vec![
            ("defaultSubject", self.default_subject.as_str()),
            ("defaultHtmlTemplate", self.default_html_template.as_str()),
            ("defaultTextTemplate", self.default_text_template.as_str()),
        ];
        all.extend(
            self.localized_subjects
                .values()
                .map(|s| ("localizedSubjects", s.as_str())),
        );
        all.extend(
            self.localized_html_templates
                .values()
                .map(|s| ("localizedHtmlTemplates", s.as_str())),
        );
        all.extend(
            self.localized_text_templates
                .values()
                .map(|s| ("localizedTextTemplates", s.as_str())),
        );
        all
    }

    /// Picks each part in the first of the reader's languages that has it (an exact tag first,
    /// then its primary language, `de-CH` → `de`), falling back to the default part by part.
    pub(crate) fn localize(&self, preferred_languages: &[String]) -> LocalizedTemplate<'_> {
        LocalizedTemplate {
            subject: pick(&self.localized_subjects, preferred_languages)
                .unwrap_or(&self.default_subject),
            html: pick(&self.localized_html_templates, preferred_languages)
                .unwrap_or(&self.default_html_template),
            text: pick(&self.localized_text_templates, preferred_languages)
                .unwrap_or(&self.default_text_template),
        }
    }
}

fn pick<'a>(localized: &'a BTreeMap<String, String>, languages: &[String]) -> Option<&'a str> {
    languages.iter().find_map(|lang| {
        let lang = lang.replace('_', "-");
        localized
            .iter()
            .find(|(tag, _)| tag.replace('_', "-").eq_ignore_ascii_case(&lang))
            .or_else(|| {
                let primary = lang.split('-').next().unwrap_or_default();
                localized
                    .iter()
                    .find(|(tag, _)| tag.eq_ignore_ascii_case(primary))
            })
            .map(|(_, source)| source.as_str())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn template() -> EmailTemplate {
        serde_json::from_value(serde_json::json!({
            "id": "00000000-0000-4000-8000-000000000001",
            "name": "t",
            "defaultSubject": "Hello",
            "defaultTextTemplate": "text",
            "defaultHtmlTemplate": "<p>html</p>",
            "localizedSubjects": {"de": "Hallo", "fr-CA": "Allo"},
            "localizedTextTemplates": {"de": "Text"}
        }))
        .unwrap()
    }

    #[test]
    fn the_first_preferred_language_with_a_translation_wins() {
        let t = template();
        let picked = t.localize(&["it".into(), "de".into()]);
        assert_eq!(
            (picked.subject, picked.text, picked.html),
            ("Hallo", "Text", "<p>html</p>")
        );
    }

    #[test]
    fn a_regional_tag_falls_back_to_its_primary_language() {
        assert_eq!(template().localize(&["de-CH".into()]).subject, "Hallo");
        assert_eq!(template().localize(&["fr_CA".into()]).subject, "Allo");
    }

    #[test]
    fn no_match_uses_the_defaults() {
        assert_eq!(template().localize(&[]).subject, "Hello");
    }

    #[test]
    fn a_template_that_does_not_parse_is_rejected() {
        let mut t = template();
        t.default_subject = "{{ broken".into();
        assert!(t
            .validate()
            .unwrap_err()
            .has_code("[invalid]emailTemplate.defaultSubject"));
    }

    #[test]
    fn m3_a_compile_error_names_its_line() {
        let mut t = template();
        t.default_html_template = "<p>one</p>\n<p>two</p>\n{% for x in %}".into();
        let errors = t.validate().unwrap_err();
        let error = errors
            .field_errors
            .iter()
            .find(|e| e.field == "emailTemplate.defaultHtmlTemplate")
            .unwrap();
        assert!(error.message.contains("line 3"), "{}", error.message);
    }

    #[test]
    fn m3_oversized_sources_and_header_breaking_senders_are_refused() {
        let mut t = template();
        t.default_text_template = "x".repeat(MAX_TEMPLATE_SOURCE_BYTES + 1);
        t.default_from_name = Some("Pied\r\nPiper".into());
        let errors = t.validate().unwrap_err();
        assert!(errors.has_code("[tooLarge]emailTemplate.defaultTextTemplate"));
        assert!(errors.has_code("[invalid]emailTemplate.defaultFromName"));
    }
}
