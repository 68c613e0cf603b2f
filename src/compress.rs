//! LZ4-frame compressed CSV bodies (`--compress lz4`): StarRocks' `format:
//! lz4` Stream Loads, for loads whose network, not the server, is the
//! bottleneck (protocol §3: the BE decompresses an LZ4 *frame*, as the
//! official SDK sends it).
//!
//! A body is one frame of independent 256 KiB blocks, no checksums (TCP
//! carries the bytes; the BE checks the frame's structure). Its text is
//! written as it is produced and handed on in pieces of at least
//! [`PIECE`] bytes: the BE reads the frame header from the first piece it
//! receives and refuses a first read shorter than 15 bytes.

use std::io::Write;

use lz4_flex::frame::{BlockMode, BlockSize, FrameEncoder, FrameInfo};

use crate::error::{Error, Result};

/// Compressed bytes collected before they are handed on.
pub const PIECE: usize = 256 << 10;

/// Body compression.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Compression {
    /// Plain bodies.
    #[default]
    None,
    /// CSV bodies as one LZ4 frame (`format: lz4`); JSON bodies stay plain.
    Lz4,
}

impl Compression {
    /// Parses `none` or `lz4`.
    pub fn parse(s: &str) -> Result<Compression> {
        match s.to_ascii_lowercase().as_str() {
            "none" | "" => Ok(Compression::None),
            "lz4" => Ok(Compression::Lz4),
            other => Err(Error::config(format!("unknown compression `{other}` (none or lz4)"))),
        }
    }
}

/// One body being compressed.
#[derive(Debug)]
pub struct Lz4Body {
    enc: FrameEncoder<Vec<u8>>,
}

impl Default for Lz4Body {
    fn default() -> Self {
        Self::new()
    }
}

impl Lz4Body {
    /// A new frame.
    pub fn new() -> Lz4Body {
        let info = FrameInfo::new().block_size(BlockSize::Max256KB).block_mode(BlockMode::Independent);
        Lz4Body { enc: FrameEncoder::with_frame_info(info, Vec::with_capacity(PIECE + (PIECE >> 2))) }
    }

    /// Compresses `text`; returns the compressed bytes ready to go, once at
    /// least [`PIECE`] of them are.
    pub fn push(&mut self, text: &[u8]) -> Result<Option<Vec<u8>>> {
        self.enc.write_all(text).map_err(|e| Error::internal(format!("LZ4 compression failed: {e}")))?;
        if self.enc.get_ref().len() < PIECE {
            return Ok(None);
        }
        Ok(Some(std::mem::replace(self.enc.get_mut(), Vec::with_capacity(PIECE + (PIECE >> 2)))))
    }

    /// Ends the frame: the bytes not handed on yet and the end mark.
    pub fn finish(self) -> Result<Vec<u8>> {
        self.enc.finish().map_err(|e| Error::internal(format!("LZ4 compression failed: {e}")))
    }
}

#[cfg(test)]
mod tests {
    use std::io::Read;

    use super::*;
    use crate::test_rng::Rng;

    /// The body as the pieces a load sends, read back by a frame decoder.
    fn round_trip(texts: &[Vec<u8>]) -> (Vec<Vec<u8>>, Vec<u8>) {
        let mut body = Lz4Body::new();
        let mut pieces = Vec::new();
        for t in texts {
            if let Some(p) = body.push(t).unwrap() {
                pieces.push(p);
            }
        }
        pieces.push(body.finish().unwrap());
        let wire: Vec<u8> = pieces.concat();
        let mut dec = lz4_flex::frame::FrameDecoder::new(&wire[..]);
        let mut out = Vec::new();
        dec.read_to_end(&mut out).unwrap();
        assert!(dec.into_inner().is_empty(), "one frame, nothing after it");
        (pieces, out)
    }

    #[test]
    fn a_body_is_one_frame_of_its_text_in_pieces_the_be_can_start_on() {
        let mut r = Rng(11);
        // Compressible rows, random bytes (stored blocks), empty pushes, one byte.
        let rows: Vec<u8> = (0..200_000).flat_map(|i| format!("{i}\x01value {}\x02", i % 977).into_bytes()).collect();
        let noise: Vec<u8> = (0..700_000).map(|_| r.next() as u8).collect();
        for texts in [
            vec![rows.clone()],
            rows.chunks(8192).map(<[u8]>::to_vec).collect::<Vec<_>>(),
            vec![noise.clone(), Vec::new(), rows.clone(), noise.clone()],
            vec![b"x".to_vec()],
            vec![b"1\x01a\x02".to_vec(), Vec::new()],
        ] {
            let (pieces, out) = round_trip(&texts);
            assert_eq!(out, texts.concat());
            // Every piece but the last holds at least PIECE bytes; the first
            // is never shorter than the 15 bytes the BE reads a header from.
            assert!(pieces[0].len() >= 15, "first piece {} bytes", pieces[0].len());
            assert!(pieces[..pieces.len() - 1].iter().all(|p| p.len() >= PIECE));
        }
        let (pieces, _) = round_trip(std::slice::from_ref(&rows));
        let sent: usize = pieces.iter().map(Vec::len).sum();
        assert!(sent * 2 < rows.len(), "rows compress: {sent} of {} bytes", rows.len());
    }

    #[test]
    fn compression_names() {
        assert_eq!(Compression::parse("LZ4").unwrap(), Compression::Lz4);
        assert_eq!(Compression::parse("none").unwrap(), Compression::None);
        assert!(Compression::parse("gzip").unwrap_err().to_string().contains("none or lz4"));
    }
}
