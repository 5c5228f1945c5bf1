//! A printed module's arguments matched to its class's signature, PyTorch's way: positional
//! arguments in the signature's order, keywords by name, defaults for the rest; and read as
//! the types the layer needs, every error naming the place, the layer and what is wrong.

use super::parse::{Arg, ModuleText, Pos, Value};
use crate::{Error, Result};

/// The largest size or count an argument may give (2^31): larger ones are errors, so that no
/// shape arithmetic on untrusted text can overflow.
pub const MAX_SIZE: i64 = 1 << 31;

/// One parameter of a class's `__init__`: its name and its default (None: required).
pub type Param = (&'static str, Option<Value>);

/// The arguments of one printed module, resolved against its signature.
pub struct Args<'a> {
    values: Vec<(&'static str, Value, Pos)>,
    /// `file:line:column: path: Class` for errors.
    place: String,
    module: &'a ModuleText,
}

impl<'a> Args<'a> {
    /// Match `m`'s arguments to `signature`; `keyword_only` are accepted only by name (PyTorch
    /// prints some that way). Unknown keywords, too many positional arguments and missing
    /// required ones are errors.
    pub fn resolve(
        m: &'a ModuleText,
        place: String,
        signature: &[Param],
        keyword_only: &[Param],
    ) -> Result<Args<'a>> {
        let mut given: Vec<Option<&Arg>> = vec![None; signature.len() + keyword_only.len()];
        let names: Vec<&str> = signature
            .iter()
            .chain(keyword_only)
            .map(|(n, _)| *n)
            .collect();
        for (k, arg) in m.args.iter().enumerate() {
            let slot = match &arg.key {
                None if k < signature.len() => k,
                None => {
                    return Err(Error::Invalid(format!(
                        "{place}: takes at most {} positional arguments ({}), got {}",
                        signature.len(),
                        names[..signature.len()].join(", "),
                        m.args.iter().filter(|a| a.key.is_none()).count()
                    )))
                }
                Some(key) => names.iter().position(|n| n == key).ok_or_else(|| {
                    Error::Invalid(format!(
                        "{place}: unknown argument '{key}' (it takes {})",
                        if names.is_empty() {
                            "none".to_string()
                        } else {
                            names.join(", ")
                        }
                    ))
                })?,
            };
            if given[slot].is_some() {
                return Err(Error::Invalid(format!(
                    "{place}: '{}' is given twice",
                    names[slot]
                )));
            }
            given[slot] = Some(arg);
        }
        let mut values = Vec::new();
        for ((name, default), arg) in signature.iter().chain(keyword_only).zip(given) {
            let (value, pos) = match (arg, default) {
                (Some(a), _) => (a.value.clone(), a.pos),
                (None, Some(d)) => (d.clone(), m.pos),
                (None, None) => {
                    return Err(Error::Invalid(format!(
                        "{place}: missing the argument '{name}'"
                    )))
                }
            };
            values.push((*name, value, pos));
        }
        Ok(Args {
            values,
            place,
            module: m,
        })
    }

    /// `file:line:column: path: Class`, for errors about this module.
    pub fn place(&self) -> &str {
        &self.place
    }

    fn get(&self, name: &str) -> &Value {
        &self
            .values
            .iter()
            .find(|(n, _, _)| *n == name)
            .unwrap_or_else(|| panic!("{name} is not in {}'s signature", self.module.class))
            .1
    }

    /// An error about argument `name`: `what` is wrong with it.
    pub fn bad(&self, name: &str, what: &str) -> Error {
        Error::Invalid(format!(
            "{}: {name}={} {what}",
            self.place,
            self.get(name).show()
        ))
    }

    /// A count or size: a non-negative integer (at least `min`).
    pub fn usize(&self, name: &str, min: usize) -> Result<usize> {
        match self.get(name) {
            Value::Int(i) if *i > MAX_SIZE => Err(self.bad(name, "is too large")),
            Value::Int(i) if *i >= min as i64 => Ok(*i as usize),
            Value::Int(_) => Err(self.bad(name, &format!("must be at least {min}"))),
            _ => Err(self.bad(name, "must be an integer")),
        }
    }

    /// An integer, possibly negative.
    pub fn int(&self, name: &str) -> Result<i64> {
        match self.get(name) {
            Value::Int(i) => Ok(*i),
            _ => Err(self.bad(name, "must be an integer")),
        }
    }

    /// A number (an integer is a number too), finite.
    pub fn float(&self, name: &str) -> Result<f64> {
        match self.get(name) {
            Value::Float(f) if f.is_finite() => Ok(*f),
            Value::Int(i) => Ok(*i as f64),
            _ => Err(self.bad(name, "must be a finite number")),
        }
    }

    /// A number or None.
    pub fn opt_float(&self, name: &str) -> Result<Option<f64>> {
        match self.get(name) {
            Value::None => Ok(None),
            _ => self.float(name).map(Some),
        }
    }

    /// True or False.
    pub fn bool(&self, name: &str) -> Result<bool> {
        match self.get(name) {
            Value::Bool(b) => Ok(*b),
            _ => Err(self.bad(name, "must be True or False")),
        }
    }

    /// A quoted string.
    pub fn string(&self, name: &str) -> Result<&str> {
        match self.get(name) {
            Value::Str(s) => Ok(s),
            _ => Err(self.bad(name, "must be a quoted string")),
        }
    }

    /// A size given as `k` or `(k, k)` (PyTorch prints a square kernel as a pair); bnlab's
    /// layers take square ones, so `(a, b)` with a != b is an error.
    pub fn square(&self, name: &str, min: usize) -> Result<usize> {
        let one = |v: &Value| match v {
            Value::Int(i) if *i > MAX_SIZE => Err(self.bad(name, "is too large")),
            Value::Int(i) if *i >= min as i64 => Ok(*i as usize),
            _ => Err(self.bad(name, &format!("must be an integer of at least {min}"))),
        };
        match self.get(name) {
            Value::Tuple(items) if items.len() == 2 => {
                let (a, b) = (one(&items[0])?, one(&items[1])?);
                if a != b {
                    return Err(self.bad(
                        name,
                        "is not square: bnlab's layers take the same size along height and width",
                    ));
                }
                Ok(a)
            }
            Value::Tuple(_) => Err(self.bad(name, "must be one integer or a pair")),
            v => one(v),
        }
    }

    /// A (height, width) size given as `k` or `(kh, kw)`.
    pub fn pair(&self, name: &str, min: usize) -> Result<(usize, usize)> {
        let one = |v: &Value| match v {
            Value::Int(i) if *i > MAX_SIZE => Err(self.bad(name, "is too large")),
            Value::Int(i) if *i >= min as i64 => Ok(*i as usize),
            _ => Err(self.bad(name, &format!("must be an integer of at least {min}"))),
        };
        match self.get(name) {
            Value::Tuple(items) if items.len() == 2 => Ok((one(&items[0])?, one(&items[1])?)),
            Value::Tuple(_) => Err(self.bad(name, "must be one integer or a pair")),
            v => one(v).map(|k| (k, k)),
        }
    }

    /// A shape: an integer or a tuple of positive integers.
    pub fn shape(&self, name: &str) -> Result<Vec<usize>> {
        let dims: Vec<Value> = match self.get(name) {
            Value::Tuple(items) => items.clone(),
            v => vec![v.clone()],
        };
        let dims: Option<Vec<usize>> = dims
            .iter()
            .map(|d| match d {
                Value::Int(i) if *i > 0 && *i <= MAX_SIZE => Some(*i as usize),
                _ => None,
            })
            .collect();
        match dims {
            Some(d) if !d.is_empty() => Ok(d),
            _ => Err(self.bad(name, "must be positive integers")),
        }
    }

    /// Whether the argument holds `value` (to check one PyTorch allows but bnlab does not).
    pub fn is(&self, name: &str, value: &Value) -> bool {
        self.get(name) == value
    }

    /// Require the argument to be `value`, the only one bnlab can honour: otherwise an error
    /// saying so (`why`).
    pub fn only(&self, name: &str, value: Value, why: &str) -> Result<()> {
        let given = self.get(name);
        let same = match (given, &value) {
            // PyTorch prints 1 as an int whether given as 1 or 1.0
            (Value::Float(a), Value::Int(b)) | (Value::Int(b), Value::Float(a)) => *a == *b as f64,
            (Value::Tuple(t), Value::Int(_)) => t.iter().all(|v| v == &value),
            (a, b) => a == b,
        };
        if same {
            Ok(())
        } else {
            Err(self.bad(name, &format!("is not supported ({why})")))
        }
    }
}
