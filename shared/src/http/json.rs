//! The one way a request body is read: into the endpoint's typed request struct, by
//! [`decode_body`], then checked field by field with [`Checks`]. (A query string is read into
//! its struct by `HttpRequest::query`; [`query_id`] reads an id from it.) Errors come in FusionAuth's
//! shape: a body that is not JSON, a property of the wrong type and a property the object does
//! not know are `[invalidJSON]` naming the property (as FusionAuth's JSON binding answers);
//! rules on values are field errors (`[blank]loginId`, `[missing]applicationId`, …). Every
//! error of a body is reported at once, so a client fixes its request in one round.

use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

use super::errors::ApiError;
use crate::domain::validation::{FieldError, ValidationErrors};

/// Type errors beyond this many in one body are not worth reporting one by one.
const MAX_REPORTED_TYPE_ERRORS: usize = 32;

/// An id read from a query's field (the query itself is read by
/// [`HttpRequest::query`](super::HttpRequest::query)): absent when FusionAuth's TypeScript
/// client spells "no value" (`null`, `undefined`), else it must parse.
pub(crate) fn query_id<T>(
    name: &str,
    value: Option<String>,
    parse: fn(&str) -> Option<T>,
) -> Result<Option<T>, ApiError> {
    value
        .filter(|v| !matches!(v.as_str(), "null" | "undefined"))
        .map(|v| {
            parse(&v).ok_or_else(|| {
                ApiError::field(FieldError::invalid(
                    name,
                    format!("[{name}] must be a UUID."),
                ))
            })
        })
        .transpose()
}

/// A body that may be left out (a DELETE's, a refresh's): `T::default()` when it is empty or
/// only whitespace, else decoded as [`decode_body`] does.
pub fn decode_optional_body<T: DeserializeOwned + Default>(body: &[u8]) -> Result<T, ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        Ok(T::default())
    } else {
        decode_body(body)
    }
}

/// Decodes a request body (a JSON object) into `T`.
pub(crate) fn decode_body<T: DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    let value = match serde_json::from_slice::<Value>(body) {
        Ok(value @ Value::Object(_)) => value,
        Ok(_) => {
            return Err(invalid_json(
                None,
                "The request body must be a JSON object.",
            ))
        }
        Err(e) => {
            return Err(invalid_json(
                None,
                &format!("The request body is not valid JSON: {e}"),
            ))
        }
    };
    decode_value(value, None).map_err(ApiError::BadRequest)
}

/// Decodes `value` into `T`, naming properties from `root` (`tenant` makes `tenant.name`).
/// For objects the edge assembles itself, such as a stored object with a patch merged in.
pub(crate) fn decode_value<T: DeserializeOwned>(
    mut value: Value,
    root: Option<&str>,
) -> Result<T, ValidationErrors> {
    let mut errors = ValidationErrors::new();
    let mut seen_paths = Vec::new();
    loop {
        match serde_path_to_error::deserialize::<_, T>(&value) {
            Ok(decoded) if errors.is_empty() => return Ok(decoded),
            Ok(_) => return Err(errors),
            Err(e) => {
                let segments: Vec<_> = e.path().iter().cloned().collect();
                let path = join(root, &e.path().to_string());
                let detail = e.into_inner().to_string();
                if let Some(field) = missing_field(&detail) {
                    // A property the object cannot do without; nothing to strip and retry.
                    errors.push(FieldError::missing(&join(Some(&path), field)));
                    return Err(errors);
                }
                errors.push_invalid_json(Some(&path), &detail);
                // Strip the offending property and decode again, to find the next one; stop
                // when that is impossible or the same property fails twice.
                let repeated = seen_paths.contains(&path);
                seen_paths.push(path);
                if repeated
                    || seen_paths.len() >= MAX_REPORTED_TYPE_ERRORS
                    || !remove_at(&mut value, &segments)
                {
                    return Err(errors);
                }
            }
        }
    }
}

fn join(root: Option<&str>, path: &str) -> String {
    match (root, path) {
        (None, _) => path.to_owned(),
        (Some(root), "" | ".") => root.to_owned(),
        (Some(root), path) => format!("{root}.{path}"),
    }
}

/// serde's words for a required property that is absent: "missing field `name`".
fn missing_field(detail: &str) -> Option<&str> {
    detail
        .strip_prefix("missing field `")
        .and_then(|rest| rest.split('`').next())
}

/// Removes the value at `segments` from `value`; false when the path does not lead anywhere
/// removable (the root itself, or an enum variant).
fn remove_at(value: &mut Value, segments: &[serde_path_to_error::Segment]) -> bool {
    use serde_path_to_error::Segment;
    let Some((last, parents)) = segments.split_last() else {
        return false;
    };
    let mut current = value;
    for segment in parents {
        current = match (segment, current) {
            (Segment::Map { key }, Value::Object(map)) => match map.get_mut(key) {
                Some(next) => next,
                None => return false,
            },
            (Segment::Seq { index }, Value::Array(items)) => match items.get_mut(*index) {
                Some(next) => next,
                None => return false,
            },
            _ => return false,
        };
    }
    match (last, current) {
        (Segment::Map { key }, Value::Object(map)) => map.remove(key).is_some(),
        (Segment::Seq { index }, Value::Array(items)) if *index < items.len() => {
            items.remove(*index);
            true
        }
        _ => false,
    }
}

/// The `[invalidJSON]` answer for the property at `path`.
pub(crate) fn invalid_json(path: Option<&str>, detail: &str) -> ApiError {
    let mut errors = ValidationErrors::new();
    errors.push_invalid_json(path, detail);
    ApiError::BadRequest(errors)
}

/// Rules on the values of a decoded request, collected so every broken one is reported.
#[derive(Debug, Default)]
pub(crate) struct Checks {
    errors: ValidationErrors,
}

impl Checks {
    pub fn new() -> Self {
        Self::default()
    }

    /// `[missing]field` when absent.
    pub(crate) fn required<T>(&mut self, field: &str, value: Option<T>) -> Option<T> {
        if value.is_none() {
            self.errors.push(FieldError::missing(field));
        }
        value
    }

    /// A non-blank text of at most `max_len` bytes: `[blank]field` when absent or blank.
    pub fn text(&mut self, field: &str, value: Option<String>, max_len: usize) -> Option<String> {
        match self.optional_text(field, value, max_len) {
            Some(text) if !text.trim().is_empty() => Some(text),
            Some(_) | None if self.has_error_on(field) => None,
            _ => {
                self.errors.push(FieldError::blank(field));
                None
            }
        }
    }

    /// A text of at most `max_len` bytes, `[tooLong]field` beyond.
    pub(crate) fn optional_text(
        &mut self,
        field: &str,
        value: Option<String>,
        max_len: usize,
    ) -> Option<String> {
        match value {
            Some(text) if text.len() > max_len => {
                self.errors.push(FieldError::new(
                    "tooLong",
                    field,
                    format!("[{field}] is longer than {max_len} bytes."),
                ));
                None
            }
            other => other,
        }
    }

    /// A JSON object whose text is at most `max_bytes`, `[tooLarge]field` beyond.
    pub(crate) fn object_within(
        &mut self,
        field: &str,
        value: Option<Map<String, Value>>,
        max_bytes: usize,
    ) -> Option<Map<String, Value>> {
        let size = value
            .as_ref()
            .and_then(|map| serde_json::to_vec(map).ok())
            .map_or(0, |text| text.len());
        if size > max_bytes {
            self.errors.push(FieldError::new(
                "tooLarge",
                field,
                format!("[{field}] is larger than {max_bytes} bytes."),
            ));
            return None;
        }
        value
    }

    pub fn push(&mut self, error: FieldError) {
        self.errors.push(error);
    }

    fn has_error_on(&self, field: &str) -> bool {
        self.errors.field_errors.iter().any(|e| e.field == field)
    }

    pub fn finish(self) -> Result<(), ApiError> {
        self.errors.into_result().map_err(ApiError::BadRequest)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Debug, Deserialize)]
    #[serde(rename_all = "camelCase", deny_unknown_fields)]
    #[allow(dead_code)] // only decoded
    struct Inner {
        length: Option<u32>,
    }

    #[derive(Debug, Deserialize)]
    #[serde(rename_all = "camelCase", deny_unknown_fields)]
    #[allow(dead_code)] // partly only decoded
    struct Body {
        login_id: Option<String>,
        no_jwt: Option<bool>,
        inner: Option<Inner>,
        names: Option<Vec<String>>,
    }

    fn general_codes(error: &ApiError) -> Vec<String> {
        match error {
            ApiError::BadRequest(errors) => errors
                .general_errors
                .iter()
                .map(|(code, message)| format!("{code} {message}"))
                .collect(),
            other => panic!("not a 400: {other:?}"),
        }
    }

    #[test]
    fn a_body_that_is_not_a_json_object_is_invalid_json() {
        for body in ["", "{", "[1]", "7", "null"] {
            let error = decode_body::<Body>(body.as_bytes()).unwrap_err();
            let codes = general_codes(&error);
            assert_eq!(codes.len(), 1, "{body}");
            assert!(codes[0].starts_with("[invalidJSON] "), "{body}: {codes:?}");
        }
    }

    #[test]
    fn every_property_of_the_wrong_type_or_unknown_is_named_at_once() {
        let body = br#"{"loginId": 42, "noJWT": "yes", "noJwt": "no", "inner": {"length": "x", "colour": 1}, "names": ["a", 2]}"#;
        let error = decode_body::<Body>(body).unwrap_err();
        let codes = general_codes(&error);
        for property in [
            "loginId",
            "noJWT",
            "noJwt",
            "inner.length",
            "inner.colour",
            "names[1]",
        ] {
            assert!(
                codes
                    .iter()
                    .any(|c| c.contains(&format!("The property was [{property}]."))),
                "{property} not in {codes:#?}"
            );
        }
        assert!(codes.iter().all(|c| c.starts_with("[invalidJSON] ")));
    }

    #[test]
    fn a_well_typed_body_decodes() {
        let body: Body = decode_body(br#"{"loginId": "a@example.com", "names": ["a"]}"#).unwrap();
        assert_eq!(body.login_id.as_deref(), Some("a@example.com"));
        assert_eq!(body.names, Some(vec!["a".to_owned()]));
    }

    #[test]
    fn a_patched_object_names_properties_from_its_root() {
        let errors =
            decode_value::<Body>(serde_json::json!({"inner": {"length": -1}}), Some("tenant"))
                .unwrap_err();
        assert!(errors.general_errors[0]
            .1
            .contains("The property was [tenant.inner.length]."));
    }

    #[test]
    fn checks_collect_every_rule_a_request_breaks() {
        let mut checks = Checks::new();
        assert_eq!(checks.required::<u8>("applicationId", None), None);
        assert_eq!(checks.text("loginId", Some("  ".into()), 10), None);
        assert_eq!(checks.text("code", Some("x".repeat(11)), 10), None);
        let Err(ApiError::BadRequest(errors)) = checks.finish() else {
            panic!("expected a 400");
        };
        let codes: Vec<_> = errors
            .field_errors
            .iter()
            .map(|e| e.code.as_str())
            .collect();
        assert_eq!(
            codes,
            ["[missing]applicationId", "[blank]loginId", "[tooLong]code"]
        );
    }
}
