//! Rendering templates within bounds of steps, output and memory (S29, S32).
//!
//! MiniJinja bounds a render's steps (fuel), and the writer below bounds what it writes. A
//! value built inside the template is made before anything is written, though: one
//! `{% set ns.s = ns.s ~ ns.s %}` in a loop doubles a string each turn, and a gigabyte fits
//! in thirty turns. So before a source compiles, every operation that can build a value is
//! rewritten into a call of ours that measures the value first: `a ~ b`, `a + b`, `a * b`
//! and slices become `__cat`, `__add`, `__mul` and `__slice`, and every filter and function
//! call is wrapped in `__fit`, which measures its result. No value may exceed the part's
//! output cap, and all the values one render builds together may not exceed
//! [`MAX_BUILT_BYTES`]; a render that would is stopped with an error and the process stays
//! up. The rewritten source is parsed again and checked to hold no unmeasured operation, so
//! a construct the rewriting missed refuses the template instead of escaping the bounds.
//!
//! Filters whose result can outgrow their input many times over are replaced by versions
//! that measure first (`join`, `replace`, `string`); those that have no use in a page or an
//! email worth a bounded copy (`format`, `indent`, `batch`, `slice`, `groupby`, `chain`,
//! `zip`, `pprint`, `tojson`) are not offered. Constructs that capture output into a value
//! (`{% set %}…{% endset %}`, `{% filter %}`, `super()`, `self`), `{% include %}`,
//! `{% import %}` and recursive loops are refused when the template is saved.

use std::cell::Cell;
use std::fmt::{self, Write as _};
use std::sync::OnceLock;

use minijinja::machinery::ast::{BinOpKind, Call, CallArg, Expr, Stmt};
use minijinja::machinery::{parse, Span, WhitespaceConfig};
use minijinja::syntax::SyntaxConfig;
use minijinja::value::{Value, ValueKind};
use minijinja::{Environment, Error, ErrorKind, Expression};
use serde::Serialize;

/// How many template instructions one part may run (S29): ample for any real email or page
/// (a few hundred), far short of a loop that would burn seconds of CPU.
pub const TEMPLATE_FUEL: u64 = 100_000;

/// The largest rendered part, and so the largest value a template may build (S29, S32).
pub const MAX_RENDERED_PART_BYTES: usize = 256 * 1024;

/// All the values one render builds, together (S32): a real template builds a few short
/// strings; this leaves room for four parts' worth.
pub const MAX_BUILT_BYTES: usize = 4 * MAX_RENDERED_PART_BYTES;

/// What one item of a built sequence or map is counted as: the size of a value.
const ITEM_BYTES: usize = 32;

/// Why a template cannot render, or cannot be saved.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct RenderError {
    pub message: String,
    /// The source line the problem is on, where one is known.
    pub line: Option<usize>,
}

impl RenderError {
    fn new(message: impl Into<String>) -> Self {
        RenderError {
            message: message.into(),
            line: None,
        }
    }

    fn at(span: Span, message: impl Into<String>) -> Self {
        RenderError {
            message: message.into(),
            line: Some(usize::from(span.start_line)),
        }
    }
}

impl From<Error> for RenderError {
    fn from(e: Error) -> Self {
        RenderError {
            message: e.to_string(),
            line: e.line(),
        }
    }
}

/// A syntax error, worded for the template's author.
fn syntax(e: Error) -> RenderError {
    RenderError {
        message: e
            .detail()
            .map_or_else(|| e.kind().to_string(), str::to_owned),
        line: e.line(),
    }
}

/// Filters that are not offered, each with why.
const WITHHELD_FILTERS: [&str; 9] = [
    "format", "indent", "batch", "slice", "groupby", "chain", "zip", "pprint", "tojson",
];

/// The environment's settings every template renders with: fuel, the measuring functions,
/// the bounded filters and a formatter that prints a sequence or map within the part's cap.
pub fn install(env: &mut Environment<'_>) {
    env.set_fuel(Some(TEMPLATE_FUEL));
    env.add_function("__cat", concat);
    env.add_function("__add", add);
    env.add_function("__mul", multiply);
    env.add_function("__slice", slice);
    env.add_function("__fit", fit);
    env.add_filter("join", join);
    env.add_filter("replace", replace);
    env.add_filter("string", |value: Value| -> Result<Value, Error> {
        Ok(Value::from(display(&value)?))
    });
    for name in WITHHELD_FILTERS {
        env.remove_filter(name);
    }
    env.set_formatter(|out, state, value| {
        minijinja::escape_formatter(out, state, &printable(value)?)
    });
}

/// A value as the formatter may print it: a sequence or map (which would be printed whole,
/// however deeply it shares its parts) becomes its text, refused beyond the part's cap.
pub fn printable(value: &Value) -> Result<Value, Error> {
    match value.kind() {
        ValueKind::Seq | ValueKind::Map | ValueKind::Iterable | ValueKind::Plain => {
            Ok(Value::from(display(value)?))
        }
        _ => Ok(value.clone()),
    }
}

/// Checks a source when it is saved: it parses, holds only what renders within the bounds,
/// and compiles once rewritten for them; the error names the line.
pub fn check(source: &str) -> Result<(), RenderError> {
    let prepared = prepare(source)?;
    Environment::new()
        .template_from_str(&prepared)
        .map(drop)
        .map_err(syntax)
}

/// Rewrites a template source so that every value it builds is measured (see the module's
/// documentation), or says why it cannot be used, with the line.
pub fn prepare(source: &str) -> Result<String, RenderError> {
    let ast = parse(
        source,
        "template",
        SyntaxConfig,
        WhitespaceConfig::default(),
    )
    .map_err(syntax)?;
    let rewriter = Rewriter { source };
    let mut edits = Vec::new();
    rewriter.statement(&ast, &mut edits)?;
    let whole = Piece {
        start: 0,
        end: source.len(),
        text: String::new(),
    };
    let rewritten = rewriter.splice(whole.start, whole.end, edits)?.text;
    let check = parse(
        &rewritten,
        "template",
        SyntaxConfig,
        WhitespaceConfig::default(),
    )
    .map_err(|_| RenderError::new("the template could not be prepared for rendering"))?;
    Verifier.statement(&check)?;
    Ok(rewritten)
}

/// A stretch of the source and what replaces it.
struct Piece {
    start: usize,
    end: usize,
    text: String,
}

struct Rewriter<'s> {
    source: &'s str,
}

impl Rewriter<'_> {
    fn statement(&self, stmt: &Stmt<'_>, edits: &mut Vec<Piece>) -> Result<(), RenderError> {
        match stmt {
            Stmt::Template(t) => self.statements(&t.children, edits),
            Stmt::EmitExpr(e) => self.expression_into(&e.expr, edits),
            Stmt::EmitRaw(_) => Ok(()),
            Stmt::ForLoop(f) => {
                if f.recursive {
                    return Err(RenderError::at(
                        f.span(),
                        "recursive loops are not supported",
                    ));
                }
                self.expression_into(&f.iter, edits)?;
                if let Some(filter) = &f.filter_expr {
                    self.expression_into(filter, edits)?;
                }
                self.statements(&f.body, edits)?;
                self.statements(&f.else_body, edits)
            }
            Stmt::IfCond(i) => {
                self.expression_into(&i.expr, edits)?;
                self.statements(&i.true_body, edits)?;
                self.statements(&i.false_body, edits)
            }
            Stmt::WithBlock(w) => {
                for (_, value) in &w.assignments {
                    self.expression_into(value, edits)?;
                }
                self.statements(&w.body, edits)
            }
            Stmt::Set(s) => self.expression_into(&s.expr, edits),
            Stmt::SetBlock(s) => Err(RenderError::at(
                s.span(),
                "`{% set %}…{% endset %}` is not supported: use `{% set name = … %}`",
            )),
            Stmt::AutoEscape(a) => {
                self.expression_into(&a.enabled, edits)?;
                self.statements(&a.body, edits)
            }
            Stmt::FilterBlock(f) => Err(RenderError::at(
                f.span(),
                "`{% filter %}` blocks are not supported: apply the filter to a value",
            )),
            Stmt::Block(b) => self.statements(&b.body, edits),
            Stmt::Extends(e) => self.expression_into(&e.name, edits),
            Stmt::Include(i) => Err(RenderError::at(
                i.span(),
                "`{% include %}` is not supported",
            )),
            Stmt::Import(i) => Err(RenderError::at(i.span(), "`{% import %}` is not supported")),
            Stmt::FromImport(i) => Err(RenderError::at(i.span(), "`{% from %}` is not supported")),
            Stmt::Do(d) => {
                edits.push(self.call(d.span(), &d.call)?);
                Ok(())
            }
        }
    }

    fn statements(&self, body: &[Stmt<'_>], edits: &mut Vec<Piece>) -> Result<(), RenderError> {
        body.iter().try_for_each(|s| self.statement(s, edits))
    }

    fn expression_into(&self, expr: &Expr<'_>, edits: &mut Vec<Piece>) -> Result<(), RenderError> {
        edits.push(self.expression(expr)?);
        Ok(())
    }

    /// The expression's rewritten text, covering its whole extent in the source, with the
    /// parentheses around it (a node's span leaves them out, while the span of a node it is
    /// the first operand of may start inside them).
    fn expression(&self, expr: &Expr<'_>) -> Result<Piece, RenderError> {
        let mut piece = self.bare_expression(expr)?;
        loop {
            let before = self.source[..piece.start].trim_end();
            let after = self.source[piece.end..].trim_start();
            if !(before.ends_with('(') && after.starts_with(')')) {
                return Ok(piece);
            }
            let start = before.len() - 1;
            let end = self.source.len() - after.len() + 1;
            piece.text = format!(
                "{}{}{}",
                &self.source[start..piece.start],
                piece.text,
                &self.source[piece.end..end]
            );
            piece.start = start;
            piece.end = end;
        }
    }

    fn bare_expression(&self, expr: &Expr<'_>) -> Result<Piece, RenderError> {
        match expr {
            Expr::Var(v) => {
                if matches!(v.id, "self" | "super") {
                    return Err(RenderError::at(
                        v.span(),
                        format!("`{}` is not supported in templates", v.id),
                    ));
                }
                self.splice_span(v.span(), Vec::new())
            }
            Expr::Const(c) => self.splice_span(c.span(), Vec::new()),
            Expr::Slice(s) => {
                let optional = |e: &Option<Expr<'_>>| -> Result<Option<Piece>, RenderError> {
                    e.as_ref().map(|e| self.expression(e)).transpose()
                };
                let value = self.expression(&s.expr)?;
                let bounds = [optional(&s.start)?, optional(&s.stop)?, optional(&s.step)?];
                let (start, end) = extent(
                    s.span(),
                    std::iter::once(&value).chain(bounds.iter().flatten()),
                );
                let mut args = vec![value.text];
                args.extend(
                    bounds
                        .into_iter()
                        .map(|b| b.map_or_else(|| "none".to_owned(), |b| b.text)),
                );
                Ok(Piece {
                    start,
                    end,
                    text: format!("__slice({})", args.join(", ")),
                })
            }
            Expr::UnaryOp(u) => {
                let inner = vec![self.expression(&u.expr)?];
                self.splice_span(u.span(), inner)
            }
            Expr::BinOp(b) => {
                let left = self.expression(&b.left)?;
                let right = self.expression(&b.right)?;
                let measured = match b.op {
                    BinOpKind::Add => "__add",
                    BinOpKind::Mul => "__mul",
                    BinOpKind::Concat => "__cat",
                    _ => return self.splice_span(b.span(), vec![left, right]),
                };
                let (start, end) = extent(b.span(), [&left, &right]);
                Ok(Piece {
                    start,
                    end,
                    text: format!("{measured}({}, {})", left.text, right.text),
                })
            }
            Expr::Compare(c) => {
                let mut parts = vec![self.expression(&c.expr)?];
                for op in &c.ops {
                    parts.push(self.expression(&op.expr)?);
                }
                self.splice_span(c.span(), parts)
            }
            Expr::IfExpr(i) => {
                let mut parts = vec![
                    self.expression(&i.test_expr)?,
                    self.expression(&i.true_expr)?,
                ];
                if let Some(other) = &i.false_expr {
                    parts.push(self.expression(other)?);
                }
                self.splice_span(i.span(), parts)
            }
            Expr::Filter(f) => {
                if WITHHELD_FILTERS.contains(&f.name) {
                    return Err(RenderError::at(
                        f.span(),
                        format!("the filter `{}` is not supported", f.name),
                    ));
                }
                let Some(value) = &f.expr else {
                    return Err(RenderError::at(f.span(), "a filter needs a value"));
                };
                let mut parts = vec![self.expression(value)?];
                parts.extend(self.arguments(&f.args)?);
                Ok(fitted(self.splice_span(f.span(), parts)?))
            }
            Expr::Test(t) => {
                let mut parts = vec![self.expression(&t.expr)?];
                parts.extend(self.arguments(&t.args)?);
                self.splice_span(t.span(), parts)
            }
            Expr::GetAttr(g) => {
                let inner = vec![self.expression(&g.expr)?];
                self.splice_span(g.span(), inner)
            }
            Expr::GetItem(g) => {
                let parts = vec![
                    self.expression(&g.expr)?,
                    self.expression(&g.subscript_expr)?,
                ];
                self.splice_span(g.span(), parts)
            }
            Expr::Call(c) => self.call(c.span(), c),
            Expr::List(l) => {
                let items = l
                    .items
                    .iter()
                    .map(|e| self.expression(e))
                    .collect::<Result<_, _>>()?;
                self.splice_span(l.span(), items)
            }
            Expr::Map(m) => {
                let parts = m
                    .keys
                    .iter()
                    .chain(&m.values)
                    .map(|e| self.expression(e))
                    .collect::<Result<_, _>>()?;
                self.splice_span(m.span(), parts)
            }
        }
    }

    fn call(&self, span: Span, call: &Call<'_>) -> Result<Piece, RenderError> {
        let mut parts = vec![self.expression(&call.expr)?];
        parts.extend(self.arguments(&call.args)?);
        Ok(fitted(self.splice_span(span, parts)?))
    }

    fn arguments(&self, args: &[CallArg<'_>]) -> Result<Vec<Piece>, RenderError> {
        args.iter()
            .map(|arg| match arg {
                CallArg::Pos(e)
                | CallArg::Kwarg(_, e)
                | CallArg::PosSplat(e)
                | CallArg::KwargSplat(e) => self.expression(e),
            })
            .collect()
    }

    fn splice_span(&self, span: Span, children: Vec<Piece>) -> Result<Piece, RenderError> {
        let (start, end) = extent(span, &children);
        self.splice(start, end, children)
    }

    /// The source from `start` to `end` with each child's stretch replaced by its text.
    fn splice(
        &self,
        start: usize,
        end: usize,
        mut children: Vec<Piece>,
    ) -> Result<Piece, RenderError> {
        children.sort_by_key(|c| c.start);
        let mut text = String::with_capacity(end.saturating_sub(start));
        let mut at = start;
        for child in children {
            let between = self.source.get(at..child.start).ok_or_else(|| {
                RenderError::new("the template could not be prepared for rendering")
            })?;
            text.push_str(between);
            text.push_str(&child.text);
            at = child.end;
        }
        let rest = self
            .source
            .get(at..end)
            .ok_or_else(|| RenderError::new("the template could not be prepared for rendering"))?;
        text.push_str(rest);
        Ok(Piece { start, end, text })
    }
}

/// The stretch a node covers: its own span and its children's (a span may leave out
/// the operand a filter or operator applies to).
fn extent<'p>(span: Span, children: impl IntoIterator<Item = &'p Piece>) -> (usize, usize) {
    children.into_iter().fold(
        (span.start_offset as usize, span.end_offset as usize),
        |(start, end), c| (start.min(c.start), end.max(c.end)),
    )
}

fn fitted(piece: Piece) -> Piece {
    Piece {
        text: format!("__fit({})", piece.text),
        ..piece
    }
}

/// Checks a rewritten source: no value-building operator is left, and every filter and call
/// is measured.
struct Verifier;

impl Verifier {
    fn statement(&self, stmt: &Stmt<'_>) -> Result<(), RenderError> {
        let all = |body: &[Stmt<'_>]| body.iter().try_for_each(|s| self.statement(s));
        match stmt {
            Stmt::Template(t) => all(&t.children),
            Stmt::EmitExpr(e) => self.expression(&e.expr, false),
            Stmt::EmitRaw(_) => Ok(()),
            Stmt::ForLoop(f) => {
                self.expression(&f.iter, false)?;
                if let Some(filter) = &f.filter_expr {
                    self.expression(filter, false)?;
                }
                all(&f.body)?;
                all(&f.else_body)
            }
            Stmt::IfCond(i) => {
                self.expression(&i.expr, false)?;
                all(&i.true_body)?;
                all(&i.false_body)
            }
            Stmt::WithBlock(w) => {
                for (_, value) in &w.assignments {
                    self.expression(value, false)?;
                }
                all(&w.body)
            }
            Stmt::Set(s) => self.expression(&s.expr, false),
            Stmt::AutoEscape(a) => {
                self.expression(&a.enabled, false)?;
                all(&a.body)
            }
            Stmt::Block(b) => all(&b.body),
            Stmt::Extends(e) => self.expression(&e.name, false),
            Stmt::Do(d) => self.call(&d.call, false),
            Stmt::SetBlock(_)
            | Stmt::FilterBlock(_)
            | Stmt::Include(_)
            | Stmt::Import(_)
            | Stmt::FromImport(_) => Err(unmeasured()),
        }
    }

    /// `measured`: the expression is the argument of `__fit`.
    fn expression(&self, expr: &Expr<'_>, measured: bool) -> Result<(), RenderError> {
        match expr {
            Expr::Var(_) | Expr::Const(_) => Ok(()),
            Expr::Slice(_) => Err(unmeasured()),
            Expr::UnaryOp(u) => self.expression(&u.expr, false),
            Expr::BinOp(b) => {
                if matches!(b.op, BinOpKind::Add | BinOpKind::Mul | BinOpKind::Concat) {
                    return Err(unmeasured());
                }
                self.expression(&b.left, false)?;
                self.expression(&b.right, false)
            }
            Expr::Compare(c) => {
                self.expression(&c.expr, false)?;
                c.ops
                    .iter()
                    .try_for_each(|op| self.expression(&op.expr, false))
            }
            Expr::IfExpr(i) => {
                self.expression(&i.test_expr, false)?;
                self.expression(&i.true_expr, false)?;
                i.false_expr
                    .as_ref()
                    .map_or(Ok(()), |e| self.expression(e, false))
            }
            Expr::Filter(f) => {
                if !measured {
                    return Err(unmeasured());
                }
                if let Some(value) = &f.expr {
                    self.expression(value, false)?;
                }
                self.arguments(&f.args)
            }
            Expr::Test(t) => {
                self.expression(&t.expr, false)?;
                self.arguments(&t.args)
            }
            Expr::GetAttr(g) => self.expression(&g.expr, false),
            Expr::GetItem(g) => {
                self.expression(&g.expr, false)?;
                self.expression(&g.subscript_expr, false)
            }
            Expr::Call(c) => self.call(c, measured),
            Expr::List(l) => l.items.iter().try_for_each(|e| self.expression(e, false)),
            Expr::Map(m) => m
                .keys
                .iter()
                .chain(&m.values)
                .try_for_each(|e| self.expression(e, false)),
        }
    }

    fn call(&self, call: &Call<'_>, measured: bool) -> Result<(), RenderError> {
        let own = match &call.expr {
            Expr::Var(v) => v.id.starts_with("__"),
            _ => false,
        };
        if !own && !measured {
            return Err(unmeasured());
        }
        self.expression(&call.expr, false)?;
        let fit = matches!(&call.expr, Expr::Var(v) if v.id == "__fit");
        for arg in &call.args {
            match arg {
                CallArg::Pos(e) => self.expression(e, fit)?,
                CallArg::Kwarg(_, e) | CallArg::PosSplat(e) | CallArg::KwargSplat(e) => {
                    self.expression(e, false)?
                }
            }
        }
        Ok(())
    }

    fn arguments(&self, args: &[CallArg<'_>]) -> Result<(), RenderError> {
        args.iter().try_for_each(|arg| match arg {
            CallArg::Pos(e)
            | CallArg::Kwarg(_, e)
            | CallArg::PosSplat(e)
            | CallArg::KwargSplat(e) => self.expression(e, false),
        })
    }
}

fn unmeasured() -> RenderError {
    RenderError::new("the template could not be prepared for rendering")
}

thread_local! {
    /// The bytes the render on this thread may still build; `None` outside a render.
    static BUDGET: Cell<Option<usize>> = const { Cell::new(None) };
}

/// Sets the budget for one render and takes it away again, however the render ends.
struct BudgetScope(Option<usize>);

impl BudgetScope {
    fn enter() -> Self {
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
fn charge(bytes: usize) -> Result<(), Error> {
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

fn fit(value: Value) -> Result<Value, Error> {
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
fn display(value: &Value) -> Result<String, Error> {
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

fn concat(left: Value, right: Value) -> Result<Value, Error> {
    let (left, right) = (display(&left)?, display(&right)?);
    charge(left.len() + right.len())?;
    Ok(Value::from(left + &right))
}

fn is_sequence(value: &Value) -> bool {
    matches!(value.kind(), ValueKind::Seq | ValueKind::Iterable)
}

/// The items of a sequence, counted against the budget before they are gathered.
fn items(value: &Value) -> Result<Vec<Value>, Error> {
    let iter = value.try_iter()?;
    let mut items = Vec::new();
    for item in iter {
        charge(ITEM_BYTES)?;
        items.push(item);
    }
    Ok(items)
}

fn add(left: Value, right: Value) -> Result<Value, Error> {
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

fn multiply(left: Value, right: Value) -> Result<Value, Error> {
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

fn slice(value: Value, start: Value, stop: Value, step: Value) -> Result<Value, Error> {
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
fn join(value: Value, separator: Option<Value>) -> Result<Value, Error> {
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
fn replace(value: Value, from: Value, to: Value, count: Option<usize>) -> Result<Value, Error> {
    let replaced = measured_replace(&display(&value)?, &display(&from)?, &display(&to)?, count)?;
    Ok(if value.is_safe() {
        Value::from_safe_string(replaced)
    } else {
        Value::from(replaced)
    })
}

/// Joins `parts`, charging the result before it is built: a join can outgrow its input many
/// times over (a long separator between many parts).
pub(in crate::domain) fn measured_join(parts: &[String], separator: &str) -> Result<String, Error> {
    let total = parts.iter().map(String::len).sum::<usize>().saturating_add(
        separator
            .len()
            .saturating_mul(parts.len().saturating_sub(1)),
    );
    charge(total)?;
    Ok(parts.join(separator))
}

/// Replaces `from` by `to` in `text` (the first `count` times, or all), charging the result
/// before it is built: each replacement can grow the text by all of `to`.
pub(in crate::domain) fn measured_replace(
    text: &str,
    from: &str,
    to: &str,
    count: Option<usize>,
) -> Result<String, Error> {
    let found = if from.is_empty() {
        text.chars().count() + 1
    } else {
        text.matches(from).count()
    };
    let replaced_count = count.map_or(found, |c| c.min(found));
    let grows = to
        .len()
        .saturating_sub(from.len())
        .saturating_mul(replaced_count);
    charge(text.len().saturating_add(grows))?;
    Ok(match count {
        Some(n) => text.replacen(from, to, n),
        None => text.replace(from, to),
    })
}

/// A writer that refuses to grow past the part's cap, so a template cannot fill memory with
/// output.
struct BoundedOutput(Vec<u8>);

impl std::io::Write for BoundedOutput {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        if self.0.len() + bytes.len() > MAX_RENDERED_PART_BYTES {
            return Err(std::io::Error::other("the rendered part is too large"));
        }
        self.0.extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Renders one template prepared by [`prepare`] in an environment set up by [`install`]:
/// at most [`TEMPLATE_FUEL`] steps, [`MAX_RENDERED_PART_BYTES`] of output, and
/// [`MAX_BUILT_BYTES`] of values built on the way.
pub fn render<C: Serialize>(
    template: &minijinja::Template<'_, '_>,
    context: &C,
) -> Result<String, RenderError> {
    let _budget = BudgetScope::enter();
    let mut out = BoundedOutput(Vec::new());
    template.render_captured_to(context, &mut out)?;
    String::from_utf8(out.0).map_err(|e| RenderError::new(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn environment() -> Environment<'static> {
        let mut env = Environment::new();
        install(&mut env);
        env
    }

    fn render_source(source: &str) -> Result<String, RenderError> {
        let mut env = environment();
        env.add_template_owned("t", prepare(source)?)?;
        let template = env.get_template("t")?;
        render(
            &template,
            &minijinja::context! { name => "Ada", items => vec!["a", "b", "c"] },
        )
    }

    fn refused_as_too_large(source: &str) {
        let err = render_source(source).expect_err(source);
        assert!(
            err.message.contains("builds more than it may"),
            "{source}: {err}"
        );
    }

    #[test]
    fn ordinary_templates_render_as_minijinja_renders_them() {
        for (source, expected) in [
            ("{{ name ~ '!' }}", "Ada!"),
            ("{{ 'a' ~ 1 ~ none }}", "a1None"),
            ("{{ 1 + 2 }} {{ 2 * 3 }} {{ 1.5 + 1 }} {{ 7 - 2 }}", "3 6 2.5 5"),
            ("{{ 'ab' + 'cd' }} {{ 'ab' * 2 }} {{ 2 * 'ab' }}", "abcd abab abab"),
            ("{{ ([1, 2] + [3])|length }} {{ ([1] * 3)|length }}", "3 3"),
            ("{{ name[1:] }} {{ name[::-1] }} {{ items[:2]|join }}", "da adA ab"),
            ("{{ items|join(', ') }} {{ 'a-b'|replace('-', '+') }}", "a, b, c a+b"),
            ("{{ name|upper }} {{ items|length }} {{ [1, 2]|string }}", "ADA 3 [1, 2]"),
            ("{% for i in range(3) %}{{ i }}{% endfor %}", "012"),
            ("{% set ns = namespace(s='') %}{% for i in items %}{% set ns.s = ns.s ~ i %}{% endfor %}{{ ns.s }}", "abc"),
            ("{{ [1, 2] }} {{ {'a': 1} }}", "[1, 2] {\"a\": 1}"),
            ("{{ 'x'|replace('', '-') }} {{ 'aaa'|replace('a', 'b', 2) }}", "-x- bba"),
        ] {
            assert_eq!(render_source(source).unwrap(), expected, "{source}");
        }
    }

    #[test]
    fn n1_a_doubling_concatenation_is_stopped_before_it_is_built() {
        refused_as_too_large(
            "{% set ns = namespace(s='x') %}{% for i in range(60) %}{% set ns.s = ns.s ~ ns.s %}{% endfor %}{{ ns.s|length }}",
        );
        refused_as_too_large(
            "{% set ns = namespace(s='x') %}{% for i in range(60) %}{% set ns.s = ns.s + ns.s %}{% endfor %}",
        );
    }

    #[test]
    fn n1_a_repeat_join_or_replace_is_measured_before_it_is_built() {
        refused_as_too_large("{{ 'x' * 100000000 }}");
        refused_as_too_large("{{ ['x'] * 100000000 }}");
        refused_as_too_large("{{ range(10000)|join('x' * 100000) }}");
        refused_as_too_large("{% set s = 'a' * 200000 %}{{ s|replace('a', s) }}");
    }

    #[test]
    fn n1_many_values_each_under_the_cap_are_stopped_together() {
        refused_as_too_large(
            "{% set ns = namespace(l=[]) %}{% for i in range(100) %}{% set ns.l = ns.l + ['x' * 200000] %}{% endfor %}",
        );
    }

    #[test]
    fn n1_a_sequence_that_shares_its_parts_cannot_be_printed_whole() {
        let doubled = "{% set ns = namespace(l=[1]) %}{% for i in range(60) %}{% set ns.l = [ns.l, ns.l] %}{% endfor %}";
        for print in ["{{ ns.l }}", "{{ ns.l|string }}", "{{ 'a' ~ ns.l }}"] {
            assert!(
                render_source(&format!("{doubled}{print}")).is_err(),
                "{print}"
            );
        }
    }

    #[test]
    fn n1_constructs_that_capture_output_are_refused_with_their_line() {
        for (source, line) in [
            ("a\n{% set x %}{{ name }}{% endset %}", 2),
            ("{% filter upper %}x{% endfilter %}", 1),
            ("{% block b %}{{ self.b() }}{% endblock %}", 1),
            ("{% block b %}{{ super() }}{% endblock %}", 1),
            ("{% include 'x' %}", 1),
            ("\n\n{{ name|format(1) }}", 3),
            ("{% for i in items recursive %}{% endfor %}", 1),
        ] {
            let err = prepare(source).expect_err(source);
            assert_eq!(err.line, Some(line), "{source}: {err}");
        }
    }

    #[test]
    fn a_render_outside_the_bounded_renderer_builds_nothing() {
        let mut env = environment();
        env.add_template_owned("t", prepare("{{ name ~ '!' }}").unwrap())
            .unwrap();
        let template = env.get_template("t").unwrap();
        assert!(template
            .render(minijinja::context! { name => "A" })
            .is_err());
    }

    /// Pieces of template that build values, cheap and expensive, put together at random.
    fn piece() -> impl Strategy<Value = String> {
        prop_oneof![
            Just("{% set ns.s = ns.s ~ ns.s %}".to_owned()),
            Just("{% set ns.s = ns.s + ns.s %}".to_owned()),
            Just("{% set ns.s = ns.s * 7 %}".to_owned()),
            Just("{% set ns.l = ns.l + ns.l %}".to_owned()),
            Just("{% set ns.l = [ns.l, ns.l, ns.s] %}".to_owned()),
            Just("{% set ns.l = ns.l * 5 %}".to_owned()),
            Just("{% set ns.s = ns.l|join(ns.s) %}".to_owned()),
            Just("{% set ns.s = ns.s|replace('x', ns.s) %}".to_owned()),
            Just("{% set ns.s = ns.s[1:] ~ ns.s[::-1] %}".to_owned()),
            Just("{% set ns.s = ns.l|string %}".to_owned()),
            Just("{% set ns.l = ns.s|list %}".to_owned()),
            Just("{% set ns.l = ns.l|sort|unique|list %}".to_owned()),
            Just("{{ ns.s }}".to_owned()),
            Just("{{ ns.l }}".to_owned()),
            (1usize..40).prop_map(|n| format!(
                "{{% for i in range({n}) %}}{{% set ns.s = ns.s ~ ns.s ~ i %}}{{% endfor %}}"
            )),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        /// S32: whatever a template builds, one render holds at most about the budget, and
        /// a template that would build more fails with an error instead of taking memory.
        #[test]
        fn n1_random_templates_render_within_a_memory_ceiling(pieces in proptest::collection::vec(piece(), 1..12)) {
            let source = format!(
                "{{% set ns = namespace(s='x', l=['x']) %}}{}",
                pieces.concat()
            );
            // Without the bounds, most of these build gigabytes; past the ceiling the
            // allocator refuses and the test process aborts.
            let result = crate::test_allocator::with_ceiling(256 * 1024 * 1024, || render_source(&source));
            match result {
                Ok(text) => prop_assert!(text.len() <= MAX_RENDERED_PART_BYTES),
                Err(e) => prop_assert!(!e.message.is_empty()),
            }
        }
    }
}
