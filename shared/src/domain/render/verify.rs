//! The check of a rewritten source: it must hold no operation that builds a value unmeasured,
//! so a construct the rewriting missed refuses the template.

use minijinja::machinery::ast::{BinOpKind, Call, CallArg, Expr, Stmt};

use super::RenderError;

/// Checks a rewritten source: no value-building operator is left, and every filter and call
/// is measured.
pub(super) struct Verifier;

impl Verifier {
    pub(super) fn statement(&self, stmt: &Stmt<'_>) -> Result<(), RenderError> {
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

pub(super) fn unmeasured() -> RenderError {
    RenderError::new("the template could not be prepared for rendering")
}
