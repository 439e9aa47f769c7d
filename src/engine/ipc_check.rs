//! A check of an Arrow IPC file's declared sizes before DataFusion reads it.
//!
//! Arrow's readers size their buffers by the lengths a file declares (the footer's, each
//! message's metadata and body) before reading them, so a file of a few bytes that declares
//! gigabytes makes them allocate gigabytes before failing. Here every declared length is
//! compared with what the file holds, reading only the metadata, so such a file is refused
//! by name instead.
//!
//! Arrow's readers also trust a file's structure: a damaged schema or a record batch with
//! fewer buffers than its schema needs makes them panic. So the schema is decoded here under
//! a catch, and each record batch's nodes and buffers are counted against it.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::Path;

use datafusion::arrow::datatypes::{DataType, Field, Schema, UnionMode};
use datafusion::arrow::ipc::convert::fb_to_schema;
use datafusion::arrow::ipc::{
    CompressionType, MessageHeader, RecordBatch, root_as_footer, root_as_message,
};
use datafusion::common::Result;

use super::files::unreadable;

const MAGIC: &[u8; 6] = b"ARROW1";
const CONTINUATION: [u8; 4] = [0xff; 4];
/// Metadata read whole to check it: larger schemas are not in real files.
const LARGEST_METADATA: u64 = 64 << 20;

/// Refuses the Arrow IPC file at `path` if [`check`] finds it unreadable, naming the file.
pub(crate) fn refuse_unreadable(path: &Path) -> Result<()> {
    check(path).map_err(|why| unreadable(path, &format!("not a readable Arrow IPC file: {why}")))
}

/// Why the Arrow IPC file (file or stream format) at `path` cannot be read, if its declared
/// lengths run past its end.
fn check(path: &Path) -> Result<(), String> {
    let mut file = File::open(path).map_err(|e| e.to_string())?;
    let size = file.metadata().map_err(|e| e.to_string())?.len();
    let mut head = [0u8; 8];
    let has_magic = size >= 8 && {
        file.read_exact(&mut head).map_err(|e| e.to_string())?;
        &head[..6] == MAGIC
    };
    if has_magic {
        check_footer(&mut file, size)?;
        check_messages(&mut file, 8, size, None, usize::MAX)
    } else {
        check_messages(&mut file, 0, size, None, usize::MAX)
    }
}

fn io(e: std::io::Error) -> String {
    e.to_string()
}

/// Reads `len` bytes at `at`, once `len` is known to fit in the file.
fn read_at(file: &mut File, at: u64, len: u64) -> Result<Vec<u8>, String> {
    file.seek(SeekFrom::Start(at)).map_err(io)?;
    let mut bytes = vec![0; len as usize];
    file.read_exact(&mut bytes).map_err(io)?;
    Ok(bytes)
}

/// The footer of the file format: its length, and each block it lists, within the file.
fn check_footer(file: &mut File, size: u64) -> Result<(), String> {
    if size < 18 {
        return Err(format!(
            "it starts as an Arrow IPC file but holds only {size} bytes, too few for its footer"
        ));
    }
    let tail = read_at(file, size - 10, 10)?;
    if &tail[4..] != MAGIC {
        return Err("it starts as an Arrow IPC file but does not end as one".to_string());
    }
    let declared = i32::from_le_bytes([tail[0], tail[1], tail[2], tail[3]]);
    let footer = u64::try_from(declared).unwrap_or(u64::MAX);
    if footer > (size - 18).min(LARGEST_METADATA) {
        return Err(format!(
            "its footer declares {declared} bytes but the file holds {size}"
        ));
    }
    let bytes = read_at(file, size - 10 - footer, footer)?;
    let footer = root_as_footer(&bytes).map_err(|e| format!("its footer is damaged: {e}"))?;
    // The file reader takes its schema from the footer.
    let schema = footer.schema().ok_or("its footer has no schema")?;
    let schema = quietly(|| fb_to_schema(schema)).ok_or("its schema is damaged")?;
    let blocks = footer
        .recordBatches()
        .into_iter()
        .chain(footer.dictionaries())
        .flatten();
    for block in blocks {
        let end = u64::try_from(block.offset())
            .ok()
            .zip(u64::try_from(block.metaDataLength()).ok())
            .zip(u64::try_from(block.bodyLength()).ok())
            .and_then(|((offset, meta), body)| offset.checked_add(meta)?.checked_add(body));
        if end.is_none_or(|end| end > size) {
            return Err(format!(
                "a block at offset {} declares {} bytes of metadata and {} of data, past the \
                 file's {size} bytes",
                block.offset(),
                block.metaDataLength(),
                block.bodyLength()
            ));
        }
        // The file reader reads each batch where its block says, whatever the stream holds.
        check_messages(file, block.offset() as u64, size, Some(schema.clone()), 1)?;
    }
    Ok(())
}

/// Up to `count` messages from `at` to the end of the stream: each one's metadata and body
/// length within the file, and each batch's layout against `schema` or the stream's own.
fn check_messages(
    file: &mut File,
    mut at: u64,
    size: u64,
    mut schema: Option<Schema>,
    mut count: usize,
) -> Result<(), String> {
    while count > 0 && at + 4 <= size {
        count -= 1;
        let mut word = read_at(file, at, 4)?;
        at += 4;
        if word == CONTINUATION {
            if at + 4 > size {
                break;
            }
            word = read_at(file, at, 4)?;
            at += 4;
        }
        let declared = i32::from_le_bytes([word[0], word[1], word[2], word[3]]);
        if declared == 0 {
            // The end of the stream; the file format's footer follows.
            return Ok(());
        }
        let meta = u64::try_from(declared).unwrap_or(u64::MAX);
        if meta > (size - at).min(LARGEST_METADATA) {
            return Err(format!(
                "a message at byte {} declares {declared} bytes of metadata but the file holds \
                 {size}",
                at - 4
            ));
        }
        let bytes = read_at(file, at, meta)?;
        at += meta;
        let message = root_as_message(&bytes).map_err(|e| format!("a message is damaged: {e}"))?;
        match message.header_type() {
            MessageHeader::Schema => {
                let fb = message.header_as_schema().ok_or("its schema is damaged")?;
                schema = Some(quietly(|| fb_to_schema(fb)).ok_or("its schema is damaged")?);
            }
            MessageHeader::RecordBatch => {
                let batch = message
                    .header_as_record_batch()
                    .ok_or("a batch is damaged")?;
                let schema = schema
                    .as_ref()
                    .ok_or("a record batch comes before the schema")?;
                let needs = Layout::of(schema.fields().iter().map(AsRef::as_ref));
                let variadic: Vec<i64> = batch
                    .variadicBufferCounts()
                    .map(|c| c.iter().collect())
                    .unwrap_or_default();
                let extra = variadic
                    .iter()
                    .try_fold(0usize, |sum, &c| sum.checked_add(usize::try_from(c).ok()?));
                // Each column's top node is as long as the batch: a batch that declares more
                // rows than its columns hold would have count(*) make them all.
                let mut top = 0;
                for field in schema.fields() {
                    let node = batch
                        .nodes()
                        .and_then(|n| (top < n.len()).then(|| n.get(top)));
                    if node.is_some_and(|n| n.length() != batch.length()) {
                        return Err(format!(
                            "a record batch at byte {} declares {} rows but its column {} holds {}",
                            at - meta,
                            batch.length(),
                            field.name(),
                            node.map_or(0, |n| n.length())
                        ));
                    }
                    top += Layout::field(field.data_type()).nodes;
                }
                let have_nodes = batch.nodes().map_or(0, |n| n.len());
                let have_buffers = batch.buffers().map_or(0, |b| b.len());
                if variadic.len() != needs.views
                    || have_nodes < needs.nodes
                    || extra.is_none_or(|extra| have_buffers < needs.buffers + extra)
                {
                    return Err(format!(
                        "a record batch at byte {} has {have_nodes} nodes and {have_buffers} \
                         buffers, fewer than its schema needs",
                        at - meta
                    ));
                }
            }
            _ => {}
        }
        let body = u64::try_from(message.bodyLength()).unwrap_or(u64::MAX);
        if body > size - at {
            return Err(format!(
                "a message declares {} bytes of data but the file holds {size}",
                message.bodyLength()
            ));
        }
        let data = match message.header_type() {
            MessageHeader::RecordBatch => message.header_as_record_batch(),
            MessageHeader::DictionaryBatch => {
                message.header_as_dictionary_batch().and_then(|d| d.data())
            }
            _ => None,
        };
        if let Some(data) = data {
            check_buffers(file, &data, at, body)?;
        }
        at += body;
    }
    Ok(())
}

/// Each buffer of a batch whose data starts at `at` and runs `body` bytes: within the data,
/// and, when compressed, declaring no more bytes than its codec can give, which the reader
/// allocates before decompressing.
fn check_buffers(file: &mut File, batch: &RecordBatch, at: u64, body: u64) -> Result<(), String> {
    // An LZ4 frame grows at most 255-fold (a match length byte adds 255); a zstd frame at
    // most some 32,768-fold (a 128 KiB run in a 4-byte block).
    let ratio: u64 = match batch.compression().map(|c| c.codec()) {
        None => 0,
        Some(CompressionType::LZ4_FRAME) => 256,
        Some(_) => 1 << 15,
    };
    for buffer in batch.buffers().into_iter().flatten() {
        let place = u64::try_from(buffer.offset())
            .ok()
            .zip(u64::try_from(buffer.length()).ok())
            .filter(|(offset, len)| offset.checked_add(*len).is_some_and(|end| end <= body));
        let Some((offset, len)) = place else {
            return Err(format!(
                "a buffer at offset {} of {} bytes lies outside its batch's {body} bytes",
                buffer.offset(),
                buffer.length()
            ));
        };
        if ratio == 0 || len < 8 {
            continue;
        }
        let prefix = read_at(file, at + offset, 8)?;
        let declared = i64::from_le_bytes(prefix.try_into().unwrap_or_default());
        // -1: stored uncompressed.
        let fits = declared == -1
            || u64::try_from(declared).is_ok_and(|d| d <= ratio.saturating_mul(len) + 64);
        if !fits {
            return Err(format!(
                "a compressed buffer of {len} bytes declares {declared} bytes once decompressed"
            ));
        }
    }
    Ok(())
}

/// What a record batch holds for some columns, as Arrow's reader takes it: field nodes,
/// buffers (view types' data buffers aside) and view-typed columns, for each of which the
/// batch gives its own count of data buffers.
#[derive(Debug, Clone, Copy, Default)]
struct Layout {
    nodes: usize,
    buffers: usize,
    views: usize,
}

impl Layout {
    fn of<'a>(fields: impl Iterator<Item = &'a Field>) -> Self {
        fields.fold(Self::default(), |sum, f| {
            let one = Self::field(f.data_type());
            Self {
                nodes: sum.nodes + one.nodes,
                buffers: sum.buffers + one.buffers,
                views: sum.views + one.views,
            }
        })
    }

    fn field(data_type: &DataType) -> Self {
        use DataType::*;
        // One node and `buffers` of its own, over its children's.
        let with = |buffers: usize, children: Self| Self {
            nodes: 1 + children.nodes,
            buffers: buffers + children.buffers,
            views: children.views,
        };
        let leaf = |buffers| with(buffers, Self::default());
        match data_type {
            Null => leaf(0),
            Utf8 | Binary | LargeUtf8 | LargeBinary => leaf(3),
            Utf8View | BinaryView => Self {
                views: 1,
                ..leaf(2)
            },
            List(f) | LargeList(f) | Map(f, _) => with(2, Self::field(f.data_type())),
            ListView(f) | LargeListView(f) => with(3, Self::field(f.data_type())),
            FixedSizeList(f, _) => with(1, Self::field(f.data_type())),
            Struct(fields) => with(1, Self::of(fields.iter().map(AsRef::as_ref))),
            Union(fields, mode) => {
                let own = if *mode == UnionMode::Dense { 2 } else { 1 };
                with(own, Self::of(fields.iter().map(|(_, f)| f.as_ref())))
            }
            RunEndEncoded(ends, values) => {
                with(0, Self::of([ends.as_ref(), values.as_ref()].into_iter()))
            }
            // Dictionary keys and every fixed-width type: a validity and a values buffer.
            _ => leaf(2),
        }
    }
}

/// `f`'s result, or `None` if it panics, without the panic's message: Arrow's schema
/// decoder panics on what a damaged file declares.
fn quietly<T>(f: impl FnOnce() -> T) -> Option<T> {
    thread_local! {
        static QUIET: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
    }
    static HOOK: std::sync::Once = std::sync::Once::new();
    HOOK.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if !QUIET.with(std::cell::Cell::get) {
                previous(info);
            }
        }));
    });
    QUIET.with(|q| q.set(true));
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f));
    QUIET.with(|q| q.set(false));
    result.ok()
}
