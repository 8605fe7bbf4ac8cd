//! Combination expressions of a parameter space: `A * B` (every pairing, A outermost),
//! `(A, B)` (element-wise; equal lengths), nested as in `(A, B) * C` or `(A * B, C)`.
//! Without an expression a space is the product of its parameters in definition order.

/// A parsed expression over task parameters, by index into the step's definitions.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Expr {
    Param(usize),
    Product(Vec<Expr>),
    Zip(Vec<Expr>),
}

/// Parses `text`, checking every name is one of `names` and each is used exactly once.
pub(crate) fn parse(text: &str, names: &[String]) -> Result<Expr, String> {
    let tokens = tokenize(text)?;
    let mut parser = Parser {
        tokens: &tokens,
        at: 0,
        names,
        used: vec![false; names.len()],
    };
    let expr = parser.product()?;
    if parser.at != tokens.len() {
        return Err(format!("unexpected \"{}\"", tokens[parser.at]));
    }
    if let Some(missing) = parser.used.iter().position(|used| !used) {
        return Err(format!(
            "it does not use the task parameter {}",
            names[missing]
        ));
    }
    Ok(expr)
}

/// The product of all parameters, in order: the space when no expression is given.
pub(crate) fn default_for(count: usize) -> Expr {
    Expr::Product((0..count).map(Expr::Param).collect())
}

impl Expr {
    /// How many rows the expression makes, given each parameter's number of values.
    pub fn size(&self, lens: &[usize]) -> Result<u128, String> {
        match self {
            Expr::Param(i) => Ok(lens[*i] as u128),
            Expr::Product(parts) => parts
                .iter()
                .try_fold(1u128, |acc, p| Ok(acc.saturating_mul(p.size(lens)?))),
            Expr::Zip(parts) => {
                let sizes: Vec<u128> = parts
                    .iter()
                    .map(|p| p.size(lens))
                    .collect::<Result<_, _>>()?;
                if sizes.windows(2).any(|w| w[0] != w[1]) {
                    let shown: Vec<String> = sizes.iter().map(u128::to_string).collect();
                    return Err(format!(
                        "the parts of an associative ( , ) group must have the same number of \
                         values, not {}",
                        shown.join(", ")
                    ));
                }
                Ok(sizes.first().copied().unwrap_or(0))
            }
        }
    }

    /// The rows: for each, the value index of every parameter (by parameter index). Call
    /// [`Expr::size`] first: it checks the lengths and bounds the work.
    pub fn rows(&self, lens: &[usize]) -> Vec<Vec<Option<usize>>> {
        match self {
            Expr::Param(i) => (0..lens[*i])
                .map(|v| {
                    let mut row = vec![None; lens.len()];
                    row[*i] = Some(v);
                    row
                })
                .collect(),
            Expr::Product(parts) => {
                let mut rows = vec![vec![None; lens.len()]];
                for part in parts {
                    let part_rows = part.rows(lens);
                    rows = rows
                        .iter()
                        .flat_map(|row| part_rows.iter().map(move |p| merge(row, p)))
                        .collect();
                }
                rows
            }
            Expr::Zip(parts) => {
                let all: Vec<Vec<Vec<Option<usize>>>> =
                    parts.iter().map(|p| p.rows(lens)).collect();
                let count = all.first().map_or(0, Vec::len);
                (0..count)
                    .map(|n| {
                        all.iter()
                            .fold(vec![None; lens.len()], |row, part| merge(&row, &part[n]))
                    })
                    .collect()
            }
        }
    }
}

fn merge(a: &[Option<usize>], b: &[Option<usize>]) -> Vec<Option<usize>> {
    a.iter().zip(b).map(|(x, y)| x.or(*y)).collect()
}

fn tokenize(text: &str) -> Result<Vec<String>, String> {
    let mut tokens = Vec::new();
    let mut chars = text.char_indices().peekable();
    while let Some((i, c)) = chars.next() {
        match c {
            ' ' | '\t' => {}
            '*' | '(' | ')' | ',' => tokens.push(c.to_string()),
            c if c.is_ascii_alphanumeric() || c == '_' => {
                let mut end = i + c.len_utf8();
                while let Some(&(j, d)) = chars.peek() {
                    if d.is_ascii_alphanumeric() || d == '_' {
                        end = j + d.len_utf8();
                        chars.next();
                    } else {
                        break;
                    }
                }
                tokens.push(text[i..end].to_owned());
            }
            other => return Err(format!("\"{other}\" is not allowed")),
        }
    }
    if tokens.is_empty() {
        return Err("it is empty".to_owned());
    }
    Ok(tokens)
}

struct Parser<'a> {
    tokens: &'a [String],
    at: usize,
    names: &'a [String],
    used: Vec<bool>,
}

impl<'a> Parser<'a> {
    fn peek(&self) -> Option<&'a str> {
        self.tokens.get(self.at).map(String::as_str)
    }

    fn product(&mut self) -> Result<Expr, String> {
        let mut parts = vec![self.element()?];
        while self.peek() == Some("*") {
            self.at += 1;
            parts.push(self.element()?);
        }
        Ok(if parts.len() == 1 {
            parts.remove(0)
        } else {
            Expr::Product(parts)
        })
    }

    fn element(&mut self) -> Result<Expr, String> {
        match self.peek() {
            Some("(") => {
                self.at += 1;
                let mut parts = vec![self.product()?];
                while self.peek() == Some(",") {
                    self.at += 1;
                    parts.push(self.product()?);
                }
                if self.peek() != Some(")") {
                    return Err("a \"(\" is not closed".to_owned());
                }
                self.at += 1;
                Ok(if parts.len() == 1 {
                    parts.remove(0)
                } else {
                    Expr::Zip(parts)
                })
            }
            Some(name) if name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') => {
                let Some(index) = self.names.iter().position(|n| n == name) else {
                    return Err(format!("{name} is not a task parameter of this step"));
                };
                if std::mem::replace(&mut self.used[index], true) {
                    return Err(format!("{name} appears more than once"));
                }
                self.at += 1;
                Ok(Expr::Param(index))
            }
            Some(other) => Err(format!("unexpected \"{other}\"")),
            None => Err("it ends too early".to_owned()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names() -> Vec<String> {
        ["A", "B", "C", "D"].map(String::from).to_vec()
    }

    /// Rows as strings such as "A0 B2", for the parameters the rows use.
    fn show(text: &str, lens: &[usize]) -> Vec<String> {
        let used: Vec<String> = names()[..lens.len()].to_vec();
        let expr = parse(text, &used).unwrap();
        expr.size(lens).unwrap();
        expr.rows(lens)
            .iter()
            .map(|row| {
                row.iter()
                    .enumerate()
                    .map(|(i, v)| format!("{}{}", used[i], v.unwrap()))
                    .collect::<Vec<_>>()
                    .join(" ")
            })
            .collect()
    }

    #[test]
    fn product_is_outermost_first() {
        assert_eq!(show("A * B", &[2, 2]), ["A0 B0", "A0 B1", "A1 B0", "A1 B1"]);
        assert_eq!(show("B * A", &[2, 2]), ["A0 B0", "A1 B0", "A0 B1", "A1 B1"]);
    }

    #[test]
    fn associative_pairs_element_wise_and_nests() {
        assert_eq!(show("(A, B)", &[3, 3]), ["A0 B0", "A1 B1", "A2 B2"]);
        assert_eq!(
            show("(A,B) * C", &[2, 2, 2]),
            ["A0 B0 C0", "A0 B0 C1", "A1 B1 C0", "A1 B1 C1"]
        );
        assert_eq!(show("(A * B, C)", &[2, 2, 4]).len(), 4);
        assert_eq!(show("((A))", &[2]), ["A0", "A1"]);
    }

    #[test]
    fn refuses_bad_expressions() {
        let n = names();
        let lens = [3, 3, 2, 3];
        assert!(parse("A * B * C", &n).unwrap_err().contains("does not use"));
        assert!(
            parse("(A,B,A) * C * D", &n)
                .unwrap_err()
                .contains("more than once")
        );
        assert!(
            parse("A * E", &n)
                .unwrap_err()
                .contains("not a task parameter")
        );
        assert!(parse("(A, B", &n).is_err());
        assert!(parse("A + B", &n).is_err());
        let e = parse("(A, C) * B * D", &n)
            .unwrap()
            .size(&lens)
            .unwrap_err();
        assert!(e.contains("same number of values"), "{e}");
    }
}
