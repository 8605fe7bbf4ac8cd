//! `$N` placeholders for statements built at run time. sqlx's `QueryBuilder<Any>` writes `?`,
//! which PostgreSQL does not read; SQLite reads both. The store's fixed statements are written
//! with `$N` from the start.
use sqlx::any::{Any, AnyArguments};
use sqlx::query::{Query, QueryAs};
use sqlx::{AssertSqlSafe, Execute, QueryBuilder};

use super::{StoreError, StoreResult};

/// `?` → `$1`, `$2`, … in order, leaving quoted text alone.
pub(super) fn numbered(sql: &str) -> String {
    let mut out = String::with_capacity(sql.len() + sql.len() / 8);
    let mut quoted = false;
    let mut number = 0;
    for c in sql.chars() {
        match c {
            '\'' => {
                quoted = !quoted;
                out.push(c);
            }
            '?' if !quoted => {
                number += 1;
                out.push('$');
                out.push_str(&number.to_string());
            }
            _ => out.push(c),
        }
    }
    out
}

fn parts(builder: &mut QueryBuilder<Any>) -> StoreResult<(String, AnyArguments)> {
    let mut query = builder.build();
    let arguments = query
        .take_arguments()
        .map_err(|e| StoreError::Corrupt(format!("binding a query's values: {e}")))?
        .unwrap_or_default();
    Ok((numbered(query.sql().as_str()), arguments))
}

/// The builder's statement with numbered placeholders.
pub(super) fn query(
    builder: &mut QueryBuilder<Any>,
) -> StoreResult<Query<'static, Any, AnyArguments>> {
    let (sql, arguments) = parts(builder)?;
    Ok(sqlx::query_with(AssertSqlSafe(sql), arguments))
}

/// The builder's statement with numbered placeholders, read into `T`.
pub(super) fn query_as<T>(
    builder: &mut QueryBuilder<Any>,
) -> StoreResult<QueryAs<'static, Any, T, AnyArguments>>
where
    T: for<'r> sqlx::FromRow<'r, sqlx::any::AnyRow>,
{
    let (sql, arguments) = parts(builder)?;
    Ok(sqlx::query_as_with(AssertSqlSafe(sql), arguments))
}

#[cfg(test)]
mod tests {
    use super::numbered;

    #[test]
    fn numbers_placeholders_outside_quotes() {
        assert_eq!(
            numbered("a = ? AND b LIKE ? ESCAPE '?' AND c IN (?, ?)"),
            "a = $1 AND b LIKE $2 ESCAPE '?' AND c IN ($3, $4)"
        );
    }
}
