//! The manifest (filled in below).
