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

use minijinja::machinery::{parse, Span, WhitespaceConfig};
use minijinja::syntax::SyntaxConfig;
use minijinja::value::{Value, ValueKind};
use minijinja::{Environment, Error};
use serde::Serialize;

mod measured;
mod rewrite;
mod verify;

use measured::{add, charge, concat, display, fit, join, multiply, replace, slice, BudgetScope};
use rewrite::{Piece, Rewriter};
use verify::Verifier;

/// How many template instructions one part may run (S29): ample for any real email or page
/// (a few hundred), far short of a loop that would burn seconds of CPU.
pub(crate) const TEMPLATE_FUEL: u64 = 100_000;

/// The largest rendered part, and so the largest value a template may build (S29, S32).
pub(crate) const MAX_RENDERED_PART_BYTES: usize = 256 * 1024;

/// All the values one render builds, together (S32): a real template builds a few short
/// strings; this leaves room for four parts' worth.
pub(crate) const MAX_BUILT_BYTES: usize = 4 * MAX_RENDERED_PART_BYTES;

/// What one item of a built sequence or map is counted as: the size of a value.
pub(super) const ITEM_BYTES: usize = 32;

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
pub(super) const WITHHELD_FILTERS: [&str; 9] = [
    "format", "indent", "batch", "slice", "groupby", "chain", "zip", "pprint", "tojson",
];

/// The environment's settings every template renders with: fuel, the measuring functions,
/// the bounded filters and a formatter that prints a sequence or map within the part's cap.
pub(crate) fn install(env: &mut Environment<'_>) {
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
pub(crate) fn printable(value: &Value) -> Result<Value, Error> {
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
pub(crate) fn render<C: Serialize>(
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
