//! Checkpoint directories (filled in below).
