//! berth-demo: the project's tiny demo application, a std-only threaded HTTP/1.1 server.
//!
//! It owns a handful of endpoints that make load-balancer, health-check, scaling and crash behaviour easy to
//! exercise (`/ping`, `/`, `/status/{code}`, `/sleep`, `/cpu`, `/env`; its knobs are environment variables, listed
//! in its README), and it is packaged as a FROM-scratch
//! image by `scripts/build-demo.sh`. It must never take a dependency (it has to build in seconds and link
//! statically) and never be used by berth itself: it is only ever a workload berth runs.

mod app;
mod http;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::time::{Duration, Instant};

use app::{FailRate, Identity};
use http::{ParseError, Response, parse_head};

/// How long an idle keep-alive connection is kept. Longer than a load balancer's usual 60 s idle timeout, so
/// the load balancer, not the app, closes idle connections (and never reuses one the app is closing).
const IDLE_TIMEOUT: Duration = Duration::from_secs(75);
const WRITE_TIMEOUT: Duration = Duration::from_secs(30);

struct Server {
    id: Identity,
    fail: FailRate,
    log_requests: bool,
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some("probe") {
        std::process::exit(probe(&args[2..]));
    }
    if let Ok(code) = std::env::var("DEMO_EXIT_CODE") {
        let code: i32 = code.trim().parse().unwrap_or(1);
        println!("berth-demo: DEMO_EXIT_CODE is set, exiting with code {code}");
        std::process::exit(code);
    }
    let port: u16 = match std::env::var("PORT") {
        Ok(p) => match p.trim().parse() {
            Ok(p) => p,
            Err(_) => {
                eprintln!("berth-demo: PORT must be a number from 0 to 65535, got {p:?}");
                std::process::exit(2);
            }
        },
        Err(_) => 80,
    };
    let fail = match std::env::var("DEMO_FAIL_RATE") {
        Ok(v) => match FailRate::parse(&v) {
            Ok(f) => f,
            Err(e) => {
                eprintln!("berth-demo: {e}");
                std::process::exit(2);
            }
        },
        Err(_) => FailRate::default(),
    };
    let id = Identity { version: std::env::var("DEMO_VERSION").unwrap_or_else(|_| "dev".into()), hostname: hostname() };
    let addr = SocketAddr::from(([0, 0, 0, 0], port));
    let listener = match TcpListener::bind(addr) {
        Ok(l) => l,
        Err(e) => {
            eprintln!("berth-demo: cannot listen on {addr}: {e}");
            std::process::exit(1);
        }
    };
    println!("berth-demo {} listening on {addr} (host {})", id.version, id.hostname);
    if fail.per_million() > 0 {
        println!("berth-demo: {} per million requests to / answer 500 (DEMO_FAIL_RATE)", fail.per_million());
    }
    let server = Arc::new(Server { id, fail, log_requests: std::env::var_os("DEMO_QUIET").is_none() });
    for conn in listener.incoming() {
        match conn {
            Ok(stream) => {
                let server = Arc::clone(&server);
                let spawned = std::thread::Builder::new().name("conn".into()).spawn(move || {
                    let peer = stream.peer_addr().ok();
                    if let Err(e) = server.serve(stream, peer)
                        && !matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut)
                    {
                        eprintln!("berth-demo: connection error: {e}");
                    }
                });
                if let Err(e) = spawned {
                    eprintln!("berth-demo: cannot spawn a connection thread: {e}");
                }
            }
            Err(e) => {
                eprintln!("berth-demo: accept failed: {e}");
                std::thread::sleep(Duration::from_millis(10));
            }
        }
    }
}

/// `berth-demo probe <host:port> [timeout-ms]`: a TCP client for connectivity tests from inside a container.
/// Exits 0 when the connection opens, 1 when it is refused or times out, 2 on bad arguments.
fn probe(args: &[String]) -> i32 {
    let Some(target) = args.first() else {
        eprintln!("usage: berth-demo probe <host:port> [timeout-ms]");
        return 2;
    };
    let timeout = match args.get(1).map(|t| t.parse::<u64>()) {
        None => Duration::from_millis(2000),
        Some(Ok(ms)) if ms > 0 => Duration::from_millis(ms),
        Some(_) => {
            eprintln!("berth-demo probe: timeout must be a positive number of milliseconds");
            return 2;
        }
    };
    let addr: SocketAddr = match target.parse() {
        Ok(a) => a,
        Err(_) => {
            eprintln!("berth-demo probe: {target:?} is not an address such as 172.18.0.2:80");
            return 2;
        }
    };
    match TcpStream::connect_timeout(&addr, timeout) {
        Ok(_) => {
            println!("open {addr}");
            0
        }
        Err(e) => {
            println!("closed {addr}: {e}");
            1
        }
    }
}

/// The container's hostname: `/etc/hostname` (Docker writes the container id there), else `$HOSTNAME`.
fn hostname() -> String {
    std::fs::read_to_string("/etc/hostname")
        .ok()
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok().filter(|s| !s.is_empty()))
        .unwrap_or_else(|| "unknown".into())
}

impl Server {
    fn serve(&self, mut stream: TcpStream, peer: Option<SocketAddr>) -> std::io::Result<()> {
        stream.set_read_timeout(Some(IDLE_TIMEOUT))?;
        stream.set_write_timeout(Some(WRITE_TIMEOUT))?;
        let _ = stream.set_nodelay(true);
        let headers = [("x-demo-version", self.id.version.as_str()), ("x-demo-host", self.id.hostname.as_str())];
        let mut buf: Vec<u8> = Vec::with_capacity(4096);
        let mut chunk = [0u8; 8192];
        loop {
            let (req, used) = match parse_head(&buf) {
                Ok(Some(parsed)) => parsed,
                Ok(None) => {
                    let n = stream.read(&mut chunk)?;
                    if n == 0 {
                        return Ok(());
                    }
                    buf.extend_from_slice(&chunk[..n]);
                    continue;
                }
                Err(e) => return self.reject(&mut stream, &e, &headers),
            };
            buf.drain(..used);
            // Read and discard the body so the next request on the connection starts at the right byte.
            let mut remaining = req.content_length;
            if remaining > buf.len()
                && req.minor_version == 1
                && req.header("expect").is_some_and(|v| v.eq_ignore_ascii_case("100-continue"))
            {
                stream.write_all(b"HTTP/1.1 100 Continue\r\n\r\n")?;
            }
            let from_buf = remaining.min(buf.len());
            buf.drain(..from_buf);
            remaining -= from_buf;
            while remaining > 0 {
                let want = remaining.min(chunk.len());
                let n = stream.read(&mut chunk[..want])?;
                if n == 0 {
                    return Ok(());
                }
                remaining -= n;
            }

            let started = Instant::now();
            let resp = app::handle(&req, &self.id, &self.fail);
            let keep_alive = resp.keeps_alive(req.keep_alive);
            stream.write_all(&resp.to_bytes(&headers, keep_alive, req.method == "HEAD"))?;
            stream.flush()?;
            if self.log_requests {
                let peer = peer.map(|p| p.to_string()).unwrap_or_else(|| "-".into());
                println!(
                    "{peer} \"{} {}{}{}\" {} {} {:.1}ms",
                    req.method,
                    req.path,
                    if req.query.is_empty() { "" } else { "?" },
                    req.query,
                    resp.status,
                    resp.body.len(),
                    started.elapsed().as_secs_f64() * 1000.0
                );
            }
            if !keep_alive {
                lingering_close(&mut stream);
                return Ok(());
            }
        }
    }

    fn reject(&self, stream: &mut TcpStream, e: &ParseError, headers: &[(&str, &str)]) -> std::io::Result<()> {
        let mut resp = Response::text(e.status(), format!("{}\n", e.message()));
        resp.close = true;
        stream.write_all(&resp.to_bytes(headers, false, false))?;
        stream.flush()?;
        lingering_close(stream);
        Ok(())
    }
}

/// Closes our side, then briefly reads and discards what the client still sends: closing a socket with
/// unread input makes the kernel send a reset, which can destroy the response before the client reads it.
fn lingering_close(stream: &mut TcpStream) {
    if stream.shutdown(std::net::Shutdown::Write).is_err() {
        return;
    }
    let _ = stream.set_read_timeout(Some(Duration::from_millis(500)));
    let mut sink = [0u8; 4096];
    let deadline = Instant::now() + Duration::from_secs(2);
    while Instant::now() < deadline {
        match stream.read(&mut sink) {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Serves one connection on a loopback port and returns the client end.
    fn connect() -> TcpStream {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap_or_else(|e| panic!("bind: {e}"));
        let addr = listener.local_addr().unwrap_or_else(|e| panic!("addr: {e}"));
        std::thread::spawn(move || {
            if let Ok((stream, peer)) = listener.accept() {
                let server = Server {
                    id: Identity { version: "t1".into(), hostname: "h1".into() },
                    fail: FailRate::default(),
                    log_requests: false,
                };
                let _ = server.serve(stream, Some(peer));
            }
        });
        let client = TcpStream::connect(addr).unwrap_or_else(|e| panic!("connect: {e}"));
        let _ = client.set_read_timeout(Some(Duration::from_secs(5)));
        client
    }

    fn read_all(mut s: TcpStream) -> String {
        let mut out = String::new();
        let _ = s.read_to_string(&mut out);
        out
    }

    #[test]
    fn keep_alive_pipelining_and_close() {
        let mut c = connect();
        let reqs = "GET /ping HTTP/1.1\r\nHost: x\r\n\r\nPOST /nope HTTP/1.1\r\nContent-Length: 3\r\n\r\nabcGET /status/204 HTTP/1.1\r\nConnection: close\r\n\r\nGET /ping HTTP/1.1\r\n\r\n";
        c.write_all(reqs.as_bytes()).unwrap_or_else(|e| panic!("write: {e}"));
        let out = read_all(c);
        let statuses: Vec<&str> = out.match_indices("HTTP/1.1 ").map(|(i, _)| &out[i + 9..i + 12]).collect();
        // The fourth request comes after `Connection: close` and is never answered.
        assert_eq!(statuses, ["200", "404", "204"], "{out}");
        assert!(out.contains("x-demo-version: t1\r\nx-demo-host: h1\r\n"), "{out}");
        assert!(out.ends_with("Connection: close\r\n\r\n"), "{out}");
    }

    #[test]
    fn expect_continue_and_bad_requests() {
        let mut c = connect();
        c.write_all(b"POST /ping HTTP/1.1\r\nContent-Length: 2\r\nExpect: 100-continue\r\n\r\n")
            .unwrap_or_else(|e| panic!("write: {e}"));
        let mut first = [0u8; 25];
        c.read_exact(&mut first).unwrap_or_else(|e| panic!("read: {e}"));
        assert_eq!(&first, b"HTTP/1.1 100 Continue\r\n\r\n");
        c.write_all(b"okGARBAGE\r\n\r\n").unwrap_or_else(|e| panic!("write: {e}"));
        let out = read_all(c);
        assert!(out.starts_with("HTTP/1.1 405 "), "{out}");
        assert!(out.contains("HTTP/1.1 400 Bad Request"), "{out}");
    }
}
