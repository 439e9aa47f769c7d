//! A check of an Arrow IPC file's declared sizes before DataFusion reads it.
//!
//! Arrow's readers size their buffers by the lengths a file declares (the footer's, each
//! message's metadata and body) before reading them, so a file of a few bytes that declares
//! gigabytes makes them allocate gigabytes before failing. Here every declared length is
//! compared with what the file holds, reading only the metadata, so such a file is refused
//! by name instead.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::Path;

use datafusion::arrow::ipc::{root_as_footer, root_as_message};
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
        check_messages(&mut file, 8, size)
    } else {
        check_messages(&mut file, 0, size)
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
    }
    Ok(())
}

/// The messages from `at` to the end of the stream: each one's metadata and body length
/// within the file.
fn check_messages(file: &mut File, mut at: u64, size: u64) -> Result<(), String> {
    while at + 4 <= size {
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
        let body = u64::try_from(message.bodyLength()).unwrap_or(u64::MAX);
        if body > size - at {
            return Err(format!(
                "a message declares {} bytes of data but the file holds {size}",
                message.bodyLength()
            ));
        }
        at += body;
    }
    Ok(())
}
