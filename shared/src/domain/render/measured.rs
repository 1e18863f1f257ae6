//! The measured operations a rewritten template calls: each checks the size of what it would
//! build against the part's cap and the render's budget before building it.

use std::cell::Cell;
use std::fmt::{self, Write as _};
use std::sync::OnceLock;

use minijinja::value::{Value, ValueKind};
use minijinja::{Environment, Error, ErrorKind, Expression};
use serde::Serialize;

use super::{
    measured_join, measured_replace, ITEM_BYTES, MAX_BUILT_BYTES, MAX_RENDERED_PART_BYTES,
};

thread_local! {
    /// The bytes the render on this thread may still build; `None` outside a render.
    static BUDGET: Cell<Option<usize>> = const { Cell::new(None) };
}

/// Sets the budget for one render and takes it away again, however the render ends.
pub(super) struct BudgetScope(Option<usize>);

impl BudgetScope {
    pub(super) fn enter() -> Self {
        BudgetScope(BUDGET.with(|b| b.replace(Some(MAX_BUILT_BYTES))))
    }
}

impl Drop for BudgetScope {
    fn drop(&mut self) {
        BUDGET.with(|b| b.set(self.0));
    }
}

fn too_large() -> Error {
    Error::new(
        ErrorKind::InvalidOperation,
        format!(
            "the template builds more than it may: a value is limited to {MAX_RENDERED_PART_BYTES} bytes and one render to {MAX_BUILT_BYTES}"
        ),
    )
}

/// Counts `bytes` against the render's budget, before they are built where the caller can
/// tell the size first.
pub(super) fn charge(bytes: usize) -> Result<(), Error> {
    if bytes > MAX_RENDERED_PART_BYTES {
        return Err(too_large());
    }
    BUDGET.with(|budget| match budget.get() {
        Some(left) if bytes <= left => {
            budget.set(Some(left - bytes));
            Ok(())
        }
        Some(_) => Err(too_large()),
        None => Err(Error::new(
            ErrorKind::InvalidOperation,
            "templates render only through the bounded renderer",
        )),
    })
}

/// What a value costs: its text, or its items (a lazy sequence such as a range holds none).
fn cost(value: &Value) -> usize {
    match value.kind() {
        ValueKind::String => value.as_str().map_or(0, str::len),
        ValueKind::Bytes => value.as_bytes().map_or(0, <[u8]>::len),
        ValueKind::Seq => value.len().unwrap_or(0).saturating_mul(ITEM_BYTES),
        ValueKind::Map => value.len().unwrap_or(0).saturating_mul(2 * ITEM_BYTES),
        _ => 0,
    }
}

pub(super) fn fit(value: Value) -> Result<Value, Error> {
    charge(cost(&value))?;
    Ok(value)
}

/// A writer of text that refuses to grow past the part's cap.
struct Capped(String);

impl fmt::Write for Capped {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        if self.0.len() + s.len() > MAX_RENDERED_PART_BYTES {
            return Err(fmt::Error);
        }
        self.0.push_str(s);
        Ok(())
    }
}

/// A value's text as MiniJinja prints it, refused beyond the part's cap.
pub(super) fn display(value: &Value) -> Result<String, Error> {
    if let Some(s) = value.as_str() {
        if s.len() > MAX_RENDERED_PART_BYTES {
            return Err(too_large());
        }
        return Ok(s.to_owned());
    }
    let mut out = Capped(String::new());
    write!(out, "{value}").map_err(|_| too_large())?;
    Ok(out.0)
}

pub(super) fn concat(left: Value, right: Value) -> Result<Value, Error> {
    let (left, right) = (display(&left)?, display(&right)?);
    charge(left.len() + right.len())?;
    Ok(Value::from(left + &right))
}

fn is_sequence(value: &Value) -> bool {
    matches!(value.kind(), ValueKind::Seq | ValueKind::Iterable)
}

/// The items of a sequence, counted against the budget before they are gathered.
pub(super) fn items(value: &Value) -> Result<Vec<Value>, Error> {
    let iter = value.try_iter()?;
    let mut items = Vec::new();
    for item in iter {
        charge(ITEM_BYTES)?;
        items.push(item);
    }
    Ok(items)
}

pub(super) fn add(left: Value, right: Value) -> Result<Value, Error> {
    if is_sequence(&left) && is_sequence(&right) {
        let mut all = items(&left)?;
        all.extend(items(&right)?);
        return Ok(Value::from(all));
    }
    if left.kind() == ValueKind::String && right.kind() == ValueKind::String {
        return concat(left, right);
    }
    arithmetic(Operation::Add, left, right)
}

pub(super) fn multiply(left: Value, right: Value) -> Result<Value, Error> {
    let (repeated, times) = if left.is_number() {
        (&right, &left)
    } else {
        (&left, &right)
    };
    if repeated.kind() == ValueKind::String || is_sequence(repeated) {
        let times = times.as_usize().ok_or_else(|| {
            Error::new(
                ErrorKind::InvalidOperation,
                "strings and sequences can only be multiplied with integers",
            )
        })?;
        if let Some(s) = repeated.as_str() {
            charge(s.len().saturating_mul(times))?;
            return Ok(Value::from(s.repeat(times)));
        }
        let once = items(repeated)?;
        charge(once.len().saturating_mul(times).saturating_mul(ITEM_BYTES))?;
        let mut all = Vec::with_capacity(once.len() * times);
        for _ in 0..times {
            all.extend(once.iter().cloned());
        }
        return Ok(Value::from(all));
    }
    arithmetic(Operation::Multiply, left, right)
}

pub(super) fn slice(value: Value, start: Value, stop: Value, step: Value) -> Result<Value, Error> {
    let sliced = Operation::Slice
        .eval(minijinja::context! { v => value, a => start, b => stop, c => step })?;
    fit(sliced)
}

/// The operations left to MiniJinja itself once the sizes are known to be small: arithmetic
/// on numbers (a number is never large) and slicing (never larger than what is sliced).
#[derive(Clone, Copy)]
enum Operation {
    Add,
    Multiply,
    Slice,
}

impl Operation {
    fn eval<S: Serialize>(self, context: S) -> Result<Value, Error> {
        static ENVIRONMENT: OnceLock<Environment<'static>> = OnceLock::new();
        static COMPILED: OnceLock<[Result<Expression<'static, 'static>, String>; 3]> =
            OnceLock::new();
        let compiled = COMPILED.get_or_init(|| {
            let env = ENVIRONMENT.get_or_init(Environment::empty);
            ["a + b", "a * b", "v[a:b:c]"]
                .map(|source| env.compile_expression(source).map_err(|e| e.to_string()))
        });
        match &compiled[self as usize] {
            Ok(expression) => expression.eval(context),
            Err(reason) => Err(Error::new(ErrorKind::InvalidOperation, reason.clone())),
        }
    }
}

fn arithmetic(operation: Operation, left: Value, right: Value) -> Result<Value, Error> {
    // Only scalars reach MiniJinja's own operator: a string or sequence here would be built
    // unmeasured.
    for operand in [&left, &right] {
        if matches!(
            operand.kind(),
            ValueKind::String
                | ValueKind::Bytes
                | ValueKind::Seq
                | ValueKind::Map
                | ValueKind::Iterable
                | ValueKind::Plain
        ) {
            return Err(Error::new(
                ErrorKind::InvalidOperation,
                format!(
                    "unsupported operand types ({} and {})",
                    left.kind(),
                    right.kind()
                ),
            ));
        }
    }
    operation.eval(minijinja::context! { a => left, b => right })
}

/// `join`, measured before it is built.
pub(super) fn join(value: Value, separator: Option<Value>) -> Result<Value, Error> {
    if value.is_undefined() || value.is_none() {
        return Ok(Value::from(""));
    }
    let separator = separator
        .as_ref()
        .map(display)
        .transpose()?
        .unwrap_or_default();
    let parts = items(&value)?
        .iter()
        .map(display)
        .collect::<Result<Vec<_>, _>>()?;
    let joined = measured_join(&parts, &separator)?;
    Ok(if value.is_safe() {
        Value::from_safe_string(joined)
    } else {
        Value::from(joined)
    })
}

/// `replace`, measured before it is built.
pub(super) fn replace(
    value: Value,
    from: Value,
    to: Value,
    count: Option<usize>,
) -> Result<Value, Error> {
    let replaced = measured_replace(&display(&value)?, &display(&from)?, &display(&to)?, count)?;
    Ok(if value.is_safe() {
        Value::from_safe_string(replaced)
    } else {
        Value::from(replaced)
    })
}
