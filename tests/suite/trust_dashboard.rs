//! The trust dashboard against a real PostgreSQL 15 started by the test
//! (initdb in a temporary directory as the unprivileged postgres user, on a
//! loopback port), with rows as the school boxes ship them: sign-in and
//! roles, each school's health, the week's figures, device names beside
//! self-harm for the DSL only, the weekly report, and the retention purge.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::support::web::*;
use crate::support::*;
use lollipop::admin::Role;

const PG_BIN: &str = "/usr/lib/postgresql/15/bin";

/// A PostgreSQL cluster of the test's own, stopped when dropped.
struct Postgres {
    dir: tempfile::TempDir,
    port: u16,
    /// The TLS certificate and key, kept while the server runs.
    _certs: Option<tempfile::TempDir>,
}

fn as_postgres(program: &str, args: &[&str]) -> std::process::Output {
    Command::new("runuser")
        .args(["-u", "postgres", "--", &format!("{PG_BIN}/{program}")])
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("runuser runs (apt-get install postgresql-15)")
}

impl Postgres {
    fn start() -> Postgres {
        Postgres::start_with("")
    }

    /// With TLS on, its certificate (for 127.0.0.1) self-signed; the
    /// certificate's PEM file is returned for the dashboard to trust.
    fn start_with_tls() -> (Postgres, PathBuf) {
        let key = rcgen::KeyPair::generate().expect("key");
        let params = rcgen::CertificateParams::new(vec!["127.0.0.1".to_string()]).expect("params");
        let cert = params.self_signed(&key).expect("self-signed");
        let certs = tempfile::Builder::new()
            .prefix("lollipop-pg-tls")
            .tempdir()
            .expect("dir");
        let (crt, pem_key) = (
            certs.path().join("server.crt"),
            certs.path().join("server.key"),
        );
        std::fs::write(&crt, cert.pem()).expect("crt");
        std::fs::write(&pem_key, key.serialize_pem()).expect("key");
        let options = format!(
            "-c ssl=on -c ssl_cert_file={} -c ssl_key_file={}",
            crt.display(),
            pem_key.display()
        );
        for path in [&crt, &pem_key] {
            let owned = Command::new("chown")
                .args(["postgres:postgres"])
                .arg(path)
                .status()
                .expect("chown");
            assert!(owned.success());
        }
        std::fs::set_permissions(
            &pem_key,
            std::os::unix::fs::PermissionsExt::from_mode(0o600),
        )
        .expect("key mode");
        std::fs::set_permissions(
            certs.path(),
            std::os::unix::fs::PermissionsExt::from_mode(0o755),
        )
        .expect("dir mode");
        let mut postgres = Postgres::start_with(&options);
        let ca = postgres.dir.path().join("ca.pem");
        std::fs::copy(&crt, &ca).expect("ca copy");
        postgres._certs = Some(certs);
        (postgres, ca)
    }

    fn start_with(extra_options: &str) -> Postgres {
        let dir = tempfile::Builder::new()
            .prefix("lollipop-pg")
            .tempdir()
            .expect("dir");
        let data = dir.path().join("data");
        std::fs::create_dir(&data).expect("data dir");
        let chown = Command::new("chown")
            .args(["-R", "postgres:postgres"])
            .arg(dir.path())
            .status()
            .expect("chown");
        assert!(chown.success());
        let data = data.display().to_string();
        let out = as_postgres(
            "initdb",
            &["-D", &data, "--auth=trust", "-U", "postgres", "--no-sync"],
        );
        assert!(out.status.success(), "initdb: {out:?}");
        let port = free_port();
        let options = format!(
            "-p {port} -c listen_addresses=127.0.0.1 -c unix_socket_directories={} {extra_options}",
            dir.path().display()
        );
        let log = dir.path().join("log").display().to_string();
        let out = as_postgres(
            "pg_ctl",
            &["-D", &data, "-o", &options, "-l", &log, "-w", "start"],
        );
        assert!(out.status.success(), "pg_ctl start: {out:?}");
        Postgres {
            dir,
            port,
            _certs: None,
        }
    }

    fn url(&self) -> String {
        format!(
            "host=127.0.0.1 port={} user=postgres dbname=postgres",
            self.port
        )
    }

    fn sql(&self, statements: &str) {
        let out = Command::new(format!("{PG_BIN}/psql"))
            .args([
                "-h",
                "127.0.0.1",
                "-p",
                &self.port.to_string(),
                "-U",
                "postgres",
                "-v",
                "ON_ERROR_STOP=1",
                "-q",
                "-c",
                statements,
            ])
            .output()
            .expect("psql runs");
        assert!(out.status.success(), "psql: {out:?}");
    }

    fn count(&self, table: &str) -> String {
        let out = Command::new(format!("{PG_BIN}/psql"))
            .args([
                "-h",
                "127.0.0.1",
                "-p",
                &self.port.to_string(),
                "-U",
                "postgres",
            ])
            .args(["-tA", "-c", &format!("SELECT count(*) FROM {table}")])
            .output()
            .expect("psql runs");
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        let data = self.dir.path().join("data").display().to_string();
        let _ = as_postgres("pg_ctl", &["-D", &data, "-m", "immediate", "stop"]);
    }
}

/// The tables as the shipping contract gives them (issue 20).
const CONTRACT: &str = "
CREATE TABLE boxes (box_id text primary key, school text, last_seen timestamptz,
    lists_stale boolean, alerts_configured boolean, version text, health jsonb);
CREATE TABLE blocked (box_id text, event_id bigint, at timestamptz, client text, device text,
    owner text, profile text, room text, name text, category text, rule text,
    primary key (box_id, event_id));
CREATE TABLE alerts (box_id text, event_id bigint, at timestamptz, category text, device text,
    name text, channel text, primary key (box_id, event_id));
CREATE TABLE audit (box_id text, event_id bigint, at timestamptz, who text, action text,
    detail text, primary key (box_id, event_id));";

/// Two schools: Oak answering, Elm silent for two days with stale lists
/// and no alerts set up; a week of blocks, one self-harm attempt by a
/// named pupil, and rows older than the retention.
const ROWS: &str = "
INSERT INTO boxes VALUES
  ('oak-1', 'Oak Primary', now() - interval '1 minute', false, true, '0.1.0', '{}'),
  ('elm-1', 'Elm Infants', now() - interval '2 days', true, false, '0.1.0', '{}');
INSERT INTO blocked VALUES
  ('oak-1', 1, now() - interval '1 day', '10.0.1.7', 'Y5-iPad-07', 'Amy Pupil', 'ks2', 'Year 5', 'bet365.com', 'gambling', 'list'),
  ('oak-1', 2, now() - interval '2 days', '10.0.1.7', 'Y5-iPad-07', 'Amy Pupil', 'ks2', 'Year 5', 'bet365.com', 'gambling', 'list'),
  ('oak-1', 3, now() - interval '3 hours', '10.0.1.9', 'Y6-Laptop-03', 'Ben Pupil', 'ks2', 'Year 6', 'thinspo-cdn.example.net', 'self-harm', 'list'),
  ('elm-1', 1, now() - interval '4 days', '10.0.2.4', 'R-Tablet-01', NULL, 'under5', 'Reception', 'roblox.com', 'games', 'list'),
  ('elm-1', 2, now() - interval '40 days', '10.0.2.4', 'R-Tablet-01', NULL, 'under5', 'Reception', 'old.example', 'games', 'list');
INSERT INTO alerts VALUES
  ('oak-1', 3, now() - interval '3 hours', 'self-harm', 'Y6-Laptop-03', 'thinspo-cdn.example.net', 'email'),
  ('oak-1', 4, now() - interval '50 days', 'self-harm', 'Y6-Laptop-03', 'old.example', 'email');
INSERT INTO audit VALUES
  ('oak-1', 1, now() - interval '45 days', 'tech', 'allow entry added', 'old');";

fn users(dir: &Path) -> PathBuf {
    let path = dir.join("trust-users.db");
    let store = lollipop::admin::AdminStore::open(&path).expect("users");
    for (name, role) in [
        ("dsl", Role::Dsl),
        ("governor", Role::Viewer),
        ("teacher", Role::Teacher),
    ] {
        store
            .set_user(name, role, &WebSchool::password(name), "test")
            .expect("user");
    }
    path
}

/// `lollipop trust serve` on a free loopback port, rows kept 30 days.
fn dashboard(dir: &Path, database: &str, extra: &[&str]) -> (Process, std::net::SocketAddr) {
    let users = users(dir);
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
    let address = std::net::SocketAddr::from(([127, 0, 0, 1], port));
    wait_until("the dashboard listens", || {
        std::net::TcpStream::connect(address).is_ok()
    });
    (process, address)
}

#[test]
fn the_dashboard_reads_a_database_over_tls_and_only_with_the_trusts_ca() {
    let (postgres, ca) = Postgres::start_with_tls();
    postgres.sql(CONTRACT);
    postgres.sql(ROWS);
    // Boxes that fold a browser's retries into one row say how many in
    // `count`: the figures count the tries, as the school's report does.
    postgres.sql(
        "ALTER TABLE blocked ADD COLUMN count integer NOT NULL DEFAULT 1;
         UPDATE blocked SET count = 5 WHERE box_id = 'oak-1' AND event_id = 1;",
    );
    let url = format!("{} sslmode=require", postgres.url());
    let dir = tempfile::tempdir().expect("dir");
    let ca = ca.display().to_string();
    let (_dashboard, address) = dashboard(dir.path(), &url, &["--database-ca", &ca]);
    let dsl = WebClient::new(address);
    assert_eq!(dsl.sign_in("dsl", &WebSchool::password("dsl")).status, 303);
    let page = dsl.get("/");
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(
        page.body
            .contains("<tr><td>Oak Primary</td><td>gambling</td><td>6</td></tr>"),
        "{}",
        page.body
    );
    let report = dsl.get("/report?school=oak-1");
    assert!(
        report.body.contains("<strong>7</strong> blocked attempts"),
        "{}",
        report.body
    );

    // Without the trust's CA the certificate is not trusted: nothing shown.
    let other = tempfile::tempdir().expect("dir");
    let (_untrusting, address) = dashboard(other.path(), &url, &[]);
    let dsl = WebClient::new(address);
    assert_eq!(dsl.sign_in("dsl", &WebSchool::password("dsl")).status, 303);
    let page = dsl.get("/");
    assert_eq!(page.status, 503, "{}", page.body);
    assert!(
        page.body.contains("cannot reach the trust&#39;s database"),
        "{}",
        page.body
    );
    assert!(!page.body.contains("Oak Primary"));
}

#[test]
fn the_trust_dashboard_shows_each_school_to_each_role_and_purges_old_rows() {
    let postgres = Postgres::start();
    postgres.sql(CONTRACT);
    postgres.sql(ROWS);
    let dir = tempfile::tempdir().expect("dir");
    let (_dashboard, address) = dashboard(dir.path(), &postgres.url(), &[]);
    // Rows older than 30 days are gone; this week's stay.
    wait_until("the retention purge", || postgres.count("blocked") == "4");
    assert_eq!(postgres.count("alerts"), "1");
    assert_eq!(postgres.count("audit"), "0");

    let anonymous = WebClient::new(address);
    let reply = anonymous.get("/");
    assert_eq!(reply.status, 303);
    assert_eq!(reply.location(), "/login");
    let reply = anonymous.sign_in("dsl", "wrong password entirely");
    assert_eq!(reply.status, 401, "{}", reply.body);
    let teacher = WebClient::new(address);
    let reply = teacher.sign_in("teacher", &WebSchool::password("teacher"));
    assert_eq!(reply.status, 403, "{}", reply.body);

    let dsl = WebClient::new(address);
    let reply = dsl.sign_in("dsl", &WebSchool::password("dsl"));
    assert_eq!(reply.status, 303, "{}", reply.body);
    let page = dsl.get("/");
    assert_eq!(page.status, 200, "{}", page.body);
    let body = &page.body;
    assert!(
        body.contains("Oak Primary") && body.contains("Elm Infants"),
        "{body}"
    );
    // Elm: silent for two days, lists out of date, nobody told: all red.
    assert!(
        body.contains("<span class=\"status-bad\">✖ 2 days ago: not answering?</span>"),
        "{body}"
    );
    // Oak is fine, and shown so.
    assert!(
        body.contains("<span class=\"status-ok\">✔ 1 min ago</span>"),
        "{body}"
    );
    assert!(
        body.contains("<span class=\"status-bad\">✖ out of date</span>"),
        "{body}"
    );
    assert!(
        body.contains("<span class=\"status-bad\">✖ not set up: nobody is told</span>"),
        "{body}"
    );
    // This week's figures by school and category.
    assert!(
        body.contains("<tr><td>Oak Primary</td><td>gambling</td><td>2</td></tr>"),
        "{body}"
    );
    assert!(
        body.contains("<tr><td>Elm Infants</td><td>games</td><td>1</td></tr>"),
        "{body}"
    );
    // The DSL sees who tried the self-harm site.
    assert!(body.contains("Y6-Laptop-03 (Ben Pupil)"), "{body}");

    let governor = WebClient::new(address);
    let reply = governor.sign_in("governor", &WebSchool::password("governor"));
    assert_eq!(reply.status, 303, "{}", reply.body);
    let page = governor.get("/");
    assert_eq!(page.status, 200);
    assert!(
        page.body
            .contains("<td>Oak Primary</td><td>self-harm</td><td>1</td>"),
        "{}",
        page.body
    );
    assert!(!page.body.contains("Y6-Laptop-03"), "{}", page.body);
    assert!(!page.body.contains("Ben Pupil"), "{}", page.body);
    assert!(page.body.contains("shown to the safeguarding lead"));

    // The weekly report, for one school and for the trust.
    let oak = governor.get("/report?school=oak-1");
    assert_eq!(oak.status, 200);
    assert!(
        oak.body.contains("Oak Primary: the last seven days"),
        "{}",
        oak.body
    );
    assert!(
        oak.body.contains(
            "<strong>3</strong> blocked attempts; <strong>1</strong> safeguarding alert."
        ),
        "{}",
        oak.body
    );
    let trust = governor.get("/report");
    assert!(
        trust.body.contains("<strong>4</strong> blocked attempts"),
        "{}",
        trust.body
    );
    assert!(
        trust
            .body
            .contains("<tr><td>bet365.com</td><td>2</td></tr>"),
        "{}",
        trust.body
    );
    assert_eq!(governor.get("/report?school=nowhere").status, 404);

    // Signing out ends the session.
    let page = governor.get("/");
    let reply = governor.post("/logout", &[("csrf", &csrf_in(&page.body))]);
    assert_eq!(reply.status, 303);
    assert_eq!(governor.get("/").status, 303);
}
