//! FreeMarker email templates, as FusionAuth writes them, translated into MiniJinja.
//!
//! FusionAuth's templates (its defaults, its docs, every export and kickstart) are FreeMarker.
//! Rather than carry a second template engine, a FreeMarker source is translated once into a
//! MiniJinja source, which then renders with the same fuel and output bounds as every other
//! template (S29). The subset is what FusionAuth's passwordless templates use: `${…}` with
//! `!` defaults and `??`, built-ins such as `?url`, `?html`, `?string`, `?long` and
//! `?number_to_datetime`, `[#if]`/`[#elseif]`/`[#else]`, `[#list … as x]` and
//! `[#list … as k, v]`, `[#assign]`, `[#setting]` (`time_zone`, `locale`,
//! `url_escaping_charset`), comments and `.now`. Anything else is refused when the template
//! is saved, with a field error naming the construct and its line.
//!
//! Two deliberate differences: a missing value prints nothing instead of failing the send,
//! and the HTML part escapes what it prints (FreeMarker in FusionAuth does not), so a
//! value never becomes markup.

mod expr;
pub mod runtime;

use std::collections::BTreeSet;

use expr::{BinOp, Expr, Parser, StrPart, SyntaxError};

/// Why a FreeMarker source cannot be used, with the line it is on.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("FreeMarker on line {line}: {message}")]
pub(crate) struct TranslateError {
    pub line: usize,
    pub message: String,
}

/// Whether a template source is FreeMarker rather than MiniJinja: it has a FreeMarker
/// interpolation or tag. MiniJinja's own markup (`{{ }}`) in a FreeMarker source is text.
pub(crate) fn is_freemarker(source: &str) -> bool {
    MARKUP_STARTS.iter().any(|marker| source.contains(marker))
}

/// Translates a FreeMarker source into a MiniJinja source that renders the same text, given
/// the filters and functions of [`runtime::install`] and `__now` (epoch milliseconds) in
/// the context.
pub(crate) fn translate(source: &str) -> Result<String, TranslateError> {
    let pieces = scan(source).map_err(|e| at_line(source, e))?;
    let pieces = strip_tag_only_lines(pieces);
    emit(source, &pieces)
}

fn at_line(source: &str, error: SyntaxError) -> TranslateError {
    let offset = error.offset.min(source.len());
    TranslateError {
        line: source[..offset].matches('\n').count() + 1,
        message: error.message,
    }
}

#[derive(Debug, Clone, PartialEq)]
enum Tag {
    If(Expr),
    ElseIf(Expr),
    Else,
    EndIf,
    List { source: Expr, names: Vec<String> },
    EndList,
    Assign(Vec<(String, Expr)>),
    Setting(String, Expr),
}

#[derive(Debug, Clone, PartialEq)]
enum Piece {
    Text(String),
    Interpolation(Expr),
    Tag(Tag),
    Comment,
}

/// A piece and the byte offset it starts at.
type Located = (usize, Piece);

/// What opens FreeMarker markup: an interpolation, a tag or a macro call.
const MARKUP_STARTS: [&str; 7] = ["${", "[#", "[/#", "<#", "</#", "[@", "<@"];

fn scan(source: &str) -> Result<Vec<Located>, SyntaxError> {
    let mut pieces = Vec::new();
    let mut pos = 0;
    while pos < source.len() {
        let next = MARKUP_STARTS
            .iter()
            .filter_map(|start| source[pos..].find(start).map(|i| pos + i))
            .min();
        let Some(start) = next else {
            pieces.push((pos, Piece::Text(source[pos..].to_owned())));
            break;
        };
        if start > pos {
            pieces.push((pos, Piece::Text(source[pos..start].to_owned())));
        }
        let (piece, end) = scan_markup(source, start)?;
        pieces.push((start, piece));
        pos = end;
    }
    Ok(pieces)
}

/// Reads the interpolation, tag or comment at `start`; answers it and where it ends.
fn scan_markup(source: &str, start: usize) -> Result<(Piece, usize), SyntaxError> {
    let rest = &source[start..];
    let fail = |message: String| SyntaxError {
        offset: start,
        message,
    };
    if rest.starts_with("${") {
        let mut parser = Parser::new(source, start + 2, false);
        let expr = parser.expression()?;
        if !parser.eat("}") {
            return parser.error("`}` was expected to close `${`");
        }
        return Ok((Piece::Interpolation(expr), parser.pos));
    }
    if rest.starts_with("[@") || rest.starts_with("<@") {
        return Err(fail(
            "macro calls (`[@…]`) are not supported in email templates".into(),
        ));
    }
    let angle = rest.starts_with('<');
    let (comment_end, close) = if angle { ("-->", ">") } else { ("--]", "]") };
    if rest[1..].starts_with("#--") {
        let end = rest
            .find(comment_end)
            .ok_or_else(|| fail("the comment is not closed".into()))?;
        return Ok((Piece::Comment, start + end + comment_end.len()));
    }
    let closing = rest[1..].starts_with('/');
    let mut parser = Parser::new(source, start + if closing { 3 } else { 2 }, angle);
    let name = parser.name()?;
    if closing {
        let tag = match name.as_str() {
            "if" => Tag::EndIf,
            "list" => Tag::EndList,
            other => return Err(fail(unsupported_directive(other))),
        };
        return close_tag(parser, close, Piece::Tag(tag));
    }
    let tag = match name.as_str() {
        "if" => Tag::If(parser.expression()?),
        "elseif" => Tag::ElseIf(parser.expression()?),
        "else" => Tag::Else,
        "list" => {
            let source = parser.expression()?;
            if !parser.eat_word("as") {
                return parser.error("`as` was expected in `[#list … as …]`");
            }
            let mut names = vec![parser.name()?];
            if parser.eat(",") {
                names.push(parser.name()?);
            }
            Tag::List { source, names }
        }
        "assign" | "global" => {
            let mut assignments = Vec::new();
            loop {
                let target = parser.name()?;
                if !parser.eat("=") {
                    return parser.error(
                        "`=` was expected: capturing a block with `[#assign]` is not supported",
                    );
                }
                assignments.push((target, parser.expression()?));
                parser.eat(",");
                parser.skip_whitespace();
                if !parser
                    .rest()
                    .starts_with(|c: char| c.is_alphabetic() || c == '_')
                {
                    break;
                }
            }
            Tag::Assign(assignments)
        }
        "setting" => {
            let setting = parser.name()?;
            if !parser.eat("=") {
                return parser.error("`=` was expected in `[#setting]`");
            }
            Tag::Setting(setting, parser.expression()?)
        }
        other => return Err(fail(unsupported_directive(other))),
    };
    close_tag(parser, close, Piece::Tag(tag))
}

fn close_tag(
    mut parser: Parser<'_>,
    close: &str,
    piece: Piece,
) -> Result<(Piece, usize), SyntaxError> {
    parser.eat("/");
    if !parser.eat(close) {
        return parser.error(format!("`{close}` was expected to close the tag"));
    }
    Ok((piece, parser.pos))
}

fn unsupported_directive(name: &str) -> String {
    format!(
        "the directive `[#{name}]` is not supported in email templates (supported: if, elseif, \
         else, list, assign, global, setting and comments)"
    )
}

/// FreeMarker's white-space stripping: a line that holds only tags and comments (and
/// white space) leaves nothing in the output, not even its line break.
fn strip_tag_only_lines(pieces: Vec<Located>) -> Vec<Located> {
    // Text split so that every line break ends a text piece.
    let mut split = Vec::new();
    for (offset, piece) in pieces {
        match piece {
            Piece::Text(text) => {
                let mut at = offset;
                for line in text.split_inclusive('\n') {
                    split.push((at, Piece::Text(line.to_owned())));
                    at += line.len();
                }
            }
            other => split.push((offset, other)),
        }
    }
    let mut kept = Vec::with_capacity(split.len());
    let mut line: Vec<Located> = Vec::new();
    let flush = |line: &mut Vec<Located>, kept: &mut Vec<Located>| {
        let has_tag = line
            .iter()
            .any(|(_, p)| matches!(p, Piece::Tag(_) | Piece::Comment));
        let only_tags = line.iter().all(|(_, p)| match p {
            Piece::Text(t) => t.trim().is_empty(),
            Piece::Interpolation(_) => false,
            Piece::Tag(_) | Piece::Comment => true,
        });
        if has_tag && only_tags {
            kept.extend(line.drain(..).filter(|(_, p)| !matches!(p, Piece::Text(_))));
        } else {
            kept.append(line);
        }
    };
    for (offset, piece) in split {
        let ends_line = matches!(&piece, Piece::Text(t) if t.ends_with('\n'));
        line.push((offset, piece));
        if ends_line {
            flush(&mut line, &mut kept);
        }
    }
    flush(&mut line, &mut kept);
    kept
}

/// What the emitter knows at a point of the template: the open blocks, the loop variables
/// in scope and the names the template assigns.
struct Emitter<'a> {
    source: &'a str,
    out: String,
    blocks: Vec<Block>,
    assigned: BTreeSet<String>,
}

#[derive(Debug)]
struct Block {
    offset: usize,
    kind: BlockKind,
    seen_else: bool,
}

#[derive(Debug)]
enum BlockKind {
    If,
    List(Vec<String>),
}

/// Names MiniJinja reads as its own; a data-model variable of that name cannot be reached.
const MINIJINJA_WORDS: [&str; 14] = [
    "true", "false", "none", "True", "False", "None", "and", "or", "not", "in", "is", "if", "else",
    "loop",
];

fn emit(source: &str, pieces: &[Located]) -> Result<String, TranslateError> {
    let assigned: BTreeSet<String> = pieces
        .iter()
        .filter_map(|(_, p)| match p {
            Piece::Tag(Tag::Assign(assignments)) => {
                Some(assignments.iter().map(|(n, _)| n.clone()))
            }
            _ => None,
        })
        .flatten()
        .collect();
    let mut emitter = Emitter {
        source,
        out: String::with_capacity(source.len() * 2),
        blocks: Vec::new(),
        assigned,
    };
    // Assignments live in a namespace so they outlive the block that makes them, as
    // FreeMarker's do; each starts as the data-model value of the same name.
    let mut prelude = String::from("{% set __fm = namespace(s_time_zone=\"UTC\"");
    for name in &emitter.assigned {
        check_name(source, 0, name)?;
        prelude.push_str(&format!(", v_{name}={name}"));
    }
    prelude.push_str(") %}");
    emitter.out.push_str(&prelude);
    for (offset, piece) in pieces {
        emitter.piece(*offset, piece)?;
    }
    if let Some(open) = emitter.blocks.last() {
        let name = match open.kind {
            BlockKind::If => "if",
            BlockKind::List(_) => "list",
        };
        return Err(emitter.fail(open.offset, format!("`[#{name}]` is not closed")));
    }
    Ok(emitter.out)
}

fn check_name(source: &str, offset: usize, name: &str) -> Result<(), TranslateError> {
    if MINIJINJA_WORDS.contains(&name) || !name.is_ascii() {
        return Err(at_line(
            source,
            SyntaxError {
                offset,
                message: format!("the name `{name}` cannot be used in an email template"),
            },
        ));
    }
    Ok(())
}

impl Emitter<'_> {
    fn fail(&self, offset: usize, message: impl Into<String>) -> TranslateError {
        at_line(
            self.source,
            SyntaxError {
                offset,
                message: message.into(),
            },
        )
    }

    fn piece(&mut self, offset: usize, piece: &Piece) -> Result<(), TranslateError> {
        match piece {
            Piece::Comment => {}
            Piece::Text(text) => self.text(text),
            Piece::Interpolation(expr) => {
                let value = self.expr(offset, expr)?;
                self.out
                    .push_str(&format!("{{{{ fm_text({value}, __fm.s_time_zone) }}}}"));
            }
            Piece::Tag(tag) => self.tag(offset, tag)?,
        }
        Ok(())
    }

    /// Text as it is, except the openers MiniJinja would read as its own markup.
    fn text(&mut self, text: &str) {
        let mut chars = text.chars().peekable();
        while let Some(c) = chars.next() {
            if c == '{' && matches!(chars.peek(), Some('{' | '%' | '#')) {
                self.out.push_str("{{ \"{\" }}");
            } else {
                self.out.push(c);
            }
        }
    }

    fn tag(&mut self, offset: usize, tag: &Tag) -> Result<(), TranslateError> {
        match tag {
            Tag::If(condition) => {
                let condition = self.expr(offset, condition)?;
                self.blocks.push(Block {
                    offset,
                    kind: BlockKind::If,
                    seen_else: false,
                });
                self.out.push_str(&format!("{{% if {condition} %}}"));
            }
            Tag::ElseIf(condition) => {
                let condition = self.expr(offset, condition)?;
                match self.blocks.last() {
                    Some(Block {
                        kind: BlockKind::If,
                        seen_else: false,
                        ..
                    }) => self.out.push_str(&format!("{{% elif {condition} %}}")),
                    _ => return Err(self.fail(offset, "`[#elseif]` is outside an `[#if]`")),
                }
            }
            Tag::Else => match self.blocks.last_mut() {
                Some(block) if !block.seen_else => {
                    block.seen_else = true;
                    self.out.push_str("{% else %}");
                }
                _ => return Err(self.fail(offset, "`[#else]` is outside an `[#if]` or `[#list]`")),
            },
            Tag::EndIf => match self.blocks.pop() {
                Some(Block {
                    kind: BlockKind::If,
                    ..
                }) => self.out.push_str("{% endif %}"),
                _ => return Err(self.fail(offset, "`[/#if]` closes no `[#if]`")),
            },
            Tag::List { source, names } => {
                for name in names {
                    check_name(self.source, offset, name)?;
                }
                let sequence = self.expr(offset, source)?;
                let line = match names.as_slice() {
                    [item] => format!("{{% for fl_{item} in fm_items({sequence}) %}}"),
                    [key, value] => {
                        format!("{{% for fl_{key}, fl_{value} in fm_pairs({sequence}) %}}")
                    }
                    _ => return Err(self.fail(offset, "`[#list]` takes one or two names")),
                };
                self.blocks.push(Block {
                    offset,
                    kind: BlockKind::List(names.clone()),
                    seen_else: false,
                });
                self.out.push_str(&line);
            }
            Tag::EndList => match self.blocks.pop() {
                Some(Block {
                    kind: BlockKind::List(_),
                    ..
                }) => self.out.push_str("{% endfor %}"),
                _ => return Err(self.fail(offset, "`[/#list]` closes no `[#list]`")),
            },
            Tag::Assign(assignments) => {
                for (name, value) in assignments {
                    let value = self.expr(offset, value)?;
                    self.out
                        .push_str(&format!("{{% set __fm.v_{name} = {value} %}}"));
                }
            }
            Tag::Setting(name, value) => self.setting(offset, name, value)?,
        }
        Ok(())
    }

    fn setting(&mut self, offset: usize, name: &str, value: &Expr) -> Result<(), TranslateError> {
        match name {
            "time_zone" => {
                let value = self.expr(offset, value)?;
                self.out
                    .push_str(&format!("{{% set __fm.s_time_zone = {value} %}}"));
            }
            // Names of months and days are English whatever the locale.
            "locale" => {
                self.expr(offset, value)?;
            }
            "url_escaping_charset" | "output_encoding" => match value {
                Expr::Str(parts) if matches!(parts.as_slice(), [StrPart::Text(t)] if t.eq_ignore_ascii_case("UTF-8")) =>
                    {}
                _ => {
                    return Err(self.fail(
                        offset,
                        format!(
                            "`[#setting {name}]` must be \"UTF-8\", the only charset emails use"
                        ),
                    ))
                }
            },
            other => {
                return Err(self.fail(
                    offset,
                    format!(
                        "the setting `{other}` is not supported (supported: time_zone, locale, \
                         url_escaping_charset, output_encoding)"
                    ),
                ))
            }
        }
        Ok(())
    }

    fn innermost_loop_names(&self) -> Option<&[String]> {
        self.blocks.iter().rev().find_map(|b| match &b.kind {
            BlockKind::List(names) => Some(names.as_slice()),
            BlockKind::If => None,
        })
    }

    fn is_loop_name(&self, name: &str) -> bool {
        self.blocks
            .iter()
            .any(|b| matches!(&b.kind, BlockKind::List(names) if names.iter().any(|n| n == name)))
    }

    /// The MiniJinja expression for a FreeMarker one, every compound part in parentheses.
    fn expr(&self, offset: usize, expr: &Expr) -> Result<String, TranslateError> {
        let e = |inner: &Expr| self.expr(offset, inner);
        Ok(match expr {
            Expr::Str(parts) => {
                let parts = parts
                    .iter()
                    .map(|part| match part {
                        StrPart::Text(text) => Ok(quote(text)),
                        StrPart::Interpolation(inner) => {
                            Ok(format!("fm_text({}, __fm.s_time_zone)", e(inner)?))
                        }
                    })
                    .collect::<Result<Vec<_>, TranslateError>>()?;
                match parts.as_slice() {
                    [only] if only.starts_with('"') => only.clone(),
                    _ => format!("(\"\" ~ {})", parts.join(" ~ ")),
                }
            }
            Expr::Number(n) => n.clone(),
            Expr::Bool(b) => b.to_string(),
            Expr::Hash(entries) => {
                let entries = entries
                    .iter()
                    .map(|(k, v)| Ok(format!("{}: {}", e(k)?, e(v)?)))
                    .collect::<Result<Vec<_>, TranslateError>>()?;
                format!("{{{}}}", entries.join(", "))
            }
            Expr::Sequence(items) => {
                let items = items.iter().map(e).collect::<Result<Vec<_>, _>>()?;
                format!("[{}]", items.join(", "))
            }
            Expr::Var(name) => {
                check_name(self.source, offset, name)?;
                if self.is_loop_name(name) {
                    format!("fl_{name}")
                } else if self.assigned.contains(name) {
                    format!("__fm.v_{name}")
                } else {
                    name.clone()
                }
            }
            Expr::Now => "fm_datetime(__now)".to_owned(),
            Expr::Dot(target, name) => format!("{}[{}]", e(target)?, quote(name)),
            Expr::Index(target, index) => format!("{}[{}]", e(target)?, e(index)?),
            Expr::Default(value, default) => {
                let default = match default {
                    Some(d) => e(d)?,
                    None => "\"\"".to_owned(),
                };
                format!("fm_default({}, {default})", e(value)?)
            }
            Expr::Exists(value) => format!("fm_exists({})", e(value)?),
            Expr::BuiltIn(target, name, args) => self.built_in(offset, target, name, args)?,
            Expr::Not(inner) => format!("(not {})", e(inner)?),
            Expr::Negate(inner) => format!("(-{})", e(inner)?),
            Expr::Group(inner) => format!("({})", e(inner)?),
            Expr::Binary(op, left, right) => {
                let (left, right) = (e(left)?, e(right)?);
                match op {
                    BinOp::Add => format!("fm_add({left}, {right})"),
                    other => {
                        let op = match other {
                            BinOp::Or => "or",
                            BinOp::And => "and",
                            BinOp::Eq => "==",
                            BinOp::Ne => "!=",
                            BinOp::Lt => "<",
                            BinOp::Le => "<=",
                            BinOp::Gt => ">",
                            BinOp::Ge => ">=",
                            BinOp::Sub => "-",
                            BinOp::Mul => "*",
                            BinOp::Div => "/",
                            BinOp::Rem | BinOp::Add => "%",
                        };
                        format!("({left} {op} {right})")
                    }
                }
            }
        })
    }

    fn built_in(
        &self,
        offset: usize,
        target: &Expr,
        name: &str,
        args: &[Expr],
    ) -> Result<String, TranslateError> {
        // Loop-variable built-ins read the loop they belong to, which must be the innermost.
        if let Expr::Var(var) = target {
            let loop_built_in = match name {
                "index" => Some("loop.index0"),
                "counter" => Some("loop.index"),
                "has_next" => Some("(not loop.last)"),
                "is_first" => Some("loop.first"),
                "is_last" => Some("loop.last"),
                _ => None,
            };
            if let Some(translated) = loop_built_in {
                if self
                    .innermost_loop_names()
                    .is_some_and(|names| names.contains(var))
                {
                    return Ok(translated.to_owned());
                }
                return Err(self.fail(
                    offset,
                    format!("`{var}?{name}` needs `{var}` to be the innermost loop's variable"),
                ));
            }
        }
        let value = self.expr(offset, target)?;
        let args = args
            .iter()
            .map(|a| self.expr(offset, a))
            .collect::<Result<Vec<_>, _>>()?;
        let arity = |allowed: std::ops::RangeInclusive<usize>| {
            if allowed.contains(&args.len()) {
                Ok(())
            } else {
                Err(self.fail(
                    offset,
                    format!("`?{name}` does not take {} argument(s)", args.len()),
                ))
            }
        };
        let with_args = |function: &str| {
            let mut call = format!("{function}({value}");
            for arg in &args {
                call.push_str(", ");
                call.push_str(arg);
            }
            call.push(')');
            call
        };
        Ok(match name {
            "url" | "url_path" => {
                arity(0..=1)?;
                format!("fm_url({value}, {})", name == "url_path")
            }
            "html" | "xhtml" | "xml" => {
                arity(0..=0)?;
                format!("fm_html({value})")
            }
            "string" => {
                arity(0..=2)?;
                let mut call = format!("fm_string({value}, __fm.s_time_zone");
                for arg in &args {
                    call.push_str(", ");
                    call.push_str(arg);
                }
                call.push(')');
                call
            }
            "c" => {
                arity(0..=0)?;
                format!("fm_c({value})")
            }
            "long" | "int" => {
                arity(0..=0)?;
                format!("fm_int({value})")
            }
            "number" => {
                arity(0..=0)?;
                format!("fm_number({value})")
            }
            "number_to_datetime" | "number_to_date" | "number_to_time" => {
                arity(0..=0)?;
                format!("fm_datetime({value})")
            }
            "has_content" => {
                arity(0..=0)?;
                format!("fm_has_content({value})")
            }
            "upper_case" => {
                arity(0..=0)?;
                format!("fm_case({value}, \"upper\")")
            }
            "lower_case" => {
                arity(0..=0)?;
                format!("fm_case({value}, \"lower\")")
            }
            "cap_first" => {
                arity(0..=0)?;
                format!("fm_case({value}, \"cap_first\")")
            }
            "trim" => {
                arity(0..=0)?;
                format!("fm_case({value}, \"trim\")")
            }
            "length" | "size" => {
                arity(0..=0)?;
                format!("fm_size({value})")
            }
            "keys" | "values" => {
                arity(0..=0)?;
                format!("fm_{name}({value})")
            }
            "join" => {
                arity(1..=1)?;
                with_args("fm_join")
            }
            "replace" => {
                arity(2..=2)?;
                with_args("fm_replace")
            }
            "contains" | "starts_with" | "ends_with" => {
                arity(1..=1)?;
                with_args(&format!("fm_{name}"))
            }
            "then" => {
                arity(2..=2)?;
                format!("({} if {value} else {})", args[0], args[1])
            }
            "first" | "last" => {
                arity(0..=0)?;
                format!("({value}|{name})")
            }
            other => {
                return Err(self.fail(
                    offset,
                    format!("the built-in `?{other}` is not supported in email templates"),
                ))
            }
        })
    }
}

/// A MiniJinja string literal (JSON's escapes are a subset of MiniJinja's).
fn quote(text: &str) -> String {
    serde_json::Value::String(text.to_owned()).to_string()
}

#[cfg(test)]
mod tests;
