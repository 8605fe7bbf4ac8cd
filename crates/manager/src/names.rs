//! What a name (job, worker, worker tag) may be. Names are shown in lists, logs and the
//! dashboard, so they are bounded in length and hold no control characters (a NUL cuts C
//! strings short, a newline forges log lines).

/// The longest name accepted, in characters.
pub const MAX_NAME_CHARS: usize = 256;

/// Checks `name`; the error starts with `what` ("job name", "worker name"…).
pub fn check_name(what: &str, name: &str) -> Result<(), String> {
    if name.trim().is_empty() {
        return Err(format!("{what} must not be empty"));
    }
    let length = name.chars().count();
    if length > MAX_NAME_CHARS {
        return Err(format!(
            "{what} is {length} characters long; at most {MAX_NAME_CHARS} are allowed"
        ));
    }
    if let Some(control) = name.chars().find(|c| c.is_control()) {
        return Err(format!(
            "{what} contains the control character U+{:04X}",
            u32::from(control)
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_bounded_and_printable() {
        assert_eq!(check_name("job name", "Shot 010 — lighting"), Ok(()));
        assert_eq!(check_name("job name", &"é".repeat(MAX_NAME_CHARS)), Ok(()));
        let refused = [
            ("", "must not be empty"),
            ("  ", "must not be empty"),
            ("a\0b", "U+0000"),
            ("line\nforged", "U+000A"),
        ];
        for (name, why) in refused {
            let error = check_name("job name", name).expect_err(name);
            assert!(
                error.starts_with("job name") && error.contains(why),
                "{error}"
            );
        }
        let long = "x".repeat(MAX_NAME_CHARS + 1);
        let error = check_name("worker tag name", &long).expect_err("too long");
        assert!(error.contains("257 characters"), "{error}");
    }
}
