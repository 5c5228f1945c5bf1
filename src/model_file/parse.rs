//! Reading PyTorch's printed module (`print(model)`) into a tree of modules with their
//! arguments, each with its line and column for errors.
//!
//! The grammar is what `nn.Module.__repr__` writes, with any whitespace:
//!
//! ```text
//! module := CLASS "(" ( child* | args ) ")"
//! child  := "(" NAME ")" ":" module
//! args   := [ arg ( "," arg )* [","] ]
//! arg    := KEY "=" value | value
//! value  := INT | FLOAT | True | False | None | 'string' | "string" | "(" [ value ("," value)* [","] ] ")"
//! ```
//!
//! The text is untrusted: every error is a position and what was expected, nesting is capped
//! at [`MAX_DEPTH`], and nothing panics on any input (fuzzed by `fuzz/fuzz_targets`).

use crate::{Error, Result};

/// The deepest nesting of modules and tuples accepted, so that a hostile file cannot exhaust the
/// stack.
pub const MAX_DEPTH: usize = 64;

/// A place in the file, 1-based, as editors count.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Pos {
    /// The line, from 1.
    pub line: usize,
    /// The column in characters, from 1.
    pub column: usize,
}

/// An argument's value as PyTorch prints it.
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    /// An integer (`300`, `-1`).
    Int(i64),
    /// A number with a point or an exponent (`1e-05`, `0.1`).
    Float(f64),
    /// `True` or `False`.
    Bool(bool),
    /// `None`.
    None,
    /// A quoted string (`'none'`).
    Str(String),
    /// A tuple (`(3, 3)`, `(300,)`).
    Tuple(Vec<Value>),
}

impl Value {
    /// The value as PyTorch would print it, for error messages.
    pub fn show(&self) -> String {
        match self {
            Value::Int(i) => i.to_string(),
            Value::Float(f) => format!("{f:?}"),
            Value::Bool(b) => if *b { "True" } else { "False" }.into(),
            Value::None => "None".into(),
            Value::Str(s) => format!("'{s}'"),
            Value::Tuple(v) => {
                let items: Vec<String> = v.iter().map(Value::show).collect();
                if items.len() == 1 {
                    format!("({},)", items[0])
                } else {
                    format!("({})", items.join(", "))
                }
            }
        }
    }
}

/// One argument: `key=value` or a positional value.
#[derive(Clone, Debug, PartialEq)]
pub struct Arg {
    /// The keyword, or None for a positional argument.
    pub key: Option<String>,
    /// The value.
    pub value: Value,
    /// Where the argument starts.
    pub pos: Pos,
}

/// A module as printed: its class, its arguments, and its named children in order.
#[derive(Clone, Debug, PartialEq)]
pub struct ModuleText {
    /// The class name (`Linear`, `Sequential`, `Net`).
    pub class: String,
    /// The arguments inside the parentheses (none for a container).
    pub args: Vec<Arg>,
    /// The children, `(name): Module(...)`, in the order printed.
    pub children: Vec<(String, ModuleText)>,
    /// Where the class name starts.
    pub pos: Pos,
}

/// Parse the text of `print(model)`; `file` names the source in errors (`file:line:column`).
pub fn parse(text: &str, file: &str) -> Result<ModuleText> {
    let mut p = Parser {
        chars: text.chars().collect(),
        i: 0,
        line: 1,
        column: 1,
        file,
    };
    p.skip_space();
    let module = p.module(0)?;
    p.skip_space();
    if p.i < p.chars.len() {
        return Err(p.error_here("nothing after the model's closing ')'"));
    }
    Ok(module)
}

struct Parser<'a> {
    chars: Vec<char>,
    i: usize,
    line: usize,
    column: usize,
    file: &'a str,
}

impl Parser<'_> {
    fn pos(&self) -> Pos {
        Pos {
            line: self.line,
            column: self.column,
        }
    }

    fn error_at(&self, pos: Pos, what: &str) -> Error {
        Error::Invalid(format!("{}:{}:{}: {what}", self.file, pos.line, pos.column))
    }

    fn error_here(&self, what: &str) -> Error {
        self.error_at(self.pos(), what)
    }

    fn peek(&self) -> Option<char> {
        self.chars.get(self.i).copied()
    }

    fn bump(&mut self) -> Option<char> {
        let c = self.peek()?;
        self.i += 1;
        if c == '\n' {
            self.line += 1;
            self.column = 1;
        } else {
            self.column += 1;
        }
        Some(c)
    }

    fn skip_space(&mut self) {
        while self.peek().is_some_and(char::is_whitespace) {
            self.bump();
        }
    }

    fn expect(&mut self, c: char) -> Result<()> {
        self.skip_space();
        if self.peek() == Some(c) {
            self.bump();
            Ok(())
        } else {
            Err(self.error_here(&format!("expected '{c}', found {}", self.found())))
        }
    }

    fn found(&self) -> String {
        match self.peek() {
            None => "the end of the file".into(),
            Some('\n') => "the end of the line".into(),
            Some(c) => format!("'{c}'"),
        }
    }

    /// A name: letters, digits and underscores (a class, a keyword, a child's name or index).
    fn word(&mut self) -> String {
        let mut w = String::new();
        while let Some(c) = self.peek().filter(|c| c.is_alphanumeric() || *c == '_') {
            w.push(c);
            self.bump();
        }
        w
    }

    fn module(&mut self, depth: usize) -> Result<ModuleText> {
        if depth > MAX_DEPTH {
            return Err(self.error_here(&format!("modules nested deeper than {MAX_DEPTH}")));
        }
        self.skip_space();
        let pos = self.pos();
        let class = self.word();
        if class.is_empty() || !class.starts_with(|c: char| c.is_alphabetic() || c == '_') {
            return Err(self.error_at(
                pos,
                &format!("expected a module's class name, found {}", self.found()),
            ));
        }
        self.expect('(')?;
        let mut module = ModuleText {
            class,
            args: Vec::new(),
            children: Vec::new(),
            pos,
        };
        self.skip_space();
        if self.at_child() {
            while self.at_child() {
                let (name, child) = self.child(depth)?;
                if module.children.iter().any(|(n, _)| *n == name) {
                    return Err(self.error_at(child.pos, &format!("a second child named '{name}'")));
                }
                module.children.push((name, child));
                self.skip_space();
            }
        } else {
            module.args = self.args(depth)?;
        }
        self.expect(')')?;
        Ok(module)
    }

    /// Whether a child `(name): ...` starts here (and not a tuple argument).
    fn at_child(&self) -> bool {
        if self.peek() != Some('(') {
            return false;
        }
        let mut j = self.i + 1;
        while self
            .chars
            .get(j)
            .is_some_and(|c| c.is_alphanumeric() || *c == '_')
        {
            j += 1;
        }
        j > self.i + 1 && self.chars.get(j) == Some(&')') && self.chars.get(j + 1) == Some(&':')
    }

    fn child(&mut self, depth: usize) -> Result<(String, ModuleText)> {
        self.expect('(')?;
        let name = self.word();
        self.expect(')')?;
        self.expect(':')?;
        let module = self.module(depth + 1)?;
        Ok((name, module))
    }

    fn args(&mut self, depth: usize) -> Result<Vec<Arg>> {
        let mut args: Vec<Arg> = Vec::new();
        loop {
            self.skip_space();
            if self.peek() == Some(')') {
                return Ok(args);
            }
            let pos = self.pos();
            let key = self.keyword();
            let value = self.value(depth)?;
            if let Some(k) = &key {
                if args.iter().any(|a| a.key.as_ref() == Some(k)) {
                    return Err(self.error_at(pos, &format!("'{k}' is given twice")));
                }
            } else if args.iter().any(|a| a.key.is_some()) {
                return Err(self.error_at(pos, "a positional argument after a keyword argument"));
            }
            args.push(Arg { key, value, pos });
            self.skip_space();
            match self.peek() {
                Some(',') => {
                    self.bump();
                }
                Some(')') => return Ok(args),
                _ => {
                    return Err(self.error_here(&format!(
                        "expected ',' or ')' after an argument, found {}",
                        self.found()
                    )))
                }
            }
        }
    }

    /// `key=` if one starts here (consumed), else nothing consumed.
    fn keyword(&mut self) -> Option<String> {
        let start = (self.i, self.line, self.column);
        let w = self.word();
        if !w.is_empty() && w.starts_with(|c: char| c.is_alphabetic() || c == '_') {
            self.skip_space();
            if self.peek() == Some('=') {
                self.bump();
                return Some(w);
            }
        }
        (self.i, self.line, self.column) = start;
        None
    }

    fn value(&mut self, depth: usize) -> Result<Value> {
        if depth > MAX_DEPTH {
            return Err(self.error_here(&format!("values nested deeper than {MAX_DEPTH}")));
        }
        self.skip_space();
        let pos = self.pos();
        match self.peek() {
            Some('(') => {
                self.bump();
                let mut items = Vec::new();
                loop {
                    self.skip_space();
                    if self.peek() == Some(')') {
                        self.bump();
                        return Ok(Value::Tuple(items));
                    }
                    items.push(self.value(depth + 1)?);
                    self.skip_space();
                    match self.peek() {
                        Some(',') => {
                            self.bump();
                        }
                        Some(')') => {}
                        _ => {
                            return Err(self.error_here(&format!(
                                "expected ',' or ')' in a tuple, found {}",
                                self.found()
                            )))
                        }
                    }
                }
            }
            Some(q @ ('\'' | '"')) => {
                self.bump();
                let mut s = String::new();
                loop {
                    match self.bump() {
                        Some(c) if c == q => return Ok(Value::Str(s)),
                        Some('\n') | None => {
                            return Err(self.error_at(pos, "a string that is never closed"))
                        }
                        Some(c) => s.push(c),
                    }
                }
            }
            Some(c) if c.is_ascii_digit() || c == '-' || c == '+' || c == '.' => self.number(pos),
            Some(c) if c.is_alphabetic() => match self.word().as_str() {
                "True" => Ok(Value::Bool(true)),
                "False" => Ok(Value::Bool(false)),
                "None" => Ok(Value::None),
                "inf" => Ok(Value::Float(f64::INFINITY)),
                "nan" => Ok(Value::Float(f64::NAN)),
                w => Err(self.error_at(
                    pos,
                    &format!("'{w}' is not a value (a number, True, False, None, a quoted string or a tuple)"),
                )),
            },
            _ => Err(self.error_here(&format!("expected a value, found {}", self.found()))),
        }
    }

    fn number(&mut self, pos: Pos) -> Result<Value> {
        let mut s = String::new();
        while let Some(c) = self
            .peek()
            .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '+' | '.'))
        {
            s.push(c);
            self.bump();
        }
        if let Ok(i) = s.parse::<i64>() {
            return Ok(Value::Int(i));
        }
        match s.parse::<f64>() {
            Ok(f) if !s.contains(char::is_alphabetic) || s.contains(['e', 'E']) => {
                Ok(Value::Float(f))
            }
            _ => Err(self.error_at(pos, &format!("'{s}' is not a number"))),
        }
    }
}

#[cfg(test)]
#[path = "parse_tests.rs"]
mod tests;
