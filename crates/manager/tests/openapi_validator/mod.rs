//! A strict checker of JSON values against the schemas of the manager's own OpenAPI document
//! (3.1: `type` lists, `$ref`, `oneOf`/`anyOf`/`allOf`, `enum`, `format`, `minimum`), written
//! for the few features that document uses. Strict: an object may carry only the properties
//! its schema lists, unless the schema allows more with `additionalProperties`.
#![allow(dead_code)]

use std::collections::BTreeSet;

use serde_json::Value;

pub struct Validator<'a> {
    doc: &'a Value,
}

impl<'a> Validator<'a> {
    pub fn new(doc: &'a Value) -> Self {
        Validator { doc }
    }

    /// Every way `value` differs from `schema`, each with where (`$.jobs[0].status`).
    pub fn problems(&self, schema: &Value, value: &Value) -> Vec<String> {
        let mut found = Vec::new();
        self.check(schema, value, "$", true, &mut found);
        found
    }

    fn resolve(&self, schema: &'a Value) -> &'a Value {
        let mut schema = schema;
        while let Some(reference) = schema.get("$ref").and_then(Value::as_str) {
            let name = reference
                .strip_prefix("#/components/schemas/")
                .unwrap_or_else(|| panic!("a reference outside the components: {reference}"));
            schema = self
                .doc
                .pointer(&format!("/components/schemas/{name}"))
                .unwrap_or_else(|| panic!("the document has no schema {name}"));
        }
        schema
    }

    fn check(
        &self,
        schema: &'a Value,
        value: &Value,
        at: &str,
        strict: bool,
        found: &mut Vec<String>,
    ) {
        let schema = self.resolve(schema);
        if let Some(parts) = schema.get("allOf").and_then(Value::as_array) {
            // Each part checks its own properties; extra ones are judged against them all.
            for part in parts {
                self.check(part, value, at, false, found);
            }
            if strict {
                self.undocumented(schema, value, at, found);
            }
        }
        for keyword in ["oneOf", "anyOf"] {
            if let Some(choices) = schema.get(keyword).and_then(Value::as_array) {
                let fits = choices.iter().any(|choice| {
                    let mut inner = Vec::new();
                    self.check(choice, value, at, strict, &mut inner);
                    inner.is_empty()
                });
                if !fits {
                    found.push(format!("{at}: fits none of the {keyword} choices: {value}"));
                }
            }
        }
        if let Some(types) = schema.get("type") {
            let types: Vec<&str> = match types {
                Value::String(one) => vec![one.as_str()],
                Value::Array(many) => many.iter().filter_map(Value::as_str).collect(),
                other => panic!("a schema type that is neither text nor list: {other}"),
            };
            if !types.iter().any(|wanted| has_type(value, wanted)) {
                found.push(format!("{at}: expected {types:?}, got {value}"));
                return;
            }
        }
        if let Some(allowed) = schema.get("enum").and_then(Value::as_array)
            && !allowed.contains(value)
        {
            found.push(format!("{at}: {value} is not one of {allowed:?}"));
        }
        self.check_format(schema, value, at, found);
        match value {
            Value::Object(fields) => self.check_object(schema, fields, at, strict, found),
            Value::Array(items) => {
                if let Some(item_schema) = schema.get("items") {
                    for (index, item) in items.iter().enumerate() {
                        self.check(item_schema, item, &format!("{at}[{index}]"), true, found);
                    }
                }
            }
            _ => {}
        }
    }

    fn check_object(
        &self,
        schema: &'a Value,
        fields: &serde_json::Map<String, Value>,
        at: &str,
        strict: bool,
        found: &mut Vec<String>,
    ) {
        for name in schema
            .get("required")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
        {
            if !fields.contains_key(name) {
                found.push(format!("{at}: lacks the required property \"{name}\""));
            }
        }
        let properties = schema.get("properties").and_then(Value::as_object);
        let additional = schema.get("additionalProperties");
        for (name, field) in fields {
            let here = format!("{at}.{name}");
            match (properties.and_then(|p| p.get(name)), additional) {
                (Some(property), _) => self.check(property, field, &here, true, found),
                (None, Some(extra @ Value::Object(_))) => {
                    self.check(extra, field, &here, true, found)
                }
                _ => {}
            }
        }
        if strict && schema.get("allOf").is_none() {
            self.undocumented(schema, &Value::Object(fields.clone()), at, found);
        }
    }

    /// Properties of `value` that neither `schema` nor any of its `allOf` parts names.
    fn undocumented(&self, schema: &'a Value, value: &Value, at: &str, found: &mut Vec<String>) {
        let Some(fields) = value.as_object() else {
            return;
        };
        let Some(named) = self.named_properties(schema) else {
            return;
        };
        for name in fields.keys().filter(|name| !named.contains(*name)) {
            found.push(format!(
                "{at}: sends \"{name}\", which the document does not describe"
            ));
        }
    }

    /// The properties a schema names, or None when it lets an object carry any.
    fn named_properties(&self, schema: &'a Value) -> Option<BTreeSet<String>> {
        let schema = self.resolve(schema);
        match schema.get("additionalProperties") {
            Some(Value::Bool(false)) | None => {}
            Some(_) => return None,
        }
        let mut named: BTreeSet<String> = schema
            .get("properties")
            .and_then(Value::as_object)
            .map(|p| p.keys().cloned().collect())
            .unwrap_or_default();
        if let Some(parts) = schema.get("allOf").and_then(Value::as_array) {
            for part in parts {
                named.extend(self.named_properties(part)?);
            }
        } else if schema.get("properties").is_none() {
            // An object schema that lists nothing (a free-form map) allows anything.
            return None;
        }
        Some(named)
    }

    fn check_format(&self, schema: &Value, value: &Value, at: &str, found: &mut Vec<String>) {
        let format = schema.get("format").and_then(Value::as_str);
        let wrong = match (format, value) {
            (Some("date-time"), Value::String(text)) => chrono::DateTime::parse_from_rfc3339(text)
                .is_err()
                .then(|| format!("\"{text}\" is not an RFC 3339 date-time")),
            (Some("int32"), Value::Number(number)) => number
                .as_i64()
                .and_then(|n| i32::try_from(n).ok())
                .is_none()
                .then(|| format!("{number} does not fit int32")),
            (Some("int64"), Value::Number(number)) => number
                .as_i64()
                .is_none()
                .then(|| format!("{number} does not fit int64")),
            _ => None,
        };
        if let Some(wrong) = wrong {
            found.push(format!("{at}: {wrong}"));
        }
        if let (Some(minimum), Some(number)) = (
            schema.get("minimum").and_then(Value::as_f64),
            value.as_f64(),
        ) && number < minimum
        {
            found.push(format!("{at}: {number} is below the minimum {minimum}"));
        }
    }
}

fn has_type(value: &Value, wanted: &str) -> bool {
    match wanted {
        "null" => value.is_null(),
        "boolean" => value.is_boolean(),
        "string" => value.is_string(),
        "integer" => value.is_i64() || value.is_u64(),
        "number" => value.is_number(),
        "array" => value.is_array(),
        "object" => value.is_object(),
        other => panic!("a schema type this checker does not know: {other}"),
    }
}

#[test]
fn the_checker_finds_what_it_should() {
    let doc = serde_json::json!({"components": {"schemas": {
        "Thing": {"type": "object", "required": ["id"], "properties": {
            "id": {"type": "string"},
            "when": {"type": ["string", "null"], "format": "date-time"},
            "count": {"type": "integer", "format": "int32", "minimum": 0},
            "kind": {"type": "string", "enum": ["a", "b"]},
            "tags": {"type": "array", "items": {"type": "string"}},
            "map": {"type": "object", "additionalProperties": {"type": "integer"}}
        }},
        "More": {"allOf": [{"$ref": "#/components/schemas/Thing"},
                           {"type": "object", "properties": {"extra": {"type": "boolean"}}}]}
    }}});
    let check = Validator::new(&doc);
    let thing = serde_json::json!({"$ref": "#/components/schemas/Thing"});
    let more = serde_json::json!({"$ref": "#/components/schemas/More"});
    let good = serde_json::json!({"id": "x", "when": "2026-01-01T00:00:00Z", "count": 3,
        "kind": "a", "tags": ["t"], "map": {"k": 1}});
    assert_eq!(check.problems(&thing, &good), Vec::<String>::new());
    let mut with_extra = good.clone();
    with_extra["extra"] = serde_json::json!(true);
    assert_eq!(check.problems(&more, &with_extra), Vec::<String>::new());
    assert_eq!(
        check.problems(&thing, &with_extra).len(),
        1,
        "extra is undocumented"
    );
    let bad = serde_json::json!({"when": "yesterday", "count": -1, "kind": "c",
        "tags": [1], "map": {"k": "v"}, "other": 1});
    let problems = check.problems(&thing, &bad);
    for expected in [
        "lacks the required property \"id\"",
        "$.when: \"yesterday\"",
        "$.count: -1",
        "$.kind: \"c\"",
        "$.tags[0]",
        "$.map.k",
        "sends \"other\"",
    ] {
        assert!(
            problems.iter().any(|p| p.contains(expected)),
            "{expected} in {problems:?}"
        );
    }
}
