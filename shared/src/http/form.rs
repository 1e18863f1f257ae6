//! Form-encoded bodies and query strings read into typed structs.
//!
//! Each form an endpoint reads is a `#[derive(Deserialize)]` struct of the fields it knows;
//! [`HttpRequest::form`](super::HttpRequest::form) and
//! [`HttpRequest::query`](super::HttpRequest::query) decode into it. Two rules hold for every
//! form, as RFC 6749 section 3.1 asks of OAuth requests:
//! - a field the struct declares may appear once; a second one is [`FormError::Repeated`]
//!   (fields the struct does not declare are ignored, repeated or not);
//! - a field sent without a value is an absent one, so an `Option` field reads `name=` as `None`.
//!
//! At most [`MAX_PAIRS`] pairs are read; the body's size is bounded where requests arrive.

use serde::de::value::{MapDeserializer, SeqDeserializer, StringDeserializer};
use serde::de::{self, DeserializeOwned, IntoDeserializer, Visitor};
use serde::forward_to_deserialize_any;

/// Pairs past this many are not read.
pub(crate) const MAX_PAIRS: usize = 64;

/// Why a form could not be read into its struct.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FormError {
    #[error("{0} appears more than once")]
    Repeated(String),
    #[error("{0} is required")]
    Missing(&'static str),
    /// A value of the wrong shape for its field: `expected` says what it must be.
    #[error("{field} must be {expected}")]
    Invalid {
        field: String,
        expected: &'static str,
    },
    /// A field the struct refuses (`#[serde(deny_unknown_fields)]`).
    #[error("{0} is not a known field")]
    Unknown(String),
    #[error("the form is malformed: {0}")]
    Malformed(String),
}

impl de::Error for FormError {
    fn custom<T: std::fmt::Display>(message: T) -> Self {
        FormError::Malformed(message.to_string())
    }

    fn missing_field(field: &'static str) -> Self {
        FormError::Missing(field)
    }

    fn unknown_field(field: &str, _expected: &'static [&'static str]) -> Self {
        FormError::Unknown(field.to_owned())
    }
}

/// Reads a form-encoded body or query string into `T`.
pub fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, FormError> {
    let mut fields: Vec<(String, FieldValues)> = Vec::new();
    for (name, value) in form_urlencoded::parse(bytes).take(MAX_PAIRS) {
        match fields.iter_mut().find(|(known, _)| *known == name) {
            Some((_, values)) => values.values.push(value.into_owned()),
            None => fields.push((
                name.clone().into_owned(),
                FieldValues {
                    name: name.into_owned(),
                    values: vec![value.into_owned()],
                },
            )),
        }
    }
    T::deserialize(MapDeserializer::new(fields.into_iter()))
}

/// The values one field was sent with, in order: one, unless the field is a list (`Vec`).
struct FieldValues {
    name: String,
    values: Vec<String>,
}

impl FieldValues {
    /// The field's one value, or why it has more than one.
    fn single(self) -> Result<(String, String), FormError> {
        let FieldValues { name, mut values } = self;
        match values.len() {
            1 => Ok((name, values.remove(0))),
            _ => Err(FormError::Repeated(name)),
        }
    }

    /// The field's one value parsed as `T`, or that it must be `expected`.
    fn parsed<T: std::str::FromStr>(self, expected: &'static str) -> Result<T, FormError> {
        let (field, value) = self.single()?;
        value
            .parse()
            .map_err(|_| FormError::Invalid { field, expected })
    }
}

impl<'de> IntoDeserializer<'de, FormError> for FieldValues {
    type Deserializer = Self;

    fn into_deserializer(self) -> Self {
        self
    }
}

macro_rules! parse_number {
    ($($method:ident $visit:ident $type:ty),*) => {$(
        fn $method<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, FormError> {
            visitor.$visit(self.parsed::<$type>("a number")?)
        }
    )*};
}

impl<'de> de::Deserializer<'de> for FieldValues {
    type Error = FormError;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, FormError> {
        visitor.visit_string(self.single()?.1)
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, FormError> {
        if self.values.len() == 1 && self.values[0].is_empty() {
            visitor.visit_none()
        } else {
            visitor.visit_some(self)
        }
    }

    fn deserialize_bool<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, FormError> {
        visitor.visit_bool(self.parsed("true or false")?)
    }

    parse_number! {
        deserialize_u8 visit_u8 u8, deserialize_u16 visit_u16 u16,
        deserialize_u32 visit_u32 u32, deserialize_u64 visit_u64 u64,
        deserialize_i32 visit_i32 i32, deserialize_i64 visit_i64 i64
    }

    fn deserialize_seq<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, FormError> {
        let name = self.name;
        visitor.visit_seq(SeqDeserializer::new(self.values.into_iter().map(
            move |value| FieldValues {
                name: name.clone(),
                values: vec![value],
            },
        )))
    }

    /// A field the struct does not declare: ignored, however often it came.
    fn deserialize_ignored_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, FormError> {
        visitor.visit_unit()
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, FormError> {
        visitor.visit_newtype_struct(self)
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, FormError> {
        let variant: StringDeserializer<FormError> = self.single()?.1.into_deserializer();
        visitor.visit_enum(variant)
    }

    forward_to_deserialize_any! {
        i8 i16 i128 u128 f32 f64 char str string bytes byte_buf unit unit_struct tuple
        tuple_struct map struct identifier
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Debug, Deserialize, PartialEq)]
    struct Sample {
        code: Option<String>,
        state: Option<String>,
        #[serde(rename = "redirect_uri")]
        redirect: String,
    }

    #[test]
    fn declared_fields_are_read_and_unknown_ones_ignored() {
        let sample: Sample =
            decode(b"code=a%20b&other=1&other=2&redirect_uri=https%3A%2F%2Fx").unwrap();
        assert_eq!(
            sample,
            Sample {
                code: Some("a b".into()),
                state: None,
                redirect: "https://x".into()
            }
        );
    }

    #[test]
    fn a_declared_field_sent_twice_is_refused() {
        assert_eq!(
            decode::<Sample>(b"code=a&code=b&redirect_uri=x"),
            Err(FormError::Repeated("code".into()))
        );
    }

    #[test]
    fn a_field_without_a_value_is_absent() {
        let sample: Sample = decode(b"code=&state&redirect_uri=x").unwrap();
        assert_eq!((sample.code, sample.state), (None, None));
        assert_eq!(
            decode::<Sample>(b"code=a"),
            Err(FormError::Missing("redirect_uri"))
        );
    }

    #[derive(Debug, Deserialize, PartialEq)]
    #[serde(rename_all = "camelCase", deny_unknown_fields)]
    struct Search {
        #[serde(default)]
        ids: Vec<String>,
        number_of_results: Option<usize>,
        accurate_total: Option<bool>,
    }

    #[test]
    fn a_list_takes_every_value_and_numbers_and_flags_are_parsed() {
        let search: Search = decode(b"ids=a&numberOfResults=5&ids=b&accurateTotal=true").unwrap();
        assert_eq!(
            search,
            Search {
                ids: vec!["a".into(), "b".into()],
                number_of_results: Some(5),
                accurate_total: Some(true)
            }
        );
    }

    #[test]
    fn a_value_of_the_wrong_shape_names_its_field() {
        assert_eq!(
            decode::<Search>(b"numberOfResults=many"),
            Err(FormError::Invalid {
                field: "numberOfResults".into(),
                expected: "a number"
            })
        );
        assert_eq!(
            decode::<Search>(b"accurateTotal=yes"),
            Err(FormError::Invalid {
                field: "accurateTotal".into(),
                expected: "true or false"
            })
        );
        assert_eq!(
            decode::<Search>(b"sort=name"),
            Err(FormError::Unknown("sort".into()))
        );
    }

    #[test]
    fn pairs_past_the_bound_are_not_read() {
        let mut body = "x=1&".repeat(MAX_PAIRS);
        body.push_str("redirect_uri=late");
        assert_eq!(
            decode::<Sample>(body.as_bytes()),
            Err(FormError::Missing("redirect_uri"))
        );
    }
}
