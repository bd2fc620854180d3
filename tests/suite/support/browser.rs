//! A real browser for end-to-end tests: Debian's chromium, headless, driven
//! through chromedriver (WebDriver) with fantoccini.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder, Locator};

use super::{Process, free_port};

pub struct Browser {
    pub client: Client,
    pub runtime: tokio::runtime::Runtime,
    _driver: Process,
    base: String,
}

impl Browser {
    /// Starts chromedriver and a headless chromium session for the page at `web`.
    pub fn start(web: SocketAddr) -> Browser {
        Browser::launch(web, None)
    }

    /// As [`Browser::start`], with every name but loopback's fetched
    /// through the HTTP proxy at `proxy` (a flag of this chromium, not the
    /// environment, which the other tests share).
    pub fn start_behind_proxy(web: SocketAddr, proxy: SocketAddr) -> Browser {
        Browser::launch(web, Some(proxy))
    }

    fn launch(web: SocketAddr, proxy: Option<SocketAddr>) -> Browser {
        // fantoccini's TLS stack needs a process-wide provider (loopback
        // WebDriver is plain HTTP, but the client is built with one).
        let _ = rustls::crypto::ring::default_provider().install_default();
        let port = free_port();
        let driver = Command::new("chromedriver")
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromedriver runs (apt-get install chromium chromium-driver)");
        let driver = Process(driver);
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        let url = format!("http://127.0.0.1:{port}");
        let mut args = vec![
            "--headless=new".to_string(),
            "--no-sandbox".into(),
            "--disable-gpu".into(),
            "--disable-dev-shm-usage".into(),
            "--window-size=1200,900".into(),
            "--no-first-run".into(),
            "--disable-extensions".into(),
        ];
        if let Some(proxy) = proxy {
            args.push(format!("--proxy-server=http://{proxy}"));
            args.push("--proxy-bypass-list=127.0.0.1;localhost".into());
        }
        let mut capabilities = serde_json::Map::new();
        capabilities.insert(
            "goog:chromeOptions".into(),
            serde_json::json!({ "binary": "/usr/bin/chromium", "args": args }),
        );
        let started = Instant::now();
        let client = runtime.block_on(async {
            loop {
                match ClientBuilder::rustls()
                    .expect("tls")
                    .capabilities(capabilities.clone())
                    .connect(&url)
                    .await
                {
                    Ok(client) => break client,
                    Err(error) if started.elapsed() < Duration::from_secs(30) => {
                        let _ = error;
                        tokio::time::sleep(Duration::from_millis(200)).await;
                    }
                    Err(error) => panic!("chromium did not start: {error}"),
                }
            }
        });
        Browser {
            client,
            runtime,
            _driver: driver,
            base: format!("http://{web}"),
        }
    }

    /// Sets the window's size in CSS pixels (a tablet: 820 × 1180).
    pub fn resize(&self, width: u32, height: u32) {
        self.runtime
            .block_on(self.client.set_window_size(width, height))
            .expect("resize the window");
    }

    pub fn goto(&self, path: &str) {
        let url = format!("{}{path}", self.base);
        self.runtime
            .block_on(self.client.goto(&url))
            .unwrap_or_else(|e| panic!("open {url}: {e}"));
    }

    pub fn path(&self) -> String {
        let url = self
            .runtime
            .block_on(self.client.current_url())
            .expect("url");
        match url.query() {
            Some(query) => format!("{}?{query}", url.path()),
            None => url.path().to_string(),
        }
    }

    /// Types `text` into the field with id `id` (clearing it first).
    pub fn fill(&self, id: &str, text: &str) {
        self.runtime.block_on(async {
            let field = self
                .client
                .find(Locator::Id(id))
                .await
                .unwrap_or_else(|e| panic!("no field #{id}: {e}"));
            field.clear().await.expect("clear");
            field.send_keys(text).await.expect("type");
        });
    }

    pub fn select(&self, id: &str, value: &str) {
        self.runtime.block_on(async {
            let field = self.client.find(Locator::Id(id)).await.expect("select");
            field.select_by_value(value).await.expect("choose");
        });
    }

    pub fn click(&self, css: &str) {
        self.runtime.block_on(async {
            let element = self
                .client
                .find(Locator::Css(css))
                .await
                .unwrap_or_else(|e| panic!("nothing matches {css}: {e}"));
            element.click().await.expect("click");
        });
    }

    /// Clicks `css` (a link or a submit button) and waits for the next page.
    pub fn click_and_wait(&self, css: &str) {
        self.runtime
            .block_on(self.client.execute("window.__oldPage = true;", vec![]))
            .expect("mark page");
        self.click(css);
        let started = Instant::now();
        loop {
            let done = self.runtime.block_on(self.client.execute(
                "return window.__oldPage !== true && document.readyState === 'complete';",
                vec![],
            ));
            if matches!(done, Ok(serde_json::Value::Bool(true))) {
                return;
            }
            assert!(
                started.elapsed() < Duration::from_secs(20),
                "no new page after clicking {css}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The visible text of the page's main part.
    pub fn text(&self) -> String {
        self.runtime.block_on(async {
            self.client
                .find(Locator::Css("body"))
                .await
                .expect("body")
                .text()
                .await
                .expect("text")
        })
    }

    /// Runs `script` in the page (with `arguments[0..]`), returning its value.
    pub fn script(&self, script: &str) -> serde_json::Value {
        self.runtime
            .block_on(self.client.execute_async(script, vec![]))
            .expect("script runs")
    }

    /// Saves a screenshot as `name`.png: under docs/screenshots when
    /// LOLLIPOP_SCREENSHOTS=1 (to refresh the README's), else in target/.
    pub fn screenshot(&self, name: &str) {
        let png = self
            .runtime
            .block_on(self.client.screenshot())
            .expect("screenshot");
        let dir = if std::env::var("LOLLIPOP_SCREENSHOTS").as_deref() == Ok("1") {
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("docs/screenshots")
        } else {
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/screenshots")
        };
        std::fs::create_dir_all(&dir).expect("screenshot dir");
        std::fs::write(dir.join(format!("{name}.png")), png).expect("write screenshot");
    }

    /// Signs in through the form.
    pub fn sign_in(&self, name: &str, password: &str) {
        self.goto("/login");
        self.fill("name", name);
        self.fill("password", password);
        self.click_and_wait("form[action='/login'] button[type=submit]");
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let client = self.client.clone();
        let _ = self.runtime.block_on(client.close());
    }
}
