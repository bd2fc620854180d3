//! A browser-like HTTP client for the status page: keeps cookies, does not
//! follow redirects (tests look at them), and fills in each form's token.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Mutex;

use lollipop::admin::Role;

use super::TestConfig;
use super::browser::Browser;

pub struct WebClient {
    base: String,
    agent: ureq::Agent,
    cookies: Mutex<HashMap<String, String>>,
}

#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub body: String,
    pub headers: Vec<(String, String)>,
}

impl Reply {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(key, _)| key.eq_ignore_ascii_case(name))
            .map(|(_, value)| value.as_str())
    }

    pub fn set_cookies(&self) -> Vec<&str> {
        self.headers
            .iter()
            .filter(|(key, _)| key.eq_ignore_ascii_case("set-cookie"))
            .map(|(_, value)| value.as_str())
            .collect()
    }

    pub fn location(&self) -> &str {
        self.header("location").unwrap_or("")
    }
}

/// The value of the first `name="csrf"` hidden field in `page`.
pub fn csrf_in(page: &str) -> String {
    let marker = "name=\"csrf\" value=\"";
    let start = page
        .find(marker)
        .map(|i| i + marker.len())
        .unwrap_or_else(|| {
            panic!("no form token on the page:\n{page}");
        });
    let end = page[start..].find('"').expect("token ends") + start;
    page[start..end].to_string()
}

impl WebClient {
    pub fn new(address: SocketAddr) -> WebClient {
        WebClient::with_base(format!("http://{address}"))
    }

    pub fn with_base(base: String) -> WebClient {
        WebClient::with_tls_root(base, None)
    }

    /// A client for `https://...` trusting only the PEM certificate `root`.
    pub fn with_tls_root(base: String, root: Option<&[u8]>) -> WebClient {
        let mut builder = ureq::Agent::config_builder();
        if let Some(pem) = root {
            let certificate = ureq::tls::Certificate::from_pem(pem).expect("a PEM certificate");
            builder = builder.tls_config(
                ureq::tls::TlsConfig::builder()
                    .root_certs(ureq::tls::RootCerts::Specific(std::sync::Arc::new(vec![
                        certificate,
                    ])))
                    .build(),
            );
        }
        let agent: ureq::Agent = builder
            .http_status_as_error(false)
            .max_redirects(0)
            .timeout_global(Some(std::time::Duration::from_secs(20)))
            .build()
            .into();
        WebClient {
            base,
            agent,
            cookies: Mutex::new(HashMap::new()),
        }
    }

    fn cookie_header(&self) -> String {
        self.cookies
            .lock()
            .expect("cookies")
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("; ")
    }

    fn keep_cookies(&self, reply: &Reply) {
        let mut jar = self.cookies.lock().expect("cookies");
        for cookie in reply.set_cookies() {
            let pair = cookie.split(';').next().unwrap_or("");
            if let Some((name, value)) = pair.split_once('=') {
                if value.is_empty() || cookie.contains("Max-Age=0") {
                    jar.remove(name);
                } else {
                    jar.insert(name.to_string(), value.to_string());
                }
            }
        }
    }

    pub fn cookie(&self, name: &str) -> Option<String> {
        self.cookies.lock().expect("cookies").get(name).cloned()
    }

    fn finish(&self, response: Result<ureq::http::Response<ureq::Body>, ureq::Error>) -> Reply {
        let mut response = response.expect("the status page answers");
        let status = response.status().as_u16();
        let headers = response
            .headers()
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_str().unwrap_or("").to_string()))
            .collect();
        let body = response
            .body_mut()
            .with_config()
            .limit(50 * 1024 * 1024)
            .read_to_string()
            .unwrap_or_default();
        let reply = Reply {
            status,
            body,
            headers,
        };
        self.keep_cookies(&reply);
        reply
    }

    pub fn get(&self, path: &str) -> Reply {
        self.get_with(path, &[])
    }

    pub fn get_with(&self, path: &str, headers: &[(&str, &str)]) -> Reply {
        let mut request = self
            .agent
            .get(format!("{}{path}", self.base))
            .header("Cookie", self.cookie_header());
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        self.finish(request.call())
    }

    /// Posts `fields` as a form, exactly as given (no token added).
    pub fn post(&self, path: &str, fields: &[(&str, &str)]) -> Reply {
        let body: String = form_urlencoded::Serializer::new(String::new())
            .extend_pairs(fields)
            .finish();
        self.post_raw(path, body.into_bytes())
    }

    pub fn post_raw(&self, path: &str, body: Vec<u8>) -> Reply {
        let request = self
            .agent
            .post(format!("{}{path}", self.base))
            .header("Cookie", self.cookie_header())
            .header("Content-Type", "application/x-www-form-urlencoded");
        self.finish(request.send(&body[..]))
    }

    /// Opens `page`, takes its form token, and posts `fields` to `action`.
    pub fn submit(&self, page: &str, action: &str, fields: &[(&str, &str)]) -> Reply {
        let form = self.get(page);
        assert_eq!(form.status, 200, "{page}: {}", form.body);
        let token = csrf_in(&form.body);
        let mut all = vec![("csrf", token.as_str())];
        all.extend_from_slice(fields);
        self.post(action, &all)
    }

    pub fn sign_in(&self, name: &str, password: &str) -> Reply {
        self.submit(
            "/login",
            "/login",
            &[("name", name), ("password", password)],
        )
    }
}

/// A school with a status page: two listeners (ks2 and staff), lists for
/// gambling, video and a locked category, a named device, and `web` for the
/// keys of the page's `[web]` table.
pub fn school(web: &str) -> String {
    TestConfig::school()
        .listen_for("127.0.0.1:0", "ks2")
        .listen_for("127.0.0.1:0", "staff")
        .table("log", "time_zone = \"UTC\"")
        .table("alerts", "school_name = \"Hilltop Primary\"")
        .table("web", web)
        .section("[[devices]]\nip = \"127.0.0.1\"\nname = \"Y5-iPad-07\"\nroom = \"Year 5\"")
        .blocklist(
            "ks2",
            &["gambling", "video"],
            "safe_search = true\nyoutube = \"strict\"",
        )
        .blocklist(
            "staff",
            &["gambling"],
            "safe_search = true\nyoutube = \"moderate\"",
        )
        .toml()
}

pub const SCHOOL_LISTS: &[(&str, &str)] = &[
    ("gambling.txt", "bet365.com\n"),
    ("video.txt", "youtube.com\n"),
    ("iwf.txt", "0.0.0.0 abuse.example.com\n"),
];

/// The school, its upstream, and a client for its status page.
pub struct WebSchool {
    pub upstream: super::TestUpstream,
    pub lollipop: super::TestLollipop,
    pub web: SocketAddr,
}

impl WebSchool {
    pub fn start() -> WebSchool {
        WebSchool::start_with(|_| {})
    }

    pub fn start_with(tweak: impl FnOnce(&mut lollipop::config::Config)) -> WebSchool {
        WebSchool::start_at("", super::Clock::system(), tweak)
    }

    /// A school whose `[web]` also has `web` (keys, one a line), with "now"
    /// read from `clock`.
    pub fn start_at(
        web: &str,
        clock: super::Clock,
        tweak: impl FnOnce(&mut lollipop::config::Config),
    ) -> WebSchool {
        let upstream = super::TestUpstream::start();
        let port = super::free_port();
        let config = school(&format!("listen = [\"127.0.0.1:{port}\"]\n{web}"));
        let lollipop =
            super::TestLollipop::start_at(&config, &upstream, SCHOOL_LISTS, tweak, clock);
        WebSchool {
            upstream,
            lollipop,
            web: SocketAddr::from(([127, 0, 0, 1], port)),
        }
    }

    /// A school whose whole config `config` makes, given the `[web]`
    /// table's `listen` line for the page.
    pub fn with_config(config: impl FnOnce(&str) -> String, lists: &[(&str, &str)]) -> WebSchool {
        let upstream = super::TestUpstream::start();
        let port = super::free_port();
        let text = config(&format!("listen = [\"127.0.0.1:{port}\"]"));
        let lollipop = super::TestLollipop::start(&text, &upstream, lists);
        WebSchool {
            upstream,
            lollipop,
            web: SocketAddr::from(([127, 0, 0, 1], port)),
        }
    }

    pub fn client(&self) -> WebClient {
        WebClient::new(self.web)
    }

    /// The ks2 listener (pupils) and the staff listener.
    pub fn ks2(&self) -> SocketAddr {
        self.lollipop.address()
    }

    pub fn staff(&self) -> SocketAddr {
        self.lollipop.running().servers.addresses[1]
    }

    pub fn admin_store(&self) -> lollipop::admin::AdminStore {
        lollipop::admin::AdminStore::open(&self.lollipop.dir().join("data/admin.db"))
            .expect("admin db")
    }

    /// Creates a user directly in the admin database.
    pub fn add_user(&self, name: &str, role: Role, password: &str) {
        self.admin_store()
            .set_user(name, role, password, "test")
            .expect("add user");
    }

    /// The password the helpers below give the user `name`.
    pub fn password(name: &str) -> String {
        format!("{name} has a long password")
    }

    /// Adds the user `name` with `role` and [`WebSchool::password`], and
    /// signs `client` in as them through the sign-in form.
    pub fn sign_in(&self, client: &WebClient, name: &str, role: Role) -> Reply {
        let password = WebSchool::password(name);
        self.add_user(name, role, &password);
        client.sign_in(name, &password)
    }

    /// A client signed in as a new user with `role`.
    pub fn signed_in(&self, name: &str, role: Role) -> WebClient {
        let client = self.client();
        let reply = self.sign_in(&client, name, role);
        assert_eq!(reply.status, 303, "sign-in: {}", reply.body);
        client
    }

    /// A teacher who unlocks sites with the override code `code`.
    pub fn teacher_with_code(&self, name: &str, code: &str) {
        self.add_user(name, Role::Teacher, &WebSchool::password(name));
        self.admin_store()
            .set_code(name, Some(code))
            .expect("set code");
    }

    /// Headless chromium on the page, signed in as a new user with `role`.
    pub fn browser_signed_in(&self, name: &str, role: Role) -> Browser {
        let password = WebSchool::password(name);
        self.add_user(name, role, &password);
        let browser = Browser::start(self.web);
        browser.sign_in(name, &password);
        browser
    }

    /// The audit trail, newest first, once everything logged is written.
    pub fn audit(&self) -> Vec<lollipop::journal::AuditRow> {
        self.lollipop.flush_log();
        lollipop::journal::JournalReader::open(&self.lollipop.dir().join("data/lollipop.db"))
            .expect("journal")
            .audit(0, i64::MAX, 200)
            .expect("audit")
    }
}
