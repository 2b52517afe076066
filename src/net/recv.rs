//! The receiver: one nonblocking socket per line, drained with `recvmmsg` in batches, each
//! datagram with its kernel receive timestamp (`SO_TIMESTAMPING`: the NIC's when it stamps
//! packets, else the kernel's software stamp) and each socket's kernel drop counter
//! (`SO_RXQ_OVFL`). Datagrams come out as [`mold::Datagram`]s for the [`crate::mold::Arbiter`].
//!
//! The only `unsafe` of the module: the `recvmmsg` and `poll` calls, `setsockopt`, and reading
//! the control messages the kernel wrote.

use std::mem::{size_of, zeroed};
use std::net::{Ipv4Addr, SocketAddrV4, UdpSocket};
use std::os::fd::AsRawFd;
use std::time::Duration;

use serde::Serialize;

use super::hwstamp::HwStamping;
use super::socket::{self, setsockopt_int};
use super::{now_ns, sock_err, NetError};
use crate::mold::Datagram;

/// Datagrams per `recvmmsg` call.
pub const BATCH: usize = 64;
/// Bytes per datagram slot (a jumbo frame's UDP payload fits).
pub const SLOT: usize = 9_216;
/// Control-message bytes per slot, as u64 words (aligned as `cmsghdr` needs).
const CTRL_WORDS: usize = 32;

/// Which clock stamped the datagrams.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum TimestampSource {
    /// The NIC (`SO_TIMESTAMPING` raw hardware).
    Hardware,
    /// The kernel, on receive (`SO_TIMESTAMPING` software).
    Software,
    /// None came: stamped with the realtime clock when read.
    User,
}

/// What to receive.
#[derive(Debug, Clone)]
pub struct RecvOptions {
    /// Line A, and line B if two (`udp://GROUP:PORT`).
    pub lines: Vec<SocketAddrV4>,
    /// Interface address to join on; `None`: the routing table's choice.
    pub iface: Option<Ipv4Addr>,
    /// Receive buffer asked for per socket.
    pub rcvbuf: usize,
}

impl RecvOptions {
    /// `lines` on any interface, with the default buffer.
    pub fn new(lines: Vec<SocketAddrV4>) -> RecvOptions {
        RecvOptions {
            lines,
            iface: None,
            rcvbuf: socket::RCVBUF,
        }
    }
}

/// Counters so far.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct RecvStats {
    /// Datagrams received.
    pub datagrams: u64,
    /// UDP payload bytes received.
    pub bytes: u64,
    /// `recvmmsg` calls that returned datagrams.
    pub batches: u64,
    /// Datagrams the kernel dropped (socket buffer full; `SO_RXQ_OVFL`, all lines).
    pub kernel_drops: u64,
    /// Datagrams longer than a slot (cut short).
    pub truncated: u64,
    /// Datagrams stamped by the NIC.
    pub hw_stamped: u64,
    /// Datagrams stamped by the kernel in software.
    pub sw_stamped: u64,
    /// Datagrams that came with no stamp (stamped with the realtime clock when read).
    pub unstamped: u64,
    /// The last hardware stamp minus the realtime clock when it was read, ns: the NIC's clock
    /// against the system's (plus the time the datagram waited in the socket).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hw_clock_ahead_ns: Option<i64>,
    /// Receive buffer granted per socket, bytes.
    pub rcvbuf: usize,
}

/// A NIC clock this far from the system clock is not synced to it (a datagram waiting in its
/// socket is ms behind, not a second).
const UNSYNCED_NS: u64 = 1_000_000_000;

impl RecvStats {
    /// A warning when the hardware stamps are in a clock not kept to the system clock (the
    /// latency measured from them would be off by the difference).
    pub fn hw_clock_warning(&self) -> Option<String> {
        let d = self.hw_clock_ahead_ns?;
        (d.unsigned_abs() >= UNSYNCED_NS).then(|| {
            format!(
                "the NIC's clock is {:.3} s {} the system clock: wire → book from its stamps is off by that much (keep it synced: phc2sys)",
                d.unsigned_abs() as f64 / 1e9,
                if d > 0 { "ahead of" } else { "behind" }
            )
        })
    }

    /// The best clock seen.
    pub fn timestamps(&self) -> TimestampSource {
        match (self.hw_stamped, self.sw_stamped) {
            (h, _) if h > 0 => TimestampSource::Hardware,
            (_, s) if s > 0 => TimestampSource::Software,
            _ => TimestampSource::User,
        }
    }
}

#[derive(Debug)]
struct Line {
    sock: UdpSocket,
    group: SocketAddrV4,
    /// The socket's cumulative drop count, as last reported.
    drops: u32,
}

/// Receives one or two lines.
#[derive(Debug)]
pub struct Receiver {
    lines: Vec<Line>,
    /// One batch buffer per line: the lines' datagrams are merged by receive time.
    batches: Vec<Batch>,
    ctrl: Vec<u64>,
    stats: RecvStats,
    /// What `--hw-timestamps` did, when asked.
    hw: Option<HwStamping>,
}

/// One line's last `recvmmsg` batch: its payloads and what the kernel said of each.
#[derive(Debug)]
struct Batch {
    data: Vec<u8>,
    got: Vec<Got>,
    /// The next datagram of `got` to hand out.
    next: usize,
    /// The last `recvmmsg` filled the batch: more may be waiting.
    full: bool,
}

/// A received datagram's place in its batch and its metadata.
#[derive(Debug, Clone, Copy)]
struct Got {
    ts_ns: u64,
    src: SocketAddrV4,
    len: usize,
}

impl Batch {
    fn new() -> Batch {
        Batch {
            data: vec![0; BATCH * SLOT],
            got: Vec::with_capacity(BATCH),
            next: 0,
            full: false,
        }
    }

    /// The receive time of the next datagram not handed out.
    fn head(&self) -> Option<u64> {
        self.got.get(self.next).map(|g| g.ts_ns)
    }
}

impl Receiver {
    /// Joins every line and turns on timestamps and the drop counter.
    ///
    /// # Errors
    /// No line or more than two, or a socket call failing.
    pub fn new(opts: &RecvOptions) -> Result<Receiver, NetError> {
        if opts.lines.is_empty() || opts.lines.len() > 2 {
            return Err(NetError::Option("one or two lines (A and B)"));
        }
        let mut lines = Vec::new();
        let mut stats = RecvStats::default();
        for &group in &opts.lines {
            let (sock, granted) = socket::receiver(group, opts.iface, opts.rcvbuf)?;
            enable_stamps(&sock)?;
            stats.rcvbuf = granted;
            lines.push(Line {
                sock,
                group,
                drops: 0,
            });
        }
        Ok(Receiver {
            lines,
            batches: opts.lines.iter().map(|_| Batch::new()).collect(),
            ctrl: vec![0; BATCH * CTRL_WORDS],
            stats,
            hw: None,
        })
    }

    /// Notes what was done to have the NIC stamp the packets ([`super::hwstamp::enable`]), for
    /// the report.
    pub fn with_hw_stamping(mut self, hw: HwStamping) -> Receiver {
        self.hw = Some(hw);
        self
    }

    /// What was done to have the NIC stamp the packets, when asked.
    pub fn hw_stamping(&self) -> Option<&HwStamping> {
        self.hw.as_ref()
    }

    /// The lines' groups.
    pub fn lines(&self) -> Vec<SocketAddrV4> {
        self.lines.iter().map(|l| l.group).collect()
    }

    /// Counters so far. The kernel's drop count is read from each socket now (`SO_MEMINFO`):
    /// `SO_RXQ_OVFL` only tells it with the next datagram queued after a drop.
    pub fn stats(&self) -> RecvStats {
        let mut s = self.stats;
        let now: u64 = self
            .lines
            .iter()
            .filter_map(|l| socket_drops(&l.sock))
            .map(u64::from)
            .sum();
        s.kernel_drops = s.kernel_drops.max(now);
        s
    }

    /// Waits up to `timeout` for datagrams, then hands every one waiting (in batches) to `f`;
    /// how many.
    ///
    /// # Errors
    /// `poll` or `recvmmsg` failing (other than nothing waiting or a signal).
    pub fn poll(
        &mut self,
        timeout: Duration,
        f: impl FnMut(&Datagram<'_>),
    ) -> Result<usize, NetError> {
        self.poll_up_to(timeout, usize::MAX, f)
    }

    /// [`Receiver::poll`], handing out at most `max` datagrams: the rest wait for the next call
    /// (in the batches already read, or in the sockets), so a caller draining a backlog can
    /// act between parts of it (e.g. ask for a gap before its window fills).
    ///
    /// # Errors
    /// As [`Receiver::poll`].
    pub fn poll_up_to(
        &mut self,
        timeout: Duration,
        max: usize,
        mut f: impl FnMut(&Datagram<'_>),
    ) -> Result<usize, NetError> {
        let left = self.batches.iter().any(|b| b.head().is_some());
        if !left && !self.wait(timeout)? {
            return Ok(0);
        }
        for li in 0..self.lines.len() {
            if self.batches[li].head().is_none() {
                self.recv_batch(li)?;
            }
        }
        // Oldest first across the lines, so that line A does not run ahead of line B through
        // a backlog (its gaps would look older than they are to an arbiter's reorder window);
        // a line's next batch is read when its last one, full, is used up.
        let mut n = 0;
        while n < max {
            let Some(li) = self.oldest() else { break };
            let b = &mut self.batches[li];
            let g = b.got[b.next];
            b.next += 1;
            n += 1;
            let d = Datagram {
                ts_ns: g.ts_ns,
                src: g.src,
                dst: self.lines[li].group,
                payload: &b.data[(b.next - 1) * SLOT..][..g.len],
                offset: self.stats.bytes,
            };
            f(&d);
            if b.next == b.got.len() && b.full {
                self.recv_batch(li)?;
            }
        }
        Ok(n)
    }

    /// The line whose next datagram is the oldest, if any is waiting.
    fn oldest(&self) -> Option<usize> {
        (0..self.batches.len())
            .filter_map(|li| self.batches[li].head().map(|t| (t, li)))
            .min()
            .map(|(_, li)| li)
    }

    /// Whether a line is readable within `timeout`.
    fn wait(&self, timeout: Duration) -> Result<bool, NetError> {
        let mut fds = [libc::pollfd {
            fd: -1,
            events: libc::POLLIN,
            revents: 0,
        }; 2];
        for (p, l) in fds.iter_mut().zip(&self.lines) {
            p.fd = l.sock.as_raw_fd();
        }
        let ms = timeout.as_millis().min(i32::MAX as u128) as i32;
        // SAFETY: `fds` is a live array of `lines.len()` ≤ 2 pollfds.
        let r = unsafe { libc::poll(fds.as_mut_ptr(), self.lines.len() as libc::nfds_t, ms) };
        match r {
            r if r >= 0 => Ok(r > 0),
            _ => {
                let e = std::io::Error::last_os_error();
                match e.kind() {
                    std::io::ErrorKind::Interrupted => Ok(false),
                    _ => Err(sock_err("poll")(e)),
                }
            }
        }
    }

    /// One `recvmmsg` on line `li` into its batch; how many datagrams.
    fn recv_batch(&mut self, li: usize) -> Result<usize, NetError> {
        let mut s = Slots::zeroed();
        let b = &mut self.batches[li];
        (b.next, b.full) = (0, false);
        b.got.clear();
        s.aim(&mut b.data, &mut self.ctrl);
        let fd = self.lines[li].sock.as_raw_fd();
        // SAFETY: every header points into `s.names`, `s.iovs`, the batch's data and
        // `self.ctrl`, which outlive the call, do not move during it, and are as large as the
        // lengths given.
        let r = unsafe {
            libc::recvmmsg(
                fd,
                s.hdrs.as_mut_ptr(),
                BATCH as u32,
                libc::MSG_DONTWAIT,
                std::ptr::null_mut(),
            )
        };
        if r < 0 {
            let e = std::io::Error::last_os_error();
            return match e.kind() {
                std::io::ErrorKind::WouldBlock | std::io::ErrorKind::Interrupted => Ok(0),
                _ => Err(sock_err(format!("recvmmsg on {}", self.lines[li].group))(e)),
            };
        }
        let n = r as usize;
        self.stats.batches += u64::from(n > 0);
        for i in 0..n {
            let h = &s.hdrs[i];
            let meta = read_ctrl(&h.msg_hdr);
            self.count(li, &meta, h.msg_len as usize, h.msg_hdr.msg_flags);
            let g = Got {
                ts_ns: meta.ts_ns.unwrap_or_else(now_ns),
                src: from_sockaddr(&s.names[i]),
                len: (h.msg_len as usize).min(SLOT),
            };
            self.batches[li].got.push(g);
        }
        self.batches[li].full = n == BATCH;
        Ok(n)
    }

    fn count(&mut self, li: usize, m: &Meta, len: usize, flags: i32) {
        let s = &mut self.stats;
        s.datagrams += 1;
        s.bytes += len as u64;
        s.truncated += u64::from(flags & libc::MSG_TRUNC != 0);
        s.hw_stamped += u64::from(m.hardware);
        if let (true, Some(ts)) = (m.hardware, m.ts_ns) {
            s.hw_clock_ahead_ns = Some(ts as i64 - now_ns() as i64);
        }
        s.sw_stamped += u64::from(m.ts_ns.is_some() && !m.hardware);
        s.unstamped += u64::from(m.ts_ns.is_none());
        if let Some(d) = m.drops {
            let line = &mut self.lines[li];
            s.kernel_drops += u64::from(d.wrapping_sub(line.drops));
            line.drops = d;
        }
    }
}

/// The `recvmmsg` headers of one batch, each aimed at its slot of the data and control
/// buffers and at its own source address. Not moved once aimed (the headers point into it).
struct Slots {
    names: [libc::sockaddr_in; BATCH],
    iovs: [libc::iovec; BATCH],
    hdrs: [libc::mmsghdr; BATCH],
}

impl Slots {
    fn zeroed() -> Slots {
        // SAFETY: all-zero bytes are a valid value of these plain C structs (null pointers,
        // zero lengths).
        unsafe { zeroed() }
    }

    fn aim(&mut self, data: &mut [u8], ctrl: &mut [u64]) {
        for i in 0..BATCH {
            self.iovs[i].iov_base = data[i * SLOT..].as_mut_ptr().cast();
            self.iovs[i].iov_len = SLOT;
            let h = &mut self.hdrs[i].msg_hdr;
            h.msg_name = (&mut self.names[i] as *mut libc::sockaddr_in).cast();
            h.msg_namelen = size_of::<libc::sockaddr_in>() as u32;
            h.msg_iov = &mut self.iovs[i];
            h.msg_iovlen = 1;
            h.msg_control = ctrl[i * CTRL_WORDS..].as_mut_ptr().cast();
            h.msg_controllen = CTRL_WORDS * 8;
        }
    }
}

/// `SO_MEMINFO` (asm-generic/socket.h; the libc crate lacks it).
const SO_MEMINFO: libc::c_int = 55;

/// The socket's drop counter (`SK_MEMINFO_DROPS`), if the kernel tells it.
fn socket_drops(sock: &UdpSocket) -> Option<u32> {
    let mut info = [0u32; 9];
    let mut len = size_of::<[u32; 9]>() as libc::socklen_t;
    // SAFETY: `info` and `len` live across the call; the kernel writes at most `len` bytes.
    let r = unsafe {
        libc::getsockopt(
            sock.as_raw_fd(),
            libc::SOL_SOCKET,
            SO_MEMINFO,
            info.as_mut_ptr().cast(),
            &mut len,
        )
    };
    let at = libc::SK_MEMINFO_DROPS as usize;
    (r == 0 && len as usize > at * 4).then(|| info[at])
}

/// Turns on receive timestamps (software, and hardware where the NIC gives them) and the drop
/// counter.
fn enable_stamps(sock: &UdpSocket) -> Result<(), NetError> {
    let fd = sock.as_raw_fd();
    let flags = libc::SOF_TIMESTAMPING_RX_SOFTWARE
        | libc::SOF_TIMESTAMPING_SOFTWARE
        | libc::SOF_TIMESTAMPING_RX_HARDWARE
        | libc::SOF_TIMESTAMPING_RAW_HARDWARE;
    setsockopt_int(fd, libc::SOL_SOCKET, libc::SO_TIMESTAMPING, flags as i32)
        .map_err(sock_err("SO_TIMESTAMPING"))?;
    setsockopt_int(fd, libc::SOL_SOCKET, libc::SO_RXQ_OVFL, 1).map_err(sock_err("SO_RXQ_OVFL"))
}

/// What the control messages of one datagram said.
#[derive(Debug, Default)]
struct Meta {
    ts_ns: Option<u64>,
    hardware: bool,
    drops: Option<u32>,
}

/// Reads the timestamp and drop counter from a received message's control messages.
fn read_ctrl(h: &libc::msghdr) -> Meta {
    let mut m = Meta::default();
    // SAFETY: `h` was filled by `recvmmsg`: its control buffer holds `msg_controllen` bytes of
    // well-formed cmsgs, walked with the libc macros; payloads are read unaligned and only when
    // the cmsg is long enough for them.
    unsafe {
        let mut c = libc::CMSG_FIRSTHDR(h);
        while !c.is_null() {
            let (level, kind, len) = ((*c).cmsg_level, (*c).cmsg_type, (*c).cmsg_len as usize);
            let data = libc::CMSG_DATA(c);
            let room = len.saturating_sub(data as usize - c as usize);
            if level == libc::SOL_SOCKET
                && kind == libc::SCM_TIMESTAMPING
                && room >= 3 * size_of::<libc::timespec>()
            {
                let ts: [libc::timespec; 3] = std::ptr::read_unaligned(data.cast());
                let ns = |t: libc::timespec| t.tv_sec as u64 * 1_000_000_000 + t.tv_nsec as u64;
                // [0] software, [1] legacy, [2] raw hardware: the hardware one when set.
                if ts[2].tv_sec != 0 || ts[2].tv_nsec != 0 {
                    (m.ts_ns, m.hardware) = (Some(ns(ts[2])), true);
                } else if ts[0].tv_sec != 0 || ts[0].tv_nsec != 0 {
                    m.ts_ns = Some(ns(ts[0]));
                }
            } else if level == libc::SOL_SOCKET && kind == libc::SO_RXQ_OVFL && room >= 4 {
                m.drops = Some(std::ptr::read_unaligned(data.cast::<u32>()));
            }
            c = libc::CMSG_NXTHDR(h, c);
        }
    }
    m
}

fn from_sockaddr(a: &libc::sockaddr_in) -> SocketAddrV4 {
    let ip = Ipv4Addr::from(u32::from_be(a.sin_addr.s_addr));
    SocketAddrV4::new(ip, u16::from_be(a.sin_port))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_unsynced_nic_clock_is_named() {
        let mut s = RecvStats::default();
        assert_eq!(s.hw_clock_warning(), None);
        s.hw_clock_ahead_ns = Some(-3_000_000); // 3 ms in the socket: synced
        assert_eq!(s.hw_clock_warning(), None);
        s.hw_clock_ahead_ns = Some(-37_000_000_000); // TAI against UTC
        let w = s.hw_clock_warning().unwrap();
        assert!(
            w.starts_with("the NIC's clock is 37.000 s behind the system clock"),
            "{w}"
        );
        s.hw_clock_ahead_ns = Some(5_000_000_000);
        assert!(s.hw_clock_warning().unwrap().contains("5.000 s ahead of"));
    }
}
