use serde::Serialize;

/// The longest login id (an email address's maximum length, S11).
pub(crate) const MAX_LOGIN_ID_LEN: usize = 320;

/// One rule a field broke, in FusionAuth's shape: `code` is `[rule]field`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FieldError {
    #[serde(skip)]
    pub field: String,
    pub code: String,
    pub message: String,
}

impl FieldError {
    pub fn new(rule: &str, field: &str, message: impl Into<String>) -> Self {
        Self {
            field: field.to_owned(),
            code: format!("[{rule}]{field}"),
            message: message.into(),
        }
    }

    pub fn missing(field: &str) -> Self {
        Self::new("missing", field, format!("You must specify [{field}]."))
    }

    pub fn blank(field: &str) -> Self {
        Self::new("blank", field, format!("You must specify [{field}]."))
    }

    pub fn invalid(field: &str, message: impl Into<String>) -> Self {
        Self::new("invalid", field, message)
    }
}

/// Every rule a request broke, collected so the caller learns them all at once.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ValidationErrors {
    pub field_errors: Vec<FieldError>,
    pub general_errors: Vec<(String, String)>,
}

impl ValidationErrors {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn field(error: FieldError) -> Self {
        Self {
            field_errors: vec![error],
            general_errors: Vec::new(),
        }
    }

    pub fn general(code: &str, message: impl Into<String>) -> Self {
        Self {
            field_errors: Vec::new(),
            general_errors: vec![(code.to_owned(), message.into())],
        }
    }

    /// FusionAuth's `[invalidJSON]` general error for the property at `path` (none: the body
    /// as a whole), as its JSON binding words it.
    pub(crate) fn push_invalid_json(&mut self, path: Option<&str>, detail: &str) {
        let message = match path {
            Some(path) if !path.is_empty() && path != "." => format!(
                "Invalid JSON in the request body. The property was [{path}]. The error was [{detail}]."
            ),
            _ => format!("Invalid JSON in the request body. The error was [{detail}]."),
        };
        self.general_errors
            .push(("[invalidJSON]".to_owned(), message));
    }

    pub fn push(&mut self, error: FieldError) {
        self.field_errors.push(error);
    }

    /// `[invalid]field` unless `value` is greater than zero (times to live, limits).
    pub(crate) fn require_positive(&mut self, field: &str, value: i64) {
        if value <= 0 {
            self.push(FieldError::invalid(
                field,
                "The value must be greater than zero.",
            ));
        }
    }

    /// `[invalid]field` when a text that will stand in a mail header or a log line holds a
    /// control character (CR and LF above all): refused at write, not found at send (M1).
    pub(crate) fn require_single_line(&mut self, field: &str, value: Option<&str>) {
        if value.is_some_and(|v| v.chars().any(char::is_control)) {
            self.push(FieldError::invalid(
                field,
                "The value may not contain control characters such as line breaks.",
            ));
        }
    }

    /// `[invalid]field` unless `value` is absent or looks like a sender address: text on both
    /// sides of an `@`, nothing a header could break on (`no-reply@localhost` is fine).
    pub(crate) fn require_email(&mut self, field: &str, value: Option<&str>) {
        let is_address = |v: &str| {
            v.len() <= MAX_LOGIN_ID_LEN
                && v.rsplit_once('@')
                    .is_some_and(|(local, domain)| !local.is_empty() && !domain.is_empty())
                && !v
                    .chars()
                    .any(|c| c.is_whitespace() || c.is_control() || "<>,;\"".contains(c))
        };
        if value.is_some_and(|v| !is_address(v)) {
            self.push(FieldError::invalid(
                field,
                "The email address is not valid.",
            ));
        }
    }

    pub fn extend(&mut self, other: ValidationErrors) {
        self.field_errors.extend(other.field_errors);
        self.general_errors.extend(other.general_errors);
    }

    pub fn is_empty(&self) -> bool {
        self.field_errors.is_empty() && self.general_errors.is_empty()
    }

    /// `Ok(())` when nothing was collected, so a validator can end with `errors.into_result()`.
    pub(crate) fn into_result(self) -> Result<(), ValidationErrors> {
        if self.is_empty() {
            Ok(())
        } else {
            Err(self)
        }
    }

    pub(crate) fn has_code(&self, code: &str) -> bool {
        self.field_errors.iter().any(|e| e.code == code)
            || self.general_errors.iter().any(|(c, _)| c == code)
    }
}
