//! FreeMarker expressions: the subset FusionAuth's templates use, parsed into a tree.

/// One part of a string literal: text, or an interpolation inside it (`"…/${code}?…"`).
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum StrPart {
    Text(String),
    Interpolation(Expr),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum BinOp {
    Or,
    And,
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
    Add,
    Sub,
    Mul,
    Div,
    Rem,
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Expr {
    Str(Vec<StrPart>),
    Number(String),
    Bool(bool),
    Hash(Vec<(Expr, Expr)>),
    Sequence(Vec<Expr>),
    Var(String),
    /// `.now`, the only special variable the subset has.
    Now,
    Dot(Box<Expr>, String),
    Index(Box<Expr>, Box<Expr>),
    /// `x!default`, or `x!` with an empty default.
    Default(Box<Expr>, Option<Box<Expr>>),
    /// `x??`
    Exists(Box<Expr>),
    /// `x?name` or `x?name(args)`
    BuiltIn(Box<Expr>, String, Vec<Expr>),
    Not(Box<Expr>),
    Negate(Box<Expr>),
    Binary(BinOp, Box<Expr>, Box<Expr>),
    Group(Box<Expr>),
}

/// Why a source is not in the subset, at a byte offset of the template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SyntaxError {
    pub offset: usize,
    pub message: String,
}

pub(crate) type ParseResult<T> = Result<T, SyntaxError>;

/// A cursor over the template source that reads expressions. `angle` is set inside
/// `<#…>` directives, where `>` closes the tag and comparisons are written `gt`, `gte`.
pub struct Parser<'a> {
    pub src: &'a str,
    pub pos: usize,
    pub angle: bool,
}

const WORD_OPERATORS: [&str; 6] = ["as", "lt", "lte", "gt", "gte", "in"];

impl<'a> Parser<'a> {
    pub fn new(src: &'a str, pos: usize, angle: bool) -> Self {
        Self { src, pos, angle }
    }

    pub fn error<T>(&self, message: impl Into<String>) -> ParseResult<T> {
        Err(SyntaxError {
            offset: self.pos,
            message: message.into(),
        })
    }

    pub fn rest(&self) -> &'a str {
        &self.src[self.pos..]
    }

    pub(crate) fn skip_whitespace(&mut self) {
        let rest = self.rest();
        self.pos += rest.len() - rest.trim_start().len();
    }

    /// Skips whitespace, then consumes `token` if it comes next.
    pub(crate) fn eat(&mut self, token: &str) -> bool {
        self.skip_whitespace();
        if self.rest().starts_with(token) {
            self.pos += token.len();
            true
        } else {
            false
        }
    }

    /// Consumes a whole word (`as`, `gt`) but not the start of a longer name (`asset`).
    pub(crate) fn eat_word(&mut self, word: &str) -> bool {
        self.skip_whitespace();
        let rest = self.rest();
        let follows_name = rest[word.len().min(rest.len())..]
            .chars()
            .next()
            .is_some_and(is_name_char);
        if rest.starts_with(word) && !follows_name {
            self.pos += word.len();
            true
        } else {
            false
        }
    }

    pub fn name(&mut self) -> ParseResult<String> {
        self.skip_whitespace();
        let rest = self.rest();
        let len = rest
            .char_indices()
            .find(|(i, c)| !(is_name_char(*c) && (*i > 0 || !c.is_ascii_digit())))
            .map_or(rest.len(), |(i, _)| i);
        if len == 0 {
            return self.error("a name was expected here");
        }
        let name = rest[..len].to_owned();
        self.pos += len;
        Ok(name)
    }

    pub(crate) fn expression(&mut self) -> ParseResult<Expr> {
        self.or()
    }

    fn or(&mut self) -> ParseResult<Expr> {
        let mut left = self.and()?;
        while self.eat("||") {
            left = binary(BinOp::Or, left, self.and()?);
        }
        Ok(left)
    }

    fn and(&mut self) -> ParseResult<Expr> {
        let mut left = self.equality()?;
        while self.eat("&&") {
            left = binary(BinOp::And, left, self.equality()?);
        }
        Ok(left)
    }

    fn equality(&mut self) -> ParseResult<Expr> {
        let left = self.comparison()?;
        let op = if self.eat("==") {
            BinOp::Eq
        } else if self.eat("!=") {
            BinOp::Ne
        } else if self.rest().starts_with('=') && !self.rest().starts_with("=>") {
            self.pos += 1;
            BinOp::Eq
        } else {
            return Ok(left);
        };
        Ok(binary(op, left, self.comparison()?))
    }

    fn comparison(&mut self) -> ParseResult<Expr> {
        let left = self.additive()?;
        let op = if self.eat_word("lte") || self.eat("<=") {
            BinOp::Le
        } else if self.eat_word("lt") || self.eat("<") {
            BinOp::Lt
        } else if self.eat_word("gte") || (!self.angle && self.eat(">=")) {
            BinOp::Ge
        } else if self.eat_word("gt") || (!self.angle && self.eat(">")) {
            BinOp::Gt
        } else {
            return Ok(left);
        };
        Ok(binary(op, left, self.additive()?))
    }

    fn additive(&mut self) -> ParseResult<Expr> {
        let mut left = self.multiplicative()?;
        loop {
            let op = if self.eat("+") {
                BinOp::Add
            } else if self.eat("-") {
                BinOp::Sub
            } else {
                return Ok(left);
            };
            left = binary(op, left, self.multiplicative()?);
        }
    }

    fn multiplicative(&mut self) -> ParseResult<Expr> {
        let mut left = self.unary()?;
        loop {
            let op = if self.eat("*") {
                BinOp::Mul
            } else if self.eat("/") {
                // `/]` closes a directive.
                if self.rest().starts_with(']') || self.rest().starts_with('>') {
                    self.pos -= 1;
                    return Ok(left);
                }
                BinOp::Div
            } else if self.eat("%") {
                BinOp::Rem
            } else {
                return Ok(left);
            };
            left = binary(op, left, self.unary()?);
        }
    }

    fn unary(&mut self) -> ParseResult<Expr> {
        self.skip_whitespace();
        if self.rest().starts_with('!') && !self.rest().starts_with("!=") {
            self.pos += 1;
            return Ok(Expr::Not(Box::new(self.unary()?)));
        }
        if self.eat("-") {
            return Ok(Expr::Negate(Box::new(self.unary()?)));
        }
        if self.eat("+") {
            return self.unary();
        }
        self.postfix()
    }

    fn postfix(&mut self) -> ParseResult<Expr> {
        let mut expr = self.primary()?;
        loop {
            // No whitespace is skipped before a postfix operator, so `x !y` stays apart.
            let rest = self.rest();
            if rest.starts_with("..") {
                return self.error("ranges (`..`) are not supported");
            } else if rest.starts_with('.') {
                self.pos += 1;
                expr = Expr::Dot(Box::new(expr), self.name()?);
            } else if rest.starts_with('[') {
                self.pos += 1;
                let index = self.expression()?;
                if !self.eat("]") {
                    return self.error("`]` was expected here");
                }
                expr = Expr::Index(Box::new(expr), Box::new(index));
            } else if rest.starts_with("??") {
                self.pos += 2;
                expr = Expr::Exists(Box::new(expr));
            } else if rest.starts_with('?') {
                self.pos += 1;
                let name = self.name()?;
                let mut args = Vec::new();
                if self.rest().starts_with('(') {
                    self.pos += 1;
                    args = self.arguments(")")?;
                }
                expr = Expr::BuiltIn(Box::new(expr), name, args);
            } else if rest.starts_with('!') && !rest.starts_with("!=") {
                self.pos += 1;
                let default = if self.starts_operand() {
                    Some(Box::new(self.postfix()?))
                } else {
                    None
                };
                return Ok(Expr::Default(Box::new(expr), default));
            } else if rest.starts_with('(') {
                return self.error("calling functions or macros is not supported");
            } else {
                return Ok(expr);
            }
        }
    }

    /// Whether what follows `x!` is its default value rather than the next operator.
    fn starts_operand(&self) -> bool {
        let rest = self.rest();
        let Some(c) = rest.chars().next() else {
            return false;
        };
        if c.is_alphabetic() || c == '_' {
            let word: String = rest.chars().take_while(|c| is_name_char(*c)).collect();
            return !WORD_OPERATORS.contains(&word.as_str());
        }
        matches!(c, '"' | '\'' | '(' | '{' | '[' | '.' | '-') || c.is_ascii_digit()
    }

    fn arguments(&mut self, close: &str) -> ParseResult<Vec<Expr>> {
        let mut args = Vec::new();
        if self.eat(close) {
            return Ok(args);
        }
        loop {
            args.push(self.expression()?);
            if self.eat(close) {
                return Ok(args);
            }
            if !self.eat(",") {
                return self.error(format!("`,` or `{close}` was expected here"));
            }
        }
    }

    fn primary(&mut self) -> ParseResult<Expr> {
        self.skip_whitespace();
        let rest = self.rest();
        let Some(c) = rest.chars().next() else {
            return self.error("the expression ends too early");
        };
        match c {
            '(' => {
                self.pos += 1;
                let inner = self.expression()?;
                if !self.eat(")") {
                    return self.error("`)` was expected here");
                }
                Ok(Expr::Group(Box::new(inner)))
            }
            '"' | '\'' => self.string(c, false),
            'r' if rest[1..].starts_with(['"', '\'']) => {
                self.pos += 1;
                let quote = if self.rest().starts_with('"') {
                    '"'
                } else {
                    '\''
                };
                self.string(quote, true)
            }
            '{' => {
                self.pos += 1;
                let mut entries = Vec::new();
                if !self.eat("}") {
                    loop {
                        let key = self.expression()?;
                        if !self.eat(":") {
                            return self.error("`:` was expected here");
                        }
                        entries.push((key, self.expression()?));
                        if self.eat("}") {
                            break;
                        }
                        if !self.eat(",") {
                            return self.error("`,` or `}` was expected here");
                        }
                    }
                }
                Ok(Expr::Hash(entries))
            }
            '[' => {
                self.pos += 1;
                Ok(Expr::Sequence(self.arguments("]")?))
            }
            '.' => {
                self.pos += 1;
                match self.name()?.as_str() {
                    "now" => Ok(Expr::Now),
                    other => self.error(format!(
                        "the special variable `.{other}` is not supported (only `.now` is)"
                    )),
                }
            }
            c if c.is_ascii_digit() => {
                let len = rest
                    .char_indices()
                    .find(|(i, c)| {
                        !(c.is_ascii_digit()
                            || (*c == '.'
                                && rest[i + 1..].starts_with(|d: char| d.is_ascii_digit())))
                    })
                    .map_or(rest.len(), |(i, _)| i);
                self.pos += len;
                Ok(Expr::Number(rest[..len].to_owned()))
            }
            c if is_name_char(c) => {
                let name = self.name()?;
                Ok(match name.as_str() {
                    "true" => Expr::Bool(true),
                    "false" => Expr::Bool(false),
                    _ => Expr::Var(name),
                })
            }
            other => self.error(format!("`{other}` cannot start an expression")),
        }
    }

    /// A string literal; outside raw strings, `${…}` inside it is an interpolation.
    fn string(&mut self, quote: char, raw: bool) -> ParseResult<Expr> {
        self.pos += 1;
        let mut parts = Vec::new();
        let mut text = String::new();
        loop {
            let Some(c) = self.rest().chars().next() else {
                return self.error("the string is not closed");
            };
            if c == quote {
                self.pos += 1;
                break;
            }
            if !raw && self.rest().starts_with("${") {
                self.pos += 2;
                let inner = self.expression()?;
                if !self.eat("}") {
                    return self.error("`}` was expected here");
                }
                if !text.is_empty() {
                    parts.push(StrPart::Text(std::mem::take(&mut text)));
                }
                parts.push(StrPart::Interpolation(inner));
                continue;
            }
            self.pos += c.len_utf8();
            if raw || c != '\\' {
                text.push(c);
                continue;
            }
            let Some(escaped) = self.rest().chars().next() else {
                return self.error("the string is not closed");
            };
            self.pos += escaped.len_utf8();
            text.push(match escaped {
                'n' => '\n',
                'r' => '\r',
                't' => '\t',
                'b' => '\u{8}',
                'f' => '\u{c}',
                'l' => '<',
                'g' => '>',
                'a' => '&',
                '"' | '\'' | '\\' | '$' | '{' | '=' => escaped,
                other => return self.error(format!("the escape `\\{other}` is not supported")),
            });
        }
        if !text.is_empty() || parts.is_empty() {
            parts.push(StrPart::Text(text));
        }
        Ok(Expr::Str(parts))
    }
}

fn binary(op: BinOp, left: Expr, right: Expr) -> Expr {
    Expr::Binary(op, Box::new(left), Box::new(right))
}

pub(crate) fn is_name_char(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(source: &str) -> Expr {
        let mut parser = Parser::new(source, 0, false);
        let expr = parser.expression().unwrap();
        assert_eq!(parser.rest().trim(), "", "left over in {source}");
        expr
    }

    fn var(name: &str) -> Box<Expr> {
        Box::new(Expr::Var(name.into()))
    }

    #[test]
    fn a_default_binds_to_the_value_before_it() {
        assert_eq!(
            parse("state!{}"),
            Expr::Default(var("state"), Some(Box::new(Expr::Hash(vec![]))))
        );
        assert_eq!(
            parse("user.timezone!\"UTC\""),
            Expr::Default(
                Box::new(Expr::Dot(var("user"), "timezone".into())),
                Some(Box::new(Expr::Str(vec![StrPart::Text("UTC".into())])))
            )
        );
    }

    #[test]
    fn a_bare_default_ends_before_the_next_operator() {
        assert_eq!(
            parse("a! + b"),
            Expr::Binary(
                BinOp::Add,
                Box::new(Expr::Default(var("a"), None)),
                var("b")
            )
        );
    }

    #[test]
    fn not_equal_is_not_a_default() {
        assert_eq!(
            parse("key != \"tenantId\" && value??"),
            Expr::Binary(
                BinOp::And,
                Box::new(Expr::Binary(
                    BinOp::Ne,
                    var("key"),
                    Box::new(Expr::Str(vec![StrPart::Text("tenantId".into())]))
                )),
                Box::new(Expr::Exists(var("value")))
            )
        );
    }

    #[test]
    fn strings_carry_interpolations() {
        assert_eq!(
            parse("\"/p/${code}?t=${user.tenantId}\""),
            Expr::Str(vec![
                StrPart::Text("/p/".into()),
                StrPart::Interpolation(Expr::Var("code".into())),
                StrPart::Text("?t=".into()),
                StrPart::Interpolation(Expr::Dot(var("user"), "tenantId".into())),
            ])
        );
    }

    #[test]
    fn arithmetic_has_the_usual_precedence() {
        assert_eq!(
            parse("(.now?long + timeToLive * 1000)?number_to_datetime"),
            Expr::BuiltIn(
                Box::new(Expr::Group(Box::new(Expr::Binary(
                    BinOp::Add,
                    Box::new(Expr::BuiltIn(Box::new(Expr::Now), "long".into(), vec![])),
                    Box::new(Expr::Binary(
                        BinOp::Mul,
                        var("timeToLive"),
                        Box::new(Expr::Number("1000".into()))
                    ))
                )))),
                "number_to_datetime".into(),
                vec![]
            )
        );
    }

    #[test]
    fn unsupported_constructs_are_named() {
        let mut parser = Parser::new("1..3", 0, false);
        assert!(parser.expression().unwrap_err().message.contains("ranges"));
        let mut parser = Parser::new("myMacro(1)", 0, false);
        assert!(parser.expression().unwrap_err().message.contains("calling"));
        let mut parser = Parser::new(".vars", 0, false);
        assert!(parser.expression().unwrap_err().message.contains(".vars"));
    }
}
