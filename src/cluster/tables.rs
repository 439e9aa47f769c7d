//! Tables held in the client's memory (the demo data, CREATE TABLE AS, results of table
//! functions such as FORECAST, `cohort.models`) travel inside the query to the cluster,
//! up to [`INLINE_TABLE_LIMIT`]; larger ones are refused with the way out: files that every
//! executor can read.

use std::sync::Arc;

use cohort_udfs::codec::{ipc_batches, ipc_bytes};
use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::catalog::TableProvider;
use datafusion::common::{Result, TableReference, exec_err, plan_err};
use datafusion::datasource::MemTable;

use crate::store::ModelsTable;

/// The first bytes of a table this codec writes, with its format version.
const MAGIC: &[u8; 8] = b"cohortT1";

/// The most bytes of in-memory tables one query carries: Ballista's messages are capped at
/// 16 MiB, and each task of the stage that reads the table carries its own copy.
pub const INLINE_TABLE_LIMIT: usize = 4 << 20;

/// Writes `provider`'s rows into `buf` when it is held in memory here; `Ok(false)` for
/// other providers.
pub fn encode(
    table: &TableReference,
    provider: &dyn TableProvider,
    buf: &mut Vec<u8>,
) -> Result<bool> {
    let partitions: Vec<Vec<RecordBatch>> = if let Some(t) = provider.downcast_ref::<MemTable>() {
        let mut partitions = Vec::with_capacity(t.batches.len());
        for partition in &t.batches {
            let Ok(batches) = partition.try_read() else {
                return exec_err!("table {table} is being written; run the query again");
            };
            partitions.push(batches.clone());
        }
        partitions
    } else if let Some(t) = provider.downcast_ref::<ModelsTable>() {
        vec![vec![t.batch()?]]
    } else {
        return Ok(false);
    };
    let size: usize = partitions
        .iter()
        .flatten()
        .map(RecordBatch::get_array_memory_size)
        .sum();
    if size > INLINE_TABLE_LIMIT {
        return plan_err!(
            "table {table} is held in this process's memory ({} MiB), more than the {} MiB a \
             query can carry to the cluster's executors; write it where every executor can \
             read it and query that instead: COPY {table} TO 'shared/dir/' STORED AS PARQUET, \
             then CREATE EXTERNAL TABLE ... STORED AS PARQUET LOCATION 'shared/dir/'",
            size >> 20,
            INLINE_TABLE_LIMIT >> 20
        );
    }
    buf.extend_from_slice(MAGIC);
    buf.extend_from_slice(&(partitions.len() as u64).to_le_bytes());
    for partition in &partitions {
        let bytes = ipc_bytes(partition)?;
        buf.extend_from_slice(&(bytes.len() as u64).to_le_bytes());
        buf.extend_from_slice(&bytes);
    }
    Ok(true)
}

/// The table [`encode`] wrote, or `None` when `buf` is not one.
pub fn decode(buf: &[u8], schema: SchemaRef) -> Result<Option<Arc<dyn TableProvider>>> {
    let Some(mut rest) = buf.strip_prefix(MAGIC) else {
        return Ok(None);
    };
    let count = take_u64(&mut rest)?;
    let mut partitions = Vec::new();
    for _ in 0..count {
        let len = usize::try_from(take_u64(&mut rest)?).unwrap_or(usize::MAX);
        if rest.len() < len {
            return truncated();
        }
        let (bytes, tail) = rest.split_at(len);
        partitions.push(ipc_batches(bytes)?);
        rest = tail;
    }
    if partitions.is_empty() {
        partitions.push(vec![]);
    }
    Ok(Some(Arc::new(MemTable::try_new(schema, partitions)?)))
}

fn take_u64(rest: &mut &[u8]) -> Result<u64> {
    match rest.split_first_chunk::<8>() {
        Some((n, tail)) => {
            *rest = tail;
            Ok(u64::from_le_bytes(*n))
        }
        None => truncated(),
    }
}

fn truncated<T>() -> Result<T> {
    exec_err!("an in-memory table arrived from another process cut short")
}
