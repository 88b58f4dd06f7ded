//! Pooled keep-alive HTTP/1.1 connections to targets. Each listener worker has its own [`Pool`], so a request
//! and its upstream connection live on the same thread and the pool's lock is never contended across cores.
//! A connection goes back to the pool when its response body has been read to the end; one that the target
//! closed, or that idled past the idle timeout, is dropped. The HTTP/1.1 fast path (`fast.rs`) keeps its
//! own raw connections ([`RawConn`]: a socket and its read buffer) in the same pool.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use http::{Request, Response};
use hyper::body::Incoming;
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;

pub(crate) type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// How long a connection attempt to a target may take.
pub(crate) const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// Idle connections kept per target and worker; more are closed when they come back.
const MAX_IDLE_PER_TARGET: usize = 512;

struct Idle {
    sender: SendRequest<Incoming>,
    since: Instant,
}

/// One worker's idle upstream connections, by target address.
pub(crate) struct Pool {
    idle: Mutex<HashMap<SocketAddr, Vec<Idle>>>,
    raw: Mutex<HashMap<SocketAddr, Vec<RawConn>>>,
    idle_timeout: Duration,
}

/// A keep-alive HTTP/1.1 connection to a target for the fast path, with its read buffer (kept with the
/// connection, so it is allocated once per connection, not per request).
#[derive(Debug)]
pub(crate) struct RawConn {
    pub tcp: tokio::net::TcpStream,
    pub buf: Vec<u8>,
    since: Instant,
}

impl RawConn {
    /// A new connection to `addr` (within [`CONNECT_TIMEOUT`]).
    pub async fn connect(addr: SocketAddr) -> std::io::Result<RawConn> {
        let tcp = tokio::time::timeout(CONNECT_TIMEOUT, tokio::net::TcpStream::connect(addr))
            .await
            .map_err(|_| std::io::Error::new(std::io::ErrorKind::TimedOut, "connect timed out"))??;
        tcp.set_nodelay(true)?;
        Ok(RawConn { tcp, buf: Vec::with_capacity(RAW_BUF), since: Instant::now() })
    }

    /// Whether an idle connection is still usable: the target has neither closed it nor sent anything. The
    /// check costs no system call unless the socket was reported readable.
    fn idle_and_open(&self) -> bool {
        let mut probe = [0u8; 1];
        matches!(self.tcp.try_read(&mut probe), Err(e) if e.kind() == std::io::ErrorKind::WouldBlock)
    }
}

/// A raw connection's read buffer size.
pub(crate) const RAW_BUF: usize = 16 * 1024;

impl std::fmt::Debug for Pool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pool").field("idle_timeout", &self.idle_timeout).finish_non_exhaustive()
    }
}

/// A connection in use; it returns to its pool when dropped (after the response body ended).
pub(crate) struct Pooled {
    sender: Option<SendRequest<Incoming>>,
    addr: SocketAddr,
    pool: Arc<Pool>,
}

impl std::fmt::Debug for Pooled {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pooled").field("addr", &self.addr).finish_non_exhaustive()
    }
}

impl Drop for Pooled {
    fn drop(&mut self) {
        if let Some(sender) = self.sender.take() {
            self.pool.checkin(self.addr, sender);
        }
    }
}

impl Pool {
    pub fn new(idle_timeout: Duration) -> Arc<Pool> {
        Arc::new(Pool { idle: Mutex::new(HashMap::new()), raw: Mutex::new(HashMap::new()), idle_timeout })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<SocketAddr, Vec<Idle>>> {
        self.idle.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The most recently returned connection to `addr` that is ready for a request. Closed and expired ones
    /// are dropped; one still finishing its previous exchange stays for later.
    fn checkout(&self, addr: SocketAddr) -> Option<SendRequest<Incoming>> {
        let mut idle = self.lock();
        let list = idle.get_mut(&addr)?;
        let mut busy = Vec::new();
        let mut found = None;
        while let Some(i) = list.pop() {
            if i.sender.is_ready() {
                found = Some(i);
                break;
            }
            if !i.sender.is_closed() {
                busy.push(i);
            }
        }
        list.append(&mut busy);
        // Expiry is the sweeper's job; a connection it has not reached yet is only used if the target kept it.
        found.filter(|i| i.since.elapsed() < self.idle_timeout).map(|i| i.sender)
    }

    fn checkin(&self, addr: SocketAddr, sender: SendRequest<Incoming>) {
        if sender.is_closed() {
            return;
        }
        let mut idle = self.lock();
        let list = idle.entry(addr).or_default();
        if list.len() < MAX_IDLE_PER_TARGET {
            list.push(Idle { sender, since: Instant::now() });
        }
    }

    /// Drops closed and expired connections (and targets left without any).
    pub fn sweep(&self) {
        let timeout = self.idle_timeout;
        self.lock().retain(|_, list| {
            list.retain(|i| !i.sender.is_closed() && i.since.elapsed() < timeout);
            !list.is_empty()
        });
        self.lock_raw().retain(|_, list| {
            list.retain(|c| c.since.elapsed() < timeout && c.idle_and_open());
            !list.is_empty()
        });
    }

    fn lock_raw(&self) -> std::sync::MutexGuard<'_, HashMap<SocketAddr, Vec<RawConn>>> {
        self.raw.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The most recently returned raw connection to `addr` that is still open and not expired.
    pub fn checkout_raw(&self, addr: SocketAddr) -> Option<RawConn> {
        let mut raw = self.lock_raw();
        let list = raw.get_mut(&addr)?;
        while let Some(c) = list.pop() {
            if c.since.elapsed() < self.idle_timeout && c.idle_and_open() {
                return Some(c);
            }
        }
        None
    }

    /// Keeps a raw connection whose last response was read to its end, for the next request to `addr`.
    pub fn checkin_raw(&self, addr: SocketAddr, mut conn: RawConn) {
        conn.buf.clear();
        conn.since = Instant::now();
        let mut raw = self.lock_raw();
        let list = raw.entry(addr).or_default();
        if list.len() < MAX_IDLE_PER_TARGET {
            list.push(conn);
        }
    }

    /// Sweeps every few seconds, forever (run on the worker that owns the pool).
    pub async fn sweep_forever(self: Arc<Self>) {
        let every = (self.idle_timeout / 2).clamp(Duration::from_millis(100), Duration::from_secs(5));
        loop {
            tokio::time::sleep(every).await;
            self.sweep();
        }
    }

    /// Sends `req` (origin-form URI, `Host` set) to `addr` over a pooled connection, or a new one. A request
    /// that a pooled connection could not even start sending (the target had just closed it) is sent again
    /// over a new connection.
    pub async fn request(
        self: &Arc<Self>,
        addr: SocketAddr,
        mut req: Request<Incoming>,
    ) -> Result<(Response<Incoming>, Pooled), BoxError> {
        if let Some(mut sender) = self.checkout(addr) {
            match sender.try_send_request(req).await {
                Ok(response) => return Ok((response, self.pooled(addr, sender))),
                Err(mut e) => match e.take_message() {
                    Some(unsent) => req = unsent,
                    None => return Err(e.into_error().into()),
                },
            }
        }
        let mut sender = connect(addr).await?;
        let response = sender.send_request(req).await?;
        Ok((response, self.pooled(addr, sender)))
    }

    fn pooled(self: &Arc<Self>, addr: SocketAddr, sender: SendRequest<Incoming>) -> Pooled {
        Pooled { sender: Some(sender), addr, pool: self.clone() }
    }
}

async fn connect(addr: SocketAddr) -> Result<SendRequest<Incoming>, BoxError> {
    let tcp = tokio::time::timeout(CONNECT_TIMEOUT, tokio::net::TcpStream::connect(addr)).await??;
    tcp.set_nodelay(true)?;
    let (sender, connection) = hyper::client::conn::http1::Builder::new().handshake(TokioIo::new(tcp)).await?;
    tokio::spawn(async move {
        if let Err(e) = connection.await {
            tracing::debug!(%addr, error = %e, "upstream connection ended with an error");
        }
    });
    Ok(sender)
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::Full;
    use hyper::service::service_fn;

    /// A backend answering with the number of its connection, so reuse is visible.
    async fn backend() -> (SocketAddr, Arc<std::sync::atomic::AtomicUsize>) {
        use std::sync::atomic::{AtomicUsize, Ordering};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let conns = Arc::new(AtomicUsize::new(0));
        let counter = conns.clone();
        tokio::spawn(async move {
            while let Ok((tcp, _)) = listener.accept().await {
                let n = counter.fetch_add(1, Ordering::SeqCst) + 1;
                tokio::spawn(async move {
                    let service = service_fn(move |_req: Request<Incoming>| async move {
                        Ok::<_, std::convert::Infallible>(Response::new(Full::new(bytes::Bytes::from(n.to_string()))))
                    });
                    let _ =
                        hyper::server::conn::http1::Builder::new().serve_connection(TokioIo::new(tcp), service).await;
                });
            }
        });
        (addr, conns)
    }

    /// A request with an `Incoming` body, as the proxy forwards them: received by a local server.
    async fn incoming_requests(n: usize) -> tokio::sync::mpsc::Receiver<Request<Incoming>> {
        let (tx, rx) = tokio::sync::mpsc::channel(n);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        tokio::spawn(async move {
            let (tcp, _) = listener.accept().await.expect("accept");
            let service = service_fn(move |req: Request<Incoming>| {
                let tx = tx.clone();
                async move {
                    let _ = tx.send(req).await;
                    Ok::<_, std::convert::Infallible>(Response::new(Full::new(bytes::Bytes::new())))
                }
            });
            let _ = hyper::server::conn::http1::Builder::new().serve_connection(TokioIo::new(tcp), service).await;
        });
        tokio::spawn(async move {
            let tcp = tokio::net::TcpStream::connect(addr).await.expect("connect");
            let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tcp)).await.expect("hs");
            tokio::spawn(conn);
            for _ in 0..n {
                let req = Request::builder().uri("/").header("host", "x").body(Full::new(bytes::Bytes::new()));
                let _ = sender.send_request(req.expect("req")).await;
            }
        });
        rx
    }

    #[tokio::test]
    async fn connections_are_reused_after_the_body_ends_and_dropped_when_closed() {
        use http_body_util::BodyExt;
        let (addr, conns) = backend().await;
        let pool = Pool::new(Duration::from_secs(60));
        let mut reqs = incoming_requests(3).await;
        for _ in 0..3 {
            let req = reqs.recv().await.expect("a request");
            let (response, pooled) = pool.request(addr, req).await.expect("response");
            let body = response.into_body().collect().await.expect("body").to_bytes();
            assert_eq!(body, "1", "every request rides the first connection");
            drop(pooled);
            // The connection becomes ready once its dispatcher is idle again.
            for _ in 0..100 {
                if pool.lock().get(&addr).is_some_and(|l| l.iter().any(|i| i.sender.is_ready())) {
                    break;
                }
                tokio::task::yield_now().await;
            }
        }
        assert_eq!(conns.load(std::sync::atomic::Ordering::SeqCst), 1);
        // Expired connections are swept.
        let short = Pool::new(Duration::ZERO);
        let mut reqs = incoming_requests(1).await;
        let (_, pooled) = short.request(addr, reqs.recv().await.expect("req")).await.expect("response");
        drop(pooled);
        short.sweep();
        assert!(short.lock().is_empty());
    }
}
