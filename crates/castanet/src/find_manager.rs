//! Finding the manager on the LAN by mDNS, for a worker started without a manager URL.
use std::collections::BTreeMap;
use std::time::Duration;

use anyhow::{Context, bail};
use castanet_manager::discovery::SERVICE_TYPE;
use mdns_sd::{ServiceDaemon, ServiceEvent};
use tokio::time::Instant;

/// After the first manager answers, how long to listen for others before choosing.
const SETTLE: Duration = Duration::from_millis(1500);

/// A manager that answered: farm name → URL.
type Found = BTreeMap<String, String>;

fn choose(found: &Found, farm: Option<&str>) -> anyhow::Result<String> {
    match found.len() {
        0 => match farm {
            Some(farm) => {
                bail!("no Castanet manager of farm \"{farm}\" found on the LAN; pass --manager URL")
            }
            None => bail!("no Castanet manager found on the LAN; pass --manager URL"),
        },
        1 => Ok(found.values().next().cloned().unwrap_or_default()),
        _ => {
            let list: Vec<String> = found
                .iter()
                .map(|(farm, url)| format!("farm \"{farm}\" at {url}"))
                .collect();
            bail!(
                "several Castanet managers found: {}; pass --farm NAME or --manager URL",
                list.join(", ")
            )
        }
    }
}

/// Browses for managers for up to `timeout` and returns the URL of the only one (or the
/// only one of `farm`); says clearly when there is none or more than one.
pub async fn find_manager(farm: Option<&str>, timeout: Duration) -> anyhow::Result<String> {
    let daemon = ServiceDaemon::new().context("cannot start mDNS to look for the manager")?;
    let events = daemon
        .browse(SERVICE_TYPE)
        .context("cannot browse for managers")?;
    tracing::info!("looking for a Castanet manager on the LAN (mDNS, up to {timeout:?})");
    let deadline = Instant::now() + timeout;
    let mut settle_until: Option<Instant> = None;
    let mut found = Found::new();
    loop {
        let until = settle_until.map_or(deadline, |s| s.min(deadline));
        let event = match tokio::time::timeout_at(until, events.recv_async()).await {
            Ok(Ok(event)) => event,
            Ok(Err(_)) | Err(_) => break,
        };
        let ServiceEvent::ServiceResolved(service) = event else {
            continue;
        };
        let name = service
            .get_property_val_str("farm")
            .unwrap_or("")
            .to_string();
        if farm.is_some_and(|wanted| wanted != name) {
            continue;
        }
        // IPv4 first: a first answer may carry only an IPv6 link-local address.
        let Some(ip) = service.get_addresses_v4().into_iter().next() else {
            continue;
        };
        let scheme = match service.get_property_val_str("scheme") {
            Some("https") => "https",
            _ => "http",
        };
        let url = format!("{scheme}://{ip}:{}", service.get_port());
        tracing::info!(farm = %name, %url, "found a manager");
        found.insert(name, url);
        settle_until.get_or_insert_with(|| Instant::now() + SETTLE);
    }
    let _ = daemon.shutdown();
    choose(&found, farm)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_choice_names_what_was_found() {
        let mut found = Found::new();
        assert!(
            choose(&found, None)
                .unwrap_err()
                .to_string()
                .contains("no Castanet manager found")
        );
        assert!(
            choose(&found, Some("lab"))
                .unwrap_err()
                .to_string()
                .contains("farm \"lab\"")
        );
        found.insert("lab".into(), "http://10.0.0.2:8080".into());
        assert_eq!(choose(&found, None).unwrap(), "http://10.0.0.2:8080");
        found.insert("studio".into(), "http://10.0.0.3:8080".into());
        let err = choose(&found, None).unwrap_err().to_string();
        assert!(
            err.contains("lab") && err.contains("studio") && err.contains("--farm"),
            "{err}"
        );
    }
}
