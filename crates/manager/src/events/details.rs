//! The changed job's, task's or worker's fields on its event, as Flamenco's updates carry
//! them (name, status, activity, progress, …): read once per burst for every stream, so a
//! client need not re-read what changed. A burst spans 100–300 ms of changes; its events carry
//! the state at the end of it, which is what a client re-reading would have seen.
use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use serde_json::{Map, Value};

use super::{Event, Published};

pub type Fields = Map<String, Value>;

/// Fields per job, task and worker id; an id that is gone has none.
#[derive(Debug, Default)]
pub struct Snapshot {
    pub jobs: HashMap<String, Fields>,
    pub tasks: HashMap<String, Fields>,
    pub workers: HashMap<String, Fields>,
}

/// The ids a burst's events name, each once.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Wanted {
    pub jobs: Vec<String>,
    pub tasks: Vec<String>,
    pub workers: Vec<String>,
}

pub type Reading<'a> = Pin<Box<dyn Future<Output = Snapshot> + Send + 'a>>;

/// Reads the current fields of what a burst names (the store, in the manager). A failed
/// read gives an empty snapshot: the events then go out with their ids only.
pub trait DetailSource: Send + Sync {
    fn read(&self, wanted: Wanted) -> Reading<'_>;
}

fn wanted(events: &[Arc<Published>]) -> Wanted {
    let mut seen = HashSet::new();
    let mut wanted = Wanted::default();
    for published in events {
        let (list, id) = match &published.event {
            Event::Job { job_id } => (&mut wanted.jobs, job_id),
            Event::Task { task_id, .. } => (&mut wanted.tasks, task_id),
            Event::Worker { worker_id } => (&mut wanted.workers, worker_id),
            _ => continue,
        };
        if seen.insert((published.event.kind(), id.as_str())) {
            list.push(id.clone());
        }
    }
    wanted
}

fn fields_of<'a>(event: &Event, snapshot: &'a Snapshot) -> Option<&'a Fields> {
    match event {
        Event::Job { job_id } => snapshot.jobs.get(job_id),
        Event::Task { task_id, .. } => snapshot.tasks.get(task_id),
        Event::Worker { worker_id } => snapshot.workers.get(worker_id),
        _ => None,
    }
}

/// `events` with the fields of what each names merged into its data (the event's own keys
/// — `type`, the ids — are kept as they are).
pub async fn enrich(source: &dyn DetailSource, events: Vec<Arc<Published>>) -> Vec<Arc<Published>> {
    let wanted = wanted(&events);
    if wanted == Wanted::default() {
        return events;
    }
    let snapshot = source.read(wanted).await;
    events
        .into_iter()
        .map(|published| match fields_of(&published.event, &snapshot) {
            Some(fields) => Arc::new(Published::with_fields(published.event.clone(), fields)),
            None => published,
        })
        .collect()
}

/// The SSE data of `event` with `fields` added.
pub(super) fn data_with(event: &Event, fields: &Fields) -> String {
    let mut data = match serde_json::to_value(event) {
        Ok(Value::Object(data)) => data,
        _ => Map::new(),
    };
    for (key, value) in fields {
        data.entry(key.clone()).or_insert_with(|| value.clone());
    }
    Value::Object(data).to_string()
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    struct Fixed;

    impl DetailSource for Fixed {
        fn read(&self, wanted: Wanted) -> Reading<'_> {
            Box::pin(async move {
                assert_eq!(wanted.jobs, ["j1"], "each id once");
                let mut snapshot = Snapshot::default();
                let fields = json!({ "status": "active", "type": "not this", "name": "shot" });
                if let Value::Object(fields) = fields {
                    snapshot.jobs.insert("j1".into(), fields);
                }
                snapshot
            })
        }
    }

    #[tokio::test]
    async fn events_carry_the_fields_of_what_they_name() {
        let events = vec![
            Arc::new(Published::new(Event::job("j1"))),
            Arc::new(Published::new(Event::job("j1"))),
            Arc::new(Published::new(Event::worker("gone"))),
            Arc::new(Published::new(Event::task_log("j1", "t1"))),
        ];
        let enriched = enrich(&Fixed, events).await;
        assert_eq!(
            enriched[0].frame(),
            "event: job\ndata: {\"job_id\":\"j1\",\"name\":\"shot\",\"status\":\"active\",\"type\":\"job\"}\n\n"
        );
        assert_eq!(
            enriched[2].frame(),
            "event: worker\ndata: {\"type\":\"worker\",\"worker_id\":\"gone\"}\n\n",
            "an entity that is gone: ids only"
        );
        assert!(enriched[3].frame().starts_with("event: task-log\n"));
    }
}
