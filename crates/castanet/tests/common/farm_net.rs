//! Network namespaces for a farm under test: one for the manager, one per worker, each
//! worker's joined to the manager's by a veth pair, so a worker's network can be cut.
//! Needs root (`ip netns`).
use super::ip;

/// A namespace for the manager and one per worker, each worker joined to the manager by
/// a veth pair (10.214.k.1 manager side, .2 worker side), and the test's own veth into
/// the manager's namespace (10.214.0.1 here, 10.214.0.2 there). Removed on drop.
pub struct FarmNet {
    tag: String,
    workers: usize,
}

impl FarmNet {
    /// Namespaces for a manager and `workers` workers.
    pub fn create(workers: usize) -> Result<Self, String> {
        let net = FarmNet {
            tag: format!("k{}", std::process::id() % 100_000),
            workers,
        };
        remove_leftovers();
        let m = net.manager_ns();
        ip(&["netns", "add", &m])?;
        ip(&["-n", &m, "link", "set", "lo", "up"])?;
        let (here, there) = (format!("{}r0", net.tag), format!("{}m0", net.tag));
        ip(&["link", "add", &here, "type", "veth", "peer", "name", &there])?;
        ip(&["link", "set", &there, "netns", &m])?;
        ip(&["addr", "add", "10.214.0.1/30", "dev", &here])?;
        ip(&["link", "set", &here, "up"])?;
        ip(&["-n", &m, "addr", "add", "10.214.0.2/30", "dev", &there])?;
        ip(&["-n", &m, "link", "set", &there, "up"])?;
        for k in 1..=net.workers {
            let w = net.worker_ns(k);
            ip(&["netns", "add", &w])?;
            ip(&["-n", &w, "link", "set", "lo", "up"])?;
            let (mside, wside) = (format!("{}m{k}", net.tag), net.worker_veth(k));
            ip(&[
                "link", "add", &mside, "type", "veth", "peer", "name", &wside,
            ])?;
            ip(&["link", "set", &mside, "netns", &m])?;
            ip(&["link", "set", &wside, "netns", &w])?;
            ip(&[
                "-n",
                &m,
                "addr",
                "add",
                &format!("10.214.{k}.1/30"),
                "dev",
                &mside,
            ])?;
            ip(&["-n", &m, "link", "set", &mside, "up"])?;
            ip(&[
                "-n",
                &w,
                "addr",
                "add",
                &format!("10.214.{k}.2/30"),
                "dev",
                &wside,
            ])?;
            ip(&["-n", &w, "link", "set", &wside, "up"])?;
        }
        Ok(net)
    }

    pub fn manager_ns(&self) -> String {
        format!("{}m", self.tag)
    }

    pub fn worker_ns(&self, k: usize) -> String {
        format!("{}w{k}", self.tag)
    }

    pub fn worker_veth(&self, k: usize) -> String {
        format!("{}w{k}", self.tag)
    }

    /// Takes worker `k`'s link down (`up = false`) or up again.
    pub fn set_link(&self, k: usize, up: bool) {
        let state = if up { "up" } else { "down" };
        if let Err(e) = ip(&[
            "-n",
            &self.worker_ns(k),
            "link",
            "set",
            &self.worker_veth(k),
            state,
        ]) {
            panic!("cannot set worker {k}'s link {state}: {e}");
        }
    }
}

impl FarmNet {
    /// Slows what worker `k` sends to `rate` (a `tc` rate such as `4mbit`), or lifts the
    /// limit (`None`).
    pub fn limit_rate(&self, k: usize, rate: Option<&str>) {
        let (ns, veth) = (self.worker_ns(k), self.worker_veth(k));
        let mut args = vec!["netns", "exec", &ns, "tc", "qdisc"];
        match rate {
            Some(rate) => args.extend([
                "replace", "dev", &veth, "root", "tbf", "rate", rate, "burst", "32kbit", "latency",
                "400ms",
            ]),
            None => args.extend(["del", "dev", &veth, "root"]),
        }
        if let Err(e) = ip(&args) {
            panic!("cannot change worker {k}'s rate limit ({rate:?}): {e}");
        }
    }
}

impl Drop for FarmNet {
    fn drop(&mut self) {
        for k in 1..=self.workers {
            let _ = ip(&["netns", "del", &self.worker_ns(k)]);
        }
        let _ = ip(&["netns", "del", &self.manager_ns()]);
        let _ = ip(&["link", "del", &format!("{}r0", self.tag)]);
    }
}

/// Removes the namespaces and links of a test run that was killed before its `Drop` ran:
/// their addresses would shadow this run's. Test binaries run one after another, so any
/// farm net present at the start is a leftover.
fn remove_leftovers() {
    let Ok(listed) = std::process::Command::new("ip")
        .args(["netns", "list"])
        .output()
    else {
        return;
    };
    let is_farm_name = |name: &str| {
        name.strip_prefix('k')
            .is_some_and(|rest| rest.starts_with(|c: char| c.is_ascii_digit()))
    };
    for line in String::from_utf8_lossy(&listed.stdout).lines() {
        if let Some(name) = line.split_whitespace().next().filter(|n| is_farm_name(n)) {
            let _ = ip(&["netns", "del", name]);
        }
    }
    let Ok(links) = std::process::Command::new("ip")
        .args(["-br", "link"])
        .output()
    else {
        return;
    };
    for line in String::from_utf8_lossy(&links.stdout).lines() {
        let name = line.split_whitespace().next().unwrap_or("");
        let name = name.split('@').next().unwrap_or("");
        if is_farm_name(name) && name.ends_with("r0") {
            let _ = ip(&["link", "del", name]);
        }
    }
}
