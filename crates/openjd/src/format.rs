//! Format strings: `{{ Param.X }}` and friends. The manager resolves every reference it can
//! know; the two only a worker knows (an embedded file's path, the session directory) stay
//! as normalised markers (`{{Task.File.X}}`, `{{Session.WorkingDirectory}}`) that the
//! worker's `openjd-run` command replaces.

use std::collections::BTreeMap;

use crate::error::{Result, invalid, unsupported};

/// The marker for the session's working directory, resolved by the worker.
pub const SESSION_DIR_MARKER: &str = "{{Session.WorkingDirectory}}";

/// The marker for the path of embedded file `name`, resolved by the worker.
pub fn file_marker(name: &str) -> String {
    format!("{{{{Task.File.{name}}}}}")
}

/// What a format string may refer to where it is used.
#[derive(Default)]
pub(crate) struct Scope<'a> {
    /// Job parameter values (`Param.*` and `RawParam.*` are the same: Castanet maps no paths).
    pub params: Option<&'a BTreeMap<String, String>>,
    /// Task parameter values, in the step's definition order.
    pub task: Option<&'a [(String, String)]>,
    /// Embedded files of the step, by name.
    pub files: Option<&'a [String]>,
    /// Inside a step script: the session is known (on the worker).
    pub session: bool,
    pub job_name: Option<&'a str>,
    pub step_name: Option<&'a str>,
}

/// Resolves `text`; `path` names where it is in the template, for errors.
pub(crate) fn resolve(text: &str, path: &str, scope: &Scope<'_>) -> Result<String> {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find("{{") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let Some(end) = after.find("}}") else {
            return Err(invalid(format!(
                "{path}: \"{{{{\" is never closed by \"}}}}\""
            )));
        };
        let expression = after[..end].trim();
        out.push_str(&reference(expression, path, scope)?);
        rest = &after[end + 2..];
    }
    out.push_str(rest);
    Ok(out)
}

fn reference(expression: &str, path: &str, scope: &Scope<'_>) -> Result<String> {
    let parts: Vec<&str> = expression.split('.').collect();
    let well_formed = parts.iter().all(|p| {
        let mut chars = p.chars();
        chars
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
            && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
    });
    if !well_formed {
        return Err(invalid(format!(
            "{path}: \"{{{{{expression}}}}}\" is not a value reference (only names such as \
             Param.Frames are allowed between {{{{ and }}}})"
        )));
    }
    let not_here = || invalid(format!("{path}: {expression} cannot be used here"));
    match parts.as_slice() {
        ["Param" | "RawParam", name] => {
            let params = scope.params.ok_or_else(not_here)?;
            params
                .get(*name)
                .cloned()
                .ok_or_else(|| invalid(format!("{path}: {expression} names no job parameter")))
        }
        ["Task", "Param" | "RawParam", name] => {
            let task = scope.task.ok_or_else(not_here)?;
            task.iter()
                .find(|(n, _)| n == name)
                .map(|(_, v)| v.clone())
                .ok_or_else(|| {
                    invalid(format!(
                        "{path}: {expression} names no task parameter of this step"
                    ))
                })
        }
        ["Task", "File", name] => {
            let files = scope.files.ok_or_else(not_here)?;
            if files.iter().any(|f| f == name) {
                Ok(file_marker(name))
            } else {
                Err(invalid(format!(
                    "{path}: {expression} names no embedded file of this step"
                )))
            }
        }
        ["Session", "WorkingDirectory"] if scope.session => Ok(SESSION_DIR_MARKER.to_owned()),
        // Castanet applies no path mapping rules, so there never are any.
        ["Session", "HasPathMappingRules"] if scope.session => Ok("false".to_owned()),
        ["Session", "PathMappingRulesFile"] => Err(unsupported(format!(
            "{path}: {expression} is not supported (Castanet has no path mapping rules)"
        ))),
        ["Env", "File", _] => Err(unsupported(format!(
            "{path}: {expression} is not supported (environments are not supported)"
        ))),
        ["Job", "Name"] => scope.job_name.map(str::to_owned).ok_or_else(not_here),
        ["Step", "Name"] => scope.step_name.map(str::to_owned).ok_or_else(not_here),
        ["Session", _] if scope.session => Err(invalid(format!(
            "{path}: {expression} is not a session value"
        ))),
        _ => Err(invalid(format!(
            "{path}: {expression} is not a value this template can refer to"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params() -> BTreeMap<String, String> {
        BTreeMap::from([("Out".to_owned(), "/tmp/out".to_owned())])
    }

    #[test]
    fn resolves_job_and_task_values_and_keeps_worker_markers() {
        let p = params();
        let task = [("Frame".to_owned(), "3".to_owned())];
        let files = ["run".to_owned()];
        let scope = Scope {
            params: Some(&p),
            task: Some(&task),
            files: Some(&files),
            session: true,
            job_name: Some("J"),
            step_name: Some("S"),
        };
        let text = "{{Param.Out}}/{{ Task.Param.Frame }}-{{RawParam.Out}} {{ Task.File.run }} \
                    {{Session.WorkingDirectory}} {{Job.Name}}/{{Step.Name}}";
        assert_eq!(
            resolve(text, "x", &scope).unwrap(),
            "/tmp/out/3-/tmp/out {{Task.File.run}} {{Session.WorkingDirectory}} J/S"
        );
    }

    #[test]
    fn refuses_unknown_or_out_of_scope_references() {
        let p = params();
        let scope = Scope {
            params: Some(&p),
            ..Scope::default()
        };
        let e = resolve("{{Param.Nope}}", "name", &scope).unwrap_err();
        assert!(
            e.to_string().contains("Param.Nope names no job parameter"),
            "{e}"
        );
        let e = resolve("{{Task.Param.Frame}}", "name", &scope).unwrap_err();
        assert!(e.to_string().contains("cannot be used here"), "{e}");
        let e = resolve("{{Env.File.Enter}}", "a", &scope).unwrap_err();
        assert!(matches!(e, crate::Error::Unsupported(_)), "{e}");
        let e = resolve("{{ Param.Out + 1 }}", "a", &scope).unwrap_err();
        assert!(e.to_string().contains("not a value reference"), "{e}");
        let e = resolve("oops {{Param.Out", "a", &scope).unwrap_err();
        assert!(e.to_string().contains("never closed"), "{e}");
    }

    #[test]
    fn text_without_references_is_unchanged() {
        let scope = Scope::default();
        assert_eq!(
            resolve("a } b { c ${X}", "x", &scope).unwrap(),
            "a } b { c ${X}"
        );
    }
}
