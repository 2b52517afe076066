//! tickwatch — placeholder crate doc, rewritten below.
pub mod book;
pub mod feed;
pub mod itch;
