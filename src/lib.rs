//! tickwatch (crate doc written below).
pub mod bench;
pub mod book;
pub mod feed;
pub mod gen;
pub mod inspect;
pub mod itch;
pub mod mem;
pub mod replay;
pub mod lobster;
