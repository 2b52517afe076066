//! A sender that is not the bottleneck, for finding the receiver's: every packet's `sendmmsg`
//! header built before the first is sent, then the packets out in batches, line A and line B
//! interleaved, either as fast as the kernel takes them or at a fixed rate (batches due on a
//! schedule, the thread asleep between them, so that it leaves the receiver its core). No
//! pacing from the feed's times, no heartbeats, no faults; an end of session at the end.
//!
//! The `unsafe` here: the `sendmmsg` call.

use std::net::{Ipv4Addr, SocketAddrV4, UdpSocket};
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use serde::Serialize;

use super::packets::PacketList;
use super::{sock_err, socket, NetError};
use crate::mold::packet::{write_packet, END_OF_SESSION};

/// Datagrams per `sendmmsg` call.
pub const BATCH: usize = 64;

/// Where and how fast to blast.
#[derive(Debug, Clone)]
pub struct BlastOptions {
    /// Line A, and line B if two (each gets every packet).
    pub lines: Vec<SocketAddrV4>,
    /// Interface address to send from.
    pub iface: Option<Ipv4Addr>,
    /// Multicast TTL.
    pub ttl: u32,
    /// Datagrams per second on each line; `None`: as fast as the kernel takes them.
    pub rate: Option<u64>,
}

/// What a blast did.
#[derive(Debug, Clone, Default, Serialize)]
pub struct BlastReport {
    /// Data packets sent (on each line).
    pub packets: u64,
    /// Messages in them.
    pub messages: u64,
    /// Datagrams sent on all lines, data only.
    pub datagrams: u64,
    /// `sendmmsg` calls.
    pub calls: u64,
    /// Wall time from the first data datagram to the last, ns.
    pub elapsed_ns: u64,
    /// The rate asked for, datagrams/s per line (`None`: as fast as possible).
    pub rate_asked: Option<u64>,
    /// The rate achieved, datagrams/s per line.
    pub rate_per_line: f64,
    /// Batches sent after their due time by more than a batch's interval (the sender fell
    /// behind the rate asked for).
    pub late_batches: u64,
    /// Sequence number of the end of session.
    pub end_sequence: u64,
    /// Stopped before the end (Ctrl-C).
    pub interrupted: bool,
}

/// One datagram's `sendmmsg` entry: where it goes and its bytes.
#[derive(Clone, Copy)]
struct Entry {
    dst: libc::sockaddr_in,
    data: *const u8,
    len: usize,
}

fn sockaddr(a: SocketAddrV4) -> libc::sockaddr_in {
    libc::sockaddr_in {
        sin_family: libc::AF_INET as libc::sa_family_t,
        sin_port: a.port().to_be(),
        sin_addr: libc::in_addr {
            s_addr: u32::from(*a.ip()).to_be(),
        },
        sin_zero: [0; 8],
    }
}

/// Every data packet of `list` to every line, in order (A, B, A, B, …).
fn entries(list: &PacketList, lines: &[SocketAddrV4]) -> Vec<Entry> {
    let dsts: Vec<libc::sockaddr_in> = lines.iter().map(|&l| sockaddr(l)).collect();
    let mut v = Vec::with_capacity(list.packets().len() * lines.len());
    for p in list.packets() {
        let b = list.bytes(p);
        for &dst in &dsts {
            v.push(Entry {
                dst,
                data: b.as_ptr(),
                len: b.len(),
            });
        }
    }
    v
}

/// Sends `list` to `o.lines` as [`BlastOptions`] says, then the end of session (three times,
/// 10 ms apart, so that a receiver whose buffer overflowed still sees one).
///
/// # Errors
/// No line or more than two, a rate of 0, or a socket call failing.
pub fn blast(
    list: &PacketList,
    o: &BlastOptions,
    stop: &AtomicBool,
) -> Result<BlastReport, NetError> {
    if o.lines.is_empty() || o.lines.len() > 2 {
        return Err(NetError::Option("one or two destinations (lines A and B)"));
    }
    if o.rate == Some(0) {
        return Err(NetError::Option("blast rate: at least 1 datagram/s"));
    }
    let sock = socket::sender(o.iface, o.ttl)?;
    let all = entries(list, &o.lines);
    let nl = o.lines.len();
    // The interval between batches at the rate asked for (all lines together).
    let interval = o
        .rate
        .map(|r| Duration::from_secs_f64(BATCH as f64 / (r as f64 * nl as f64)));
    let mut r = BlastReport {
        rate_asked: o.rate,
        ..BlastReport::default()
    };
    let start = Instant::now();
    for (k, chunk) in all.chunks(BATCH).enumerate() {
        if stop.load(Ordering::Relaxed) {
            r.interrupted = true;
            break;
        }
        if let Some(iv) = interval {
            let due = start + iv * k as u32;
            let now = Instant::now();
            match due.checked_duration_since(now) {
                Some(wait) => std::thread::sleep(wait),
                None => r.late_batches += u64::from(now - due > iv),
            }
        }
        r.calls += send_all(&sock, chunk)?;
        r.datagrams += chunk.len() as u64;
    }
    r.elapsed_ns = start.elapsed().as_nanos() as u64;
    let sent_packets = r.datagrams as usize / nl;
    r.packets = sent_packets as u64;
    r.messages = list.packets()[..sent_packets]
        .iter()
        .map(|p| u64::from(p.count))
        .sum();
    r.rate_per_line = r.packets as f64 / (r.elapsed_ns.max(1) as f64 / 1e9);
    r.end_sequence = match list.packets().get(sent_packets) {
        Some(p) => p.seq,
        None => list.next_seq(),
    };
    let mut eos = Vec::new();
    write_packet(
        &mut eos,
        list.session(),
        r.end_sequence,
        END_OF_SESSION,
        &[],
    )
    .expect("no messages");
    for _ in 0..3 {
        std::thread::sleep(Duration::from_millis(10));
        for &dst in &o.lines {
            sock.send_to(&eos, dst)
                .map_err(sock_err(format!("sending to {dst}")))?;
        }
    }
    Ok(r)
}

/// `sendmmsg` until every datagram of `chunk` (at most [`BATCH`]) is sent; the calls made.
fn send_all(sock: &UdpSocket, chunk: &[Entry]) -> Result<u64, NetError> {
    let mut names = [sockaddr(SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 0)); BATCH];
    // SAFETY: all-zero bytes are valid values of these plain C structs.
    let mut iovs: [libc::iovec; BATCH] = unsafe { std::mem::zeroed() };
    // SAFETY: as above.
    let mut hdrs: [libc::mmsghdr; BATCH] = unsafe { std::mem::zeroed() };
    for (i, e) in chunk.iter().enumerate() {
        names[i] = e.dst;
        iovs[i] = libc::iovec {
            iov_base: e.data as *mut libc::c_void,
            iov_len: e.len,
        };
        let h = &mut hdrs[i].msg_hdr;
        h.msg_name = (&mut names[i] as *mut libc::sockaddr_in).cast();
        h.msg_namelen = std::mem::size_of::<libc::sockaddr_in>() as u32;
        h.msg_iov = &mut iovs[i];
        h.msg_iovlen = 1;
    }
    let (mut done, mut calls) = (0, 0);
    while done < chunk.len() {
        // SAFETY: the headers from `done` on point into `names`, `iovs` and the packet list's
        // bytes (borrowed by the caller for the call), all live and unmoved across it; the
        // kernel only reads them.
        let n = unsafe {
            libc::sendmmsg(
                sock.as_raw_fd(),
                hdrs[done..].as_mut_ptr(),
                (chunk.len() - done) as u32,
                0,
            )
        };
        calls += 1;
        if n < 0 {
            let e = std::io::Error::last_os_error();
            if e.kind() == std::io::ErrorKind::Interrupted {
                continue;
            }
            return Err(sock_err("sendmmsg")(e));
        }
        done += n as usize;
    }
    Ok(calls)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_interleave_the_lines_packet_by_packet() {
        let mut itch = Vec::new();
        for i in 0..5u64 {
            // System events far apart in time: one packet each.
            let mut m = [0u8; 12];
            m[0] = b'S';
            m[5..11].copy_from_slice(&(i * 1_000_000).to_be_bytes()[2..]);
            m[11] = b'O';
            itch.extend_from_slice(&12u16.to_be_bytes());
            itch.extend_from_slice(&m);
        }
        let list = PacketList::from_itch(&itch, &Default::default()).unwrap();
        assert_eq!(list.packets().len(), 5);
        let a: SocketAddrV4 = "239.1.1.1:5000".parse().unwrap();
        let b: SocketAddrV4 = "239.1.1.2:5000".parse().unwrap();
        let e = entries(&list, &[a, b]);
        assert_eq!(e.len(), 10);
        for (i, x) in e.iter().enumerate() {
            let want = [a, b][i % 2];
            assert_eq!(x.dst.sin_addr.s_addr, u32::from(*want.ip()).to_be());
            assert_eq!(x.len, list.bytes(&list.packets()[i / 2]).len());
        }
    }
}
