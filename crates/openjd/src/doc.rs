//! Reading the template's tree (YAML or JSON, held as JSON values) field by field, with
//! the path of every value kept for error messages and unknown keys refused.

use serde_json::{Map, Value};

use crate::error::{Result, invalid, unsupported};

/// Parses YAML (JSON is YAML too) into a JSON value tree.
pub(crate) fn parse_text(text: &str) -> Result<Value> {
    let value: Value =
        serde_yaml::from_str(text).map_err(|e| crate::Error::Syntax(e.to_string()))?;
    if !value.is_object() {
        return Err(crate::Error::Syntax(
            "the top level must be a mapping with specificationVersion, name and steps".into(),
        ));
    }
    Ok(value)
}

/// An object of the template at `path`, its keys checked.
pub(crate) struct Obj<'a> {
    pub map: &'a Map<String, Value>,
    pub path: String,
}

/// How a key of an object is treated.
pub(crate) struct Keys<'k> {
    /// Read by Castanet.
    pub known: &'k [&'k str],
    /// In the specification, but refused: Castanet does not run them.
    pub unsupported: &'k [&'k str],
    /// In the specification, and without effect on how Castanet runs the job.
    pub ignored: &'k [&'k str],
}

impl<'a> Obj<'a> {
    pub fn new(value: &'a Value, path: impl Into<String>, what: &str) -> Result<Self> {
        let path = path.into();
        match value.as_object() {
            Some(map) => Ok(Self { map, path }),
            None => Err(invalid(format!("{path} must be {what} (a mapping)"))),
        }
    }

    /// Refuses keys outside `keys`, naming the first.
    pub fn check_keys(&self, keys: &Keys<'_>, what: &str) -> Result<()> {
        for key in self.map.keys() {
            let k = key.as_str();
            if keys.unsupported.contains(&k) {
                return Err(unsupported(format!("{} is not supported", self.child(k))));
            }
            if !keys.known.contains(&k) && !keys.ignored.contains(&k) {
                return Err(invalid(format!(
                    "{} is not a field of {what}",
                    self.child(k)
                )));
            }
        }
        Ok(())
    }

    pub fn child(&self, key: &str) -> String {
        if self.path.is_empty() {
            key.to_owned()
        } else {
            format!("{}.{key}", self.path)
        }
    }

    pub fn get(&self, key: &str) -> Option<&'a Value> {
        self.map.get(key)
    }

    pub fn required(&self, key: &str) -> Result<&'a Value> {
        self.get(key)
            .ok_or_else(|| invalid(format!("{} is required", self.child(key))))
    }

    pub fn string(&self, key: &str) -> Result<Option<&'a str>> {
        match self.get(key) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s)),
            Some(_) => Err(invalid(format!("{} must be a string", self.child(key)))),
        }
    }

    pub fn required_string(&self, key: &str) -> Result<&'a str> {
        self.string(key)?
            .ok_or_else(|| invalid(format!("{} is required", self.child(key))))
    }

    pub fn bool(&self, key: &str) -> Result<Option<bool>> {
        match self.get(key) {
            None => Ok(None),
            Some(Value::Bool(b)) => Ok(Some(*b)),
            Some(_) => Err(invalid(format!(
                "{} must be true or false",
                self.child(key)
            ))),
        }
    }

    /// A list that, when present, has at least one element.
    pub fn list(&self, key: &str) -> Result<Option<&'a Vec<Value>>> {
        match self.get(key) {
            None => Ok(None),
            Some(Value::Array(items)) if items.is_empty() => Err(invalid(format!(
                "{} must not be empty (leave it out instead)",
                self.child(key)
            ))),
            Some(Value::Array(items)) => Ok(Some(items)),
            Some(_) => Err(invalid(format!("{} must be a list", self.child(key)))),
        }
    }

    /// A positive integer.
    pub fn positive_int(&self, key: &str) -> Result<Option<u64>> {
        match self.get(key) {
            None => Ok(None),
            Some(value) => match value.as_u64() {
                Some(n) if n > 0 => Ok(Some(n)),
                _ => Err(invalid(format!(
                    "{} must be a positive whole number",
                    self.child(key)
                ))),
            },
        }
    }
}

/// A scalar as text: strings as they are, numbers as written (YAML `10.0` stays `10.0`).
pub(crate) fn scalar_text(value: &Value) -> Option<String> {
    match value {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

/// `<Identifier>`: latin letters, digits and `_`, not starting with a digit, 1–64 long.
pub(crate) fn check_identifier(name: &str, path: &str) -> Result<()> {
    let mut chars = name.chars();
    let starts_well = chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_');
    let rest_ok = chars.all(|c| c.is_ascii_alphanumeric() || c == '_');
    if starts_well && rest_ok && name.len() <= 64 {
        Ok(())
    } else {
        Err(invalid(format!(
            "{path} \"{name}\" is not a valid identifier (latin letters, digits and _, \
             starting with a letter or _, at most 64 characters)"
        )))
    }
}

/// A name shown to people: 1..=`max` characters, none of them control characters.
pub(crate) fn check_display_name(name: &str, path: &str, max: usize) -> Result<()> {
    let length = name.chars().count();
    if length == 0 || length > max {
        return Err(invalid(format!(
            "{path} must be 1 to {max} characters long, not {length}"
        )));
    }
    if name.chars().any(char::is_control) {
        return Err(invalid(format!(
            "{path} must not contain control characters"
        )));
    }
    Ok(())
}
