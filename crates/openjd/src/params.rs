//! Job parameters: their definitions (INT, FLOAT, STRING, PATH with default, allowedValues,
//! minValue/maxValue, minLength/maxLength) and the values a submission gives them. Values
//! come as JSON (the REST API) or as text (`castanet submit --param k=v`, sent as strings);
//! INT and FLOAT take either a number or its text. PATH values are used as given: Castanet
//! applies no path mapping, so `Param.X` and `RawParam.X` are the same.

use std::collections::BTreeMap;

use serde_json::Value;

use crate::doc::{Keys, Obj, check_identifier};
use crate::error::{Error, Result, invalid};

/// The longest value a STRING or PATH parameter may have, in characters.
const MAX_STRING_LENGTH: usize = 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum ParamType {
    Int,
    Float,
    String,
    Path,
}

impl ParamType {
    pub(crate) fn parse(text: &str, path: &str) -> Result<Self> {
        match text {
            "INT" => Ok(Self::Int),
            "FLOAT" => Ok(Self::Float),
            "STRING" => Ok(Self::String),
            "PATH" => Ok(Self::Path),
            other => Err(invalid(format!(
                "{path} \"{other}\" is not a parameter type (INT, FLOAT, STRING or PATH)"
            ))),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Int => "INT",
            Self::Float => "FLOAT",
            Self::String => "STRING",
            Self::Path => "PATH",
        }
    }
}

/// One entry of `parameterDefinitions`.
#[derive(Debug, Clone)]
pub struct ParamDefinition {
    pub name: String,
    pub kind: ParamType,
    pub default: Option<Value>,
    pub description: Option<String>,
    allowed: Option<Vec<Value>>,
    min_value: Option<Value>,
    max_value: Option<Value>,
    min_length: Option<u64>,
    max_length: Option<u64>,
}

/// A checked value: its text as format strings see it, and for numbers the number.
enum Checked {
    Number(f64, String),
    Text(String),
}

impl Checked {
    fn text(self) -> String {
        match self {
            Checked::Number(_, text) | Checked::Text(text) => text,
        }
    }
}

impl ParamDefinition {
    pub(crate) fn parse(value: &Value, path: &str) -> Result<Self> {
        let obj = Obj::new(value, path, "a parameter definition")?;
        let name = obj.required_string("name")?.to_owned();
        check_identifier(&name, &obj.child("name"))?;
        let kind = ParamType::parse(obj.required_string("type")?, &obj.child("type"))?;
        let known: &[&str] = match kind {
            ParamType::Int | ParamType::Float => &[
                "name",
                "type",
                "description",
                "default",
                "allowedValues",
                "minValue",
                "maxValue",
            ],
            ParamType::String => &[
                "name",
                "type",
                "description",
                "default",
                "allowedValues",
                "minLength",
                "maxLength",
            ],
            ParamType::Path => &[
                "name",
                "type",
                "description",
                "default",
                "allowedValues",
                "minLength",
                "maxLength",
                "objectType",
                "dataFlow",
            ],
        };
        obj.check_keys(
            &Keys {
                known,
                unsupported: &[],
                // Only for submission forms.
                ignored: &["userInterface"],
            },
            &format!("a {} parameter", kind.as_str()),
        )?;
        let length = |key: &str| match obj.get(key) {
            None => Ok(None),
            Some(v) => v
                .as_u64()
                .map(Some)
                .ok_or_else(|| invalid(format!("{} must be a whole number ≥ 0", obj.child(key)))),
        };
        let definition = Self {
            description: obj.string("description")?.map(str::to_owned),
            default: obj.get("default").cloned(),
            allowed: obj.list("allowedValues")?.cloned(),
            min_value: obj.get("minValue").cloned(),
            max_value: obj.get("maxValue").cloned(),
            min_length: length("minLength")?,
            max_length: length("maxLength")?,
            name,
            kind,
        };
        definition.check_definition(path)?;
        Ok(definition)
    }

    /// The constraints must themselves be values of the type, and the default must pass them.
    fn check_definition(&self, path: &str) -> Result<()> {
        let bad = |what: &str, e: Error| invalid(format!("{path}.{what}: {e}"));
        for (key, bound) in [("minValue", &self.min_value), ("maxValue", &self.max_value)] {
            if let Some(bound) = bound {
                self.typed(bound).map_err(|e| bad(key, e))?;
            }
        }
        for (i, allowed) in self.allowed.iter().flatten().enumerate() {
            self.typed(allowed)
                .map_err(|e| bad(&format!("allowedValues[{i}]"), e))?;
        }
        if let Some(default) = &self.default {
            self.check(default).map_err(|e| bad("default", e))?;
        }
        Ok(())
    }

    /// The value read as this parameter's type, without the constraints.
    fn typed(&self, value: &Value) -> Result<Checked> {
        let name = &self.name;
        let shown = value.to_string();
        match self.kind {
            ParamType::Int => {
                let n = match value {
                    Value::Number(n) => n.as_i64(),
                    Value::String(s) => s.trim().parse::<i64>().ok(),
                    _ => None,
                };
                let n = n.ok_or_else(|| {
                    Error::Parameter(format!("parameter {name}: {shown} is not a whole number"))
                })?;
                Ok(Checked::Number(n as f64, n.to_string()))
            }
            ParamType::Float => {
                let (n, text) = match value {
                    Value::Number(n) => (n.as_f64(), n.to_string()),
                    Value::String(s) => (s.trim().parse::<f64>().ok(), s.trim().to_owned()),
                    _ => (None, String::new()),
                };
                match n {
                    Some(n) if n.is_finite() => Ok(Checked::Number(n, text)),
                    _ => Err(Error::Parameter(format!(
                        "parameter {name}: {shown} is not a number"
                    ))),
                }
            }
            ParamType::String | ParamType::Path => match value {
                Value::String(s) => Ok(Checked::Text(s.clone())),
                _ => Err(Error::Parameter(format!(
                    "parameter {name}: {shown} is not a string"
                ))),
            },
        }
    }

    /// Checks `value` against the type and every constraint; returns its text.
    pub(crate) fn check(&self, value: &Value) -> Result<String> {
        let name = &self.name;
        let refuse = |rule: String| Error::Parameter(format!("parameter {name}: {rule}"));
        let checked = self.typed(value)?;
        match &checked {
            Checked::Number(n, text) => {
                if let Some(min) = &self.min_value
                    && let Checked::Number(min, min_text) = self.typed(min)?
                    && *n < min
                {
                    return Err(refuse(format!("{text} is below minValue {min_text}")));
                }
                if let Some(max) = &self.max_value
                    && let Checked::Number(max, max_text) = self.typed(max)?
                    && *n > max
                {
                    return Err(refuse(format!("{text} is above maxValue {max_text}")));
                }
                if let Some(allowed) = &self.allowed {
                    let mut found = false;
                    for a in allowed {
                        if let Checked::Number(a, _) = self.typed(a)? {
                            found |= a == *n;
                        }
                    }
                    if !found {
                        return Err(refuse(format!(
                            "{text} is not one of the allowedValues {}",
                            show_list(allowed)
                        )));
                    }
                }
            }
            Checked::Text(text) => {
                let length = text.chars().count() as u64;
                let limit = self.max_length.unwrap_or(MAX_STRING_LENGTH as u64);
                if length > limit.min(MAX_STRING_LENGTH as u64) {
                    return Err(refuse(format!(
                        "the value is {length} characters long, longer than maxLength {limit}"
                    )));
                }
                if let Some(min) = self.min_length.filter(|min| length < *min) {
                    return Err(refuse(format!(
                        "the value is {length} characters long, shorter than minLength {min}"
                    )));
                }
                if let Some(allowed) = &self.allowed
                    && !allowed.iter().any(|a| a.as_str() == Some(text.as_str()))
                {
                    return Err(refuse(format!(
                        "\"{text}\" is not one of the allowedValues {}",
                        show_list(allowed)
                    )));
                }
            }
        }
        Ok(checked.text())
    }
}

fn show_list(values: &[Value]) -> String {
    let shown: Vec<String> = values
        .iter()
        .map(|v| v.as_str().map_or_else(|| v.to_string(), str::to_owned))
        .collect();
    format!("[{}]", shown.join(", "))
}

/// The value of every parameter: the submitted one, else the default. Refuses values for
/// parameters the template does not define, and parameters left without a value.
pub(crate) fn resolve_values(
    definitions: &[ParamDefinition],
    submitted: &BTreeMap<String, Value>,
) -> Result<BTreeMap<String, String>> {
    if let Some(unknown) = submitted
        .keys()
        .find(|k| !definitions.iter().any(|d| &d.name == *k))
    {
        let defined: Vec<&str> = definitions.iter().map(|d| d.name.as_str()).collect();
        return Err(Error::Parameter(if defined.is_empty() {
            format!("parameter {unknown}: the template defines no parameters")
        } else {
            format!(
                "parameter {unknown}: the template defines no such parameter (it has {})",
                defined.join(", ")
            )
        }));
    }
    let mut values = BTreeMap::new();
    for definition in definitions {
        let value = submitted
            .get(&definition.name)
            .or(definition.default.as_ref())
            .ok_or_else(|| {
                Error::Parameter(format!(
                    "parameter {} ({}) needs a value: the template gives it no default",
                    definition.name,
                    definition.kind.as_str()
                ))
            })?;
        values.insert(definition.name.clone(), definition.check(value)?);
    }
    Ok(values)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn def(v: Value) -> ParamDefinition {
        ParamDefinition::parse(&v, "parameterDefinitions[0]").unwrap()
    }

    #[test]
    fn checks_types_and_constraints() {
        let frames = def(json!({"name": "Frames", "type": "INT", "minValue": 1, "maxValue": "10"}));
        assert_eq!(frames.check(&json!("4")).unwrap(), "4");
        assert_eq!(frames.check(&json!(10)).unwrap(), "10");
        let e = frames.check(&json!(0)).unwrap_err().to_string();
        assert_eq!(e, "parameter Frames: 0 is below minValue 1");
        let e = frames.check(&json!("many")).unwrap_err().to_string();
        assert!(e.contains("not a whole number"), "{e}");

        let fps = def(json!({"name": "Fps", "type": "FLOAT", "allowedValues": [24, 29.97]}));
        assert_eq!(fps.check(&json!("29.97")).unwrap(), "29.97");
        assert!(
            fps.check(&json!(25))
                .unwrap_err()
                .to_string()
                .contains("allowedValues [24, 29.97]")
        );

        let layer = def(json!({"name": "Layer", "type": "STRING", "minLength": 2, "maxLength": 3}));
        assert!(
            layer
                .check(&json!("a"))
                .unwrap_err()
                .to_string()
                .contains("minLength 2")
        );
        assert!(
            layer
                .check(&json!("abcd"))
                .unwrap_err()
                .to_string()
                .contains("maxLength 3")
        );
        assert!(
            layer
                .check(&json!(12))
                .unwrap_err()
                .to_string()
                .contains("not a string")
        );
    }

    #[test]
    fn defaults_and_unknown_or_missing_values() {
        let defs = vec![
            def(
                json!({"name": "Out", "type": "PATH", "objectType": "DIRECTORY", "userInterface": {"control": "CHOOSE_DIRECTORY"}}),
            ),
            def(json!({"name": "N", "type": "INT", "default": 3})),
        ];
        let values = resolve_values(&defs, &BTreeMap::from([("Out".into(), json!("/o"))])).unwrap();
        assert_eq!(values["N"], "3");
        assert_eq!(values["Out"], "/o");
        let e = resolve_values(&defs, &BTreeMap::new())
            .unwrap_err()
            .to_string();
        assert!(e.contains("parameter Out (PATH) needs a value"), "{e}");
        let e = resolve_values(&defs, &BTreeMap::from([("Oops".into(), json!("1"))]))
            .unwrap_err()
            .to_string();
        assert!(e.contains("parameter Oops") && e.contains("Out, N"), "{e}");
    }

    #[test]
    fn refuses_bad_definitions() {
        let e = ParamDefinition::parse(
            &json!({"name": "X", "type": "INT", "default": 50, "maxValue": 10}),
            "p",
        )
        .unwrap_err()
        .to_string();
        assert!(
            e.contains("p.default") && e.contains("above maxValue 10"),
            "{e}"
        );
        let e = ParamDefinition::parse(&json!({"name": "X", "type": "STRING", "minValue": 1}), "p")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("p.minValue is not a field of a STRING parameter"),
            "{e}"
        );
        assert!(ParamDefinition::parse(&json!({"name": "1X", "type": "INT"}), "p").is_err());
        assert!(ParamDefinition::parse(&json!({"name": "X", "type": "BOOL"}), "p").is_err());
    }
}
