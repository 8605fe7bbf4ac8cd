//! The `JOB_TYPE` object of a script as Flamenco's API describes it (`AvailableJobType` and
//! `AvailableJobSetting`), its etag, and validation of submitted settings against it.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

use super::CompileError;

/// A job type as listed to clients; serializes exactly as Flamenco's `AvailableJobType`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[schema(as = AvailableJobType)]
pub struct JobTypeInfo {
    pub name: String,
    pub label: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    pub settings: Vec<SettingSpec>,
    pub etag: String,
}

/// One setting of a job type; serializes exactly as Flamenco's `AvailableJobSetting`.
/// Keys of the script's setting objects that the API does not know are dropped.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[schema(as = AvailableJobSetting)]
pub struct SettingSpec {
    pub key: String,
    #[serde(rename = "type")]
    pub setting_type: SettingType,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subtype: Option<SettingSubtype>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub choices: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub propargs: Option<Map<String, Value>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub eval: Option<String>,
    #[serde(rename = "evalInfo", default, skip_serializing_if = "Option::is_none")]
    pub eval_info: Option<EvalInfo>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub visible: Option<SettingVisibility>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub required: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub editable: Option<bool>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum SettingType {
    String,
    Int32,
    Float,
    Bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum SettingSubtype {
    FilePath,
    DirPath,
    FileName,
    HashedFilePath,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum SettingVisibility {
    Visible,
    Hidden,
    Submission,
    Web,
}

/// Both fields are required by the API (the add-on's client is strict), so missing ones are
/// filled with the spec's defaults.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct EvalInfo {
    #[serde(rename = "showLinkButton", default)]
    pub show_link_button: bool,
    #[serde(default)]
    pub description: String,
}

/// The top level of a script's `JOB_TYPE`, before it becomes a [`JobTypeInfo`].
#[derive(Deserialize)]
struct ScriptJobType {
    #[serde(default)]
    label: Option<String>,
    #[serde(default)]
    description: Option<String>,
    #[serde(default)]
    settings: Option<Vec<Value>>,
}

/// Builds the job type's public description from `JSON.stringify(JOB_TYPE)`.
pub(crate) fn parse_job_type(name: &str, job_type_json: &str) -> Result<JobTypeInfo, String> {
    let raw: Value = serde_json::from_str(job_type_json)
        .map_err(|error| format!("JOB_TYPE could not be read: {error}"))?;
    if !raw.is_object() {
        return Err(format!(
            "JOB_TYPE must be an object, got {}",
            describe_value(&raw)
        ));
    }
    let script: ScriptJobType =
        serde_json::from_value(raw).map_err(|error| format!("JOB_TYPE is malformed: {error}"))?;

    let mut settings: Vec<SettingSpec> = Vec::new();
    for (index, raw_setting) in script.settings.unwrap_or_default().into_iter().enumerate() {
        let key_hint = raw_setting
            .get("key")
            .and_then(Value::as_str)
            .map(|key| format!(" (\"{key}\")"))
            .unwrap_or_default();
        let setting: SettingSpec = serde_json::from_value(raw_setting)
            .map_err(|error| format!("JOB_TYPE.settings[{index}]{key_hint} is invalid: {error}"))?;
        if setting.key.trim().is_empty() {
            return Err(format!("JOB_TYPE.settings[{index}] has an empty key"));
        }
        if settings.iter().any(|earlier| earlier.key == setting.key) {
            return Err(format!(
                "JOB_TYPE.settings has the key \"{}\" twice",
                setting.key
            ));
        }
        warn_about_unusable_default(name, &setting);
        settings.push(setting);
    }

    let mut info = JobTypeInfo {
        name: name.to_owned(),
        // Flamenco tolerates a missing label; the API requires one, so fall back to the name.
        label: script.label.unwrap_or_else(|| name.to_owned()),
        description: script.description,
        settings,
        etag: String::new(),
    };
    info.etag = compute_etag(&info);
    Ok(info)
}

/// SHA-256 (hex, first 40 characters) of the job type's JSON with an empty etag: changes
/// whenever anything a submitter sees changes.
pub(crate) fn compute_etag(info: &JobTypeInfo) -> String {
    let mut unsigned = info.clone();
    unsigned.etag.clear();
    // Serializing plain data cannot fail; an empty hash input would still give a stable etag.
    let canonical = serde_json::to_vec(&unsigned).unwrap_or_default();
    let mut digest = hex::encode(Sha256::digest(&canonical));
    digest.truncate(40);
    digest
}

/// A non-empty submitted etag must match the job type's current one.
pub(crate) fn check_etag(info: &JobTypeInfo, given: Option<&str>) -> Result<(), CompileError> {
    match given {
        Some(given) if !given.is_empty() && given != info.etag => Err(CompileError::EtagMismatch {
            job_type: info.name.clone(),
            expected: info.etag.clone(),
            given: given.to_owned(),
        }),
        _ => Ok(()),
    }
}

/// Checks submitted settings against the job type and fills in defaults. Every problem is
/// reported, not just the first. Keys the job type does not declare are kept untouched, and a
/// `null` value counts as absent.
pub(crate) fn validate_settings(
    specs: &[SettingSpec],
    given: &Map<String, Value>,
) -> Result<Map<String, Value>, Vec<String>> {
    let mut settings = given.clone();
    let mut problems = Vec::new();
    for spec in specs {
        let key = &spec.key;
        match given.get(key).filter(|value| !value.is_null()) {
            None => match &spec.default {
                Some(default) => {
                    settings.insert(key.clone(), default.clone());
                }
                None if spec.required == Some(true) => {
                    // Submitters other than the add-on must know what to pass.
                    problems.push(match &spec.eval {
                        Some(eval) => format!(
                            "setting \"{key}\" is required but missing; the Blender add-on \
                             computes it from the scene (`{eval}`), other submitters must pass it \
                             (castanet submit: --set {key}=…)"
                        ),
                        None => format!("setting \"{key}\" is required but missing"),
                    });
                }
                None => {}
            },
            Some(value) => match check_value(spec, value) {
                Ok(normalized) => {
                    settings.insert(key.clone(), normalized);
                }
                Err(problem) => problems.push(problem),
            },
        }
    }
    if problems.is_empty() {
        Ok(settings)
    } else {
        Err(problems)
    }
}

/// Returns the value as stored (whole floats for int32 settings become integers).
fn check_value(spec: &SettingSpec, value: &Value) -> Result<Value, String> {
    let key = &spec.key;
    let wrong_type = |expected: &str| {
        format!(
            "setting \"{key}\" must be {expected}, got {}",
            describe_value(value)
        )
    };
    match spec.setting_type {
        SettingType::String => {
            let Some(text) = value.as_str() else {
                return Err(wrong_type("a string"));
            };
            if let Some(choices) = &spec.choices
                && !choices.iter().any(|choice| choice == text)
            {
                let listed: Vec<String> = choices
                    .iter()
                    .map(|choice| format!("\"{choice}\""))
                    .collect();
                return Err(format!(
                    "setting \"{key}\" must be one of {}, got \"{text}\"",
                    listed.join(", ")
                ));
            }
            Ok(value.clone())
        }
        SettingType::Int32 => {
            let number = as_int32(value).ok_or_else(|| wrong_type("an integer (int32)"))?;
            check_bounds(spec, f64::from(number), value)?;
            Ok(Value::from(number))
        }
        SettingType::Float => {
            let number = value
                .as_f64()
                .ok_or_else(|| wrong_type("a number (float)"))?;
            check_bounds(spec, number, value)?;
            Ok(value.clone())
        }
        SettingType::Bool if value.is_boolean() => Ok(value.clone()),
        SettingType::Bool => Err(wrong_type("a boolean (bool)")),
    }
}

/// The script's `propargs.min` / `propargs.max` (Blender's hard limits; `soft_min` and
/// `soft_max` only guide its sliders) bound a number setting.
fn check_bounds(spec: &SettingSpec, number: f64, value: &Value) -> Result<(), String> {
    let bound = |name: &str| {
        spec.propargs
            .as_ref()
            .and_then(|propargs| propargs.get(name))
            .and_then(|bound| bound.as_f64().map(|number| (number, bound)))
    };
    let key = &spec.key;
    if let Some((min, shown)) = bound("min")
        && number < min
    {
        return Err(format!(
            "setting \"{key}\" must be at least {shown}, got {value}"
        ));
    }
    if let Some((max, shown)) = bound("max")
        && number > max
    {
        return Err(format!(
            "setting \"{key}\" must be at most {shown}, got {value}"
        ));
    }
    Ok(())
}

fn as_int32(value: &Value) -> Option<i32> {
    if let Some(integer) = value.as_i64() {
        return i32::try_from(integer).ok();
    }
    let float = value.as_f64()?;
    let in_range = float >= f64::from(i32::MIN) && float <= f64::from(i32::MAX);
    (float.fract() == 0.0 && in_range).then_some(float as i32)
}

/// A default that fails the setting's own check is kept (Flamenco does not check defaults)
/// but logged, because every submission relying on it will be refused.
fn warn_about_unusable_default(job_type: &str, spec: &SettingSpec) {
    if let Some(default) = &spec.default
        && let Err(problem) = check_value(spec, default)
    {
        tracing::warn!(
            job_type,
            "default value of a job setting is unusable: {problem}"
        );
    }
}

/// Short description of a JSON value for error messages: `string "abc"`, `number 1.5`, `an object`.
pub(crate) fn describe_value(value: &Value) -> String {
    const MAX_SHOWN: usize = 60;
    match value {
        Value::Null => "null".to_owned(),
        Value::Bool(flag) => format!("boolean {flag}"),
        Value::Number(number) => format!("number {number}"),
        Value::String(text) if text.chars().count() > MAX_SHOWN => {
            let shown: String = text.chars().take(MAX_SHOWN).collect();
            format!("string \"{shown}…\"")
        }
        Value::String(text) => format!("string \"{text}\""),
        Value::Array(_) => "an array".to_owned(),
        Value::Object(_) => "an object".to_owned(),
    }
}
