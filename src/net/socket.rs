//! Socket setup shared by the sender and the receiver (socket2; no `unsafe` here).

use std::mem::size_of;
use std::net::{Ipv4Addr, SocketAddrV4, UdpSocket};
use std::os::fd::RawFd;

use socket2::{Domain, Protocol, Socket, Type};

use super::{sock_err, NetError};

/// Receive buffer asked for by default (the kernel caps it at `net.core.rmem_max` unless the
/// process may force it, as root may).
pub const RCVBUF: usize = 64 << 20;

fn udp() -> Result<Socket, NetError> {
    Socket::new(Domain::IPV4, Type::DGRAM, Some(Protocol::UDP)).map_err(sock_err("socket()"))
}

/// A socket that sends multicast out of `iface` (IP_MULTICAST_IF; the routing table's choice
/// when `None`) with `ttl`, looped back to local receivers.
///
/// # Errors
/// A socket call failing.
pub fn sender(iface: Option<Ipv4Addr>, ttl: u32) -> Result<UdpSocket, NetError> {
    let s = udp()?;
    if let Some(ip) = iface {
        s.set_multicast_if_v4(&ip)
            .map_err(sock_err(format!("IP_MULTICAST_IF {ip}")))?;
    }
    s.set_multicast_ttl_v4(ttl)
        .map_err(sock_err("IP_MULTICAST_TTL"))?;
    s.set_multicast_loop_v4(true)
        .map_err(sock_err("IP_MULTICAST_LOOP"))?;
    let local = SocketAddrV4::new(iface.unwrap_or(Ipv4Addr::UNSPECIFIED), 0);
    s.bind(&local.into())
        .map_err(sock_err(format!("binding {local}")))?;
    Ok(s.into())
}

/// A nonblocking socket bound to `group`'s port that has joined `group` on `iface` (any
/// interface when `None`), with a receive buffer of about `rcvbuf` bytes; the size granted is
/// returned too. Bound to the group address so it takes that group's datagrams only.
///
/// # Errors
/// A socket call failing (joining needs a route for multicast on the interface).
pub fn receiver(
    group: SocketAddrV4,
    iface: Option<Ipv4Addr>,
    rcvbuf: usize,
) -> Result<(UdpSocket, usize), NetError> {
    let s = udp()?;
    s.set_reuse_address(true)
        .map_err(sock_err("SO_REUSEADDR"))?;
    s.set_reuse_port(true).map_err(sock_err("SO_REUSEPORT"))?;
    let multicast = group.ip().is_multicast();
    let bind = match multicast {
        true => group,
        false => SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, group.port()),
    };
    s.bind(&bind.into())
        .map_err(sock_err(format!("binding {bind}")))?;
    if multicast {
        let ifc = iface.unwrap_or(Ipv4Addr::UNSPECIFIED);
        s.join_multicast_v4(group.ip(), &ifc)
            .map_err(sock_err(format!("joining {} on {ifc}", group.ip())))?;
        s.set_multicast_all_v4(false)
            .map_err(sock_err("IP_MULTICAST_ALL"))?;
    }
    let granted = grow_rcvbuf(&s, rcvbuf);
    s.set_nonblocking(true).map_err(sock_err("O_NONBLOCK"))?;
    Ok((s.into(), granted))
}

/// SO_RCVBUFFORCE when allowed (root), else SO_RCVBUF up to the system's cap; the size granted.
fn grow_rcvbuf(s: &Socket, want: usize) -> usize {
    if force_rcvbuf(s, want).is_err() {
        let _ = s.set_recv_buffer_size(want); // capped by net.core.rmem_max: not an error
    }
    s.recv_buffer_size().unwrap_or(0)
}

fn force_rcvbuf(s: &Socket, want: usize) -> std::io::Result<()> {
    use std::os::fd::AsRawFd;
    let v = libc::c_int::try_from(want).unwrap_or(libc::c_int::MAX);
    setsockopt_int(s.as_raw_fd(), libc::SOL_SOCKET, libc::SO_RCVBUFFORCE, v)
}

/// `setsockopt` of an int option.
pub(crate) fn setsockopt_int(
    fd: RawFd,
    level: i32,
    name: i32,
    v: libc::c_int,
) -> std::io::Result<()> {
    // SAFETY: `v` lives across the call and the length passed is its size.
    let r = unsafe {
        libc::setsockopt(
            fd,
            level,
            name,
            (&v as *const libc::c_int).cast(),
            size_of::<libc::c_int>() as u32,
        )
    };
    match r {
        0 => Ok(()),
        _ => Err(std::io::Error::last_os_error()),
    }
}
