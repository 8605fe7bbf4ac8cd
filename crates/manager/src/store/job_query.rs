//! Listing jobs for the API and dashboard: filtered, searched, ordered and paged in SQL,
//! so no request reads an unbounded list.
use sqlx::QueryBuilder;

use super::{Engine, JobRow, Store, StoreResult};

/// How to order a job listing.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum JobOrder {
    #[default]
    NewestFirst,
    OldestFirst,
    RecentlyUpdated,
    PriorityFirst,
    Name,
}

impl JobOrder {
    pub fn parse(text: &str) -> Option<Self> {
        Some(match text {
            "created" | "-created" | "newest" => JobOrder::NewestFirst,
            "+created" | "oldest" => JobOrder::OldestFirst,
            "updated" | "-updated" | "updated_at" => JobOrder::RecentlyUpdated,
            "priority" | "-priority" => JobOrder::PriorityFirst,
            "name" | "+name" => JobOrder::Name,
            _ => return None,
        })
    }

    fn sql(self) -> &'static str {
        match self {
            JobOrder::NewestFirst => "created_at DESC, id",
            JobOrder::OldestFirst => "created_at, id",
            JobOrder::RecentlyUpdated => "updated_at DESC, id",
            JobOrder::PriorityFirst => "priority DESC, created_at, id",
            JobOrder::Name => "lower(name), id",
        }
    }
}

#[derive(Clone, Debug, Default)]
pub struct JobQuery {
    /// Only jobs in these statuses (all when empty).
    pub statuses: Vec<String>,
    /// Case-insensitive substring of the name, type or id.
    pub text: Option<String>,
    /// Metadata key → SQL LIKE pattern, all of which must match.
    pub metadata: Vec<(String, String)>,
    pub order: JobOrder,
    pub limit: i64,
    pub offset: i64,
}

impl Store {
    /// One page of jobs matching `query`, and how many match in all.
    pub async fn query_jobs(&self, query: &JobQuery) -> StoreResult<(Vec<JobRow>, i64)> {
        let engine = self.engine;
        // SQLite's LIKE ignores ASCII case; PostgreSQL's ILIKE does that.
        let like = match engine {
            Engine::Sqlite => "LIKE",
            Engine::Postgres => "ILIKE",
        };
        let filter = |builder: &mut QueryBuilder<sqlx::Any>| {
            builder.push(" WHERE 1 = 1");
            if !query.statuses.is_empty() {
                builder.push(" AND status IN (");
                let mut list = builder.separated(", ");
                for status in &query.statuses {
                    list.push_bind(status.clone());
                }
                builder.push(")");
            }
            if let Some(text) = query.text.as_ref().filter(|t| !t.is_empty()) {
                let pattern = format!("%{}%", text.replace('%', "\\%").replace('_', "\\_"));
                builder.push(format!(" AND (name {like} "));
                builder.push_bind(pattern.clone());
                builder.push(format!(" ESCAPE '\\' OR job_type {like} "));
                builder.push_bind(pattern.clone());
                builder.push(format!(" ESCAPE '\\' OR id {like} "));
                builder.push_bind(pattern);
                builder.push(" ESCAPE '\\')");
            }
            for (key, pattern) in &query.metadata {
                match engine {
                    Engine::Sqlite => {
                        builder.push(" AND json_extract(metadata, ");
                        builder.push_bind(format!("$.\"{}\"", key.replace('"', "")));
                        builder.push(format!(") {like} "));
                    }
                    Engine::Postgres => {
                        builder.push(" AND (metadata::jsonb ->> ");
                        builder.push_bind(key.replace('"', ""));
                        builder.push(format!(") {like} "));
                    }
                }
                builder.push_bind(pattern.clone());
            }
        };
        let mut count = QueryBuilder::new("SELECT COUNT(*) FROM jobs");
        filter(&mut count);
        let (total,): (i64,) = super::placeholders::query_as(&mut count)?
            .fetch_one(&self.read)
            .await?;

        let mut page = QueryBuilder::new("SELECT * FROM jobs");
        filter(&mut page);
        page.push(" ORDER BY ");
        page.push(query.order.sql());
        page.push(" LIMIT ");
        page.push_bind(query.limit);
        page.push(" OFFSET ");
        page.push_bind(query.offset);
        let rows = super::placeholders::query_as(&mut page)?
            .fetch_all(&self.read)
            .await?;
        Ok((rows, total))
    }
}
