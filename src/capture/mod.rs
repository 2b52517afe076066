//! Packet captures of MoldUDP64 market feeds: reading pcap/pcapng files zero-copy down to their
//! UDP datagrams ([`read`]), and writing a BinaryFILE out as a MoldUDP64 capture ([`write`]),
//! which is also how the tests make captures.
//!
//! ```text
//!  capture.pcap(ng) ──MappedFile──▶ Datagrams: record/block framing (pcap both magics and byte
//!        orders; pcapng sections, interfaces, if_tsresol/if_tsoffset, EPB/SPB)
//!        ──▶ link layer (Ethernet + VLAN/QinQ, SLL, SLL2, raw IPv4) ──▶ IPv4 ──▶ UDP
//!        ──▶ Datagram { ts_ns, src, dst, payload: &[u8], offset }  (+ Counts of what was skipped)
//! ```
//! The MoldUDP64 layer on top of the datagrams lives elsewhere (`mold`).

pub mod net;
pub mod read;
pub mod write;

pub use net::{LinkType, NetCounts};
pub use read::{is_capture, open, CaptureError, Datagram, Datagrams, FileKind};
pub use write::{
    convert_file, days_from_civil, write_capture, CaptureFormat, TsResolution, WriteError,
    WriteOptions, WriteReport, END_OF_SESSION, MOLD_HEADER,
};
