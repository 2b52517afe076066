//! Getting feed bytes off disk: memory mapping, `.gz` caching, length-prefixed framing and the
//! parallel walk that splits one file across cores.

pub mod frame;
pub mod gz;
pub mod mmap;
pub mod sigbus;
pub mod split;

pub use frame::{Frame, FrameError, Frames};
pub use mmap::{MapOptions, MappedFile};
