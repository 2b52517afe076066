//! The link, network and transport layers of one captured frame, down to a UDP payload.
//!
//! Link headers are a few fixed fields, read by hand; IPv4 and UDP headers are sliced with
//! `etherparse` (which checks the IPv4 version, header length and total length). Anything that is
//! not an unfragmented IPv4 UDP datagram is counted in [`NetCounts`], never dropped silently.

use etherparse::{Ipv4HeaderSlice, UdpHeaderSlice};
use std::net::Ipv4Addr;

/// Ethernet type of IPv4.
pub const ETHERTYPE_IPV4: u16 = 0x0800;
/// Ethernet types of a VLAN tag: 802.1Q, 802.1ad (QinQ outer) and the older QinQ 0x9100.
pub const VLAN_TPIDS: [u16; 3] = [0x8100, 0x88A8, 0x9100];
/// Most VLAN tags followed before the frame is called malformed.
const MAX_TAGS: usize = 4;

/// The link layers read and written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "cli", derive(clap::ValueEnum))]
pub enum LinkType {
    /// Ethernet II (`LINKTYPE_ETHERNET`, 1), with any 802.1Q/QinQ tags.
    Ethernet,
    /// Linux cooked capture v1 (`LINKTYPE_LINUX_SLL`, 113): a 16-byte header.
    Sll,
    /// Linux cooked capture v2 (`LINKTYPE_LINUX_SLL2`, 276): a 20-byte header.
    Sll2,
    /// Raw IPv4 (`LINKTYPE_IPV4`, 228; read also as `LINKTYPE_RAW`, 101, and DLT_RAW 12/14).
    RawIpv4,
}

impl LinkType {
    /// The `LINKTYPE_*` number written in a capture header.
    pub const fn linktype(self) -> u32 {
        match self {
            LinkType::Ethernet => 1,
            LinkType::Sll => 113,
            LinkType::Sll2 => 276,
            LinkType::RawIpv4 => 228,
        }
    }

    /// The link type of a `LINKTYPE_*` number, if it is one read here.
    pub const fn from_linktype(n: u32) -> Option<LinkType> {
        match n {
            1 => Some(LinkType::Ethernet),
            113 => Some(LinkType::Sll),
            276 => Some(LinkType::Sll2),
            228 | 101 | 12 | 14 => Some(LinkType::RawIpv4),
            _ => None,
        }
    }
}

/// What the frames held besides unfragmented IPv4 UDP datagrams.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct NetCounts {
    /// UDP datagrams yielded.
    pub datagrams: u64,
    /// IPv4 fragments (not reassembled; counted, skipped).
    pub fragments: u64,
    /// Frames whose headers are inconsistent (too short for their own header, bad IP version,
    /// lengths past the frame, too many VLAN tags).
    pub malformed: u64,
    /// Frames cut by the capture's snap length before the end of their datagram.
    pub snapped: u64,
    /// Frames of a link type not read here.
    pub unknown_link: u64,
    /// Frames that are not IPv4, by Ethernet type (raw IP frames of version 6 count as 0x86DD).
    pub non_ipv4: Vec<(u16, u64)>,
    /// IPv4 packets that are not UDP, by IP protocol number.
    pub non_udp: Vec<(u8, u64)>,
}

impl NetCounts {
    fn bump<K: PartialEq>(v: &mut Vec<(K, u64)>, k: K) {
        match v.iter_mut().find(|(x, _)| *x == k) {
            Some((_, n)) => *n += 1,
            None => v.push((k, 1)),
        }
    }
}

/// One UDP datagram inside a frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Udp<'a> {
    pub src: Ipv4Addr,
    pub src_port: u16,
    pub dst: Ipv4Addr,
    pub dst_port: u16,
    pub payload: &'a [u8],
}

/// The UDP datagram in `frame`, or `None` with the reason counted. `cut` says the capture kept
/// fewer bytes than the wire carried (a short datagram is then `snapped`, not `malformed`).
pub(crate) fn parse_frame<'a>(
    link: LinkType,
    frame: &'a [u8],
    cut: bool,
    c: &mut NetCounts,
) -> Option<Udp<'a>> {
    let (ethertype, rest) = match link {
        LinkType::Ethernet if frame.len() >= 14 => (be16(frame, 12), &frame[14..]),
        LinkType::Sll if frame.len() >= 16 => (be16(frame, 14), &frame[16..]),
        LinkType::Sll2 if frame.len() >= 20 => (be16(frame, 0), &frame[20..]),
        LinkType::RawIpv4 => match frame.first().map(|b| b >> 4) {
            Some(4) => (ETHERTYPE_IPV4, frame),
            Some(6) => (0x86DD, frame),
            _ => return short(cut, c),
        },
        _ => return short(cut, c),
    };
    let (ethertype, ip) = untag(ethertype, rest, c)?;
    if ethertype != ETHERTYPE_IPV4 {
        NetCounts::bump(&mut c.non_ipv4, ethertype);
        return None;
    }
    ipv4_udp(ip, cut, c)
}

/// Follows VLAN tags to the inner Ethernet type.
fn untag<'a>(mut ethertype: u16, mut rest: &'a [u8], c: &mut NetCounts) -> Option<(u16, &'a [u8])> {
    let mut tags = 0;
    while VLAN_TPIDS.contains(&ethertype) {
        if rest.len() < 4 || tags == MAX_TAGS {
            c.malformed += 1;
            return None;
        }
        ethertype = be16(rest, 2);
        rest = &rest[4..];
        tags += 1;
    }
    Some((ethertype, rest))
}

fn ipv4_udp<'a>(ip: &'a [u8], cut: bool, c: &mut NetCounts) -> Option<Udp<'a>> {
    let Ok(h) = Ipv4HeaderSlice::from_slice(ip) else {
        return short(cut, c);
    };
    let total = usize::from(h.total_len());
    if total > ip.len() {
        return short(cut, c);
    }
    // A total length inside its own header is corrupt (the header slice does not check it).
    if total < h.slice().len() {
        c.malformed += 1;
        return None;
    }
    if h.more_fragments() || h.fragments_offset().value() != 0 {
        c.fragments += 1;
        return None;
    }
    if h.protocol() != etherparse::IpNumber::UDP {
        NetCounts::bump(&mut c.non_udp, h.protocol().0);
        return None;
    }
    // Ethernet pads short frames: the datagram ends at the IP total length.
    let l4 = &ip[h.slice().len()..total];
    let Ok(u) = UdpHeaderSlice::from_slice(l4) else {
        c.malformed += 1;
        return None;
    };
    let len = usize::from(u.length());
    if len < 8 || len > l4.len() {
        c.malformed += 1;
        return None;
    }
    c.datagrams += 1;
    Some(Udp {
        src: h.source_addr(),
        src_port: u.source_port(),
        dst: h.destination_addr(),
        dst_port: u.destination_port(),
        payload: &l4[8..len],
    })
}

fn short<T>(cut: bool, c: &mut NetCounts) -> Option<T> {
    if cut {
        c.snapped += 1;
    } else {
        c.malformed += 1;
    }
    None
}

fn be16(b: &[u8], at: usize) -> u16 {
    u16::from_be_bytes([b[at], b[at + 1]])
}
