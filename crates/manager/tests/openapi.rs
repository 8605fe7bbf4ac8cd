//! The OpenAPI document at `/api/v3/openapi.json` covers exactly the routes the router
//! serves (a route added without documentation fails here). That the answers are what it
//! describes is checked by `openapi_strict.rs`.
mod common;

use std::collections::BTreeSet;

use serde_json::{Value, json};

const METHODS: [&str; 9] = [
    "get", "head", "delete", "options", "patch", "post", "put", "trace", "connect",
];

/// (method, path) of every route, read from the router's debug form (axum has no other
/// way to list routes). A route served for any method (a nested service) gets `*`.
fn routes_of(router: &axum::Router) -> BTreeSet<(String, String)> {
    let text = format!("{router:?}");
    // Only the main path router: the fallback router numbers its routes on its own.
    let text = text.split("fallback_router:").next().unwrap_or_default();
    let mut paths = std::collections::BTreeMap::new();
    let mut endpoints = std::collections::BTreeMap::new();
    for piece in text.split("RouteId(").skip(1) {
        let Some((id, rest)) = piece.split_once("): ") else {
            continue;
        };
        if let Some(quoted) = rest.strip_prefix('"') {
            let path = quoted.split('"').next().unwrap_or_default();
            paths.insert(id.to_string(), path.to_string());
        } else if let Some(router) = rest.strip_prefix("MethodRouter(") {
            let fields = router.split("fallback:").next().unwrap_or_default();
            let methods: Vec<String> = METHODS
                .iter()
                .filter(|m| {
                    let field = format!(" {m}: ");
                    fields
                        .split_once(&field)
                        .is_some_and(|(_, value)| !value.starts_with("None"))
                })
                .map(|m| m.to_string())
                .collect();
            endpoints.insert(id.to_string(), methods);
        } else if rest.starts_with("Route(") {
            endpoints.insert(id.to_string(), vec!["*".to_string()]);
        }
    }
    let mut routes = BTreeSet::new();
    for (id, methods) in endpoints {
        let path = paths
            .get(&id)
            .unwrap_or_else(|| panic!("route {id} has a path"));
        for method in methods {
            routes.insert((method, path.replace("{*", "{")));
        }
    }
    routes
}

fn documented(doc: &Value) -> BTreeSet<(String, String)> {
    let mut operations = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for method in item.as_object().expect("path item").keys() {
            if METHODS.contains(&method.as_str()) {
                operations.insert((method.clone(), path.clone()));
            }
        }
    }
    operations
}

#[tokio::test]
async fn the_document_lists_exactly_the_routes_the_router_serves() {
    let m = common::start().await;
    let router = castanet_manager::http::router(m.manager.state.clone());
    let served = routes_of(&router);
    assert!(
        served.contains(&("get".into(), "/api/v3/version".into()))
            && served.contains(&("delete".into(), "/api/v3/jobs/{id}".into())),
        "the router's routes were read: {served:?}"
    );
    let (status, doc) = m.get("/api/v3/openapi.json").await;
    assert_eq!(status, 200, "{doc}");
    assert!(doc["openapi"].as_str().is_some_and(|v| v.starts_with('3')));
    let documented = documented(&doc);
    let undocumented: Vec<_> = served
        .iter()
        .filter(|(method, path)| {
            if method == "*" {
                !documented.iter().any(|(_, p)| p == path)
            } else {
                !documented.contains(&(method.clone(), path.clone()))
            }
        })
        .collect();
    assert!(
        undocumented.is_empty(),
        "routes missing from crates/manager/src/http/openapi/paths.rs: {undocumented:?}"
    );
    let stale: Vec<_> = documented
        .iter()
        .filter(|(method, path)| {
            !served.contains(&(method.clone(), path.clone()))
                && !served.contains(&("*".to_string(), path.clone()))
        })
        .collect();
    assert!(stale.is_empty(), "documented but not served: {stale:?}");
    // Every operation has a tag; Castanet's own are marked as extensions.
    for (method, path) in &documented {
        let tags = &doc["paths"][path][method]["tags"];
        assert!(
            tags.as_array().is_some_and(|t| !t.is_empty()),
            "{method} {path}"
        );
    }
    let why = &doc["paths"]["/api/v3/tasks/{id}/why"]["get"]["tags"];
    assert_eq!(why, &json!(["extensions"]));
    m.manager.shutdown().await.unwrap();
}
