//! A throwaway PostgreSQL server for tests: Debian's `initdb`/`postgres` binaries, a temp data directory, a free port,
//! trust authentication on loopback, no fsync. Started by the test itself (nothing needs to run beforehand) and
//! stopped when the handle drops.

use std::{
    net::TcpListener,
    path::PathBuf,
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

pub struct Postgres {
    pub url: String,
    bin: PathBuf,
    port: u16,
    dir: PathBuf,
    data: PathBuf,
    child: Option<Child>,
}

fn bin_dir() -> PathBuf {
    let mut versions: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .expect("PostgreSQL is not installed (apt-get install postgresql); the test command installs it")
        .filter_map(|entry| entry.ok().map(|e| e.path().join("bin")))
        .filter(|bin| bin.join("initdb").exists())
        .collect();
    versions.sort();
    versions.pop().expect("no initdb under /usr/lib/postgresql/*/bin")
}

/// Runs a PostgreSQL binary as the `postgres` user when we are root (initdb refuses to run as root).
fn command(program: PathBuf) -> Command {
    let is_root = Command::new("id").arg("-u").output().map(|o| o.stdout.starts_with(b"0")).unwrap_or(false);
    if is_root {
        let mut command = Command::new("runuser");
        command.args(["-u", "postgres", "--"]).arg(program);
        command
    } else {
        Command::new(program)
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map(|a| a.port()).expect("free port")
}

impl Postgres {
    pub fn start() -> Self {
        let bin = bin_dir();
        let dir = std::env::temp_dir().join(format!("chat-pg-{}-{}", std::process::id(), free_port()));
        std::fs::create_dir_all(&dir).unwrap();
        let _ = Command::new("chown").args(["postgres:postgres"]).arg(&dir).status();
        let data = dir.join("data");
        let status = command(bin.join("initdb"))
            .args(["-A", "trust", "-U", "postgres", "--no-sync", "-D"])
            .arg(&data)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .expect("run initdb");
        assert!(status.success(), "initdb failed");
        let port = free_port();
        let url = format!("postgres://postgres@127.0.0.1:{port}/postgres");
        let mut postgres = Self { url, bin, port, dir, data, child: None };
        postgres.spawn();
        postgres
    }

    fn spawn(&mut self) {
        let child = command(self.bin.join("postgres"))
            .arg("-D")
            .arg(&self.data)
            .args(["-p", &self.port.to_string(), "-k"])
            .arg(&self.dir)
            .args(["-c", "listen_addresses=127.0.0.1", "-c", "fsync=off", "-c", "full_page_writes=off"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start postgres");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(30);
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(Instant::now() < deadline, "postgres did not start");
            std::thread::sleep(Duration::from_millis(50));
        }
        // Accepting TCP is not quite ready to serve; the store's connect retries cover the rest.
        std::thread::sleep(Duration::from_millis(300));
    }

    /// Takes the server down the hard way (immediate shutdown): clients see their connections drop and new ones are
    /// refused until [`Postgres::restart`].
    pub fn stop(&mut self) {
        let Some(mut child) = self.child.take() else { return };
        // SIGQUIT to the postmaster (runuser may sit in between): immediate shutdown, nothing to keep.
        if let Ok(pid_file) = std::fs::read_to_string(self.data.join("postmaster.pid"))
            && let Some(pid) = pid_file.lines().next()
        {
            let _ = Command::new("kill").args(["-QUIT", pid.trim()]).status();
        }
        // The postmaster exits by itself after SIGQUIT; whatever is left after a while is killed.
        let deadline = Instant::now() + Duration::from_secs(10);
        while matches!(child.try_wait(), Ok(None)) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = child.kill();
        let _ = child.wait();
    }

    /// Starts the server again on the same port and data directory (after [`Postgres::stop`], or in place of a
    /// running one), as a crash and restart would: PostgreSQL recovers from its WAL.
    #[allow(dead_code, reason = "used by the cluster tests, not the store tests")]
    pub fn restart(&mut self) {
        self.stop();
        self.spawn();
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        self.stop();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
