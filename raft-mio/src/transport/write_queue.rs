//! A bounded per-peer queue of encoded frames waiting for the socket.
//!
//! Raft tolerates lost messages, so a full queue never blocks the loop: it drops the
//! oldest AppendEntries (its entries are resent from the leader's progress anyway), and
//! if there is none to drop, the new message.

use std::collections::VecDeque;
use std::io::{self, IoSlice, Write};

/// The most frames handed to one vectored write.
const IOV_FRAMES_MAX: usize = 64;

/// Written frames' buffers kept for the next frames, at most this many...
const SPARE_BUFFERS_MAX: usize = 8;
/// ...and none larger than this (a rare huge frame does not pin its memory).
const SPARE_BUFFER_BYTES_MAX: usize = 256 << 10;

/// One encoded frame.
#[derive(Debug)]
struct OutFrame {
    bytes: Vec<u8>,
    /// Whether the frame may be dropped when the queue is full.
    droppable: bool,
}

/// What became of a pushed frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Pushed {
    /// Queued, nothing dropped.
    Queued,
    /// Queued after dropping this many older droppable frames.
    DroppedOldest(usize),
    /// Not queued: the queue is full of frames that may not be dropped.
    DroppedNew,
}

/// Whether a write drained the queue.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Flushed {
    /// Everything queued was written.
    Drained,
    /// The socket would block; wait for it to become writable.
    Blocked,
}

/// The queue. Invariants: `queued_bytes` is the sum of the frames' sizes, and is at
/// most `bytes_max` unless a single frame is larger; `front_written` is less than the
/// front frame's size.
#[derive(Debug)]
pub struct WriteQueue {
    frames: VecDeque<OutFrame>,
    queued_bytes: usize,
    /// How much of the front frame is already on the socket.
    front_written: usize,
    bytes_max: usize,
    frames_max: usize,
    dropped_frames: u64,
    /// Emptied buffers of written frames, reused by [`buffer`](Self::buffer): a
    /// leader's AppendEntries of a thousand entries otherwise grew a fresh `Vec`
    /// through a dozen reallocations, per follower, per turn.
    spare: Vec<Vec<u8>>,
}

impl WriteQueue {
    /// A queue of at most `bytes_max` bytes and `frames_max` frames.
    pub fn new(bytes_max: usize, frames_max: usize) -> Self {
        debug_assert!(frames_max > 0);
        WriteQueue {
            frames: VecDeque::new(),
            queued_bytes: 0,
            front_written: 0,
            bytes_max,
            frames_max,
            dropped_frames: 0,
            spare: Vec::new(),
        }
    }

    /// An empty buffer to encode the next frame into (then [`push`](Self::push) it):
    /// one a written frame left behind, if there is one.
    pub fn buffer(&mut self) -> Vec<u8> {
        self.spare.pop().unwrap_or_default()
    }

    /// Keeps `buffer` for a later frame (if it is not too large and few are kept).
    pub fn recycle(&mut self, mut buffer: Vec<u8>) {
        if self.spare.len() < SPARE_BUFFERS_MAX && buffer.capacity() <= SPARE_BUFFER_BYTES_MAX {
            buffer.clear();
            self.spare.push(buffer);
        }
    }

    /// Whether nothing waits.
    pub fn is_empty(&self) -> bool {
        self.frames.is_empty()
    }

    /// The bytes waiting.
    pub fn queued_bytes(&self) -> usize {
        self.queued_bytes
    }

    /// The frames waiting.
    pub fn len(&self) -> usize {
        self.frames.len()
    }

    /// How many frames were dropped over the queue's life.
    pub fn dropped_frames(&self) -> u64 {
        self.dropped_frames
    }

    /// Queues a frame, dropping older droppable frames (or this one) to stay bounded.
    pub fn push(&mut self, bytes: Vec<u8>, droppable: bool) -> Pushed {
        debug_assert!(!bytes.is_empty());
        let mut dropped = 0;
        while self.is_full_for(bytes.len()) {
            if !self.drop_oldest_droppable() {
                self.dropped_frames += 1;
                return Pushed::DroppedNew;
            }
            dropped += 1;
        }
        self.queued_bytes += bytes.len();
        self.frames.push_back(OutFrame { bytes, droppable });
        self.debug_check();
        if dropped == 0 {
            Pushed::Queued
        } else {
            Pushed::DroppedOldest(dropped)
        }
    }

    fn is_full_for(&self, extra_bytes: usize) -> bool {
        let over_bytes =
            self.queued_bytes + extra_bytes > self.bytes_max && !self.frames.is_empty();
        over_bytes || self.frames.len() >= self.frames_max
    }

    /// Drops the oldest droppable frame that is not partly written.
    fn drop_oldest_droppable(&mut self) -> bool {
        let skip = usize::from(self.front_written > 0);
        let Some(at) = self.frames.iter().skip(skip).position(|f| f.droppable) else {
            return false;
        };
        let frame = self.frames.remove(at + skip).expect("position is in range");
        self.queued_bytes -= frame.bytes.len();
        self.dropped_frames += 1;
        true
    }

    /// Writes as much as the socket takes.
    pub fn write_to(&mut self, socket: &mut impl Write) -> io::Result<Flushed> {
        while !self.frames.is_empty() {
            let mut slices = [IoSlice::new(&[]); IOV_FRAMES_MAX];
            let mut count = 0;
            for (i, frame) in self.frames.iter().take(IOV_FRAMES_MAX).enumerate() {
                let skip = if i == 0 { self.front_written } else { 0 };
                slices[count] = IoSlice::new(&frame.bytes[skip..]);
                count += 1;
            }
            match socket.write_vectored(&slices[..count]) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(written) => self.consume(written),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(Flushed::Blocked),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(Flushed::Drained)
    }

    fn consume(&mut self, mut written: usize) {
        while written > 0 {
            let front = self
                .frames
                .front()
                .expect("written bytes came from a frame");
            let left = front.bytes.len() - self.front_written;
            if written < left {
                self.front_written += written;
                break;
            }
            written -= left;
            self.queued_bytes -= front.bytes.len();
            self.front_written = 0;
            let frame = self.frames.pop_front().expect("the front frame");
            self.recycle(frame.bytes);
        }
        self.debug_check();
    }

    /// Forgets a partly written front frame (its connection is gone; the peer will
    /// never see its end). Whole frames stay queued for the next connection.
    pub fn discard_partial_frame(&mut self) {
        if self.front_written > 0 {
            let frame = self.frames.pop_front().expect("a partly written frame");
            self.queued_bytes -= frame.bytes.len();
            self.front_written = 0;
        }
    }

    fn debug_check(&self) {
        debug_assert_eq!(
            self.queued_bytes,
            self.frames.iter().map(|f| f.bytes.len()).sum::<usize>()
        );
        debug_assert!(self.frames.len() <= self.frames_max);
        if let Some(front) = self.frames.front() {
            debug_assert!(self.front_written < front.bytes.len());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A socket that takes at most `take` bytes per call, then blocks.
    struct Trickle {
        out: Vec<u8>,
        take: usize,
        calls_left: usize,
    }

    impl Write for Trickle {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            if self.calls_left == 0 {
                return Err(io::ErrorKind::WouldBlock.into());
            }
            self.calls_left -= 1;
            let n = buf.len().min(self.take);
            self.out.extend_from_slice(&buf[..n]);
            Ok(n)
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn a_full_queue_drops_the_oldest_droppable_frame() {
        let mut queue = WriteQueue::new(30, 100);
        assert_eq!(queue.push(vec![1; 10], false), Pushed::Queued);
        assert_eq!(queue.push(vec![2; 10], true), Pushed::Queued);
        assert_eq!(queue.push(vec![3; 10], true), Pushed::Queued);
        assert_eq!(queue.push(vec![4; 10], false), Pushed::DroppedOldest(1));
        assert_eq!(queue.queued_bytes(), 30);
        assert_eq!(queue.push(vec![5; 10], false), Pushed::DroppedOldest(1));
        assert_eq!(queue.push(vec![6; 10], true), Pushed::DroppedNew);
        assert_eq!(queue.dropped_frames(), 3);
        let mut socket = Trickle {
            out: Vec::new(),
            take: 1000,
            calls_left: 10,
        };
        assert_eq!(queue.write_to(&mut socket).unwrap(), Flushed::Drained);
        let firsts: Vec<u8> = socket.out.chunks(10).map(|c| c[0]).collect();
        assert_eq!(firsts, vec![1, 4, 5]);
    }

    #[test]
    fn written_frames_leave_their_buffers_for_the_next_ones_within_a_bound() {
        let mut queue = WriteQueue::new(1 << 20, 100);
        for _ in 0..20 {
            queue.push(vec![1; 100], true);
        }
        let mut socket = Trickle {
            out: Vec::new(),
            take: 1 << 20,
            calls_left: 100,
        };
        assert_eq!(queue.write_to(&mut socket).unwrap(), Flushed::Drained);
        assert_eq!(queue.spare.len(), SPARE_BUFFERS_MAX);
        let reused = queue.buffer();
        assert!(reused.is_empty());
        assert!(reused.capacity() >= 100, "a written frame's buffer");
        queue.recycle(Vec::with_capacity(SPARE_BUFFER_BYTES_MAX + 1));
        assert!(queue
            .spare
            .iter()
            .all(|b| b.capacity() <= SPARE_BUFFER_BYTES_MAX));
    }

    #[test]
    fn a_partly_written_frame_is_never_dropped_for_room() {
        let mut queue = WriteQueue::new(20, 100);
        queue.push(vec![1; 10], true);
        queue.push(vec![2; 10], true);
        let mut socket = Trickle {
            out: Vec::new(),
            take: 4,
            calls_left: 1,
        };
        assert_eq!(queue.write_to(&mut socket).unwrap(), Flushed::Blocked);
        assert_eq!(queue.push(vec![3; 10], true), Pushed::DroppedOldest(1));
        socket.calls_left = 100;
        queue.write_to(&mut socket).unwrap();
        assert_eq!(socket.out, [vec![1; 10], vec![3; 10]].concat());
    }

    #[test]
    fn a_dead_connection_forgets_only_the_partial_frame() {
        let mut queue = WriteQueue::new(100, 100);
        queue.push(vec![1; 10], true);
        queue.push(vec![2; 10], true);
        let mut socket = Trickle {
            out: Vec::new(),
            take: 4,
            calls_left: 1,
        };
        queue.write_to(&mut socket).unwrap();
        queue.discard_partial_frame();
        assert_eq!(queue.len(), 1);
        assert_eq!(queue.queued_bytes(), 10);
    }

    #[test]
    fn the_frame_count_is_bounded_too() {
        let mut queue = WriteQueue::new(1 << 20, 2);
        queue.push(vec![1], true);
        queue.push(vec![2], true);
        assert_eq!(queue.push(vec![3], true), Pushed::DroppedOldest(1));
        assert_eq!(queue.len(), 2);
    }
}
