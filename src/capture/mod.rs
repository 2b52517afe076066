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
//! The MoldUDP64 layer on top of the datagrams lives elsewhere (`mold`). The commands read a
//! capture's messages in place, zero-copy, in memory that does not grow with the capture:
//! [`stream`] hands them out one at a time (what `run`, `bars` and `surveil` read), [`messages`]
//! feeds them to a consumer in one walk, each with its packet (what `inspect`, `book`, `export`
//! and `convert pcap` read). [`extract`] copies them into an in-memory BinaryFILE image: the
//! reference the tests compare with, and what `bench`'s kernels that need random access read.
//!
//! ```
//! use tickwatch::capture::{write_capture, Datagrams, WriteOptions, END_OF_SESSION};
//! use tickwatch::gen::{generate, GenConfig};
//! let mut feed = Vec::new();
//! generate(&GenConfig { messages: 2_000, symbols: 5, live_orders: 100, seed: 1 }, &mut feed)?;
//! let mut cap = Vec::new();
//! let report = write_capture(&feed, &WriteOptions::default(), &mut cap)?;
//! let mut datagrams = Datagrams::new(&cap)?; // over a mapped file: capture::open(path)?.bytes()
//! let last = datagrams.by_ref().last().unwrap()?;
//! assert_eq!(last.payload[18..20], END_OF_SESSION.to_be_bytes());
//! assert_eq!(datagrams.packets(), report.packets + 1);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

pub mod extract;
pub mod messages;
pub mod net;
pub mod read;
pub mod stream;
pub mod write;

pub use extract::{
    extract, walk_all, ExtractError, ExtractOptions, Extracted, Lost, Origin, Place, PlacedSink,
    Positions, Release, Releaser, Span, Step, Walk, Walked,
};
pub use messages::{read_messages, At, Framed, MessageSink, Nothing, Read, Replaying};
pub use net::{LinkType, NetCounts};
pub use read::{is_capture, open, CaptureError, Datagram, Datagrams, FileKind};
pub use stream::{place_of, CaptureStream};
pub use write::{
    convert_file, days_from_civil, write_capture, CaptureFormat, PacketWriter, TsResolution,
    WriteError, WriteOptions, WriteReport, END_OF_SESSION, MOLD_HEADER,
};
