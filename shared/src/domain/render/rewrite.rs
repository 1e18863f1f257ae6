//! The rewriting of a template's source: every operation that can build a value becomes a call
//! that measures it first (`__cat`, `__add`, `__mul`, `__slice`, `__fit`).

use minijinja::machinery::ast::{BinOpKind, Call, CallArg, Expr, Stmt};
use minijinja::machinery::Span;

use super::{RenderError, WITHHELD_FILTERS};

/// A stretch of the source and what replaces it.
pub(super) struct Piece {
    pub(super) start: usize,
    pub(super) end: usize,
    pub(super) text: String,
}

pub(super) struct Rewriter<'s> {
    pub(super) source: &'s str,
}

impl Rewriter<'_> {
    pub(super) fn statement(
        &self,
        stmt: &Stmt<'_>,
        edits: &mut Vec<Piece>,
    ) -> Result<(), RenderError> {
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
    pub(super) fn splice(
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
