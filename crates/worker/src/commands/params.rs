//! Command parameters: the JSON object from the task, with typed accessors whose errors
//! name the parameter.

use serde_json::{Map, Value};

use super::CommandError;

/// A command's parameters.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Params(Map<String, Value>);

impl Params {
    /// Parses the task's `parameters_json`; an empty string means no parameters.
    pub fn parse(json: &str) -> Result<Self, CommandError> {
        if json.trim().is_empty() {
            return Ok(Self::default());
        }
        match serde_json::from_str(json) {
            Ok(Value::Object(map)) => Ok(Self(map)),
            Ok(_) => Err(CommandError::invalid(
                "command parameters are not a JSON object",
            )),
            Err(e) => Err(CommandError::invalid(format!(
                "command parameters are not valid JSON: {e}"
            ))),
        }
    }

    /// A required string parameter.
    pub fn string(&self, key: &str) -> Result<&str, CommandError> {
        match self.0.get(key) {
            Some(Value::String(s)) => Ok(s),
            None | Some(Value::Null) => Err(missing(key)),
            Some(_) => Err(wrong_type(key, "a string")),
        }
    }

    /// A required, non-empty string parameter.
    pub fn non_empty_string(&self, key: &str) -> Result<&str, CommandError> {
        match self.string(key)? {
            "" => Err(CommandError::invalid(format!("parameter {key:?} is empty"))),
            s => Ok(s),
        }
    }

    /// An optional string (absent or null = empty).
    pub fn optional_string(&self, key: &str) -> Result<&str, CommandError> {
        match self.0.get(key) {
            None | Some(Value::Null) => Ok(""),
            Some(Value::String(s)) => Ok(s),
            Some(_) => Err(wrong_type(key, "a string")),
        }
    }

    /// The raw value of `key`, for parameters of a shape the typed accessors do not cover.
    pub fn get(&self, key: &str) -> Option<&Value> {
        self.0.get(key).filter(|v| !v.is_null())
    }

    /// Whether `key` is given (and not null).
    pub fn has(&self, key: &str) -> bool {
        self.0.get(key).is_some_and(|v| !v.is_null())
    }

    /// A required number greater than zero.
    pub fn positive_number(&self, key: &str) -> Result<f64, CommandError> {
        match self.0.get(key) {
            Some(Value::Number(n)) => match n.as_f64() {
                Some(f) if f > 0.0 && f.is_finite() => Ok(f),
                _ => Err(CommandError::invalid(format!(
                    "parameter {key:?} must be greater than 0, not {n}"
                ))),
            },
            None | Some(Value::Null) => Err(missing(key)),
            Some(_) => Err(wrong_type(key, "a number")),
        }
    }

    /// An optional list of strings (absent or null = empty).
    pub fn string_list(&self, key: &str) -> Result<Vec<String>, CommandError> {
        match self.0.get(key) {
            None | Some(Value::Null) => Ok(Vec::new()),
            Some(Value::Array(items)) => items
                .iter()
                .map(|item| match item {
                    Value::String(s) => Ok(s.clone()),
                    _ => Err(wrong_type(key, "a list of strings")),
                })
                .collect(),
            Some(_) => Err(wrong_type(key, "a list of strings")),
        }
    }

    /// An optional object of text values (an environment), in key order; empty when absent.
    pub fn string_map(&self, key: &str) -> Result<Vec<(String, String)>, CommandError> {
        match self.0.get(key) {
            None | Some(Value::Null) => Ok(Vec::new()),
            Some(Value::Object(entries)) => entries
                .iter()
                .map(|(name, value)| match value {
                    Value::String(text) if !name.is_empty() && !name.contains('=') => {
                        Ok((name.clone(), text.clone()))
                    }
                    _ => Err(wrong_type(
                        key,
                        "an object of text values with names without '='",
                    )),
                })
                .collect(),
            Some(_) => Err(wrong_type(key, "an object of text values")),
        }
    }

    /// A required number of seconds (int or float, ≥ 0); the fraction is dropped.
    pub fn whole_seconds(&self, key: &str) -> Result<u64, CommandError> {
        let number = match self.0.get(key) {
            Some(Value::Number(n)) => n,
            None | Some(Value::Null) => return Err(missing(key)),
            Some(_) => return Err(wrong_type(key, "a number")),
        };
        if let Some(whole) = number.as_u64() {
            return Ok(whole);
        }
        match number.as_f64() {
            Some(f) if f >= 0.0 && f.is_finite() => Ok(f.trunc().min(u64::MAX as f64) as u64),
            _ => Err(CommandError::invalid(format!(
                "parameter {key:?} must not be negative"
            ))),
        }
    }
}

fn missing(key: &str) -> CommandError {
    CommandError::invalid(format!("missing parameter {key:?}"))
}

fn wrong_type(key: &str, what: &str) -> CommandError {
    CommandError::invalid(format!("parameter {key:?} must be {what}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(json: &str) -> Params {
        Params::parse(json).unwrap_or_default()
    }

    #[test]
    fn typed_accessors() {
        let p = params(
            r#"{"s": "x", "e": "", "n": 2.9, "i": 3, "neg": -1, "l": ["a", "b"], "bad": [1]}"#,
        );
        assert_eq!(p.string("s"), Ok("x"));
        assert!(p.non_empty_string("e").is_err());
        assert!(p.string("n").is_err());
        assert!(p.string("absent").is_err());
        assert_eq!(p.whole_seconds("n"), Ok(2));
        assert_eq!(p.whole_seconds("i"), Ok(3));
        assert!(p.whole_seconds("neg").is_err());
        assert!(p.whole_seconds("s").is_err());
        assert_eq!(
            p.string_list("l"),
            Ok(vec!["a".to_string(), "b".to_string()])
        );
        assert_eq!(p.string_list("absent"), Ok(vec![]));
        assert!(p.string_list("bad").is_err());
        assert_eq!(Params::parse(""), Ok(Params::default()));
        assert_eq!(p.optional_string("absent"), Ok(""));
        assert!(p.optional_string("n").is_err());
        assert_eq!(p.positive_number("n"), Ok(2.9));
        assert!(p.positive_number("neg").is_err());
        assert!(p.positive_number("absent").is_err());
    }
}
