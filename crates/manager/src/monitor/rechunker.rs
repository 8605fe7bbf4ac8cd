//! Adaptive chunking: when a chunk task of a job with a target task duration finishes, the job's
//! never-started queued chunks are planned again (`state::plan_chunks`: at the first finished
//! chunk, then each time their number doubled), the job type's `compileChunk` authors the
//! regrouped tasks, and the store swaps them in one transaction. Running tasks are never touched;
//! a swap that finds a task taken meanwhile changes nothing and is tried at the next finish.
use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::broadcast::error::{RecvError, TryRecvError};
use tokio_util::sync::CancellationToken;

use crate::AppState;
use crate::events::{Event, Published};
use crate::state::{frames_notation, plan_chunks, should_rechunk};
use crate::store::{ChunkingState, NewTask};

/// How long task events are gathered before their jobs are looked at.
const GATHER: Duration = Duration::from_millis(200);

pub async fn run(state: AppState, shutdown: CancellationToken) {
    let mut events = state.events.subscribe();
    // Finished chunks per job at its last plan.
    let mut planned_at: HashMap<String, usize> = HashMap::new();
    loop {
        let first = tokio::select! {
            () = shutdown.cancelled() => return,
            received = events.recv() => match received {
                Ok(first) => first,
                // Missed events: the next finished task brings its job back.
                Err(RecvError::Lagged(_)) => continue,
                Err(RecvError::Closed) => return,
            },
        };
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = tokio::time::sleep(GATHER) => {}
        }
        let mut jobs = BTreeSet::new();
        note(&first, &mut jobs, &mut planned_at);
        loop {
            match events.try_recv() {
                Ok(more) => note(&more, &mut jobs, &mut planned_at),
                Err(TryRecvError::Lagged(_)) => continue,
                Err(_) => break,
            }
        }
        if jobs.is_empty() {
            continue;
        }
        let ids: Vec<String> = jobs.into_iter().collect();
        let chunked = match state.store.jobs_with_target_duration(&ids).await {
            Ok(chunked) => chunked,
            Err(e) => {
                tracing::warn!("cannot look for jobs to re-chunk: {e}");
                continue;
            }
        };
        for job_id in chunked {
            if let Err(e) = rechunk(&state, &job_id, &mut planned_at).await {
                tracing::warn!(job = %job_id, "cannot regroup the job's queued frames: {e}");
            }
        }
    }
}

/// Remembers the job of a task event; forgets the plans of deleted jobs.
fn note(
    published: &Arc<Published>,
    jobs: &mut BTreeSet<String>,
    planned_at: &mut HashMap<String, usize>,
) {
    match &published.event {
        Event::Task { job_id, .. } => {
            jobs.insert(job_id.clone());
        }
        Event::JobDeleted { job_id } => {
            planned_at.remove(job_id);
        }
        _ => {}
    }
}

#[derive(Debug, thiserror::Error)]
enum RechunkError {
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
    #[error(transparent)]
    Compile(#[from] crate::compiler::CompileError),
    #[error("the job's stored {0} are unreadable")]
    Stored(&'static str),
}

/// Plans the job's queued chunks again if it is time, and swaps them when the plan differs.
async fn rechunk(
    state: &AppState,
    job_id: &str,
    planned_at: &mut HashMap<String, usize>,
) -> Result<(), RechunkError> {
    let Some(facts) = state.store.chunking_state(job_id).await? else {
        planned_at.remove(job_id);
        return Ok(());
    };
    let last = planned_at.get(job_id).copied().unwrap_or(0);
    if !should_rechunk(facts.finished.len(), last) {
        return Ok(());
    }
    planned_at.insert(job_id.to_string(), facts.finished.len());
    let Some(task_type) = facts.queued.first().map(|chunk| chunk.task_type.clone()) else {
        return Ok(());
    };
    // Chunks of one task type, in order (a job type chunks one kind of task).
    let old: Vec<_> = facts
        .queued
        .iter()
        .filter(|chunk| chunk.task_type == task_type)
        .collect();
    let frames: Vec<Vec<i64>> = old
        .iter()
        .map(|chunk| {
            crate::compiler::frames::frame_list(&chunk.frames).map(|list| {
                list.into_iter()
                    .filter_map(|f| i64::try_from(f).ok())
                    .collect()
            })
        })
        .collect::<Result<_, _>>()
        .map_err(|_| RechunkError::Stored("frames"))?;
    let slots: usize = state
        .dispatcher
        .connected_capacity()
        .iter()
        .filter(|(types, _)| types.contains(&task_type))
        .map(|(_, slots)| *slots)
        .sum();
    let Some(plan) = plan_chunks(
        facts.target_task_seconds,
        slots as u64,
        &facts.finished,
        &frames,
    ) else {
        return Ok(());
    };
    let chunks: Vec<String> = plan.iter().map(|frames| frames_notation(frames)).collect();
    let new = compile_chunks(state, &facts, chunks).await?;
    let old_ids: Vec<String> = old.iter().map(|chunk| chunk.task_id.clone()).collect();
    let (before, after) = (old_ids.len(), new.len());
    if state
        .store
        .replace_queued_chunks(job_id, &old_ids, new)
        .await?
    {
        tracing::info!(
            job = %job_id,
            before,
            after,
            target_seconds = facts.target_task_seconds,
            "regrouped the job's queued frames towards its target task duration"
        );
        let effects = crate::ops::job_actions::tasks_regrouped(job_id);
        crate::ops::apply(effects, state).await;
    } else {
        // A task was taken meanwhile: plan again at the next finished chunk.
        planned_at.insert(job_id.to_string(), 0);
    }
    Ok(())
}

/// Has the job type author the task of each chunk, off the async threads (scripts are
/// synchronous and may take a moment on a long shot).
async fn compile_chunks(
    state: &AppState,
    facts: &ChunkingState,
    chunks: Vec<String>,
) -> Result<Vec<NewTask>, RechunkError> {
    let (input, settings) = facts
        .job
        .compile_input()
        .map_err(|e| RechunkError::Stored(e.0))?;
    let registry = state.job_types.clone();
    let tasks = tokio::task::spawn_blocking(move || {
        let tasks = registry.compile_chunks(&input, settings, &chunks)?;
        Ok::<_, crate::compiler::CompileError>((tasks, chunks))
    })
    .await
    .map_err(|e| {
        crate::compiler::CompileError::Internal(format!("chunk compile panicked: {e}"))
    })??;
    let (tasks, chunks) = tasks;
    Ok(tasks
        .into_iter()
        .zip(chunks)
        .map(|(task, chunk)| {
            let mut task = NewTask::from(task);
            task.frames = task.frames.or(Some(chunk));
            task
        })
        .collect())
}
