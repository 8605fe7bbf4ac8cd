//! Worker tags: named groups of workers a job can be limited to.
use super::{Store, StoreError, StoreResult, now};

#[derive(Clone, Debug, PartialEq, Eq, sqlx::FromRow)]
pub struct TagRow {
    pub id: String,
    pub name: String,
    pub description: String,
}

fn unique_name(e: sqlx::Error, name: &str) -> StoreError {
    match &e {
        sqlx::Error::Database(db) if db.is_unique_violation() => {
            StoreError::Refused(format!("a worker tag named \"{name}\" exists already"))
        }
        _ => StoreError::Db(e),
    }
}

impl Store {
    pub async fn list_tags(&self) -> StoreResult<Vec<TagRow>> {
        Ok(
            sqlx::query_as("SELECT id, name, description FROM worker_tags ORDER BY name")
                .fetch_all(&self.read)
                .await?,
        )
    }

    pub async fn get_tag(&self, id: &str) -> StoreResult<Option<TagRow>> {
        Ok(
            sqlx::query_as("SELECT id, name, description FROM worker_tags WHERE id = $1")
                .bind(id)
                .fetch_optional(&self.read)
                .await?,
        )
    }

    pub async fn insert_tag(&self, tag: &TagRow) -> StoreResult<()> {
        let now = now();
        sqlx::query(
            "INSERT INTO worker_tags (id, name, description, created_at, updated_at) VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(&tag.id)
        .bind(&tag.name)
        .bind(&tag.description)
        .bind(&now)
        .bind(&now)
        .execute(self.writer()?)
        .await
        .map_err(|e| unique_name(e, &tag.name))?;
        Ok(())
    }

    /// Renames / re-describes a tag; false when it does not exist.
    pub async fn update_tag(&self, tag: &TagRow) -> StoreResult<bool> {
        let done = sqlx::query(
            "UPDATE worker_tags SET name = $1, description = $2, updated_at = $3 WHERE id = $4",
        )
        .bind(&tag.name)
        .bind(&tag.description)
        .bind(now())
        .bind(&tag.id)
        .execute(self.writer()?)
        .await
        .map_err(|e| unique_name(e, &tag.name))?;
        Ok(done.rows_affected() == 1)
    }

    /// Deletes a tag: its workers lose it, and jobs limited to it become open to all.
    pub async fn delete_tag(&self, id: &str) -> StoreResult<bool> {
        let done = sqlx::query("DELETE FROM worker_tags WHERE id = $1")
            .bind(id)
            .execute(self.writer()?)
            .await?;
        Ok(done.rows_affected() == 1)
    }
}

impl Store {
    pub async fn tag_by_name(&self, name: &str) -> StoreResult<Option<TagRow>> {
        Ok(
            sqlx::query_as("SELECT id, name, description FROM worker_tags WHERE name = $1")
                .bind(name)
                .fetch_optional(&self.read)
                .await?,
        )
    }

    /// Limits a job to the workers of a tag, or (None) opens it to all workers.
    pub async fn set_job_tag(&self, job_id: &str, tag_id: Option<&str>) -> StoreResult<()> {
        sqlx::query("UPDATE jobs SET worker_tag_id = $1, updated_at = $2 WHERE id = $3")
            .bind(tag_id)
            .bind(now())
            .bind(job_id)
            .execute(self.writer()?)
            .await?;
        Ok(())
    }
}
