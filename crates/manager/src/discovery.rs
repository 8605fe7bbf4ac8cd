//! mDNS advertisement: the manager announces `_castanet._tcp.local.` with its port, farm
//! name and version, so workers find it without a configured URL. A manager listening
//! only on loopback has nobody on the LAN to tell and does not advertise (nor join any
//! multicast group).
use std::net::SocketAddr;

use mdns_sd::{ServiceDaemon, ServiceInfo};

/// The DNS-SD service type workers browse for.
pub const SERVICE_TYPE: &str = "_castanet._tcp.local.";

#[derive(Debug, thiserror::Error)]
#[error("cannot advertise the manager on the LAN (mDNS): {0}")]
pub struct DiscoveryError(String);

/// A running advertisement; dropping it stops it.
pub struct Advertisement {
    daemon: ServiceDaemon,
    fullname: String,
}

/// Advertises a manager bound to `addr`, unless it is bound to loopback.
pub fn advertise(
    addr: SocketAddr,
    farm_name: &str,
    version: &str,
    scheme: &str,
) -> Result<Option<Advertisement>, DiscoveryError> {
    if addr.ip().is_loopback() {
        tracing::debug!("listening on loopback only; not advertising on the LAN");
        return Ok(None);
    }
    let daemon = ServiceDaemon::new().map_err(|e| DiscoveryError(e.to_string()))?;
    let host = hostname();
    let instance = format!("{farm_name} on {host}");
    // `scheme` tells workers to connect with https when the manager serves TLS.
    let properties = [
        ("farm", farm_name),
        ("version", version),
        ("scheme", scheme),
    ];
    let ip: Vec<std::net::IpAddr> = if addr.ip().is_unspecified() {
        Vec::new()
    } else {
        vec![addr.ip()]
    };
    let mut info = ServiceInfo::new(
        SERVICE_TYPE,
        &instance,
        &format!("{host}.local."),
        &ip[..],
        addr.port(),
        &properties[..],
    )
    .map_err(|e| DiscoveryError(e.to_string()))?;
    if addr.ip().is_unspecified() {
        // Listening on every interface: announce every interface's address.
        info = info.enable_addr_auto();
    }
    let fullname = info.get_fullname().to_string();
    daemon
        .register(info)
        .map_err(|e| DiscoveryError(e.to_string()))?;
    tracing::info!(service = %fullname, port = addr.port(), "advertising the manager on the LAN (mDNS)");
    Ok(Some(Advertisement { daemon, fullname }))
}

pub(crate) fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "castanet-manager".into())
}

impl Drop for Advertisement {
    fn drop(&mut self) {
        // Say goodbye so workers forget us quickly; errors only mean the daemon is gone.
        let _ = self.daemon.unregister(&self.fullname);
        let _ = self.daemon.shutdown();
    }
}
