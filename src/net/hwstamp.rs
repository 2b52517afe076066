//! Hardware receive timestamps: the NIC told to stamp every packet it receives.
//!
//! `SO_TIMESTAMPING` on a socket only asks for the stamps; a NIC stamps nothing until its
//! driver is told to (`SIOCSHWTSTAMP` with a `hwtstamp_config` whose `rx_filter` is
//! `HWTSTAMP_FILTER_ALL`: market data is not PTP, so the PTP-only filters do not do). What the
//! NIC can do is asked first (`ETHTOOL_GET_TS_INFO` through `SIOCETHTOOL`, what `ethtool -T`
//! shows). The interface is the one holding the `--iface` address (`getifaddrs`).
//!
//! The setting is the interface's, for every socket on it, and is left on at exit (as
//! `hwstamp_ctl` leaves it). Hardware stamps are in the NIC's own clock (its PTP hardware clock,
//! `/dev/ptpN`): the latency measured from them is right only while that clock is kept to the
//! system clock (`phc2sys`).
//!
//! The `unsafe` here: `getifaddrs` and the two `ioctl`s.

use std::ffi::CStr;
use std::net::{Ipv4Addr, UdpSocket};
use std::os::fd::AsRawFd;

use serde::Serialize;

use super::{sock_err, NetError};

/// `ETHTOOL_GET_TS_INFO` (linux/ethtool.h; the libc crate lacks it).
const ETHTOOL_GET_TS_INFO: u32 = 0x41;

/// `struct ethtool_ts_info` (linux/ethtool.h).
#[repr(C)]
#[derive(Debug, Default, Clone, Copy)]
struct EthtoolTsInfo {
    cmd: u32,
    so_timestamping: u32,
    phc_index: i32,
    tx_types: u32,
    tx_reserved: [u32; 3],
    rx_filters: u32,
    rx_reserved: [u32; 3],
}

/// What to do when the NIC cannot stamp.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum HwMode {
    /// Say why, and use the kernel's software receive stamps.
    Try,
    /// Refuse to run.
    Require,
}

/// What an interface's driver says it can stamp (`ETHTOOL_GET_TS_INFO`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TsInfo {
    /// `SOF_TIMESTAMPING_*` bits the driver supports.
    pub so_timestamping: u32,
    /// Its PTP hardware clock (`/dev/ptpN`), -1 for none.
    pub phc_index: i32,
    /// Receive filters it supports, one bit per `HWTSTAMP_FILTER_*`.
    pub rx_filters: u32,
}

/// `SOF_TIMESTAMPING_*` bits as `ethtool -T` names them.
const CAPABILITIES: [(u32, &str); 7] = [
    (libc::SOF_TIMESTAMPING_TX_HARDWARE, "hardware-transmit"),
    (libc::SOF_TIMESTAMPING_TX_SOFTWARE, "software-transmit"),
    (libc::SOF_TIMESTAMPING_RX_HARDWARE, "hardware-receive"),
    (libc::SOF_TIMESTAMPING_RX_SOFTWARE, "software-receive"),
    (libc::SOF_TIMESTAMPING_SOFTWARE, "software-system-clock"),
    (libc::SOF_TIMESTAMPING_SYS_HARDWARE, "hardware-legacy-clock"),
    (libc::SOF_TIMESTAMPING_RAW_HARDWARE, "hardware-raw-clock"),
];

/// `HWTSTAMP_FILTER_*` by number, as `ethtool -T` names them.
const FILTERS: [&str; 16] = [
    "none",
    "all",
    "some",
    "ptpv1-l4-event",
    "ptpv1-l4-sync",
    "ptpv1-l4-delay-req",
    "ptpv2-l4-event",
    "ptpv2-l4-sync",
    "ptpv2-l4-delay-req",
    "ptpv2-l2-event",
    "ptpv2-l2-sync",
    "ptpv2-l2-delay-req",
    "ptpv2-event",
    "ptpv2-sync",
    "ptpv2-delay-req",
    "ntp-all",
];

impl TsInfo {
    /// Whether the NIC stamps received packets in its raw hardware clock.
    pub fn rx_hardware(&self) -> bool {
        let need = libc::SOF_TIMESTAMPING_RX_HARDWARE | libc::SOF_TIMESTAMPING_RAW_HARDWARE;
        self.so_timestamping & need == need
    }

    /// Whether it can stamp every received packet (`HWTSTAMP_FILTER_ALL`), not only PTP's.
    pub fn filters_all(&self) -> bool {
        self.rx_filters & (1 << libc::HWTSTAMP_FILTER_ALL) != 0
    }

    /// Whether it can stamp the feed's packets.
    pub fn can_stamp_all(&self) -> bool {
        self.rx_hardware() && self.filters_all()
    }

    /// What it said, in `ethtool -T`'s words.
    pub fn describe(&self) -> String {
        let caps: Vec<&str> = CAPABILITIES
            .iter()
            .filter(|(bit, _)| self.so_timestamping & bit != 0)
            .map(|(_, name)| *name)
            .collect();
        let filters: Vec<String> = (0..32)
            .filter(|i| self.rx_filters & (1 << i) != 0)
            .map(|i| {
                FILTERS
                    .get(i)
                    .map_or_else(|| format!("filter {i}"), |n| n.to_string())
            })
            .collect();
        let list = |v: Vec<String>| match v.is_empty() {
            true => "none".to_string(),
            false => v.join(" "),
        };
        format!(
            "capabilities {}; PTP hardware clock {}; receive filters {}",
            list(caps.into_iter().map(String::from).collect()),
            match self.phc_index {
                i if i >= 0 => format!("/dev/ptp{i}"),
                _ => "none".to_string(),
            },
            list(filters)
        )
    }
}

/// The name of the interface holding `ip` (`getifaddrs`).
///
/// # Errors
/// `getifaddrs` failing, or no interface holding `ip`.
pub fn iface_named_by(ip: Ipv4Addr) -> Result<String, NetError> {
    let mut list: *mut libc::ifaddrs = std::ptr::null_mut();
    // SAFETY: `list` is a valid out-pointer; on success it is freed below, once.
    if unsafe { libc::getifaddrs(&mut list) } != 0 {
        return Err(sock_err("getifaddrs")(std::io::Error::last_os_error()));
    }
    let mut found = None;
    let mut cur = list;
    while !cur.is_null() && found.is_none() {
        // SAFETY: `cur` is a node of the list `getifaddrs` returned, not yet freed; an IPv4
        // address node's `ifa_addr` points to a `sockaddr_in`, and `ifa_name` to a C string.
        unsafe {
            let a = (*cur).ifa_addr;
            if !a.is_null() && i32::from((*a).sa_family) == libc::AF_INET {
                let sin = &*(a as *const libc::sockaddr_in);
                if Ipv4Addr::from(u32::from_be(sin.sin_addr.s_addr)) == ip {
                    found = Some(
                        CStr::from_ptr((*cur).ifa_name)
                            .to_string_lossy()
                            .into_owned(),
                    );
                }
            }
            cur = (*cur).ifa_next;
        }
    }
    // SAFETY: the list `getifaddrs` returned, freed once; nothing points into it any more.
    unsafe { libc::freeifaddrs(list) };
    found.ok_or_else(|| NetError::HwTimestamps(format!("no interface holds the address {ip}")))
}

/// An `ifreq` naming `name`, its data pointing at `data`.
fn ifreq(name: &str, data: *mut libc::c_char) -> Result<libc::ifreq, NetError> {
    let bytes = name.as_bytes();
    if bytes.is_empty() || bytes.len() >= libc::IFNAMSIZ {
        return Err(NetError::HwTimestamps(format!(
            "bad interface name {name:?}"
        )));
    }
    // SAFETY: all-zero bytes are a valid `ifreq` (a plain C struct and union).
    let mut r: libc::ifreq = unsafe { std::mem::zeroed() };
    for (d, &b) in r.ifr_name.iter_mut().zip(bytes) {
        *d = b as libc::c_char;
    }
    r.ifr_ifru.ifru_data = data;
    Ok(r)
}

/// An `ioctl` on an IPv4 datagram socket, with `req` pointing at its data.
fn ioctl(what: String, request: libc::c_ulong, req: &mut libc::ifreq) -> Result<(), NetError> {
    let sock = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).map_err(sock_err("socket()"))?;
    // SAFETY: `req` and the data it points at live across the call and are the types the
    // kernel expects for `request` (the callers pair them).
    let r = unsafe { libc::ioctl(sock.as_raw_fd(), request as _, req as *mut libc::ifreq) };
    match r {
        0 => Ok(()),
        _ => Err(sock_err(what)(std::io::Error::last_os_error())),
    }
}

/// What the driver of interface `name` can stamp (`ETHTOOL_GET_TS_INFO`).
///
/// # Errors
/// The `ioctl` failing (no such interface, or a driver without the call).
pub fn ts_info(name: &str) -> Result<TsInfo, NetError> {
    let mut info = EthtoolTsInfo {
        cmd: ETHTOOL_GET_TS_INFO,
        ..EthtoolTsInfo::default()
    };
    let mut req = ifreq(name, (&mut info as *mut EthtoolTsInfo).cast())?;
    ioctl(
        format!("ETHTOOL_GET_TS_INFO on {name}"),
        libc::SIOCETHTOOL,
        &mut req,
    )?;
    Ok(TsInfo {
        so_timestamping: info.so_timestamping,
        phc_index: info.phc_index,
        rx_filters: info.rx_filters,
    })
}

/// Tells interface `name` to stamp every received packet (`SIOCSHWTSTAMP`, transmit stamps
/// left off); the receive filter the driver granted (it may widen it).
///
/// # Errors
/// The `ioctl` failing (not permitted without `CAP_NET_ADMIN`, or refused by the driver).
pub fn stamp_all_received(name: &str) -> Result<i32, NetError> {
    let mut cfg = libc::hwtstamp_config {
        flags: 0,
        tx_type: libc::HWTSTAMP_TX_OFF as i32,
        rx_filter: libc::HWTSTAMP_FILTER_ALL as i32,
    };
    let mut req = ifreq(name, (&mut cfg as *mut libc::hwtstamp_config).cast())?;
    ioctl(
        format!("SIOCSHWTSTAMP (rx_filter all) on {name}"),
        libc::SIOCSHWTSTAMP,
        &mut req,
    )?;
    Ok(cfg.rx_filter)
}

/// What `--hw-timestamps` did, for the run report.
#[derive(Debug, Clone, Serialize)]
pub struct HwStamping {
    /// The `--iface` address.
    pub address: Ipv4Addr,
    /// The interface holding it.
    pub iface: String,
    /// Try (fall back to software stamps) or require.
    pub mode: HwMode,
    /// What `ETHTOOL_GET_TS_INFO` said (or why it said nothing).
    pub capability: String,
    /// Whether the NIC now stamps every received packet.
    pub enabled: bool,
    /// What was done, in a sentence: enabled, or why not and what is used instead.
    pub note: String,
}

/// Asks the NIC holding `address` to stamp every received packet. When it cannot, `mode` says
/// whether to fall back to software stamps (`Ok`, with the reason in the note) or fail.
///
/// # Errors
/// No interface holds `address`; or, with [`HwMode::Require`], the NIC cannot stamp or the
/// driver refused.
pub fn enable(address: Ipv4Addr, mode: HwMode) -> Result<HwStamping, NetError> {
    let iface = iface_named_by(address)?;
    let info = ts_info(&iface);
    let capability = match &info {
        Ok(i) => i.describe(),
        Err(e) => format!("no answer ({})", error_chain(e)),
    };
    let refused = match info {
        Ok(i) if i.can_stamp_all() => match stamp_all_received(&iface) {
            Ok(granted) => {
                let note = format!(
                    "the NIC {iface} ({address}) stamps every received packet (receive filter {} granted); hardware stamps are in its clock{}: keep it synced to the system clock (phc2sys) for the latency to hold",
                    FILTERS.get(granted as usize).copied().unwrap_or("?"),
                    match i.phc_index { p if p >= 0 => format!(" /dev/ptp{p}"), _ => String::new() },
                );
                return Ok(HwStamping { address, iface, mode, capability, enabled: true, note });
            }
            Err(e) => format!(
                "{iface} ({address}) can stamp in hardware ({capability}) but enabling it failed: {}",
                error_chain(&e)
            ),
        },
        _ => format!(
            "{iface} ({address}) cannot stamp received packets in hardware: ETHTOOL_GET_TS_INFO says {capability}{}",
            if info.is_ok_and(|i| i.rx_hardware() && !i.filters_all()) {
                " (its filters stamp PTP packets only, not the feed's)"
            } else {
                ""
            }
        ),
    };
    match mode {
        HwMode::Require => Err(NetError::HwTimestamps(refused)),
        HwMode::Try => Ok(HwStamping {
            address,
            iface,
            mode,
            capability,
            enabled: false,
            note: format!("{refused}; using the kernel's software receive stamps instead"),
        }),
    }
}

/// An error and its causes, in one line.
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        s += &format!(": {c}");
        cur = c.source();
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A NIC that stamps everything (as mlx5 reports itself).
    fn nic() -> TsInfo {
        TsInfo {
            so_timestamping: 0x5f,
            phc_index: 0,
            rx_filters: (1 << 0) | (1 << 1),
        }
    }

    #[test]
    fn capabilities_decode_as_ethtool_names_them() {
        let n = nic();
        assert!(n.rx_hardware() && n.filters_all() && n.can_stamp_all());
        assert_eq!(
            n.describe(),
            "capabilities hardware-transmit software-transmit hardware-receive software-receive software-system-clock hardware-raw-clock; PTP hardware clock /dev/ptp0; receive filters none all"
        );
        // A software-only device (lo, veth).
        let sw = TsInfo {
            so_timestamping: libc::SOF_TIMESTAMPING_RX_SOFTWARE | libc::SOF_TIMESTAMPING_SOFTWARE,
            phc_index: -1,
            rx_filters: 0,
        };
        assert!(!sw.rx_hardware() && !sw.can_stamp_all());
        assert_eq!(
            sw.describe(),
            "capabilities software-receive software-system-clock; PTP hardware clock none; receive filters none"
        );
        // A PTP-only NIC: hardware stamps, but not of the feed's packets.
        let ptp = TsInfo {
            rx_filters: (1 << 0) | (1 << 12),
            ..nic()
        };
        assert!(ptp.rx_hardware() && !ptp.can_stamp_all());
        assert!(ptp.describe().ends_with("receive filters none ptpv2-event"));
    }

    #[test]
    fn the_interface_is_found_by_its_address() {
        assert_eq!(iface_named_by(Ipv4Addr::LOCALHOST).unwrap(), "lo");
        // TEST-NET-3: on no interface here.
        let e = iface_named_by(Ipv4Addr::new(203, 0, 113, 77)).unwrap_err();
        assert!(e.to_string().contains("203.0.113.77"), "{e}");
    }

    #[test]
    fn loopback_has_no_hardware_stamps_so_it_falls_back_or_fails() {
        let info = ts_info("lo").unwrap();
        assert!(!info.can_stamp_all(), "{}", info.describe());
        let got = enable(Ipv4Addr::LOCALHOST, HwMode::Try).unwrap();
        assert!(!got.enabled);
        assert_eq!(got.iface, "lo");
        for part in [
            "lo (127.0.0.1) cannot stamp",
            "ETHTOOL_GET_TS_INFO says capabilities",
            "software receive stamps instead",
        ] {
            assert!(got.note.contains(part), "{part:?} in {}", got.note);
        }
        let e = enable(Ipv4Addr::LOCALHOST, HwMode::Require).unwrap_err();
        let e = e.to_string();
        assert!(
            e.contains("lo (127.0.0.1) cannot stamp") && !e.contains("instead"),
            "{e}"
        );
    }
}
