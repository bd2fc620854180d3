//! A test's config file, built from the parts tests vary. The text keeps the
//! placeholders [`super::expand`] fills (`{dir}`, `{upstream}`, `{ca}`...).

/// Builds a config: `[server]` with the data under `{dir}/data` and `ks2`
/// as the default profile, then the sections in the order they are added.
#[derive(Debug, Clone)]
pub struct TestConfig {
    server: Vec<String>,
    sections: Vec<String>,
}

impl Default for TestConfig {
    fn default() -> Self {
        TestConfig::new()
    }
}

impl TestConfig {
    pub fn new() -> TestConfig {
        TestConfig {
            server: vec![
                "data_dir = \"{dir}/data\"".into(),
                "default_profile = \"ks2\"".into(),
            ],
            sections: Vec::new(),
        }
    }

    /// The school most tests ask: null answers with a 30 s TTL and the iwf
    /// category locked, the test upstream asked once with a 1.5 s time-out,
    /// and local lists `test-gambling` (gambling.txt), `test-video`
    /// (video.txt) and `test-iwf` (iwf.txt, hosts format). Listeners and
    /// profiles are the test's.
    pub fn school() -> TestConfig {
        TestConfig::new()
            .table(
                "blocking",
                "answer = \"null\"\nttl_secs = 30\nlocked_categories = [\"iwf\"]",
            )
            .upstream("{upstream}")
            .table("resolver", "timeout_ms = 1500\nattempts = 1")
            .list("test-gambling", "gambling.txt", "gambling")
            .list("test-video", "video.txt", "video")
            .list_with("test-iwf", "iwf.txt", "iwf", "format = \"hosts\"")
    }

    /// Sets a `[server]` key, e.g. `tcp_idle_timeout_secs = 1`, replacing
    /// the default for the same key.
    pub fn server(mut self, line: &str) -> TestConfig {
        let key = |line: &str| line.split('=').next().unwrap_or("").trim().to_string();
        self.server.retain(|old| key(old) != key(line));
        self.server.push(line.to_string());
        self
    }

    /// A listener for the default profile.
    pub fn listen(self, address: &str) -> TestConfig {
        self.section(&format!("[[listen]]\naddress = \"{address}\""))
    }

    /// A listener for `profile`.
    pub fn listen_for(self, address: &str, profile: &str) -> TestConfig {
        self.section(&format!(
            "[[listen]]\naddress = \"{address}\"\nprofile = \"{profile}\""
        ))
    }

    /// A plain DNS upstream (`{upstream}` is the test upstream).
    pub fn upstream(self, address: &str) -> TestConfig {
        self.section(&format!(
            "[[upstream]]\naddress = \"{address}\"\nprotocol = \"udp\""
        ))
    }

    /// A table and its keys, e.g. `table("resolver", "timeout_ms = 500")`.
    pub fn table(self, name: &str, body: &str) -> TestConfig {
        self.section(&format!("[{name}]\n{body}"))
    }

    /// A local list file (relative to `{dir}` once written by the test).
    pub fn list(self, name: &str, path: &str, category: &str) -> TestConfig {
        self.list_with(name, path, category, "")
    }

    /// A local list with more keys, e.g. `format = "hosts"`.
    pub fn list_with(self, name: &str, path: &str, category: &str, more: &str) -> TestConfig {
        self.section(&format!(
            "[[lists]]\nname = \"{name}\"\npath = \"{path}\"\ncategory = \"{category}\"\n{more}"
        ))
    }

    /// A blocklist profile blocking `categories`, with more keys if given.
    pub fn blocklist(self, profile: &str, categories: &[&str], more: &str) -> TestConfig {
        let categories: Vec<String> = categories.iter().map(|c| format!("\"{c}\"")).collect();
        self.profile(
            profile,
            &format!(
                "mode = \"blocklist\"\nblock_categories = [{}]\n{more}",
                categories.join(", ")
            ),
        )
    }

    /// A profile with the keys given.
    pub fn profile(self, name: &str, body: &str) -> TestConfig {
        self.table(&format!("profiles.{name}"), body)
    }

    /// Any other text, as it is.
    pub fn section(mut self, text: &str) -> TestConfig {
        self.sections.push(text.trim_end().to_string());
        self
    }

    pub fn toml(&self) -> String {
        let mut text = format!("[server]\n{}\n", self.server.join("\n"));
        for section in &self.sections {
            text.push('\n');
            text.push_str(section);
            text.push('\n');
        }
        text
    }
}
