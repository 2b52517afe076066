//! Splitting one BinaryFILE across cores without trusting a guess.
//!
//! A length-prefixed file has no sync markers: a chunk boundary picked at byte `len * i / n` most
//! likely lands inside a message. [`resync`] slides forward from such a guess to the first offset
//! where a run of [`RESYNC_RUN`] consecutive frames all have a known type letter and exactly that
//! type's specification length (or end exactly at the end of the file). That makes a wrong boundary
//! unlikely — but not impossible, so it is never trusted: each chunk's walk runs until it reaches or
//! passes the next chunk's start, and only a walk that lands *exactly* on that start proves it.
//! The first chunk starts at offset 0, which is true by definition, so the proof chains from the
//! front. If a walk overshoots, the later chunks' results are thrown away and the rest of the file
//! is walked serially from the true position: [`SplitReport::fallbacks`] counts that.

use super::frame::{Frame, FrameError, Frames};
use crate::itch::wire::LEN_TABLE;

/// Consecutive spec-consistent frames required to accept a boundary candidate.
pub const RESYNC_RUN: usize = 32;

/// Below this many bytes a file is walked on one thread.
pub const MIN_PARALLEL_BYTES: usize = 1 << 20;

/// What a parallel walk did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SplitReport {
    /// Chunks walked in parallel (1 = serial).
    pub chunks: usize,
    /// Chunks whose boundary failed the proof and were re-walked serially.
    pub fallbacks: usize,
}

/// True when `RESYNC_RUN` frames starting at `p` are each a known type of its spec length, or the
/// frames walk exactly to the end of `buf` before that.
pub fn plausible_boundary(buf: &[u8], mut p: usize) -> bool {
    for _ in 0..RESYNC_RUN {
        if p == buf.len() {
            return true;
        }
        let Some(&[hi, lo, t]) = buf.get(p..p + 3).map(|s| <&[u8; 3]>::try_from(s).unwrap()) else {
            return false;
        };
        let len = u16::from_be_bytes([hi, lo]) as usize;
        if len == 0 || LEN_TABLE[t as usize] as usize != len {
            return false;
        }
        p += 2 + len;
        if p > buf.len() {
            return false;
        }
    }
    true
}

/// The first offset in `from..limit` that passes [`plausible_boundary`].
pub fn resync(buf: &[u8], from: usize, limit: usize) -> Option<usize> {
    (from..limit.min(buf.len())).find(|&p| plausible_boundary(buf, p))
}

/// Walks frames of `buf[start..]` from `start` until the cursor reaches `stop` or beyond; returns
/// where it stopped.
fn walk_range<R, E, F>(
    buf: &[u8],
    start: usize,
    stop: usize,
    r: &mut R,
    on_frame: &F,
) -> Result<usize, E>
where
    E: From<FrameError>,
    F: Fn(&mut R, Frame<'_>) -> Result<(), E>,
{
    let mut frames = Frames::with_base(&buf[start..], start as u64);
    while start + frames.position() < stop {
        match frames.next() {
            Some(Ok(f)) => on_frame(r, f)?,
            Some(Err(e)) => return Err(e.into()),
            None => break,
        }
    }
    Ok(start + frames.position())
}

/// Walks every frame of `buf` on up to `threads` threads, calling `on_frame` on a per-chunk state
/// made by `init`. Returns the chunk states in file order (merge them in that order) and a report.
///
/// Every frame is seen exactly once, whatever boundaries were guessed.
///
/// # Errors
/// The first framing error or error from `on_frame` in file order, exactly as a serial walk would
/// report it.
pub fn par_walk<R, E, I, F>(
    buf: &[u8],
    threads: usize,
    init: I,
    on_frame: F,
) -> Result<(Vec<R>, SplitReport), E>
where
    R: Send,
    E: Send + From<FrameError>,
    I: Fn() -> R + Sync,
    F: Fn(&mut R, Frame<'_>) -> Result<(), E> + Sync,
{
    let threads = threads.max(1);
    if threads == 1 || buf.len() < MIN_PARALLEL_BYTES {
        let mut r = init();
        walk_range(buf, 0, buf.len(), &mut r, &on_frame)?;
        return Ok((
            vec![r],
            SplitReport {
                chunks: 1,
                fallbacks: 0,
            },
        ));
    }
    // Candidate boundaries; a guess with no plausible offset before the next guess is dropped.
    let mut starts = vec![0usize];
    for i in 1..threads {
        let guess = buf.len() * i / threads;
        let limit = buf.len() * (i + 1) / threads;
        if let Some(b) = resync(buf, guess.max(*starts.last().unwrap() + 1), limit) {
            starts.push(b);
        }
    }
    let mut stops: Vec<usize> = starts[1..].to_vec();
    stops.push(buf.len());

    let outcomes: Vec<(R, Result<usize, E>)> = std::thread::scope(|s| {
        let handles: Vec<_> = starts
            .iter()
            .zip(&stops)
            .map(|(&start, &stop)| {
                let (init, on_frame) = (&init, &on_frame);
                s.spawn(move || {
                    let mut r = init();
                    let end = walk_range(buf, start, stop, &mut r, on_frame);
                    (r, end)
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("walker thread panicked"))
            .collect()
    });

    let mut report = SplitReport {
        chunks: starts.len(),
        fallbacks: 0,
    };
    let mut results = Vec::with_capacity(outcomes.len());
    let mut pos = 0usize; // proven boundary: everything before it is accounted for
    for (i, (r, end)) in outcomes.into_iter().enumerate() {
        if starts[i] != pos {
            // The previous chunk's walk did not land on this guess: it was false. Walk on serially.
            report.fallbacks = starts.len() - i;
            let mut r = init();
            walk_range(buf, pos, buf.len(), &mut r, &on_frame)?;
            results.push(r);
            return Ok((results, report));
        }
        pos = end?;
        results.push(r);
    }
    Ok((results, report))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(out: &mut Vec<u8>, t: u8, len: usize, fill: u8) {
        out.extend_from_slice(&(len as u16).to_be_bytes());
        out.push(t);
        out.extend(std::iter::repeat(fill).take(len - 1));
    }

    #[test]
    fn every_frame_once_and_false_boundaries_fall_back() {
        // Bodies full of bytes that look like valid 'D' frames ([0,19,'D']...) make false boundaries
        // likely; the walk must still see each real frame exactly once.
        let mut buf = Vec::new();
        let mut n = 0u64;
        while buf.len() < 3 << 20 {
            // A 'P' (44 bytes) whose body is a run of fake frames: 0x00 0x13 'D' repeated.
            buf.extend_from_slice(&44u16.to_be_bytes());
            buf.push(b'P');
            for k in 0..43 {
                buf.push([0u8, 19, b'D'][k % 3]);
            }
            frame(&mut buf, b'D', 19, 7);
            n += 2;
        }
        for threads in [1, 2, 3, 8] {
            let (counts, report) = par_walk::<u64, FrameError, _, _>(
                &buf,
                threads,
                || 0,
                |c, _| {
                    *c += 1;
                    Ok(())
                },
            )
            .unwrap();
            assert_eq!(
                counts.iter().sum::<u64>(),
                n,
                "threads {threads}: {report:?}"
            );
        }
    }
}
