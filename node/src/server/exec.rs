//! Executes a request against the engine of the shard that owns it, on the
//! core that owns that shard.
//!
//! This is the seam the Raft log will take over: today a write is one
//! engine batch made durable by the shard's own WAL (group-committed across
//! the concurrent requests on the shard); with replication it becomes a
//! proposal to the shard's Raft group, applied when committed.

use super::core::{Core, Out};
use ferrisdb_io::RealDisk;
use ferrisdb_lsm::{Engine, ReadOptions, ScanOptions, WriteBatch, WriteOptions};
use ferrisdb_proto::{
    ErrorCode, ErrorReply, KeyBound, KeyValue, Request, Response, SCAN_CHUNK_BYTES_MAX,
    SCAN_LIMIT_MAX, ShardInfo, WriteOp,
};

/// Bytes a scan entry adds to a chunk beyond its key and value (archive
/// framing), so chunks stay under the frame limit.
const ENTRY_OVERHEAD_BYTES: usize = 16;
/// A scan chunk is sent once it holds this many bytes: one more entry of the
/// largest size still keeps it under [`SCAN_CHUNK_BYTES_MAX`].
const CHUNK_FLUSH_BYTES: usize = SCAN_CHUNK_BYTES_MAX
    - ENTRY_OVERHEAD_BYTES
    - ferrisdb_proto::KEY_BYTES_MAX
    - ferrisdb_proto::VALUE_BYTES_MAX;

pub fn error(code: ErrorCode, message: impl Into<String>) -> Response {
    Response::Error(ErrorReply {
        code,
        message: message.into(),
    })
}

fn storage_error(err: &ferrisdb_lsm::Error) -> Response {
    use ferrisdb_lsm::Error as E;
    let code = match err {
        E::KeyTooLarge { .. } => ErrorCode::KeyTooLarge,
        E::ValueTooLarge { .. } => ErrorCode::ValueTooLarge,
        E::BatchTooLarge { .. } => ErrorCode::BatchTooLarge,
        E::InvalidArgument(_) => ErrorCode::BadRequest,
        _ => ErrorCode::StorageFailed,
    };
    error(code, err.to_string())
}

/// Runs a single-shard request on `shard` (owned by this core) and emits its
/// response(s) to `out`.
pub async fn execute(core: &Core, shard: &ShardInfo, request: Request, out: &Out, id: u64) {
    let Some(engine) = core.engine(shard.id) else {
        return out.emit(core, id, not_open(core, shard.id)).await;
    };
    let response = match request {
        Request::Get { key } => match engine.get(&key, &ReadOptions::default()).await {
            Ok(value) => Response::Value(value),
            Err(err) => storage_error(&err),
        },
        Request::Put { key, value } => write(&engine, vec![WriteOp::Put { key, value }]).await,
        Request::Delete { key } => write(&engine, vec![WriteOp::Delete { key }]).await,
        // `Core::route` hands over only ranges inside the shard (it splits
        // the others with `clamp_range`).
        Request::DeleteRange { start, end } => {
            write(&engine, vec![WriteOp::DeleteRange { start, end }]).await
        }
        Request::Batch { ops } => write(&engine, ops).await,
        Request::Scan {
            start,
            end,
            limit,
            reverse,
        } => {
            scan(
                core,
                &engine,
                shard,
                ScanRequest {
                    start,
                    end,
                    limit,
                    reverse,
                },
                out,
                id,
            )
            .await;
            return;
        }
        Request::ShardMap | Request::Status => error(ErrorCode::Internal, "not a shard request"),
    };
    out.emit(core, id, response).await;
}

/// One engine batch of `ops` on `shard` (owned by this core): the
/// coalesced single-key writes of a lane (`Core::handle_writes`).
pub async fn write_ops(core: &Core, shard: u32, ops: Vec<WriteOp>) -> Response {
    match core.engine(shard) {
        Some(engine) => write(&engine, ops).await,
        None => not_open(core, shard),
    }
}

fn not_open(core: &Core, shard: u32) -> Response {
    error(
        ErrorCode::Internal,
        format!("shard {shard} is not open on core {}", core.index()),
    )
}

/// The part of `[start, end)` inside the shard (empty when `start >= end`).
pub(super) fn clamp_range(shard: &ShardInfo, start: Vec<u8>, end: Vec<u8>) -> (Vec<u8>, Vec<u8>) {
    let start = start.max(shard.start.clone());
    let end = match &shard.end {
        Some(shard_end) if *shard_end < end => shard_end.clone(),
        _ => end,
    };
    (start, end)
}

/// One engine batch of `ops`, durable before it is acknowledged. Keys and
/// values move from the decoded request into the batch without a copy.
async fn write(engine: &Engine<RealDisk>, ops: Vec<WriteOp>) -> Response {
    let mut batch = WriteBatch::new();
    for op in ops {
        match op {
            WriteOp::Put { key, value } => batch.put(key, value),
            WriteOp::Delete { key } => batch.delete(key),
            WriteOp::DeleteRange { start, end } => batch.delete_range(start, end),
        };
    }
    let opts = WriteOptions {
        sync: true,
        ..WriteOptions::default()
    };
    match engine.write(batch, &opts).await {
        Ok(version) => Response::Written { version },
        Err(err) => storage_error(&err),
    }
}

pub struct ScanRequest {
    pub start: KeyBound,
    pub end: KeyBound,
    pub limit: u32,
    pub reverse: bool,
}

/// The key right after `key` in byte order: `key + [0]`.
fn successor(key: &[u8]) -> Vec<u8> {
    let mut next = key.to_vec();
    next.push(0);
    next
}

/// Inclusive lower and exclusive upper engine bounds of a scan inside `shard`,
/// and whether the shard cut the scan short (so it may continue in the next shard).
fn engine_bounds(shard: &ShardInfo, req: &ScanRequest) -> (Vec<u8>, Option<Vec<u8>>, bool) {
    let lower = match &req.start {
        KeyBound::Unbounded => Vec::new(),
        KeyBound::Included(k) => k.clone(),
        KeyBound::Excluded(k) => successor(k),
    };
    let upper = match &req.end {
        KeyBound::Unbounded => None,
        KeyBound::Included(k) => Some(successor(k)),
        KeyBound::Excluded(k) => Some(k.clone()),
    };
    let (lower, lower_cut) = if lower < shard.start {
        (shard.start.clone(), true)
    } else {
        (lower, false)
    };
    let (upper, upper_cut) = match (&shard.end, upper) {
        (Some(se), None) => (Some(se.clone()), true),
        (Some(se), Some(u)) if *se < u => (Some(se.clone()), true),
        (_, u) => (u, false),
    };
    let cut = if req.reverse { lower_cut } else { upper_cut };
    (lower, upper, cut)
}

async fn scan(
    core: &Core,
    engine: &Engine<RealDisk>,
    shard: &ShardInfo,
    req: ScanRequest,
    out: &Out,
    id: u64,
) {
    let limit = if req.limit == 0 {
        SCAN_LIMIT_MAX
    } else {
        req.limit
    } as usize;
    let (lower, upper, cut) = engine_bounds(shard, &req);
    let opts = ScanOptions {
        reverse: req.reverse,
        ..ScanOptions::default()
    };
    let mut iter = match engine.iter(Some(&lower), upper.as_deref(), &opts).await {
        Ok(iter) => iter,
        Err(err) => return out.emit(core, id, storage_error(&err)).await,
    };
    let mut sent = 0usize;
    let mut chunk = Vec::new();
    let mut chunk_bytes = 0usize;
    loop {
        if sent + chunk.len() >= limit {
            break;
        }
        match iter.next().await {
            Ok(Some((key, value))) => {
                chunk_bytes += key.len() + value.len() + ENTRY_OVERHEAD_BYTES;
                chunk.push(KeyValue { key, value });
                if chunk_bytes >= CHUNK_FLUSH_BYTES {
                    sent += chunk.len();
                    let entries = std::mem::take(&mut chunk);
                    chunk_bytes = 0;
                    out.emit(
                        core,
                        id,
                        Response::ScanChunk {
                            entries,
                            done: false,
                            resume: None,
                        },
                    )
                    .await;
                    if out.is_closed() {
                        return;
                    }
                    // A scan served from memory never waits: let the other
                    // requests on this core run between chunks.
                    ferrisdb_io::executor::yield_if_needed().await;
                }
            }
            Ok(None) => break,
            Err(err) => return out.emit(core, id, storage_error(&err)).await,
        }
    }
    let exhausted = sent + chunk.len() < limit;
    let resume = if cut && exhausted {
        if req.reverse {
            Some(KeyBound::Excluded(shard.start.clone()))
        } else {
            shard.end.clone().map(KeyBound::Included)
        }
    } else {
        None
    };
    out.emit(
        core,
        id,
        Response::ScanChunk {
            entries: chunk,
            done: true,
            resume,
        },
    )
    .await;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shard(start: &[u8], end: Option<&[u8]>) -> ShardInfo {
        ShardInfo {
            id: 1,
            start: start.to_vec(),
            end: end.map(<[u8]>::to_vec),
            core: 0,
        }
    }

    fn req(start: KeyBound, end: KeyBound, reverse: bool) -> ScanRequest {
        ScanRequest {
            start,
            end,
            limit: 0,
            reverse,
        }
    }

    #[test]
    fn scan_bounds_are_clamped_to_the_shard_and_report_the_cut() {
        let s = shard(b"m", Some(b"t"));
        let (lo, hi, cut) =
            engine_bounds(&s, &req(KeyBound::Unbounded, KeyBound::Unbounded, false));
        assert_eq!(
            (lo.as_slice(), hi.as_deref(), cut),
            (&b"m"[..], Some(&b"t"[..]), true)
        );
        let (lo, hi, cut) = engine_bounds(
            &s,
            &req(
                KeyBound::Excluded(b"n".to_vec()),
                KeyBound::Included(b"p".to_vec()),
                false,
            ),
        );
        assert_eq!(
            (lo, hi, cut),
            (b"n\0".to_vec(), Some(b"p\0".to_vec()), false)
        );
        // Reverse scans are cut at the shard's start.
        let (_, _, cut) = engine_bounds(
            &s,
            &req(KeyBound::Unbounded, KeyBound::Excluded(b"q".to_vec()), true),
        );
        assert!(cut);
        let last = shard(b"t", None);
        let (_, hi, cut) = engine_bounds(
            &last,
            &req(
                KeyBound::Included(b"u".to_vec()),
                KeyBound::Unbounded,
                false,
            ),
        );
        assert_eq!((hi, cut), (None, false));
    }

    #[test]
    fn delete_ranges_are_clamped_to_the_shard() {
        let s = shard(b"m", Some(b"t"));
        assert_eq!(
            clamp_range(&s, b"a".to_vec(), b"z".to_vec()),
            (b"m".to_vec(), b"t".to_vec())
        );
        assert_eq!(
            clamp_range(&s, b"n".to_vec(), b"o".to_vec()),
            (b"n".to_vec(), b"o".to_vec())
        );
    }
}
