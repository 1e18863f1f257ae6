//! Reading request bodies field by field, so that every wrong type or missing field gets its
//! own FusionAuth field error instead of one opaque parse failure.

use serde_json::{Map, Value};

use super::errors::ApiError;
use crate::domain::validation::{FieldError, ValidationErrors};

/// The body as a JSON object, or `[invalid]json`.
pub fn parse_object(body: &[u8]) -> Result<Map<String, Value>, ApiError> {
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(_) => Err(ApiError::BadRequest(ValidationErrors::general(
            "[invalid]json",
            "The request body must be a JSON object.",
        ))),
        Err(e) => Err(ApiError::BadRequest(ValidationErrors::general(
            "[invalid]json",
            format!("The request body is not valid JSON: {e}"),
        ))),
    }
}

/// Reads fields off one JSON object, collecting every error before failing.
pub struct Fields<'a> {
    map: &'a Map<String, Value>,
    pub errors: ValidationErrors,
}

impl<'a> Fields<'a> {
    pub fn new(map: &'a Map<String, Value>) -> Self {
        Self {
            map,
            errors: ValidationErrors::new(),
        }
    }

    fn present(&self, field: &str) -> Option<&'a Value> {
        self.map.get(field).filter(|v| !v.is_null())
    }

    pub fn has(&self, field: &str) -> bool {
        self.present(field).is_some()
    }

    /// A string of at most `max_len` bytes, or `None` (with no error) when absent.
    pub fn optional_string(&mut self, field: &str, max_len: usize) -> Option<String> {
        match self.present(field)? {
            Value::String(s) if s.len() > max_len => {
                self.errors.push(FieldError::new(
                    "tooLong",
                    field,
                    format!("[{field}] is longer than {max_len} bytes."),
                ));
                None
            }
            Value::String(s) => Some(s.clone()),
            _ => {
                self.errors.push(FieldError::invalid(
                    field,
                    format!("[{field}] must be a string."),
                ));
                None
            }
        }
    }

    /// A non-blank string: `[blank]field` when missing or empty.
    pub fn required_string(&mut self, field: &str, max_len: usize) -> Option<String> {
        let present = self.has(field);
        match self.optional_string(field, max_len) {
            Some(s) if !s.trim().is_empty() => Some(s),
            Some(_) => {
                self.errors.push(FieldError::blank(field));
                None
            }
            None if !present => {
                self.errors.push(FieldError::blank(field));
                None
            }
            None => None,
        }
    }

    pub fn optional_bool(&mut self, field: &str) -> Option<bool> {
        match self.present(field)? {
            Value::Bool(b) => Some(*b),
            _ => {
                self.errors.push(FieldError::invalid(
                    field,
                    format!("[{field}] must be true or false."),
                ));
                None
            }
        }
    }

    /// A UUID id, parsed with `parse`; `[invalid]field` for anything else.
    pub fn optional_id<T>(&mut self, field: &str, parse: fn(&str) -> Option<T>) -> Option<T> {
        let value = self.present(field)?;
        match value.as_str().and_then(parse) {
            Some(id) => Some(id),
            None => {
                self.errors.push(FieldError::invalid(
                    field,
                    format!("[{field}] must be a UUID."),
                ));
                None
            }
        }
    }

    /// `[missing]field` when absent.
    pub fn required_id<T>(&mut self, field: &str, parse: fn(&str) -> Option<T>) -> Option<T> {
        if !self.has(field) {
            self.errors.push(FieldError::missing(field));
            return None;
        }
        self.optional_id(field, parse)
    }

    /// An object whose JSON text is at most `max_bytes`.
    pub fn optional_object(&mut self, field: &str, max_bytes: usize) -> Option<Map<String, Value>> {
        match self.present(field)? {
            Value::Object(map) if Value::Object(map.clone()).to_string().len() > max_bytes => {
                self.errors.push(FieldError::new(
                    "tooLarge",
                    field,
                    format!("[{field}] is larger than {max_bytes} bytes."),
                ));
                None
            }
            Value::Object(map) => Some(map.clone()),
            _ => {
                self.errors.push(FieldError::invalid(
                    field,
                    format!("[{field}] must be an object."),
                ));
                None
            }
        }
    }

    pub fn optional_string_list(&mut self, field: &str) -> Option<Vec<String>> {
        match self.present(field)? {
            Value::Array(items) if items.iter().all(Value::is_string) => Some(
                items
                    .iter()
                    .filter_map(|v| v.as_str().map(str::to_owned))
                    .collect(),
            ),
            _ => {
                self.errors.push(FieldError::invalid(
                    field,
                    format!("[{field}] must be a list of strings."),
                ));
                None
            }
        }
    }

    pub fn push(&mut self, error: FieldError) {
        self.errors.push(error);
    }

    pub fn finish(self) -> Result<(), ApiError> {
        self.errors.into_result().map_err(ApiError::BadRequest)
    }
}
