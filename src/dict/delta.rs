//! Delta files: the new values of one version, in id order (sorted, for a
//! build), as Parquet
//! (`value: Binary`, `id: UInt64`), written with row groups encoded in
//! parallel and streamed to the store while their checksum is computed;
//! read back row group by row group, checksum verified.

use std::io::Write;
use std::ops::Range as ByteRange;
use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray, BinaryArray, UInt64Array};
use arrow::buffer::{Buffer, OffsetBuffer};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use bytes::{Buf, Bytes};
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt, WriteMultipart};
use parquet::arrow::ArrowWriter;
use parquet::arrow::ProjectionMask;
use parquet::arrow::arrow_reader::{ArrowReaderMetadata, ArrowReaderOptions, ParquetRecordBatchReaderBuilder};
use parquet::arrow::arrow_writer::{ArrowColumnChunk, ArrowRowGroupWriterFactory, compute_leaves};
use parquet::basic::{Compression, Encoding};
use parquet::errors::ParquetError;
use parquet::file::metadata::{FooterTail, ParquetMetaDataReader};
use parquet::file::properties::{EnabledStatistics, WriterProperties};
use parquet::file::reader::{ChunkReader, Length};
use parquet::schema::types::ColumnPath;
use rayon::prelude::*;

use super::DeltaFile;
use super::set::{Range, Sorted};
use crate::error::{Error, Result};

/// Most rows in one row group.
const RG_ROWS: usize = 1 << 20;
/// Most value bytes in one row group (keeps `i32` offsets safe).
const RG_BYTES: usize = 128 << 20;
/// Upload part size.
const PART: usize = 16 << 20;
/// Parts in flight.
const PARTS_IN_FLIGHT: usize = 4;

/// The Arrow schema of a delta file.
pub(crate) fn schema() -> SchemaRef {
    Arc::new(Schema::new(vec![Field::new("value", DataType::Binary, false), Field::new("id", DataType::UInt64, false)]))
}

fn props() -> WriterProperties {
    WriterProperties::builder()
        .set_created_by("starload".to_string())
        .set_dictionary_enabled(false)
        .set_statistics_enabled(EnabledStatistics::None)
        .set_column_statistics_enabled(ColumnPath::from("id"), EnabledStatistics::Chunk)
        .set_compression(Compression::LZ4_RAW)
        .set_column_encoding(ColumnPath::from("id"), Encoding::DELTA_BINARY_PACKED)
        .set_column_compression(ColumnPath::from("id"), Compression::UNCOMPRESSED)
        .set_offset_index_disabled(true)
        .build()
}

/// Where one row group starts and how big it is.
#[derive(Debug, Clone, Copy)]
struct RgPlan {
    range: usize,
    pos: usize,
    rows: usize,
    bytes: usize,
    first_row: u64,
}

/// Rows per row group for `n` values: a multiple of 8 groups of at most
/// [`RG_ROWS`] (and at least 16K rows), so the groups share out evenly
/// among the encoding threads without depending on how many there are.
fn rows_per_group(n: usize) -> usize {
    let groups = 8 * n.div_ceil(8 * RG_ROWS).max(1);
    n.div_ceil(groups).max(1 << 14)
}

/// Cuts the sorted values into row groups (a function of the values only,
/// so the same values always give the same file).
fn plan_row_groups(ranges: &[Range]) -> Vec<RgPlan> {
    let rg_rows = rows_per_group(ranges.iter().map(|r| r.order.len()).sum());
    let mut out: Vec<RgPlan> = Vec::new();
    let mut cur: Option<RgPlan> = None;
    let mut row = 0u64;
    for (ri, r) in ranges.iter().enumerate() {
        for k in 0..r.order.len() {
            let len = r.value(k).len();
            match &mut cur {
                Some(c) if c.rows < rg_rows && c.bytes + len <= RG_BYTES => {
                    c.rows += 1;
                    c.bytes += len;
                }
                _ => {
                    out.extend(cur.take());
                    cur = Some(RgPlan { range: ri, pos: k, rows: 1, bytes: len, first_row: row });
                }
            }
            row += 1;
        }
    }
    out.extend(cur);
    out
}

/// The values of one row group as an Arrow array.
fn gather(ranges: &[Option<Range>], p: &RgPlan) -> BinaryArray {
    let mut offsets: Vec<i32> = Vec::with_capacity(p.rows + 1);
    offsets.push(0);
    let mut data: Vec<u8> = Vec::with_capacity(p.bytes);
    let (mut ri, mut k) = (p.range, p.pos);
    let mut left = p.rows;
    while left > 0 {
        let Some(r) = ranges[ri].as_ref() else { unreachable!("range {ri} freed before use") };
        if k >= r.order.len() {
            ri += 1;
            k = 0;
            continue;
        }
        let take = left.min(r.order.len() - k);
        for j in k..k + take {
            data.extend_from_slice(r.value(j));
            offsets.push(data.len() as i32);
        }
        left -= take;
        k += take;
    }
    BinaryArray::new(OffsetBuffer::new(offsets.into()), Buffer::from_vec(data), None)
}

fn encode_row_group(
    factory: &ArrowRowGroupWriterFactory,
    schema: &SchemaRef,
    index: usize,
    values: ArrayRef,
    ids: ArrayRef,
) -> Result<Vec<ArrowColumnChunk>> {
    let mut writers = factory.create_column_writers(index)?;
    for ((w, field), arr) in writers.iter_mut().zip(schema.fields().iter()).zip([&values, &ids]) {
        for leaf in compute_leaves(field, arr)? {
            w.write(&leaf)?;
        }
    }
    writers.into_iter().map(|w| w.close().map_err(Error::from)).collect()
}

/// What the encoder sends the uploader.
#[derive(Debug)]
enum Part {
    Data(Bytes),
    /// The file is complete.
    End,
}

/// A `Write` that hashes what passes and hands parts to the uploader.
struct Sink {
    tx: tokio::sync::mpsc::Sender<Part>,
    buf: Vec<u8>,
    hasher: blake3::Hasher,
    size: u64,
}

impl Sink {
    fn send_part(&mut self) -> std::io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let chunk = std::mem::replace(&mut self.buf, Vec::with_capacity(PART + (1 << 20)));
        self.hasher.update(&chunk);
        self.size += chunk.len() as u64;
        self.tx.blocking_send(Part::Data(Bytes::from(chunk))).map_err(|_| std::io::Error::other("the upload stopped"))
    }
}

impl Write for Sink {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.buf.extend_from_slice(b);
        if self.buf.len() >= PART {
            self.send_part()?;
        }
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Encodes the sorted values (ids from `first_id`) as a delta file into the
/// sink; frees the ranges as they are written. Returns (size, blake3 hex).
fn encode(sorted: Sorted, first_id: u64, mut sink: Sink) -> Result<(u64, String)> {
    let plan = plan_row_groups(&sorted.ranges);
    let mut ranges: Vec<Option<Range>> = sorted.ranges.into_iter().map(Some).collect();
    let schema = schema();
    sink.buf.reserve(PART + (1 << 20));
    let writer = ArrowWriter::try_new(sink, schema.clone(), Some(props()))?;
    let (mut fw, factory) = writer.into_serialized_writer()?;
    let window = rayon::current_num_threads().max(1);
    let windows: Vec<&[RgPlan]> = plan.chunks(window).collect();
    let mut freed = 0usize;
    let mut ready: Vec<Vec<ArrowColumnChunk>> = Vec::new();
    // Window `wi` is encoded (in parallel) while window `wi - 1` is written
    // out (checksummed and handed to the upload).
    for wi in 0..=windows.len() {
        let (encoded, appended) = rayon::join(
            || -> Result<Vec<Vec<ArrowColumnChunk>>> {
                let Some(group) = windows.get(wi) else { return Ok(Vec::new()) };
                group
                    .par_iter()
                    .enumerate()
                    .map(|(j, p)| {
                        let values: ArrayRef = Arc::new(gather(&ranges, p));
                        let ids: ArrayRef = Arc::new(UInt64Array::from_iter_values(
                            (0..p.rows as u64).map(|r| first_id + p.first_row + r),
                        ));
                        encode_row_group(&factory, &schema, wi * window + j, values, ids)
                    })
                    .collect()
            },
            || -> Result<()> {
                for cols in ready.drain(..) {
                    let mut rgw = fw.next_row_group()?;
                    for c in cols {
                        c.append_to_row_group(&mut rgw)?;
                    }
                    rgw.close()?;
                }
                Ok(())
            },
        );
        appended?;
        ready = encoded?;
        // Ranges before the next window's first are done.
        let upto = plan.get((wi + 1) * window).map_or(ranges.len(), |p| p.range);
        while freed < upto {
            ranges[freed] = None;
            freed += 1;
        }
    }
    let mut sink = fw.into_inner()?;
    sink.send_part().map_err(|e| Error::infra(e.to_string()))?;
    sink.tx.blocking_send(Part::End).map_err(|_| Error::infra("the upload stopped"))?;
    Ok((sink.size, sink.hasher.finalize().to_hex().to_string()))
}

/// Writes the sorted new values, ids from `first_id`, as the delta file at
/// `path`. Returns (size, blake3 hex).
pub(crate) async fn write(
    store: &Arc<dyn ObjectStore>,
    path: &Path,
    sorted: Sorted,
    first_id: u64,
) -> Result<(u64, String)> {
    let (tx, rx) = tokio::sync::mpsc::channel::<Part>(PARTS_IN_FLIGHT);
    let sink = Sink { tx, buf: Vec::new(), hasher: blake3::Hasher::new(), size: 0 };
    let encoder = tokio::task::spawn_blocking(move || encode(sorted, first_id, sink));
    let uploaded = upload(store, path, rx).await;
    let encoded = encoder.await.map_err(|e| Error::internal(format!("dictionary delta encoder failed: {e}")))?;
    let (size, sum) = encoded?;
    uploaded?;
    Ok((size, sum))
}

/// Receives parts and writes them to `path`: one put for a small file, a
/// multipart upload otherwise. A stream that stops without `End` is aborted.
async fn upload(store: &Arc<dyn ObjectStore>, path: &Path, mut rx: tokio::sync::mpsc::Receiver<Part>) -> Result<()> {
    let incomplete = || Error::internal("the dictionary delta encoder stopped before the end of the file");
    let first = match rx.recv().await {
        Some(Part::Data(b)) => b,
        _ => return Err(incomplete()),
    };
    let second = match rx.recv().await {
        Some(Part::End) => {
            store.put(path, first.into()).await?;
            return Ok(());
        }
        Some(Part::Data(b)) => b,
        None => return Err(incomplete()),
    };
    let upload = store.put_multipart(path).await?;
    let mut w = WriteMultipart::new_with_chunk_size(upload, PART);
    w.put(first);
    w.put(second);
    loop {
        match rx.recv().await {
            Some(Part::Data(b)) => {
                if let Err(e) = w.wait_for_capacity(PARTS_IN_FLIGHT).await {
                    return Err(e.into());
                }
                w.put(b);
            }
            Some(Part::End) => {
                w.finish().await?;
                return Ok(());
            }
            None => {
                let _ = w.abort().await;
                return Err(incomplete());
            }
        }
    }
}

/// One decoded row group.
#[derive(Debug)]
pub(crate) struct Decoded {
    /// `BinaryView`; `Binary` when read with [`Read::BinaryAndIds`].
    pub(crate) values: ArrayRef,
    pub(crate) ids: Option<UInt64Array>,
    /// Row of the file the group starts at.
    pub(crate) first_row: u64,
}

/// A contiguous piece of a file held in memory (a row group's bytes),
/// readable by the Parquet decoder at file offsets.
pub(crate) struct Segment {
    pub(crate) start: u64,
    pub(crate) bytes: Bytes,
    pub(crate) file_len: u64,
}

impl Segment {
    fn slice(&self, start: u64, len: Option<usize>) -> parquet::errors::Result<Bytes> {
        let off = start
            .checked_sub(self.start)
            .map(|o| o as usize)
            .filter(|o| *o <= self.bytes.len())
            .ok_or_else(|| ParquetError::General(format!("read at {start} outside the row group's bytes")))?;
        let end = match len {
            Some(l) => off.checked_add(l).filter(|e| *e <= self.bytes.len()).ok_or_else(|| {
                ParquetError::General(format!("read of {l} bytes at {start} outside the row group's bytes"))
            })?,
            None => self.bytes.len(),
        };
        Ok(self.bytes.slice(off..end))
    }
}

impl Length for Segment {
    fn len(&self) -> u64 {
        self.file_len
    }
}

impl ChunkReader for Segment {
    type T = bytes::buf::Reader<Bytes>;
    fn get_read(&self, start: u64) -> parquet::errors::Result<Self::T> {
        Ok(self.slice(start, None)?.reader())
    }
    fn get_bytes(&self, start: u64, length: usize) -> parquet::errors::Result<Bytes> {
        self.slice(start, Some(length))
    }
}

/// One row group's place in the file.
#[derive(Debug, Clone)]
struct RgSpan {
    /// Bytes from the end of the previous row group to the end of this one.
    bytes: ByteRange<u64>,
    index: usize,
    first_row: u64,
    rows: usize,
}

/// What a [`DeltaReader`] decodes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Read {
    /// The values only, as `BinaryView`s into the file's pages (no copy).
    Views,
    /// The values as `BinaryView`s, and the ids.
    ViewsAndIds,
    /// The values as a `Binary` array, and the ids.
    BinaryAndIds,
}

impl Read {
    fn ids(self) -> bool {
        self != Read::Views
    }
}

/// Reads a delta file window by window (a few row groups, decoded in
/// parallel, the next window fetched meanwhile), verifying its size, row
/// count, schema and, at the end, its blake3 checksum.
pub(crate) struct DeltaReader {
    store: Arc<dyn ObjectStore>,
    path: Path,
    what: String,
    file: DeltaFile,
    meta: ArrowReaderMetadata,
    spans: Vec<RgSpan>,
    tail: ByteRange<u64>,
    next: usize,
    window: usize,
    read: Read,
    hasher: Option<blake3::Hasher>,
    prefetch: Option<tokio::task::JoinHandle<Result<Vec<Bytes>>>>,
    done: bool,
}

impl std::fmt::Debug for DeltaReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DeltaReader").field("what", &self.what).finish_non_exhaustive()
    }
}

fn missing(what: &str) -> Error {
    Error::data(format!(
        "{what} is missing; the dictionary cannot be read (restore the file: a dictionary is never rebuilt with new \
         ids)"
    ))
}

fn corrupt(what: &str, why: impl std::fmt::Display) -> Error {
    Error::data(format!(
        "{what} is corrupt ({why}); the dictionary cannot be read (restore the file: a dictionary is never rebuilt \
         with new ids)"
    ))
}

fn read_error(what: &str, e: object_store::Error) -> Error {
    match super::norm(e) {
        object_store::Error::NotFound { .. } => missing(what),
        e => Error::infra(format!("cannot read {what}: {}", crate::source::describe_store_error(&e))),
    }
}

impl DeltaReader {
    /// Opens `file` at `path`; `what` names it in messages.
    pub(crate) async fn open(
        store: Arc<dyn ObjectStore>,
        path: Path,
        what: String,
        file: &DeltaFile,
        read: Read,
    ) -> Result<DeltaReader> {
        let head = store.head(&path).await.map_err(|e| read_error(&what, e))?;
        if head.size != file.size {
            return Err(corrupt(&what, format!("{} bytes, the manifest records {}", head.size, file.size)));
        }
        let size = head.size;
        if size < 12 {
            return Err(corrupt(&what, "too short for Parquet"));
        }
        let last8 = store.get_range(&path, size - 8..size).await.map_err(|e| read_error(&what, e))?;
        let mut tail8 = [0u8; 8];
        tail8.copy_from_slice(&last8);
        let footer = FooterTail::try_new(&tail8).map_err(|e| corrupt(&what, e))?;
        let mlen = footer.metadata_length() as u64;
        if mlen + 12 > size || footer.is_encrypted_footer() {
            return Err(corrupt(&what, "bad footer"));
        }
        let mbytes = store.get_range(&path, size - 8 - mlen..size - 8).await.map_err(|e| read_error(&what, e))?;
        let md = ParquetMetaDataReader::decode_metadata(&mbytes).map_err(|e| corrupt(&what, e))?;
        let meta =
            ArrowReaderMetadata::try_new(Arc::new(md), ArrowReaderOptions::new()).map_err(|e| corrupt(&what, e))?;
        let fields = meta.schema().fields();
        if fields.len() != 2
            || fields[0].name() != "value"
            || fields[0].data_type() != &DataType::Binary
            || fields[1].name() != "id"
            || fields[1].data_type() != &DataType::UInt64
        {
            return Err(corrupt(&what, format!("unexpected schema {:?}", meta.schema())));
        }
        let meta = if read == Read::BinaryAndIds {
            meta
        } else {
            let views = Schema::new(vec![
                Field::new("value", DataType::BinaryView, false),
                Field::new("id", DataType::UInt64, false),
            ]);
            ArrowReaderMetadata::try_new(
                meta.metadata().clone(),
                ArrowReaderOptions::new().with_schema(Arc::new(views)),
            )
            .map_err(|e| corrupt(&what, e))?
        };
        let md = meta.metadata();
        let rows: i64 = md.row_groups().iter().map(|g| g.num_rows()).sum();
        if rows < 0 || rows as u64 != file.count {
            return Err(corrupt(&what, format!("{rows} rows, the manifest records {}", file.count)));
        }
        let mut spans = Vec::with_capacity(md.num_row_groups());
        let (mut prev, mut first_row) = (0u64, 0u64);
        for (index, g) in md.row_groups().iter().enumerate() {
            let end = g.columns().iter().map(|c| c.byte_range()).map(|(s, l)| s + l).max().unwrap_or(prev);
            let start = g.columns().iter().map(|c| c.byte_range().0).min().unwrap_or(prev);
            if start < prev || end > size - 8 - mlen {
                return Err(corrupt(&what, format!("row group {index} at bad offsets")));
            }
            spans.push(RgSpan { bytes: prev..end, index, first_row, rows: g.num_rows() as usize });
            first_row += g.num_rows() as u64;
            prev = end;
        }
        Ok(DeltaReader {
            store,
            path,
            what,
            file: file.clone(),
            meta,
            tail: prev..size,
            spans,
            next: 0,
            window: rayon::current_num_threads().max(2),
            read,
            hasher: Some(blake3::Hasher::new()),
            prefetch: None,
            done: false,
        })
    }

    fn fetch(&self, from: usize) -> tokio::task::JoinHandle<Result<Vec<Bytes>>> {
        let ranges: Vec<ByteRange<u64>> =
            self.spans[from..(from + self.window).min(self.spans.len())].iter().map(|s| s.bytes.clone()).collect();
        let (store, path, what) = (self.store.clone(), self.path.clone(), self.what.clone());
        tokio::spawn(async move {
            futures::future::try_join_all(ranges.into_iter().map(|r| {
                let (store, path) = (&store, &path);
                async move { store.get_range(path, r).await }
            }))
            .await
            .map_err(|e| read_error(&what, e))
        })
    }

    /// The next few row groups, decoded; `None` once the file is read and
    /// its checksum verified.
    pub(crate) async fn next_window(&mut self) -> Result<Option<Vec<Decoded>>> {
        if self.done {
            return Ok(None);
        }
        let Some(mut hasher) = self.hasher.take() else { return Err(Error::internal("delta reader reused")) };
        if self.next >= self.spans.len() {
            let tail =
                self.store.get_range(&self.path, self.tail.clone()).await.map_err(|e| read_error(&self.what, e))?;
            hasher.update(&tail);
            let sum = hasher.finalize().to_hex().to_string();
            self.done = true;
            if sum != self.file.blake3 {
                return Err(corrupt(&self.what, format!("blake3 {sum}, the manifest records {}", self.file.blake3)));
            }
            return Ok(None);
        }
        let handle = match self.prefetch.take() {
            Some(h) => h,
            None => self.fetch(self.next),
        };
        let bytes = handle.await.map_err(|e| Error::internal(format!("reading {} failed: {e}", self.what)))??;
        let spans: Vec<RgSpan> = self.spans[self.next..self.next + bytes.len()].to_vec();
        self.next += bytes.len();
        if self.next < self.spans.len() {
            self.prefetch = Some(self.fetch(self.next));
        }
        let (meta, read, what, file_len) = (self.meta.clone(), self.read, self.what.clone(), self.tail.end);
        let (hasher, decoded) = tokio::task::spawn_blocking(move || {
            let hash = || {
                for b in &bytes {
                    hasher.update(b);
                }
                hasher
            };
            let decode = || {
                spans
                    .par_iter()
                    .zip(bytes.par_iter())
                    .map(|(s, b)| {
                        let seg = Segment { start: s.bytes.start, bytes: b.clone(), file_len };
                        decode(seg, &meta, s, read).map_err(|e| corrupt(&what, e))
                    })
                    .collect::<Result<Vec<_>>>()
            };
            let (h, d) = rayon::join(hash, decode);
            (h, d)
        })
        .await
        .map_err(|e| Error::internal(format!("decoding {} failed: {e}", self.what)))?;
        self.hasher = Some(hasher);
        Ok(Some(decoded?))
    }
}

fn decode(seg: Segment, meta: &ArrowReaderMetadata, s: &RgSpan, read: Read) -> parquet::errors::Result<Decoded> {
    let with_ids = read.ids();
    let mask = if with_ids { ProjectionMask::all() } else { ProjectionMask::roots(meta.parquet_schema(), [0]) };
    let reader = ParquetRecordBatchReaderBuilder::new_with_metadata(seg, meta.clone())
        .with_row_groups(vec![s.index])
        .with_projection(mask)
        .with_batch_size(s.rows.max(1))
        .build()?;
    let mut values: Vec<ArrayRef> = Vec::new();
    let mut ids: Vec<ArrayRef> = Vec::new();
    for b in reader {
        let b = b?;
        values.push(b.column(0).clone());
        if with_ids {
            ids.push(b.column(1).clone());
        }
    }
    let cat = |parts: Vec<ArrayRef>| -> parquet::errors::Result<ArrayRef> {
        match parts.len() {
            1 => Ok(parts.into_iter().next().unwrap_or_else(|| unreachable!())),
            _ => {
                let refs: Vec<&dyn Array> = parts.iter().map(|a| a.as_ref()).collect();
                Ok(arrow::compute::concat(&refs)?)
            }
        }
    };
    let v = cat(values)?;
    if v.len() != s.rows || v.null_count() != 0 {
        return Err(ParquetError::General(format!("row group {} decodes to {} rows", s.index, v.len())));
    }
    let values = v;
    let ids = if with_ids { Some(cat(ids)?.as_primitive::<arrow::datatypes::UInt64Type>().clone()) } else { None };
    Ok(Decoded { values, ids, first_row: s.first_row })
}

#[cfg(test)]
mod row_group_tests {
    use super::*;

    #[test]
    fn row_groups_come_in_eights_of_at_most_rg_rows() {
        assert_eq!(rows_per_group(10), 1 << 14);
        assert_eq!(rows_per_group(750_000), 93_750);
        assert_eq!(rows_per_group(7_200_000), 900_000);
        let n = 9 * RG_ROWS;
        assert_eq!(rows_per_group(n), n.div_ceil(16));
    }
}
