//! MoldUDP64 re-requests. A request is a packet of its own: session (10 bytes), first sequence
//! (u64 BE), message count (u16 BE). The server answers by unicast with MoldUDP64 packets of
//! those messages from its [`PacketList`] (as many packets as the count needs, each within the
//! payload limit); the client asks for the open gaps of an [`Arbiter`]'s streams and hands the
//! answers back as datagrams of the stream's line A.

use std::net::{SocketAddr, SocketAddrV4, UdpSocket};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use serde::Serialize;

use super::packets::PacketList;
use super::{now_ns, sock_err, NetError};
use crate::mold::packet::{HEADER_LEN, SESSION_LEN};
use crate::mold::{Arbiter, Datagram, Session};

/// Bytes in a request.
pub const REQUEST_LEN: usize = 20;
/// Most packets sent for one request.
const MAX_REPLY_PACKETS: usize = 1_024;

/// What the server did.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct ServeStats {
    /// Requests answered.
    pub requests: u64,
    /// Requests ignored (wrong length or session).
    pub ignored: u64,
    /// Packets sent back.
    pub packets: u64,
    /// Messages in them.
    pub messages: u64,
}

/// A re-request server on its own thread.
#[derive(Debug)]
pub struct RerequestServer {
    addr: SocketAddrV4,
    stop: Arc<AtomicBool>,
    thread: JoinHandle<ServeStats>,
}

impl RerequestServer {
    /// Binds `bind` (port 0: any) and answers from `list`, packets up to `max_payload` bytes.
    ///
    /// # Errors
    /// Binding the socket.
    pub fn spawn(
        list: Arc<PacketList>,
        bind: SocketAddrV4,
        max_payload: usize,
    ) -> Result<RerequestServer, NetError> {
        let sock = UdpSocket::bind(bind).map_err(sock_err(format!("binding {bind}")))?;
        sock.set_read_timeout(Some(Duration::from_millis(20)))
            .map_err(sock_err("SO_RCVTIMEO"))?;
        let addr = match sock.local_addr().map_err(sock_err("getsockname"))? {
            SocketAddr::V4(a) => a,
            SocketAddr::V6(_) => return Err(NetError::Option("the re-request server is IPv4")),
        };
        let stop = Arc::new(AtomicBool::new(false));
        let s = Arc::clone(&stop);
        let max_payload = max_payload.max(HEADER_LEN + 2 + 64);
        let thread = std::thread::spawn(move || serve(&sock, &list, max_payload, &s));
        Ok(RerequestServer { addr, stop, thread })
    }

    /// The address it answers on.
    pub fn addr(&self) -> SocketAddrV4 {
        self.addr
    }

    /// Stops the thread; its counters.
    pub fn stop(self) -> ServeStats {
        self.stop.store(true, Ordering::Relaxed);
        self.thread.join().unwrap_or_default()
    }
}

fn serve(sock: &UdpSocket, list: &PacketList, max_payload: usize, stop: &AtomicBool) -> ServeStats {
    let mut r = Replier {
        sock,
        list,
        max_payload,
        out: Vec::with_capacity(max_payload),
        stats: ServeStats::default(),
    };
    let mut req = [0u8; 64];
    while !stop.load(Ordering::Relaxed) {
        let Ok((n, from)) = sock.recv_from(&mut req) else {
            continue; // timeout: look at `stop` again
        };
        match parse_request(&req[..n]) {
            Some((s, seq, count)) if s == list.session() => {
                r.stats.requests += 1;
                r.answer(from, seq, count);
            }
            _ => r.stats.ignored += 1,
        }
    }
    r.stats
}

/// (session, first sequence, count) of a request.
pub fn parse_request(b: &[u8]) -> Option<(Session, u64, u16)> {
    if b.len() != REQUEST_LEN {
        return None;
    }
    let session = Session(b[..SESSION_LEN].try_into().ok()?);
    let seq = u64::from_be_bytes(b[10..18].try_into().ok()?);
    Some((session, seq, u16::from_be_bytes([b[18], b[19]])))
}

/// The server's answering state.
struct Replier<'a> {
    sock: &'a UdpSocket,
    list: &'a PacketList,
    max_payload: usize,
    out: Vec<u8>,
    stats: ServeStats,
}

impl Replier<'_> {
    /// Sends messages `seq..seq+count` (stopping at one the list lacks) in packets.
    fn answer(&mut self, to: SocketAddr, seq: u64, count: u16) {
        let end = seq.saturating_add(u64::from(count));
        let mut next = seq;
        for _ in 0..MAX_REPLY_PACKETS {
            let first = next;
            next = self.fill(first, end);
            let n = (next - first) as u16;
            if n == 0 {
                return;
            }
            self.out[18..20].copy_from_slice(&n.to_be_bytes());
            if self.sock.send_to(&self.out, to).is_ok() {
                self.stats.packets += 1;
                self.stats.messages += u64::from(n);
            }
        }
    }

    /// A packet of messages from `first` (before `end`) in `out`; the sequence after its last.
    fn fill(&mut self, first: u64, end: u64) -> u64 {
        self.out.clear();
        self.out.extend_from_slice(&self.list.session().0);
        self.out.extend_from_slice(&first.to_be_bytes());
        self.out.extend_from_slice(&[0, 0]);
        let mut next = first;
        while next < end {
            let Some(m) = self.list.message(next) else {
                break;
            };
            if self.out.len() + m.len() > self.max_payload && next > first {
                break;
            }
            self.out.extend_from_slice(m);
            next += 1;
        }
        next
    }
}

/// What the client did.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct RequestStats {
    /// Requests sent.
    pub requests: u64,
    /// Messages asked for.
    pub asked: u64,
    /// Reply datagrams received.
    pub replies: u64,
}

/// Asks a re-request server for an [`Arbiter`]'s open gaps.
#[derive(Debug)]
pub struct Rerequester {
    sock: UdpSocket,
    server: SocketAddrV4,
    /// A gap is asked for once it has been open this long (the other line may fill it first).
    pub grace: Duration,
    /// A gap still open this long after its request is asked for again.
    pub retry: Duration,
    asked: Vec<(u32, u64, Instant)>,
    buf: Vec<u8>,
    stats: RequestStats,
}

impl Rerequester {
    /// A client of `server`.
    ///
    /// # Errors
    /// Creating the socket.
    pub fn new(server: SocketAddrV4) -> Result<Rerequester, NetError> {
        let sock = UdpSocket::bind("0.0.0.0:0").map_err(sock_err("binding the request socket"))?;
        sock.set_nonblocking(true).map_err(sock_err("O_NONBLOCK"))?;
        Ok(Rerequester {
            sock,
            server,
            grace: Duration::from_millis(1),
            retry: Duration::from_millis(20),
            asked: Vec::new(),
            buf: vec![0; 65_536],
            stats: RequestStats::default(),
        })
    }

    /// Counters so far.
    pub fn stats(&self) -> RequestStats {
        self.stats
    }

    /// Requests every open gap of `arb`'s streams not asked for recently; how many were sent.
    ///
    /// # Errors
    /// Sending a request.
    pub fn request_gaps(&mut self, arb: &Arbiter) -> Result<usize, NetError> {
        let now = now_ns();
        let mut sent = 0;
        for id in 0..arb.streams() as u32 {
            let (Some(s), Some(key)) = (arb.stream(id), arb.stream_key(id)) else {
                continue;
            };
            for g in s.gaps().iter().filter(|g| g.closed_ns.is_none()) {
                let young = now.saturating_sub(g.noticed_ns) < self.grace.as_nanos() as u64;
                if young || !self.due(id, g.first) {
                    continue;
                }
                let count = (g.last - g.first + 1).min(u64::from(u16::MAX - 1)) as u16;
                self.send_request(key.session, g.first, count)?;
                sent += 1;
            }
        }
        Ok(sent)
    }

    /// Whether gap (stream, first) should be asked now; notes the request.
    fn due(&mut self, id: u32, first: u64) -> bool {
        let now = Instant::now();
        match self.asked.iter_mut().find(|a| a.0 == id && a.1 == first) {
            Some(a) if now.duration_since(a.2) < self.retry => false,
            Some(a) => {
                a.2 = now;
                true
            }
            None => {
                self.asked.push((id, first, now));
                true
            }
        }
    }

    fn send_request(&mut self, session: Session, seq: u64, count: u16) -> Result<(), NetError> {
        let mut req = [0u8; REQUEST_LEN];
        req[..SESSION_LEN].copy_from_slice(&session.0);
        req[10..18].copy_from_slice(&seq.to_be_bytes());
        req[18..20].copy_from_slice(&count.to_be_bytes());
        self.sock
            .send_to(&req, self.server)
            .map_err(sock_err(format!("re-request to {}", self.server)))?;
        self.stats.requests += 1;
        self.stats.asked += u64::from(count);
        Ok(())
    }

    /// Hands every reply waiting to `f`, as a datagram to `line_a` (the stream's channel) stamped
    /// now; how many.
    ///
    /// # Errors
    /// Receiving, other than nothing waiting.
    pub fn poll(
        &mut self,
        line_a: SocketAddrV4,
        mut f: impl FnMut(&Datagram<'_>),
    ) -> Result<usize, NetError> {
        let mut n = 0;
        loop {
            let (len, from) = match self.sock.recv_from(&mut self.buf) {
                Ok(r) => r,
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return Ok(n),
                Err(e) => return Err(sock_err("receiving a re-request reply")(e)),
            };
            let SocketAddr::V4(src) = from else { continue };
            self.stats.replies += 1;
            n += 1;
            let d = Datagram {
                ts_ns: now_ns(),
                src,
                dst: line_a,
                payload: &self.buf[..len],
                offset: 0,
            };
            f(&d);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_are_20_bytes() {
        let mut r = [0u8; REQUEST_LEN];
        r[..10].copy_from_slice(b"SESSION1  ");
        r[10..18].copy_from_slice(&77u64.to_be_bytes());
        r[18..20].copy_from_slice(&5u16.to_be_bytes());
        let (s, seq, n) = parse_request(&r).unwrap();
        assert_eq!((s.name().as_str(), seq, n), ("SESSION1", 77, 5));
        assert!(parse_request(&r[..19]).is_none());
        assert!(parse_request(&[0; 21]).is_none());
    }
}
