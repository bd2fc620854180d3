//! A trust's central engines, started by the test on loopback: Debian's
//! PostgreSQL 15 (`initdb` in a temporary directory, run as `nobody`, as
//! PostgreSQL refuses root), rsyslog (its own config: imtcp on a port of
//! our own, every message written to one file), and the trust dashboard
//! reading that PostgreSQL.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use lollipop::admin::Role;

use super::web::WebSchool;
use super::{Process, free_port};

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
    /// `-c` settings besides the defaults (TLS).
    settings: Vec<String>,
}

impl TrustPostgres {
    pub fn start() -> TrustPostgres {
        TrustPostgres::start_with(None)
    }

    /// Accepting TLS with `tls`'s certificate (its key is copied for the
    /// server, which insists on owning it).
    pub fn start_with(tls: Option<&TestCertificates>) -> TrustPostgres {
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
        let mut settings = Vec::new();
        if let Some(tls) = tls {
            let key = dir.path().join("server.key");
            std::fs::copy(&tls.key, &key).expect("key");
            std::os::unix::fs::chown(&key, Some(NOBODY), Some(NOGROUP)).expect("chown");
            settings.push("ssl=on".to_string());
            settings.push(format!("ssl_cert_file={}", tls.certificate.display()));
            settings.push(format!("ssl_key_file={}", key.display()));
        }
        let mut postgres = TrustPostgres {
            port: free_port(),
            dir,
            server: None,
            settings,
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
            .args(self.settings.iter().flat_map(|s| ["-c", s.as_str()]))
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

    /// The database over TLS, by the name the test certificate is for.
    pub fn tls_url(&self) -> String {
        format!(
            "postgres://lollipop@localhost:{}/trust?sslmode=require",
            self.port
        )
    }

    /// Creates the central tables from the schema the boxes themselves run
    /// (`src/ship/postgres_schema.sql`), so what a test writes or reads is
    /// checked against the real columns.
    pub fn create_central_tables(&self) {
        self.psql(lollipop::ship::postgres::SCHEMA, "trust");
    }

    /// How many rows `table` of the trust's database holds.
    pub fn count(&self, table: &str) -> i64 {
        let text = self.psql(&format!("SELECT count(*) FROM {table}"), "trust");
        text.trim()
            .parse()
            .unwrap_or_else(|_| panic!("count of {table}: {text}"))
    }

    /// Runs `sql` with psql against `database`; what it printed (unaligned,
    /// tuples only, `|` between columns).
    pub fn psql(&self, sql: &str, database: &str) -> String {
        self.try_psql(sql, database)
            .unwrap_or_else(|error| panic!("psql {sql}: {error}"))
    }

    /// [`TrustPostgres::psql`], or what went wrong (e.g. a table the boxes
    /// have not created yet).
    pub fn try_psql(&self, sql: &str, database: &str) -> Result<String, String> {
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
        if !output.status.success() {
            return Err(String::from_utf8_lossy(&output.stderr).into_owned());
        }
        Ok(String::from_utf8_lossy(&output.stdout).into_owned())
    }
}

impl Drop for TrustPostgres {
    fn drop(&mut self) {
        self.stop();
    }
}

/// `lollipop trust serve` (the real binary) on a free loopback port over
/// `database`, rows kept 30 days, with users `dsl` (safeguarding lead),
/// `governor` (viewer) and `teacher`, each with [`WebSchool::password`].
pub fn trust_dashboard(dir: &Path, database: &str, extra: &[&str]) -> (Process, SocketAddr) {
    let users = dir.join("trust-users.db");
    let store = lollipop::admin::AdminStore::open(&users).expect("users");
    for (name, role) in [
        ("dsl", Role::Dsl),
        ("governor", Role::Viewer),
        ("teacher", Role::Teacher),
    ] {
        store
            .set_user(name, role, &WebSchool::password(name), "test")
            .expect("user");
    }
    let port = free_port();
    let process = Process(
        Command::new(env!("CARGO_BIN_EXE_lollipop"))
            .args(["trust", "serve", "--database", database])
            .args(["--listen", &format!("127.0.0.1:{port}")])
            .arg("--users")
            .arg(&users)
            .args(["--retention-days", "30"])
            .args(extra)
            .env("LOLLIPOP_LOG", "warn")
            .spawn()
            .expect("lollipop trust serve starts"),
    );
    let address = SocketAddr::from(([127, 0, 0, 1], port));
    super::wait_until("the dashboard listens", || {
        std::net::TcpStream::connect(address).is_ok()
    });
    (process, address)
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
        TrustRsyslog::start_with(None)
    }

    /// Taking TLS only (rsyslog's gtls driver), with `tls`'s certificate.
    pub fn start_with(tls: Option<&TestCertificates>) -> TrustRsyslog {
        let dir = tempfile::Builder::new()
            .prefix("trust-rsyslog")
            .tempdir()
            .expect("tempdir");
        let port = free_port();
        let tcp = match tls {
            None => "module(load=\"imtcp\")".to_string(),
            Some(tls) => format!(
                "global(DefaultNetstreamDriverCAFile=\"{}\" DefaultNetstreamDriverCertFile=\"{}\" DefaultNetstreamDriverKeyFile=\"{}\")\n\
                 module(load=\"imtcp\" StreamDriver.Name=\"gtls\" StreamDriver.Mode=\"1\" StreamDriver.AuthMode=\"anon\")",
                tls.ca.display(),
                tls.certificate.display(),
                tls.key.display()
            ),
        };
        let config = format!(
            r#"global(workDirectory="{dir}")
{tcp}
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

/// A test CA and a certificate it signed for `localhost`, as PEM files.
pub struct TestCertificates {
    _dir: tempfile::TempDir,
    pub ca: PathBuf,
    pub certificate: PathBuf,
    pub key: PathBuf,
}

impl TestCertificates {
    pub fn make() -> TestCertificates {
        use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair};
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::set_permissions(
            dir.path(),
            std::os::unix::fs::PermissionsExt::from_mode(0o755),
        )
        .expect("chmod");
        let ca_key = KeyPair::generate().expect("CA key");
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).expect("CA params");
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "Test trust CA");
        let ca = ca_params.self_signed(&ca_key).expect("CA");
        let issuer = Issuer::from_ca_cert_der(ca.der(), ca_key).expect("issuer");
        let key = KeyPair::generate().expect("server key");
        let mut params = CertificateParams::new(vec!["localhost".to_string()]).expect("params");
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "localhost");
        let certificate = params.signed_by(&key, &issuer).expect("certificate");
        let write = |name: &str, text: &str, mode: u32| {
            let path = dir.path().join(name);
            std::fs::write(&path, text).expect("write");
            std::fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(mode))
                .expect("chmod");
            path
        };
        TestCertificates {
            ca: write("ca.pem", &ca.pem(), 0o644),
            certificate: write("server.pem", &certificate.pem(), 0o644),
            key: write("server.key", &key.serialize_pem(), 0o600),
            _dir: dir,
        }
    }
}

/// (box, event) of every blocked message in rsyslog's file, with how often.
pub fn syslog_keys(file: &Path) -> BTreeMap<(String, i64), usize> {
    let text = std::fs::read_to_string(file).unwrap_or_default();
    let value = |line: &str, key: &str| -> Option<String> {
        let start = line.find(&format!(" {key}=\""))? + key.len() + 3;
        let end = line[start..].find('"')? + start;
        Some(line[start..end].to_string())
    };
    let mut keys = BTreeMap::new();
    for line in text
        .lines()
        .filter(|l| l.starts_with("blocked [lollipop@32473"))
    {
        let (Some(b), Some(event)) = (value(line, "box"), value(line, "event")) else {
            panic!("a message without its key: {line}");
        };
        *keys
            .entry((b, event.parse().expect("event id")))
            .or_default() += 1;
    }
    keys
}

/// Waits (a generous bound for a shared machine, not a speed check) until
/// `done`.
pub fn wait_long(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(300);
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}
