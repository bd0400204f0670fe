//! Headless Chromium (Debian's `chromium`, installed by scripts/test.sh) driven
//! over the DevTools protocol: open a page, evaluate JavaScript in it, wait
//! for a condition, save a screenshot.

use super::TempDir;
use base64::Engine;
use serde_json::{json, Value};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use tungstenite::{Message, WebSocket};

/// A headless Chromium with a fresh profile; killed when dropped.
pub struct Browser {
    child: Child,
    port: u16,
    _profile: TempDir,
}

/// Where the browser tests save their screenshots (kept after the run).
pub fn artefacts() -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/test-artefacts/dashboard");
    std::fs::create_dir_all(&dir).expect("artefact directory");
    dir
}

impl Browser {
    /// Starts Chromium with remote debugging on a free port, and the flags
    /// that keep it off the network (this machine's is closed).
    pub fn start() -> Browser {
        let profile = TempDir::new("chromium");
        let child = Command::new("chromium")
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--disable-dev-shm-usage",
                "--window-size=1400,1000",
                "--remote-debugging-port=0",
            ])
            .arg(format!("--user-data-dir={}", profile.path().display()))
            .arg("about:blank")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromium starts (scripts/test.sh installs it)");
        let port_file = profile.path().join("DevToolsActivePort");
        let deadline = Instant::now() + Duration::from_secs(30);
        let port = loop {
            if let Some(port) = std::fs::read_to_string(&port_file)
                .ok()
                .and_then(|text| text.lines().next().and_then(|l| l.parse().ok()))
            {
                break port;
            }
            assert!(
                Instant::now() < deadline,
                "chromium wrote no DevToolsActivePort"
            );
            std::thread::sleep(Duration::from_millis(50));
        };
        Browser {
            child,
            port,
            _profile: profile,
        }
    }

    /// Opens `url` in a new tab.
    pub fn open(&self, url: &str) -> Tab {
        let target = self.endpoint("PUT", &format!("/json/new?{url}"));
        let socket_url = target["webSocketDebuggerUrl"]
            .as_str()
            .unwrap_or_else(|| panic!("no debugger URL in {target}"));
        let stream = TcpStream::connect(("127.0.0.1", self.port)).expect("DevTools port");
        stream
            .set_read_timeout(Some(Duration::from_secs(60)))
            .expect("timeout");
        let (socket, _) = tungstenite::client(socket_url, stream).expect("DevTools handshake");
        let mut tab = Tab { socket, next_id: 0 };
        tab.call("Page.enable", json!({}));
        tab.call("Runtime.enable", json!({}));
        tab.wait_loaded();
        tab
    }

    /// An HTTP request to the DevTools endpoint; its JSON answer.
    fn endpoint(&self, method: &str, path: &str) -> Value {
        let mut stream = TcpStream::connect(("127.0.0.1", self.port)).expect("DevTools port");
        write!(
            stream,
            "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nConnection: close\r\n\r\n",
            self.port
        )
        .expect("send");
        // Chromium keeps the connection open: read exactly Content-Length bytes.
        let mut reader = BufReader::new(stream);
        let mut line = String::new();
        let mut length = 0;
        loop {
            line.clear();
            reader.read_line(&mut line).expect("read");
            if line.trim().is_empty() {
                break;
            }
            if let Some((name, value)) = line.split_once(':') {
                if name.eq_ignore_ascii_case("content-length") {
                    length = value.trim().parse().expect("Content-Length");
                }
            }
        }
        let mut body = vec![0; length];
        reader.read_exact(&mut body).expect("body");
        let body = String::from_utf8_lossy(&body);
        serde_json::from_str(&body).unwrap_or_else(|e| panic!("{e}: {body}"))
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One page, over its DevTools socket.
pub struct Tab {
    socket: WebSocket<TcpStream>,
    next_id: u64,
}

impl Tab {
    /// Calls a DevTools method; returns its result (events in between are skipped).
    pub fn call(&mut self, method: &str, params: Value) -> Value {
        self.next_id += 1;
        let id = self.next_id;
        let request = json!({ "id": id, "method": method, "params": params });
        self.socket
            .send(Message::text(request.to_string()))
            .expect("DevTools send");
        loop {
            let message = self.socket.read().expect("DevTools read");
            let Message::Text(text) = message else {
                continue;
            };
            let value: Value = serde_json::from_str(text.as_str()).expect("DevTools JSON");
            if value["id"].as_u64() == Some(id) {
                if let Some(error) = value.get("error") {
                    panic!("{method} failed: {error}");
                }
                return value["result"].clone();
            }
        }
    }

    /// Evaluates JavaScript in the page; its value (promises awaited).
    pub fn eval(&mut self, expression: &str) -> Value {
        self.try_eval(expression)
            .unwrap_or_else(|exception| panic!("{expression} threw: {exception}"))
    }

    /// Evaluates JavaScript in the page; its value, or the exception it threw.
    fn try_eval(&mut self, expression: &str) -> Result<Value, Value> {
        let result = self.call(
            "Runtime.evaluate",
            json!({ "expression": expression, "returnByValue": true, "awaitPromise": true }),
        );
        match result.get("exceptionDetails") {
            Some(exception) => Err(exception.clone()),
            None => Ok(result["result"]["value"].clone()),
        }
    }

    /// Waits until the page at the tab's URL has loaded.
    fn wait_loaded(&mut self) {
        self.wait_for(
            "the page to load",
            Duration::from_secs(20),
            "location.href !== 'about:blank' && document.readyState === 'complete'",
        );
    }

    /// Waits until `expression` is truthy in the page (checked every 100 ms;
    /// one that throws counts as not yet); returns its value, or panics with
    /// `what` after `timeout`.
    pub fn wait_for(&mut self, what: &str, timeout: Duration, expression: &str) -> Value {
        let deadline = Instant::now() + timeout;
        loop {
            let (value, seen) = match self.try_eval(expression) {
                Ok(value) => (value.clone(), value),
                Err(exception) => (Value::Null, exception["exception"]["description"].clone()),
            };
            let truthy = match &value {
                Value::Null => false,
                Value::Bool(b) => *b,
                Value::Number(n) => n.as_f64() != Some(0.0),
                Value::String(s) => !s.is_empty(),
                _ => true,
            };
            if truthy {
                return value;
            }
            assert!(
                Instant::now() < deadline,
                "timed out waiting for {what}: `{expression}` is {seen}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Navigates to `url` and waits for its load event's document.
    pub fn navigate(&mut self, url: &str) {
        self.call("Page.navigate", json!({ "url": url }));
        self.wait_for(
            "the page to load",
            Duration::from_secs(20),
            &format!(
                "location.href === {} && document.readyState === 'complete'",
                json!(url)
            ),
        );
    }

    /// Saves a PNG screenshot of the whole page to `path`.
    pub fn screenshot(&mut self, path: &Path) {
        let shot = self.call(
            "Page.captureScreenshot",
            json!({ "format": "png", "captureBeyondViewport": true }),
        );
        let data = base64::engine::general_purpose::STANDARD
            .decode(shot["data"].as_str().expect("screenshot data"))
            .expect("base64");
        std::fs::write(path, data).expect("screenshot written");
        println!("screenshot: {}", path.display());
    }
}
