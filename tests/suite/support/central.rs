//! A trust's central engines, started by the test on loopback: Debian's
//! PostgreSQL 15 (`initdb` in a temporary directory, run as `nobody`, as
//! PostgreSQL refuses root) and rsyslog (its own config: imtcp on a port of
//! our own, every message written to one file).

use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::free_port;

const PG_BIN: &str = "/usr/lib/postgresql/15/bin";
const NOBODY: u32 = 65534;
const NOGROUP: u32 = 65534;

/// Sends `signal` to `child` and waits for it (a bounded wait, then KILL).
fn stop(child: &mut Child, signal: libc::c_int) {
    // SAFETY: kill(2) on our own child's pid.
    unsafe {
        libc::kill(child.id() as libc::pid_t, signal);
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        if let Ok(Some(_)) = child.try_wait() {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = child.kill();
    let _ = child.wait();
}

/// PostgreSQL 15 with trust authentication for `lollipop` on 127.0.0.1.
pub struct TrustPostgres {
    pub port: u16,
    dir: tempfile::TempDir,
    server: Option<Child>,
}

impl TrustPostgres {
    pub fn start() -> TrustPostgres {
        let dir = tempfile::Builder::new()
            .prefix("trust-pg")
            .tempdir()
            .expect("tempdir");
        std::os::unix::fs::chown(dir.path(), Some(NOBODY), Some(NOGROUP)).expect("chown");
        let data = dir.path().join("data");
        let status = Command::new(format!("{PG_BIN}/initdb"))
            .args([
                "--auth=trust",
                "--username=lollipop",
                "--encoding=UTF8",
                "-D",
            ])
            .arg(&data)
            .current_dir(dir.path())
            .uid(NOBODY)
            .gid(NOGROUP)
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .status()
            .expect("initdb runs (apt-get install postgresql-15)");
        assert!(status.success(), "initdb failed");
        let mut postgres = TrustPostgres {
            port: free_port(),
            dir,
            server: None,
        };
        postgres.start_server();
        postgres.psql("CREATE DATABASE trust", "postgres");
        postgres
    }

    fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    fn start_server(&mut self) {
        let child = Command::new(format!("{PG_BIN}/postgres"))
            .arg("-D")
            .arg(self.data())
            .args(["-h", "127.0.0.1", "-p", &self.port.to_string(), "-k"])
            .arg(self.dir.path())
            .args(["-c", "fsync=off", "-c", "max_connections=50"])
            .current_dir(self.dir.path())
            .uid(NOBODY)
            .gid(NOGROUP)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("postgres starts");
        self.server = Some(child);
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let ready = Command::new(format!("{PG_BIN}/pg_isready"))
                .args(["-h", "127.0.0.1", "-p", &self.port.to_string(), "-q"])
                .status()
                .is_ok_and(|s| s.success());
            if ready {
                return;
            }
            assert!(Instant::now() < deadline, "PostgreSQL never got ready");
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// A fast shutdown (SIGINT: open connections are cut), as a central
    /// server's restart would.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.server.take() {
            stop(&mut child, libc::SIGINT);
        }
    }

    pub fn restart(&mut self) {
        self.stop();
        self.start_server();
    }

    pub fn url(&self) -> String {
        format!("postgres://lollipop@127.0.0.1:{}/trust", self.port)
    }

    /// Runs `sql` with psql against `database`; what it printed (unaligned,
    /// tuples only, `|` between columns).
    pub fn psql(&self, sql: &str, database: &str) -> String {
        let output = Command::new(format!("{PG_BIN}/psql"))
            .args([
                "-h",
                "127.0.0.1",
                "-p",
                &self.port.to_string(),
                "-U",
                "lollipop",
            ])
            .args(["-d", database, "-At", "-v", "ON_ERROR_STOP=1", "-c", sql])
            .output()
            .expect("psql runs");
        assert!(
            output.status.success(),
            "psql {sql}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8_lossy(&output.stdout).into_owned()
    }
}

impl Drop for TrustPostgres {
    fn drop(&mut self) {
        self.stop();
    }
}

/// rsyslogd writing every message it takes over TCP to `file()` as
/// "MSGID STRUCTURED-DATA".
pub struct TrustRsyslog {
    pub port: u16,
    dir: tempfile::TempDir,
    server: Option<Child>,
}

impl TrustRsyslog {
    pub fn start() -> TrustRsyslog {
        let dir = tempfile::Builder::new()
            .prefix("trust-rsyslog")
            .tempdir()
            .expect("tempdir");
        let port = free_port();
        let config = format!(
            r#"global(workDirectory="{dir}")
module(load="imtcp")
input(type="imtcp" address="127.0.0.1" port="{port}")
template(name="keyed" type="string" string="%msgid% %structured-data%\n")
*.* action(type="omfile" file="{dir}/central.log" template="keyed")
"#,
            dir = dir.path().display()
        );
        std::fs::write(dir.path().join("rsyslog.conf"), config).expect("config");
        let mut rsyslog = TrustRsyslog {
            port,
            dir,
            server: None,
        };
        rsyslog.start_server();
        rsyslog
    }

    fn start_server(&mut self) {
        let dir = self.dir.path();
        let child = Command::new("/usr/sbin/rsyslogd")
            .arg("-n")
            .arg("-f")
            .arg(dir.join("rsyslog.conf"))
            .arg("-i")
            .arg(dir.join("rsyslog.pid"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("rsyslogd starts (apt-get install rsyslog)");
        self.server = Some(child);
        let deadline = Instant::now() + Duration::from_secs(30);
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(Instant::now() < deadline, "rsyslogd never listened");
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    pub fn stop(&mut self) {
        if let Some(mut child) = self.server.take() {
            stop(&mut child, libc::SIGTERM);
        }
    }

    pub fn restart(&mut self) {
        self.stop();
        self.start_server();
    }

    pub fn address(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    pub fn file(&self) -> PathBuf {
        self.dir.path().join("central.log")
    }
}

impl Drop for TrustRsyslog {
    fn drop(&mut self) {
        self.stop();
    }
}
