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
/// Unknown `{names}` stay as they are.
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
        let one_way = on_target
            .iter()
            .filter(|variable| !variable.is_twoway)
            .map(placeholder)
            .collect();
        let two_way = on_target
            .iter()
            .filter(|variable| variable.is_twoway)
            .map(placeholder)
            .collect();
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
        let mut expanded = text.to_owned();
        for (placeholder, value) in &self.one_way {
            if expanded.contains(placeholder.as_str()) {
                expanded = expanded.replace(placeholder.as_str(), value);
            }
        }
        let mut is_path = false;
        for (placeholder, value) in &self.two_way {
            if expanded.contains(placeholder.as_str()) {
                expanded = expanded.replace(placeholder.as_str(), value);
                is_path = true;
            }
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
