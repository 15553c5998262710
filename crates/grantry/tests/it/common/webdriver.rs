//! A small WebDriver client over reqwest, driving Debian's `chromedriver` and headless `chromium`.
//! (A WebDriver crate would bring a second TLS stack built from C for a protocol of a dozen JSON
//! calls on localhost.)

use std::path::PathBuf;
use std::process::Stdio;
use std::time::{Duration, Instant};

use base64::Engine;
use serde_json::{Value, json};
use tokio::process::{Child, Command};

const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";
const WAIT: Duration = Duration::from_secs(10);

fn which(name: &str) -> Option<PathBuf> {
    std::env::var_os("PATH")?
        .to_str()?
        .split(':')
        .map(|dir| PathBuf::from(dir).join(name))
        .find(|path| path.exists())
}

pub struct Browser {
    http: reqwest::Client,
    session: String,
    driver: Child,
    _profile: tempfile::TempDir,
}

pub struct Element<'a> {
    browser: &'a Browser,
    id: String,
}

/// Where screenshots go: `screenshots/` at the repository's root.
pub fn screenshot_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../screenshots")
}

impl Browser {
    /// Starts chromedriver and a headless chromium window of `width` × `height`.
    pub async fn start(width: u32, height: u32) -> Browser {
        let chromium = which("chromium")
            .expect("chromium is not installed: run ./scripts/test, which installs it");
        let driver_binary =
            which("chromedriver").expect("chromedriver is not installed: run ./scripts/test");
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let driver = Command::new(driver_binary)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("chromedriver starts");
        let http = reqwest::Client::new();
        let base = format!("http://127.0.0.1:{port}");
        let deadline = Instant::now() + WAIT;
        while http.get(format!("{base}/status")).send().await.is_err() {
            assert!(Instant::now() < deadline, "chromedriver did not start");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let profile = tempfile::tempdir().unwrap();
        let args = [
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--disable-dev-shm-usage",
            "--hide-scrollbars",
        ];
        let mut args: Vec<String> = args.iter().map(|a| (*a).to_owned()).collect();
        args.push(format!("--user-data-dir={}", profile.path().display()));
        args.push(format!("--window-size={width},{height}"));
        let capabilities = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {"binary": chromium, "args": args},
        }}});
        let created: Value = http
            .post(format!("{base}/session"))
            .json(&capabilities)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let session = created["value"]["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("no session: {created}"));
        Browser {
            session: format!("{base}/session/{session}"),
            http,
            driver,
            _profile: profile,
        }
    }

    async fn call(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Value {
        match self.try_call(method, path, body).await {
            Ok(value) => value,
            Err(error) => panic!("webdriver {path}: {error}"),
        }
    }

    /// Like `call`, but hands back WebDriver's error (for polling while a page
    /// is being replaced, when scripts may briefly have no document to run in).
    async fn try_call(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> Result<Value, String> {
        let mut request = self.http.request(method, format!("{}{path}", self.session));
        if let Some(body) = body {
            request = request.json(&body);
        }
        let answer: Value = request.send().await.unwrap().json().await.unwrap();
        match answer["value"]["error"].as_str() {
            Some(error) => Err(format!("{error}: {}", answer["value"]["message"])),
            None => Ok(answer["value"].clone()),
        }
    }

    /// Clicks the first element matching `css` and waits until the page the
    /// click led to has loaded. Clicking a submit button only starts the
    /// navigation, so reading the page straight after it may still read the
    /// old one; every console form replaces the page, so tests submit with this.
    pub async fn click_and_wait_for_page(&self, css: &str) {
        self.execute("window.grantryOldPage = true").await;
        self.find(css).await.click().await;
        let check = json!({
            "script": "return window.grantryOldPage === undefined && document.readyState === 'complete'",
            "args": [],
        });
        let deadline = Instant::now() + WAIT;
        loop {
            let loaded = self
                .try_call(reqwest::Method::POST, "/execute/sync", Some(check.clone()))
                .await;
            if loaded == Ok(Value::Bool(true)) {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "clicking `{css}` never loaded a new page; at {} ({loaded:?})",
                self.url().await
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    pub async fn goto(&self, url: &str) {
        self.call(reqwest::Method::POST, "/url", Some(json!({"url": url})))
            .await;
    }

    pub async fn url(&self) -> String {
        self.call(reqwest::Method::GET, "/url", None)
            .await
            .as_str()
            .unwrap()
            .to_owned()
    }

    pub async fn source(&self) -> String {
        self.call(reqwest::Method::GET, "/source", None)
            .await
            .as_str()
            .unwrap()
            .to_owned()
    }

    async fn try_find(&self, css: &str) -> Option<String> {
        let mut request = self.http.post(format!("{}/element", self.session));
        request = request.json(&json!({"using": "css selector", "value": css}));
        let answer: Value = request.send().await.unwrap().json().await.unwrap();
        answer["value"][ELEMENT].as_str().map(str::to_owned)
    }

    /// The first element matching `css`, waiting for it to appear.
    pub async fn find(&self, css: &str) -> Element<'_> {
        let deadline = Instant::now() + WAIT;
        loop {
            if let Some(id) = self.try_find(css).await {
                return Element { browser: self, id };
            }
            assert!(
                Instant::now() < deadline,
                "no element `{css}` on {}",
                self.url().await
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    pub async fn exists(&self, css: &str) -> bool {
        self.try_find(css).await.is_some()
    }

    pub async fn find_all(&self, css: &str) -> Vec<Element<'_>> {
        let found = self
            .call(
                reqwest::Method::POST,
                "/elements",
                Some(json!({"using": "css selector", "value": css})),
            )
            .await;
        found
            .as_array()
            .unwrap()
            .iter()
            .map(|e| Element {
                browser: self,
                id: e[ELEMENT].as_str().unwrap().to_owned(),
            })
            .collect()
    }

    /// The visible text of the first element matching `css`.
    pub async fn text(&self, css: &str) -> String {
        self.find(css).await.text().await
    }

    pub async fn execute(&self, script: &str) -> Value {
        self.call(
            reqwest::Method::POST,
            "/execute/sync",
            Some(json!({"script": script, "args": []})),
        )
        .await
    }

    /// Waits until the address contains `part`.
    pub async fn wait_for_url(&self, part: &str) -> String {
        let deadline = Instant::now() + WAIT;
        loop {
            let url = self.url().await;
            if url.contains(part) {
                return url;
            }
            assert!(
                Instant::now() < deadline,
                "never reached a URL with `{part}`; at {url}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Saves a PNG of the whole page (the window grown to the page's height) to
    /// `screenshots/{name}.png`.
    pub async fn screenshot(&self, name: &str) {
        let size = self.execute("return [window.outerWidth, window.outerHeight, document.documentElement.scrollHeight]").await;
        let (width, height, page) = (
            size[0].as_u64().unwrap(),
            size[1].as_u64().unwrap(),
            size[2].as_u64().unwrap(),
        );
        let chrome = height.saturating_sub(
            self.execute("return window.innerHeight")
                .await
                .as_u64()
                .unwrap(),
        );
        if page + chrome > height {
            self.resize(width as u32, (page + chrome) as u32).await;
        }
        let png = self.call(reqwest::Method::GET, "/screenshot", None).await;
        if page + chrome > height {
            self.resize(width as u32, height as u32).await;
        }
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(png.as_str().unwrap())
            .unwrap();
        let dir = screenshot_dir();
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join(format!("{name}.png")), bytes).unwrap();
    }

    pub async fn resize(&self, width: u32, height: u32) {
        self.call(
            reqwest::Method::POST,
            "/window/rect",
            Some(json!({"width": width, "height": height})),
        )
        .await;
    }

    pub async fn quit(mut self) {
        let _ = self.http.delete(&self.session).send().await;
        let _ = self.driver.kill().await;
    }
}

impl Element<'_> {
    fn path(&self, action: &str) -> String {
        format!("/element/{}{action}", self.id)
    }

    pub async fn click(&self) {
        self.browser
            .call(reqwest::Method::POST, &self.path("/click"), Some(json!({})))
            .await;
    }

    pub async fn clear(&self) {
        self.browser
            .call(reqwest::Method::POST, &self.path("/clear"), Some(json!({})))
            .await;
    }

    /// Types into the element (after clearing it).
    pub async fn fill(&self, text: &str) {
        self.clear().await;
        self.browser
            .call(
                reqwest::Method::POST,
                &self.path("/value"),
                Some(json!({"text": text})),
            )
            .await;
    }

    pub async fn text(&self) -> String {
        self.browser
            .call(reqwest::Method::GET, &self.path("/text"), None)
            .await
            .as_str()
            .unwrap_or_default()
            .to_owned()
    }

    pub async fn property(&self, name: &str) -> Value {
        self.browser
            .call(
                reqwest::Method::GET,
                &self.path(&format!("/property/{name}")),
                None,
            )
            .await
    }

    pub async fn is_selected(&self) -> bool {
        self.browser
            .call(reqwest::Method::GET, &self.path("/selected"), None)
            .await
            .as_bool()
            .unwrap_or(false)
    }
}
