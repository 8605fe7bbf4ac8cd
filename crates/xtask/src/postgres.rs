//! A throwaway PostgreSQL cluster for the manager's tests: its own data directory and port,
//! tuned for speed over durability, stopped and deleted when dropped. PostgreSQL refuses to
//! run as root, so as root the server runs as `postgres` (or `nobody`) through `runuser`.
use std::os::unix::fs::DirBuilderExt;
use std::path::PathBuf;
use std::process::{Command, Output};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

/// The variable that hands the server's URL to the manager's tests; each test creates its
/// own database on it.
pub const URL_ENV: &str = "CASTANET_TEST_POSTGRES";
/// The cluster's superuser.
const USER: &str = "castanet";

/// The newest installed server's bin directory: /usr/lib/postgresql/<major>/bin (Debian),
/// else `pg_config --bindir`; None when neither has initdb.
pub fn server_bindir() -> Option<PathBuf> {
    let newest = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| Some((e.file_name().to_str()?.parse::<u32>().ok()?, e.path())))
        .filter(|(_, dir)| dir.join("bin/initdb").is_file())
        .max_by_key(|(major, _)| *major);
    if let Some((_, dir)) = newest {
        return Some(dir.join("bin"));
    }
    let output = Command::new("pg_config").arg("--bindir").output().ok()?;
    let bindir = PathBuf::from(String::from_utf8_lossy(&output.stdout).trim());
    (output.status.success() && bindir.join("initdb").is_file()).then_some(bindir)
}

pub struct ThrowawayCluster {
    bindir: PathBuf,
    /// Holds the data directory, the log, the Unix socket and (briefly) the password file.
    dir: PathBuf,
    /// The unprivileged user the server runs as when xtask runs as root.
    run_as: Option<String>,
    password: String,
    port: u16,
}

impl ThrowawayCluster {
    /// initdb into a new temporary directory, start the server on a free local port and
    /// wait until it accepts connections.
    pub fn start() -> anyhow::Result<ThrowawayCluster> {
        let bindir = server_bindir().context("no PostgreSQL server (initdb) is installed")?;
        let dir = std::env::temp_dir().join(format!("castanet-pg-{}", random_hex(8)?));
        let created = std::fs::DirBuilder::new().mode(0o700).create(&dir);
        created.with_context(|| format!("cannot create {}", dir.display()))?;
        let free = std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr());
        let port = free.context("cannot find a free port")?.port();
        let (password, run_as) = (random_hex(16)?, None);
        // From here on, dropping the cluster removes the directory (and stops the server).
        let mut cluster = ThrowawayCluster {
            bindir,
            dir,
            run_as,
            password,
            port,
        };
        if crate::is_root() {
            let user = ["postgres", "nobody"]
                .into_iter()
                .find(|u| id(u, "-u").is_some())
                .context("neither a postgres nor a nobody user exists to run PostgreSQL as")?;
            let (uid, gid) = id(user, "-u").zip(id(user, "-g")).context("no uid/gid")?;
            std::os::unix::fs::chown(&cluster.dir, Some(uid), Some(gid))
                .with_context(|| format!("cannot give {} to {user}", cluster.dir.display()))?;
            cluster.run_as = Some(user.to_string());
        }
        // Readable by the server's user; nobody else may enter the directory.
        let pwfile = cluster.dir.join("pwfile");
        std::fs::write(&pwfile, format!("{}\n", cluster.password))
            .context("cannot write the password file")?;
        let mut initdb = cluster.server_command("initdb");
        initdb.args(["-U", USER, "-D"]).arg(cluster.data_dir());
        initdb.arg(format!("--pwfile={}", pwfile.display()));
        let options = "--auth-local=trust --auth-host=scram-sha-256 -E UTF8 --no-sync";
        checked(initdb.args(options.split(' ')).output(), "initdb")?;
        std::fs::remove_file(&pwfile).context("cannot remove the password file")?;
        let options = format!(
            "-p {port} -k '{}' -c listen_addresses=127.0.0.1 -c fsync=off \
             -c synchronous_commit=off -c full_page_writes=off -c max_connections=400",
            cluster.dir.display()
        );
        let mut pg_ctl = cluster.server_command("pg_ctl");
        pg_ctl
            .args(["-w", "-o", &options, "-D"])
            .arg(cluster.data_dir());
        pg_ctl.arg("-l").arg(cluster.dir.join("log")).arg("start");
        let started = checked(pg_ctl.output(), "pg_ctl start")
            .and_then(|()| cluster.wait_until_ready(Duration::from_secs(60)));
        if let Err(e) = started {
            let tail = cluster.log_tail(20);
            bail!("PostgreSQL did not start: {e:#}\nthe end of its log:\n{tail}");
        }
        Ok(cluster)
    }

    /// The superuser's URL, for the default `postgres` database.
    pub fn url(&self) -> String {
        let (password, port) = (&self.password, self.port);
        format!("postgres://{USER}:{password}@127.0.0.1:{port}/postgres")
    }

    /// [`Self::url`] with the password masked, for printing.
    pub fn masked_url(&self) -> String {
        self.url().replace(&self.password, "****")
    }

    pub fn data_dir(&self) -> PathBuf {
        self.dir.join("data")
    }

    /// The server's version line, e.g. `postgres (PostgreSQL) 15.18 (Debian 15.18-0+deb12u1)`.
    pub fn version(&self) -> String {
        let output = Command::new(self.bindir.join("postgres"))
            .arg("--version")
            .output();
        output.map_or_else(
            |e| format!("unknown PostgreSQL version ({e})"),
            |o| String::from_utf8_lossy(&o.stdout).trim().to_string(),
        )
    }

    /// A server program from the bin directory, as the unprivileged user when root.
    fn server_command(&self, program: &str) -> Command {
        let program = self.bindir.join(program);
        let mut command = match &self.run_as {
            Some(user) => {
                let mut runuser = Command::new("runuser");
                runuser.args(["-u", user, "--"]).arg(program);
                runuser
            }
            None => Command::new(program),
        };
        // The unprivileged user may not be allowed into the current directory.
        command.current_dir(&self.dir);
        command
    }

    /// Polls pg_isready over TCP until the server accepts connections.
    fn wait_until_ready(&self, timeout: Duration) -> anyhow::Result<()> {
        let deadline = Instant::now() + timeout;
        let port = self.port;
        let mut probe = Command::new(self.bindir.join("pg_isready"));
        probe.args(["-q", "-h", "127.0.0.1", "-d", "postgres", "-p"]);
        probe.arg(port.to_string());
        while !probe.status().context("cannot run pg_isready")?.success() {
            if Instant::now() > deadline {
                bail!("no connections accepted on port {port} after {timeout:?}");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Ok(())
    }

    fn log_tail(&self, lines: usize) -> String {
        let log = std::fs::read_to_string(self.dir.join("log")).unwrap_or_default();
        let all: Vec<&str> = log.lines().collect();
        all[all.len().saturating_sub(lines)..].join("\n")
    }
}

impl Drop for ThrowawayCluster {
    fn drop(&mut self) {
        if self.data_dir().join("postmaster.pid").exists() {
            let mut pg_ctl = self.server_command("pg_ctl");
            pg_ctl.args(["-m", "immediate", "-D"]).arg(self.data_dir());
            if let Err(e) = checked(pg_ctl.arg("stop").output(), "pg_ctl stop") {
                eprintln!("xtask: cannot stop the PostgreSQL cluster: {e:#}");
            }
        }
        if let Err(e) = std::fs::remove_dir_all(&self.dir) {
            eprintln!("xtask: cannot remove {}: {e}", self.dir.display());
        }
    }
}

/// `cargo xtask postgres`: a cluster for running single tests against, until Ctrl-C or
/// until stdin closes.
pub fn serve() -> anyhow::Result<()> {
    catch_interrupts();
    let cluster = ThrowawayCluster::start()?;
    println!("xtask: {}", cluster.version());
    println!("{URL_ENV}={}", cluster.url());
    println!("xtask: data directory {}", cluster.data_dir().display());
    println!("xtask: stop with Ctrl-C or by closing stdin (Ctrl-D)");
    let (closed, stdin_closed) = std::sync::mpsc::channel::<()>();
    std::thread::spawn(move || {
        let _ = std::io::copy(&mut std::io::stdin().lock(), &mut std::io::sink());
        drop(closed);
    });
    while !interrupted() {
        match stdin_closed.recv_timeout(Duration::from_millis(100)) {
            Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {}
            _ => break,
        }
    }
    println!("xtask: stopping PostgreSQL");
    Ok(())
}

static INTERRUPTED: AtomicBool = AtomicBool::new(false);
/// SIGHUP, SIGINT and SIGTERM (the same numbers on every Linux architecture).
const SIGNALS: [i32; 3] = [1, 2, 15];

unsafe extern "C" {
    /// libc's signal(2).
    fn signal(signum: i32, handler: usize) -> usize;
}

extern "C" fn on_signal(_: i32) {
    INTERRUPTED.store(true, Ordering::SeqCst);
}

/// From now on Ctrl-C (and SIGTERM, SIGHUP) set a flag instead of killing xtask, so a
/// running cluster still gets stopped and its directory removed; child processes still
/// get the signal and stop.
pub fn catch_interrupts() {
    for signum in SIGNALS {
        // SAFETY: the handler only stores to an atomic, which is async-signal-safe.
        unsafe { signal(signum, on_signal as extern "C" fn(i32) as usize) };
    }
}

pub fn interrupted() -> bool {
    INTERRUPTED.load(Ordering::SeqCst)
}

/// The uid (`-u`) or gid (`-g`) of a user.
fn id(user: &str, flag: &str) -> Option<u32> {
    let output = Command::new("id").args([flag, user]).output().ok()?;
    String::from_utf8_lossy(&output.stdout).trim().parse().ok()
}

fn random_hex(bytes: usize) -> anyhow::Result<String> {
    let mut buffer = vec![0u8; bytes];
    std::io::Read::read_exact(&mut std::fs::File::open("/dev/urandom")?, &mut buffer)
        .context("cannot read /dev/urandom")?;
    Ok(buffer.iter().map(|b| format!("{b:02x}")).collect())
}

/// Ok when the program ran and succeeded; otherwise an error with its output.
fn checked(output: std::io::Result<Output>, what: &str) -> anyhow::Result<()> {
    let output = output.with_context(|| format!("cannot run {what}"))?;
    let (stdout, stderr) = (&output.stdout, &output.stderr);
    if !output.status.success() {
        let text = String::from_utf8_lossy(stdout) + String::from_utf8_lossy(stderr);
        bail!("{what} failed ({}):\n{}", output.status, text.trim_end());
    }
    Ok(())
}
