//! Variable replacement on single strings: to `{name}` form at submission, and expansion for a
//! worker's platform at hand-out.

use super::Resolved;
use super::prefix::{ensure_drive_absolute, matched_prefix_len, to_platform_separators};

/// `text` with the longest matching two-way value at its start replaced by `{name}`, or `None`
/// when no value matches.
pub fn to_variable_form(text: &str, two_way: &[Resolved]) -> Option<String> {
    two_way
        .iter()
        .filter_map(|variable| {
            matched_prefix_len(text, &variable.value).map(|length| (length, variable))
        })
        .max_by_key(|(length, _)| *length)
        .map(|(length, variable)| format!("{{{}}}{}", variable.name, &text[length..]))
}

/// Expands strings for one target platform (§7.3 / §16.12 of the Flamenco reference):
///
/// 1. one-way `{name}` → value;
/// 2. two-way `{name}` → target value;
/// 3. a string starting with a two-way value in the manager's notation gets the target's value;
/// 4. strings touched by 2 or 3 get the target's path separators.
///
/// Unknown `{names}` stay as they are. Steps 1 and 2 are one pass each over the string: a value
/// is inserted as it is, never searched for placeholders by its own step again, so values naming
/// other variables (or themselves) cannot multiply a string's size.
#[derive(Debug)]
pub struct Expander {
    target: String,
    one_way: Vec<(String, String)>,
    two_way: Vec<(String, String)>,
    /// (manager value, target value), longest manager value first.
    prefix_swaps: Vec<(String, String)>,
}

impl Expander {
    pub fn new(target: String, on_manager: &[Resolved], on_target: &[Resolved]) -> Self {
        let placeholder =
            |variable: &Resolved| (format!("{{{}}}", variable.name), variable.value.clone());
        let mut one_way: Vec<(String, String)> = on_target
            .iter()
            .filter(|variable| !variable.is_twoway)
            .map(placeholder)
            .collect();
        let mut two_way: Vec<(String, String)> = on_target
            .iter()
            .filter(|variable| variable.is_twoway)
            .map(placeholder)
            .collect();
        // Names may hold braces, so one placeholder can start another; the longer one wins.
        one_way.sort_by_key(|(placeholder, _)| std::cmp::Reverse(placeholder.len()));
        two_way.sort_by_key(|(placeholder, _)| std::cmp::Reverse(placeholder.len()));
        let mut prefix_swaps: Vec<(String, String)> = on_manager
            .iter()
            .filter(|variable| variable.is_twoway && !variable.value.is_empty())
            .filter_map(|variable| {
                on_target
                    .iter()
                    .find(|other| other.name == variable.name && other.is_twoway)
                    .map(|other| (variable.value.clone(), other.value.clone()))
            })
            .collect();
        prefix_swaps.sort_by_key(|(from, _)| std::cmp::Reverse(from.len()));
        Expander {
            target,
            one_way,
            two_way,
            prefix_swaps,
        }
    }

    pub fn expand(&self, text: &str) -> String {
        if !text.contains('{') && self.prefix_swaps.is_empty() {
            return text.to_owned();
        }
        let mut expanded =
            replace_placeholders(text, &self.one_way).unwrap_or_else(|| text.to_owned());
        let mut is_path = false;
        if let Some(replaced) = replace_placeholders(&expanded, &self.two_way) {
            expanded = replaced;
            is_path = true;
        }
        for (manager_value, target_value) in &self.prefix_swaps {
            if let Some(length) = matched_prefix_len(&expanded, manager_value) {
                expanded = format!("{target_value}{}", &expanded[length..]);
                is_path = true;
                break;
            }
        }
        if !is_path {
            return expanded;
        }
        let converted = to_platform_separators(&expanded, &self.target);
        if self.target == super::WINDOWS {
            ensure_drive_absolute(&converted)
        } else {
            converted
        }
    }
}

/// `text` with every placeholder of `placeholders` (longest first) replaced by its value in one
/// left-to-right pass, or `None` when there was none. Inserted values are not searched again.
fn replace_placeholders(text: &str, placeholders: &[(String, String)]) -> Option<String> {
    if placeholders.is_empty() || !text.contains('{') {
        return None;
    }
    let mut replaced = String::with_capacity(text.len());
    let mut rest = text;
    let mut any = false;
    while let Some(open) = rest.find('{') {
        replaced.push_str(&rest[..open]);
        let from_brace = &rest[open..];
        match placeholders
            .iter()
            .find(|(placeholder, _)| from_brace.starts_with(placeholder.as_str()))
        {
            Some((placeholder, value)) => {
                replaced.push_str(value);
                rest = &from_brace[placeholder.len()..];
                any = true;
            }
            None => {
                replaced.push('{');
                rest = &from_brace[1..];
            }
        }
    }
    replaced.push_str(rest);
    any.then_some(replaced)
}
