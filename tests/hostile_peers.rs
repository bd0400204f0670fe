//! Bad bytes and bad credentials against real scheduler and worker processes:
//! each bad connection is closed, and everyone else's work completes.

mod support;

use rask::ops::builtin::{add, inc, noop};
use rask::prelude::*;
use rask::ConnectOptions;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::Command;
use std::time::Duration;
use support::tls::make_certs;
use support::{Cluster, TempDir};

fn host_port(address: &str) -> String {
    address
        .trim_start_matches("tcp://")
        .trim_start_matches("tls://")
        .to_string()
}

/// Sends `bytes` and reports whether the server closed the connection (within 15 s).
fn closed_after(address: &str, bytes: &[u8]) -> bool {
    let mut stream = TcpStream::connect(host_port(address)).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(15)))
        .unwrap();
    let _ = stream.write_all(bytes);
    let mut sink = [0u8; 4096];
    loop {
        match stream.read(&mut sink) {
            Ok(0) => return true,
            Ok(_) => continue,
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => return true,
            Err(_) => return false,
        }
    }
}

fn preamble(version: u32) -> Vec<u8> {
    let mut out = b"RASK".to_vec();
    out.extend_from_slice(&version.to_le_bytes());
    out
}

fn frame(len: u32, kind: u8, blobs: u16, payload: &[u8]) -> Vec<u8> {
    let mut out = len.to_le_bytes().to_vec();
    out.extend_from_slice(&[kind, 0]);
    out.extend_from_slice(&blobs.to_le_bytes());
    out.extend_from_slice(payload);
    out
}

/// Every kind of bad input, as (name, bytes).
fn attacks() -> Vec<(&'static str, Vec<u8>)> {
    let mut truncated = preamble(rask::comm::frame::PROTOCOL_VERSION);
    truncated.extend(frame(100, 1, 0, b"only a few bytes"));
    let mut oversized = preamble(rask::comm::frame::PROTOCOL_VERSION);
    oversized.extend(frame(u32::MAX, 1, 0, b""));
    let mut undecodable = preamble(rask::comm::frame::PROTOCOL_VERSION);
    undecodable.extend(frame(6, 1, 0, &[0xff; 6]));
    let mut stray_blob = preamble(rask::comm::frame::PROTOCOL_VERSION);
    stray_blob.extend(frame(3, 2, 0, b"abc"));
    let mut unknown_kind = preamble(rask::comm::frame::PROTOCOL_VERSION);
    unknown_kind.extend(frame(0, 9, 0, b""));
    let mut many_blobs = preamble(rask::comm::frame::PROTOCOL_VERSION);
    many_blobs.extend(frame(1, 1, 60_000, b"x"));
    // A client's graph whose fused op nests 200,000 levels deep.
    let mut deep = preamble(rask::comm::frame::PROTOCOL_VERSION);
    deep.extend(message_frame(&hello(rask::comm::protocol::Role::Client), 0));
    deep.extend(deeply_nested_graph(200_000));
    vec![
        ("garbage", b"GET / HTTP/1.1\r\nHost: x\r\n\r\n".to_vec()),
        (
            "random bytes",
            (0..4096u32)
                .map(|i| (i.wrapping_mul(2654435761) >> 13) as u8)
                .collect(),
        ),
        ("wrong version", preamble(999)),
        ("truncated frame", truncated),
        ("oversized length prefix", oversized),
        ("undecodable message", undecodable),
        ("blob without a message", stray_blob),
        ("unknown frame kind", unknown_kind),
        ("blobs then close", many_blobs),
        ("deeply nested fused op", deep),
    ]
}

#[test]
fn malformed_connections_are_closed_and_other_work_completes() {
    let mut cluster = Cluster::start("hostile", &[]);
    cluster.add_worker(&["--nthreads", "1"]);
    cluster.add_worker(&["--nthreads", "1"]);
    let client = Client::connect(&cluster.address).unwrap();
    cluster.wait_for_workers(&client, 2);
    let worker_address = client.workers().unwrap()[0].data_address.clone();

    // Work in flight while the attacks happen.
    let leaves: Vec<Delayed<u64>> = (0..20_000u64).map(|i| delayed(noop, i)).collect();
    let mut level = leaves;
    while level.len() > 1 {
        level = level
            .chunks(2)
            .map(|p| {
                if p.len() == 2 {
                    delayed(add, (&p[0], &p[1]))
                } else {
                    p[0].clone()
                }
            })
            .collect();
    }
    let total = client.compute(&level[0]).unwrap();

    for (name, bytes) in attacks() {
        assert!(
            closed_after(&cluster.address, &bytes),
            "scheduler kept a connection open after {name}"
        );
        assert!(
            closed_after(&worker_address, &bytes),
            "worker kept a connection open after {name}"
        );
    }
    // A client speaking another protocol version is refused with both versions named.
    let mut stream = TcpStream::connect(host_port(&cluster.address)).unwrap();
    stream.write_all(&preamble(7)).unwrap();
    let mut theirs = [0u8; 8];
    stream.read_exact(&mut theirs).unwrap();
    assert_eq!(&theirs[..4], b"RASK");
    assert_eq!(
        u32::from_le_bytes(theirs[4..].try_into().unwrap()),
        rask::comm::frame::PROTOCOL_VERSION
    );

    assert_eq!(total.result().unwrap(), 20_000 * 19_999 / 2);
    let futures = client.map(inc, 0..1000u64).unwrap();
    assert_eq!(
        client.gather(&futures).unwrap(),
        (1..=1000).collect::<Vec<u64>>()
    );
    assert_eq!(
        client.workers().unwrap().len(),
        2,
        "both workers still serve"
    );
    let log = cluster.scheduler.log_text();
    for expected in [
        "not a rask connection",
        "protocol version mismatch: the peer speaks version 999",
        "exceeds the limit",
    ] {
        assert!(
            log.contains(expected),
            "scheduler log lacks {expected:?}:\n{log}"
        );
    }
    assert!(
        cluster.scheduler.child.try_wait().unwrap().is_none(),
        "scheduler alive"
    );
}

fn tls_args(dir: &Path, name: &str) -> Vec<String> {
    vec![
        "--tls-ca-file".into(),
        dir.join("ca.pem").display().to_string(),
        "--tls-cert".into(),
        dir.join(format!("{name}.pem")).display().to_string(),
        "--tls-key".into(),
        dir.join(format!("{name}.key")).display().to_string(),
    ]
}

#[test]
fn mutual_tls_refuses_clients_without_a_valid_certificate() {
    let certs = TempDir::new("certs");
    make_certs(certs.path(), "ca", &["node", "client"]);
    make_certs(certs.path(), "rogue-ca", &["rogue"]);
    let mut cluster = Cluster::start("tls", &tls_args(certs.path(), "node"));
    assert!(cluster.address.starts_with("tls://"), "{}", cluster.address);
    cluster.add_worker(&["--nthreads", "1"]);
    cluster.add_worker(&["--nthreads", "1"]);

    let files = |name: &str, ca: &str| rask::comm::TlsFiles {
        ca: certs.path().join(format!("{ca}.pem")),
        cert: certs.path().join(format!("{name}.pem")),
        key: certs.path().join(format!("{name}.key")),
    };
    let client = ConnectOptions::new(&cluster.address)
        .tls(files("client", "ca"))
        .connect()
        .unwrap();
    cluster.wait_for_workers(&client, 2);
    let futures = client.map(inc, 0..500u64).unwrap();
    assert_eq!(
        client.gather(&futures).unwrap(),
        (1..=500).collect::<Vec<u64>>()
    );
    let (root, _) = (delayed(add, (delayed(inc, 1u64), delayed(inc, 2u64))), ());
    assert_eq!(root.compute(&client).unwrap(), 5);

    // A certificate from another CA: refused.
    let rogue = ConnectOptions::new(&cluster.address)
        .tls(files("rogue", "ca"))
        .connect();
    assert!(rogue.is_err(), "a certificate from another CA was accepted");
    // No TLS at all against the TLS port: refused.
    assert!(Client::connect(&cluster.address.replace("tls://", "tcp://")).is_err());
    // Plain bytes at a worker's TLS data port: closed.
    let worker = client.workers().unwrap()[0].data_address.clone();
    assert!(worker.starts_with("tls://"));
    assert!(closed_after(
        &worker,
        &preamble(rask::comm::frame::PROTOCOL_VERSION)
    ));
    std::thread::sleep(Duration::from_millis(200));
    let log = cluster.scheduler.log_text();
    assert!(
        log.contains("TLS handshake"),
        "no log line for the refused client:\n{log}"
    );
    // Work still completes for the good client.
    assert_eq!(client.submit(inc, 41u64).unwrap().result().unwrap(), 42);

    // The HTTP port speaks TLS too, with the same CA and client certificates.
    assert!(
        cluster.dashboard.starts_with("https://"),
        "{}",
        cluster.dashboard
    );
    let curl = |extra: &[String], url: &str| {
        let output = Command::new("curl")
            .args(["--silent", "--show-error", "--max-time", "10"])
            .args(extra)
            .arg(url)
            .output()
            .expect("curl runs");
        (
            output.status.success(),
            String::from_utf8_lossy(&output.stdout).to_string(),
        )
    };
    let dir = certs.path();
    let with_cert = [
        "--cacert".to_string(),
        dir.join("ca.pem").display().to_string(),
        "--cert".to_string(),
        dir.join("client.pem").display().to_string(),
        "--key".to_string(),
        dir.join("client.key").display().to_string(),
    ];
    let url = format!("{}/api/v1/workers", cluster.dashboard);
    let (ok, body) = curl(&with_cert, &url);
    assert!(
        ok && body.contains("\"nthreads\""),
        "HTTPS with a client certificate: {body}"
    );
    let (ok, _) = curl(&with_cert[..2], &url);
    assert!(!ok, "HTTPS without a client certificate was served");
    let (ok, _) = curl(&[], &url.replace("https://", "http://"));
    assert!(!ok, "plain HTTP was served on the TLS port");

    // Host names are not checked (members are reached by addresses no
    // certificate lists), so the CA is what keeps impostors out: a scheduler
    // whose certificate another CA signed is refused by the client (though
    // it would take the client's certificate).
    let impostor = Cluster::start(
        "tls-impostor",
        &[
            "--tls-ca-file".into(),
            dir.join("ca.pem").display().to_string(),
            "--tls-cert".into(),
            dir.join("rogue.pem").display().to_string(),
            "--tls-key".into(),
            dir.join("rogue.key").display().to_string(),
        ],
    );
    let refused = ConnectOptions::new(&impostor.address)
        .tls(files("client", "ca"))
        .connect();
    let error = refused
        .err()
        .expect("a scheduler with another CA's certificate was trusted")
        .to_string();
    assert!(error.contains("UnknownIssuer"), "{error}");
}

/// An `UpdateGraph` frame whose one task's op is fused `depth` levels deep
/// (built as bytes: a value that deep could not even be encoded).
fn deeply_nested_graph(depth: usize) -> Vec<u8> {
    use rask::graph::wire::{WireOp, WireRun, WireTask};
    let placeholder = "PLACEHOLDER-OP";
    let message = rask::comm::protocol::Message::UpdateGraph {
        tasks: vec![WireTask {
            key: rask::Key::new("deep-1"),
            run: WireRun {
                op: WireOp::Named(placeholder.into()),
                args: vec![],
            },
            deps: vec![],
            annotations: Default::default(),
        }],
        wanted: vec![],
    };
    let shallow = message.encode().expect("encodes");
    let mut run = vec![0u8, placeholder.len() as u8];
    run.extend_from_slice(placeholder.as_bytes());
    run.push(0);
    let at = shallow
        .windows(run.len())
        .position(|w| w == run.as_slice())
        .expect("the placeholder run is in the message");
    let mut nested = Vec::new();
    for _ in 0..depth {
        nested.extend_from_slice(&[1, 1]);
    }
    nested.extend_from_slice(&[0, 1, b'x', 0]);
    nested.extend(std::iter::repeat_n(0u8, depth));
    let mut payload = shallow[..at].to_vec();
    payload.extend(nested);
    payload.extend_from_slice(&shallow[at + run.len()..]);
    frame(payload.len() as u32, 1, 0, &payload)
}

/// Resident memory of process `pid` now (VmRSS), in bytes.
fn rss(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|kb| kb.parse::<u64>().ok())
        .map_or(0, |kb| kb * 1024)
}

/// A message frame (and the blobs it announces are left to the caller).
fn message_frame(message: &rask::comm::protocol::Message, blobs: u16) -> Vec<u8> {
    let payload = message.encode().expect("encodes");
    frame(payload.len() as u32, 1, blobs, &payload)
}

fn hello(role: rask::comm::protocol::Role) -> rask::comm::protocol::Message {
    rask::comm::protocol::Message::Hello(rask::comm::protocol::Hello { role, token: None })
}

/// Opens a connection, sends `bytes`, and keeps it open (stalled) — the
/// peer announced more than it sends.
fn stall(address: &str, bytes: &[u8]) -> Option<TcpStream> {
    let mut stream = TcpStream::connect(host_port(address)).ok()?;
    stream.write_all(bytes).ok()?;
    Some(stream)
}

#[test]
fn stalled_peers_announcing_the_largest_frames_cost_little_memory() {
    use rask::comm::frame::{HANDSHAKE_MESSAGE_LIMIT, PROTOCOL_VERSION};
    use rask::comm::protocol::{Message, Role};
    let mut cluster = Cluster::start("stalled", &[]);
    cluster.add_worker(&["--nthreads", "1"]);
    let client = Client::connect(&cluster.address).unwrap();
    cluster.wait_for_workers(&client, 1);
    let worker = client.workers().unwrap()[0].clone();
    let scheduler_pid = cluster.scheduler.pid() as u32;
    let (scheduler_before, worker_before) = (rss(scheduler_pid), rss(worker.pid));

    // Before Hello only small frames are accepted: announce the largest allowed.
    let mut before_hello = preamble(PROTOCOL_VERSION);
    before_hello.extend_from_slice(&HANDSHAKE_MESSAGE_LIMIT.to_le_bytes());
    before_hello.extend_from_slice(&[1, 0, 0, 0, 0x42]);
    // After a Hello (no token is set, so anyone passes), announce a 64 MiB
    // message to the scheduler...
    let mut after_hello = preamble(PROTOCOL_VERSION);
    after_hello.extend(message_frame(&hello(Role::Client), 0));
    after_hello.extend_from_slice(&(64u32 << 20).to_le_bytes());
    after_hello.extend_from_slice(&[1, 0, 0, 0, 0x42]);
    // ... and to the worker's data port a PutData whose blob is announced at
    // almost 4 GiB.
    let mut big_blob = preamble(PROTOCOL_VERSION);
    big_blob.extend(message_frame(&hello(Role::Peer), 0));
    let put = Message::PutData {
        keys: vec![rask::Key::new("x")],
    };
    big_blob.extend(message_frame(&put, 1));
    big_blob.extend_from_slice(&u32::MAX.to_le_bytes());
    big_blob.extend_from_slice(&[2, 0, 0, 0, 0x42]);

    let mut stalled = Vec::new();
    for _ in 0..200 {
        stalled.extend(stall(&cluster.address, &before_hello));
        stalled.extend(stall(&cluster.address, &after_hello));
        stalled.extend(stall(&worker.data_address, &before_hello));
        stalled.extend(stall(&worker.data_address, &big_blob));
    }
    assert!(
        stalled.len() >= 700,
        "only {} connections opened",
        stalled.len()
    );

    // Work goes on meanwhile, for this client and a new one.
    let futures = client.map(inc, 0..2000u64).unwrap();
    assert_eq!(
        client.gather(&futures).unwrap(),
        (1..=2000).collect::<Vec<u64>>()
    );
    let late = Client::connect(&cluster.address).expect("a new client gets in");
    assert_eq!(late.submit(inc, 1u64).unwrap().result().unwrap(), 2);

    let (scheduler_after, worker_after) = (rss(scheduler_pid), rss(worker.pid));
    let mib = |bytes: u64| bytes as f64 / (1 << 20) as f64;
    println!(
        "scheduler {:.1} -> {:.1} MiB, worker {:.1} -> {:.1} MiB, with {} stalled connections",
        mib(scheduler_before),
        mib(scheduler_after),
        mib(worker_before),
        mib(worker_after),
        stalled.len()
    );
    assert!(
        scheduler_after.saturating_sub(scheduler_before) < 50 << 20,
        "the scheduler grew by {:.1} MiB",
        mib(scheduler_after.saturating_sub(scheduler_before))
    );
    assert!(
        worker_after.saturating_sub(worker_before) < 50 << 20,
        "the worker grew by {:.1} MiB",
        mib(worker_after.saturating_sub(worker_before))
    );
    drop(stalled);
}
