//! Reuse of body buffers.
//!
//! Every batch renders into a buffer of about a megabyte that the HTTP body
//! stream frees once it is written to the socket. The allocator hands such
//! buffers back to the kernel, so each new one was page-faulted and zeroed
//! again: a twentieth of a load's CPU. Buffers of sent bodies come back here
//! instead (through [`Bytes::from_owner`]) and the encoder takes them again.
//!
//! At most [`MAX_POOLED_BYTES`] are kept: the pool never holds more than what
//! was in flight, and never more than this.

use std::sync::Mutex;

use bytes::Bytes;

/// Bytes of capacity kept for reuse at most.
pub const MAX_POOLED_BYTES: usize = 16 << 20;

/// Buffers larger than this are not kept (a rare huge batch).
const MAX_BUFFER: usize = 16 << 20;

struct Pool {
    free: Vec<Vec<u8>>,
    bytes: usize,
}

static POOL: Mutex<Pool> = Mutex::new(Pool { free: Vec::new(), bytes: 0 });

/// A buffer of at least `capacity` bytes, reused when one is free. A reused
/// buffer keeps its length and old bytes (callers that overwrite in place
/// skip zero-filling it again); clear it to append.
pub fn take(capacity: usize) -> Vec<u8> {
    let reused = {
        let mut p = POOL.lock().unwrap_or_else(|e| e.into_inner());
        let v = p.free.pop();
        if let Some(v) = &v {
            p.bytes -= v.capacity();
        }
        v
    };
    match reused {
        Some(mut v) => {
            v.reserve(capacity.saturating_sub(v.len()));
            v
        }
        None => Vec::with_capacity(capacity),
    }
}

/// Keeps `v`'s memory for a later [`take`] (or frees it when the pool is full).
pub fn give(v: Vec<u8>) {
    let cap = v.capacity();
    if cap == 0 || cap > MAX_BUFFER {
        return;
    }
    let mut p = POOL.lock().unwrap_or_else(|e| e.into_inner());
    if p.bytes + cap <= MAX_POOLED_BYTES {
        p.bytes += cap;
        p.free.push(v);
    }
}

/// `v` as [`Bytes`] whose memory returns to the pool once the last handle is
/// dropped.
pub fn bytes(v: Vec<u8>) -> Bytes {
    Bytes::from_owner(Recycled(v))
}

struct Recycled(Vec<u8>);

impl AsRef<[u8]> for Recycled {
    fn as_ref(&self) -> &[u8] {
        &self.0
    }
}

impl Drop for Recycled {
    fn drop(&mut self) {
        give(std::mem::take(&mut self.0));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sent_buffers_come_back_bounded() {
        let v = take(1000);
        let ptr = v.as_ptr();
        let mut v = v;
        v.extend_from_slice(b"hello");
        let b = bytes(v);
        let b2 = b.slice(1..3);
        drop(b);
        assert_eq!(&b2[..], b"el", "a handle keeps the bytes alive");
        drop(b2);
        // Other tests may take from the pool in between; when nobody did,
        // the same memory comes back, with its length.
        let again = take(10);
        if again.as_ptr() == ptr {
            assert_eq!(&again[..], b"hello");
            assert!(again.capacity() >= 1000);
        }
        give(again);
        // Huge buffers are not kept; the total stays bounded.
        give(Vec::with_capacity(MAX_BUFFER + 1));
        for _ in 0..100 {
            give(Vec::with_capacity(MAX_BUFFER));
        }
        assert!(POOL.lock().unwrap().bytes <= MAX_POOLED_BYTES);
    }
}
