//! The filters and functions translated FreeMarker calls, with FreeMarker's meaning.

use std::fmt;
use std::sync::Arc;

use minijinja::value::{Object, Rest, Value, ValueKind};
use minijinja::{Environment, Error, ErrorKind};

use crate::domain::render;

/// Registers the functions a translated template calls.
pub(crate) fn install(env: &mut Environment<'_>) {
    env.add_function("fm_default", |value: Value, default: Value| {
        if is_missing(&value) {
            default
        } else {
            value
        }
    });
    env.add_function("fm_exists", |value: Value| !is_missing(&value));
    env.add_function("fm_text", |value: Value, zone: Value| text(&value, &zone));
    env.add_function("fm_add", add);
    env.add_function("fm_url", url);
    env.add_function("fm_html", |value: Value| {
        Value::from_safe_string(escape_html(&plain(&value)))
    });
    env.add_function("fm_string", string);
    env.add_function("fm_c", |value: Value| plain(&value));
    env.add_function("fm_int", int);
    env.add_function("fm_number", number);
    env.add_function("fm_datetime", datetime);
    env.add_function("fm_has_content", has_content);
    env.add_function("fm_case", case);
    env.add_function("fm_size", |value: Value| {
        if let Some(s) = value.as_str() {
            return Ok(Value::from(s.chars().count()));
        }
        value
            .len()
            .map(Value::from)
            .ok_or_else(|| invalid("`?size` needs a string, sequence or hash"))
    });
    env.add_function("fm_keys", |value: Value| entries(&value, |k, _| k));
    env.add_function("fm_values", |value: Value| entries(&value, |_, v| v));
    env.add_function("fm_pairs", |value: Value| {
        entries(&value, |k, v| Value::from(vec![k, v]))
    });
    env.add_function("fm_items", |value: Value| {
        if is_missing(&value) {
            Value::from(Vec::<Value>::new())
        } else {
            value
        }
    });
    env.add_function("fm_join", |value: Value, separator: Value| {
        let parts = sequence(&value)?.iter().map(plain).collect::<Vec<_>>();
        render::measured_join(&parts, &plain(&separator))
    });
    env.add_function("fm_replace", |value: Value, from: Value, to: Value| {
        render::measured_replace(&plain(&value), &plain(&from), &plain(&to), None)
    });
    env.add_function("fm_contains", |value: Value, part: Value| {
        plain(&value).contains(&plain(&part))
    });
    env.add_function("fm_starts_with", |value: Value, part: Value| {
        plain(&value).starts_with(&plain(&part))
    });
    env.add_function("fm_ends_with", |value: Value, part: Value| {
        plain(&value).ends_with(&plain(&part))
    });
}

fn invalid(message: impl Into<String>) -> Error {
    Error::new(ErrorKind::InvalidOperation, message.into())
}

fn is_missing(value: &Value) -> bool {
    value.is_undefined() || value.is_none()
}

/// A date-time, as FreeMarker's `.now` and `?number_to_datetime` make: epoch milliseconds,
/// shown in the template's `time_zone` setting.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DateTime(pub i64);

impl Object for DateTime {
    fn render(self: &Arc<Self>, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let shown = format_java(self.0, "UTC", DEFAULT_DATETIME_PATTERN).unwrap_or_default();
        f.write_str(&shown)
    }
}

fn as_datetime(value: &Value) -> Option<i64> {
    value.downcast_object_ref::<DateTime>().map(|d| d.0)
}

/// A value as text: date-times in the template's zone, missing values as nothing.
fn plain(value: &Value) -> String {
    if is_missing(value) {
        String::new()
    } else if let Some(millis) = as_datetime(value) {
        format_java(millis, "UTC", DEFAULT_DATETIME_PATTERN).unwrap_or_default()
    } else {
        value.to_string()
    }
}

/// What `${…}` prints: a date-time in the template's zone; anything else as it is, so a
/// value made safe by `?html` is not escaped twice.
fn text(value: &Value, zone: &Value) -> Result<Value, Error> {
    match as_datetime(value) {
        Some(millis) => Ok(Value::from(format_java(
            millis,
            zone.as_str().unwrap_or("UTC"),
            DEFAULT_DATETIME_PATTERN,
        )?)),
        None => Ok(value.clone()),
    }
}

/// FreeMarker's `+`: numbers add, sequences and hashes concatenate, anything else joins as
/// text.
fn add(left: Value, right: Value) -> Result<Value, Error> {
    if left.is_number() && right.is_number() {
        if let (Some(a), Some(b)) = (left.as_i64(), right.as_i64()) {
            if let Some(sum) = a.checked_add(b) {
                return Ok(Value::from(sum));
            }
        }
        let a = f64::try_from(left)?;
        let b = f64::try_from(right)?;
        return Ok(Value::from(a + b));
    }
    match (left.kind(), right.kind()) {
        (ValueKind::Seq, ValueKind::Seq) => {
            let mut items = sequence(&left)?;
            items.extend(sequence(&right)?);
            Ok(Value::from(items))
        }
        (ValueKind::Map, ValueKind::Map) => {
            let mut merged: Vec<(Value, Value)> = pairs(&left)?;
            for (key, value) in pairs(&right)? {
                merged.retain(|(k, _)| *k != key);
                merged.push((key, value));
            }
            Ok(Value::from_iter(merged))
        }
        _ => Ok(Value::from(plain(&left) + &plain(&right))),
    }
}

fn sequence(value: &Value) -> Result<Vec<Value>, Error> {
    if is_missing(value) {
        return Ok(Vec::new());
    }
    Ok(value.try_iter()?.collect())
}

fn pairs(value: &Value) -> Result<Vec<(Value, Value)>, Error> {
    if is_missing(value) {
        return Ok(Vec::new());
    }
    if value.kind() != ValueKind::Map {
        return Err(invalid("listing `as key, value` needs a hash"));
    }
    value
        .try_iter()?
        .map(|key| {
            let item = value.get_item(&key)?;
            Ok((key, item))
        })
        .collect()
}

fn entries(value: &Value, pick: impl Fn(Value, Value) -> Value) -> Result<Value, Error> {
    Ok(Value::from(
        pairs(value)?
            .into_iter()
            .map(|(k, v)| pick(k, v))
            .collect::<Vec<_>>(),
    ))
}

/// `?url`: percent-encodes all but letters, digits and `-_.!~*'()` as FreeMarker does (a
/// space is `%20`); `?url_path` also leaves `/` alone.
fn url(value: Value, keep_slash: bool, _charset: Rest<Value>) -> String {
    let text = plain(&value);
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        let kept = byte.is_ascii_alphanumeric()
            || b"-_.!~*'()".contains(&byte)
            || (keep_slash && byte == b'/');
        if kept {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

pub(crate) fn escape_html(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => escaped.push_str("&amp;"),
            '<' => escaped.push_str("&lt;"),
            '>' => escaped.push_str("&gt;"),
            '"' => escaped.push_str("&quot;"),
            '\'' => escaped.push_str("&#39;"),
            c => escaped.push(c),
        }
    }
    escaped
}

/// `?string`: a date-time in a Java pattern (`"h:mm a z"`) or a named style; a number in
/// a decimal pattern (`"0.##"`); a boolean as one of two texts.
fn string(value: Value, zone: Value, args: Rest<Value>) -> Result<Value, Error> {
    let zone = zone.as_str().unwrap_or("UTC");
    if let Some(millis) = as_datetime(&value) {
        let pattern = match args.0.as_slice() {
            [] => DEFAULT_DATETIME_PATTERN.to_owned(),
            [pattern] => plain(pattern),
            _ => return Err(invalid("`?string` of a date-time takes one pattern")),
        };
        let pattern = match pattern.as_str() {
            "short" => "M/d/yy, h:mm a",
            "medium" => DEFAULT_DATETIME_PATTERN,
            "long" => "MMMM d, yyyy 'at' h:mm:ss a z",
            "full" => "EEEE, MMMM d, yyyy 'at' h:mm:ss a zzzz",
            "iso" => "yyyy-MM-dd'T'HH:mm:ssXXX",
            other => other,
        };
        return Ok(Value::from(format_java(millis, zone, pattern)?));
    }
    if value.kind() == ValueKind::Bool {
        return Ok(match args.0.as_slice() {
            [] => Value::from(value.is_true().to_string()),
            [yes, no] => {
                if value.is_true() {
                    yes.clone()
                } else {
                    no.clone()
                }
            }
            _ => return Err(invalid("`?string` of a boolean takes two texts")),
        });
    }
    if value.is_number() {
        return match args.0.as_slice() {
            [] => Ok(Value::from(plain(&value))),
            [pattern] => Ok(Value::from(decimal(&value, &plain(pattern))?)),
            _ => Err(invalid("`?string` of a number takes one pattern")),
        };
    }
    Ok(Value::from(plain(&value)))
}

/// A number in a Java decimal pattern without grouping: `0`, `0.00`, `0.##`, `computer`.
fn decimal(value: &Value, pattern: &str) -> Result<String, Error> {
    let number = f64::try_from(value.clone())?;
    if pattern == "computer" {
        return Ok(plain(value));
    }
    let (_, fraction) = pattern.split_once('.').unwrap_or((pattern, ""));
    if !pattern.chars().all(|c| matches!(c, '0' | '#' | '.')) {
        return Err(invalid(format!(
            "the number pattern `{pattern}` is not supported (use 0, # and .)"
        )));
    }
    let min = fraction.chars().filter(|c| *c == '0').count();
    let max = fraction.len();
    let mut shown = format!("{number:.max$}");
    if shown.contains('.') {
        while shown.ends_with('0') && shown.len() - shown.find('.').unwrap_or(0) - 1 > min {
            shown.pop();
        }
        if shown.ends_with('.') {
            shown.pop();
        }
    }
    Ok(shown)
}

fn int(value: Value) -> Result<Value, Error> {
    if let Some(millis) = as_datetime(&value) {
        return Ok(Value::from(millis));
    }
    if let Some(i) = value.as_i64() {
        return Ok(Value::from(i));
    }
    let n = f64::try_from(number(value)?)?;
    // FreeMarker truncates toward zero.
    #[allow(clippy::cast_possible_truncation)]
    Ok(Value::from(n.trunc() as i64))
}

fn number(value: Value) -> Result<Value, Error> {
    if value.is_number() {
        return Ok(value);
    }
    let text = plain(&value);
    let text = text.trim();
    if let Ok(i) = text.parse::<i64>() {
        return Ok(Value::from(i));
    }
    text.parse::<f64>()
        .map(Value::from)
        .map_err(|_| invalid(format!("`{text}` is not a number")))
}

fn datetime(value: Value) -> Result<Value, Error> {
    if as_datetime(&value).is_some() {
        return Ok(value);
    }
    let millis = int(value)?
        .as_i64()
        .ok_or_else(|| invalid("a date-time needs epoch milliseconds"))?;
    Ok(Value::from_object(DateTime(millis)))
}

fn has_content(value: Value) -> bool {
    if is_missing(&value) {
        return false;
    }
    match value.kind() {
        ValueKind::String | ValueKind::Seq | ValueKind::Map => value.len().unwrap_or(0) > 0,
        _ => true,
    }
}

fn case(value: Value, how: &str) -> String {
    let text = plain(&value);
    match how {
        "upper" => text.to_uppercase(),
        "lower" => text.to_lowercase(),
        "trim" => text.trim().to_owned(),
        _ => {
            let mut chars = text.chars();
            chars.next().map_or_else(String::new, |first| {
                first.to_uppercase().chain(chars).collect()
            })
        }
    }
}

/// Java's default for a date-time in English (`Nov 28, 2026, 4:47:29 PM`).
pub(crate) const DEFAULT_DATETIME_PATTERN: &str = "MMM d, yyyy, h:mm:ss a";

const MONTHS: [&str; 12] = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
];
const DAYS: [&str; 7] = [
    "Monday",
    "Tuesday",
    "Wednesday",
    "Thursday",
    "Friday",
    "Saturday",
    "Sunday",
];

/// Formats epoch milliseconds in an IANA zone with a Java `SimpleDateFormat` pattern. An
/// unknown zone is UTC, as Java's `TimeZone.getTimeZone` makes it.
pub(crate) fn format_java(millis: i64, zone: &str, pattern: &str) -> Result<String, Error> {
    let timestamp = jiff::Timestamp::from_millisecond(millis)
        .map_err(|e| invalid(format!("the date-time is out of range: {e}")))?;
    let zone = jiff::tz::TimeZone::get(zone).unwrap_or(jiff::tz::TimeZone::UTC);
    let info = zone.to_offset_info(timestamp);
    let abbreviation = info.abbreviation().to_owned();
    let offset = info.offset().seconds();
    let at = timestamp.to_zoned(zone);
    let mut out = String::new();
    let mut chars = pattern.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\'' {
            if chars.peek() == Some(&'\'') {
                chars.next();
                out.push('\'');
                continue;
            }
            while let Some(quoted) = chars.next() {
                if quoted != '\'' {
                    out.push(quoted);
                } else if chars.peek() == Some(&'\'') {
                    chars.next();
                    out.push('\'');
                } else {
                    break;
                }
            }
            continue;
        }
        if !c.is_ascii_alphabetic() {
            out.push(c);
            continue;
        }
        let mut count = 1;
        while chars.peek() == Some(&c) {
            chars.next();
            count += 1;
        }
        let padded = |n: i64| format!("{n:0count$}");
        let hour = i64::from(at.hour());
        match c {
            'G' => out.push_str(if at.year() > 0 { "AD" } else { "BC" }),
            'u' => out.push_str(&i64::from(at.weekday().to_monday_one_offset()).to_string()),
            'y' | 'Y' if count == 2 => {
                out.push_str(&format!("{:02}", i64::from(at.year()).rem_euclid(100)));
            }
            'y' | 'Y' => out.push_str(&padded(i64::from(at.year()))),
            'M' | 'L' => {
                let month = usize::try_from(at.month() - 1).unwrap_or(0);
                match count {
                    1 | 2 => out.push_str(&padded(i64::from(at.month()))),
                    3 => out.push_str(&MONTHS[month][..3]),
                    _ => out.push_str(MONTHS[month]),
                }
            }
            'd' => out.push_str(&padded(i64::from(at.day()))),
            'D' => out.push_str(&padded(i64::from(at.day_of_year()))),
            'E' => {
                let day = usize::try_from(at.weekday().to_monday_one_offset() - 1).unwrap_or(0);
                out.push_str(if count >= 4 {
                    DAYS[day]
                } else {
                    &DAYS[day][..3]
                });
            }
            'a' => out.push_str(if hour < 12 { "AM" } else { "PM" }),
            'H' => out.push_str(&padded(hour)),
            'k' => out.push_str(&padded(if hour == 0 { 24 } else { hour })),
            'K' => out.push_str(&padded(hour % 12)),
            'h' => out.push_str(&padded(if hour % 12 == 0 { 12 } else { hour % 12 })),
            'm' => out.push_str(&padded(i64::from(at.minute()))),
            's' => out.push_str(&padded(i64::from(at.second()))),
            'S' => out.push_str(&padded(i64::from(at.millisecond()))),
            // Java's long zone names are not in the zone database; the abbreviation is.
            'z' => out.push_str(&abbreviation),
            'Z' => out.push_str(&offset_text(offset, false)),
            'X' if offset == 0 => out.push('Z'),
            'X' if count == 1 => out.push_str(&offset_text(offset, false)[..3]),
            'X' => out.push_str(&offset_text(offset, count >= 3)),
            other => {
                return Err(invalid(format!(
                    "the date pattern letter `{other}` is not supported"
                )))
            }
        }
    }
    Ok(out)
}

fn offset_text(seconds: i32, colon: bool) -> String {
    let sign = if seconds < 0 { '-' } else { '+' };
    let minutes = seconds.unsigned_abs() / 60;
    let (h, m) = (minutes / 60, minutes % 60);
    if colon {
        format!("{sign}{h:02}:{m:02}")
    } else {
        format!("{sign}{h:02}{m:02}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // 2026-11-28T16:47:09.250Z, a Saturday.
    const AT: i64 = 1_795_884_429_250;

    #[test]
    fn java_patterns_format_in_the_given_zone() {
        assert_eq!(
            format_java(AT, "America/Denver", "h:mm a z").unwrap(),
            "9:47 AM MST"
        );
        assert_eq!(
            format_java(AT, "Europe/Berlin", "EEEE, d MMMM yyyy HH:mm:ss.SSS Z").unwrap(),
            "Saturday, 28 November 2026 17:47:09.250 +0100"
        );
        assert_eq!(
            format_java(AT, "UTC", "yyyy-MM-dd'T'HH:mm:ssXXX").unwrap(),
            "2026-11-28T16:47:09Z"
        );
        assert_eq!(
            format_java(AT, "Asia/Kolkata", "yy/M/d hh 'o''clock' XXX").unwrap(),
            "26/11/28 10 o'clock +05:30"
        );
    }

    #[test]
    fn an_unknown_zone_is_utc_and_an_unknown_letter_is_an_error() {
        assert_eq!(format_java(AT, "Mars/Olympus", "HH:mm").unwrap(), "16:47");
        assert!(format_java(AT, "UTC", "QQQ").is_err());
    }

    #[test]
    fn url_escaping_follows_freemarker() {
        assert_eq!(
            url(Value::from("a b&c=d/é~*'()"), false, Rest(vec![])),
            "a%20b%26c%3Dd%2F%C3%A9~*'()"
        );
        assert_eq!(url(Value::from("/a b/"), true, Rest(vec![])), "/a%20b/");
    }

    #[test]
    fn decimal_patterns_round_and_trim() {
        assert_eq!(decimal(&Value::from(2.5_f64), "0").unwrap(), "2");
        assert_eq!(decimal(&Value::from(2.456_f64), "0.##").unwrap(), "2.46");
        assert_eq!(decimal(&Value::from(2.0_f64), "0.0#").unwrap(), "2.0");
    }
}
