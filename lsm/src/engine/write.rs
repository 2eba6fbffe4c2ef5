//! The write path: validate, version, log, wait for durability, apply in order.

use super::{Engine, Inner, Pending, WriteOptions};
use crate::batch::{Op, WriteBatch};
use crate::error::{Error, Result};
use crate::memtable::Memtable;
use crate::types::{Kind, RangeTombstone, Version};
use ferrisdb_io::Disk;

/// Applies every op of `batch` at `version`.
pub(crate) fn apply_batch(mem: &mut Memtable, batch: WriteBatch, version: Version) {
    for op in batch.ops {
        match op {
            Op::Put { key, value } => mem.insert(key, version, Kind::Put, value),
            Op::Delete { key } => mem.insert(key, version, Kind::Delete, Vec::new()),
            Op::DeleteRange { start, end } => mem.insert_range_tombstone(RangeTombstone {
                start,
                end,
                version,
            }),
        }
    }
}

impl<D: Disk> Engine<D> {
    pub async fn put(&self, key: &[u8], value: &[u8], opts: &WriteOptions) -> Result<Version> {
        let mut b = WriteBatch::new();
        b.put(key, value);
        self.write(b, opts).await
    }

    pub async fn delete(&self, key: &[u8], opts: &WriteOptions) -> Result<Version> {
        let mut b = WriteBatch::new();
        b.delete(key);
        self.write(b, opts).await
    }

    /// Deletes every key in `[start, end)`.
    pub async fn delete_range(
        &self,
        start: &[u8],
        end: &[u8],
        opts: &WriteOptions,
    ) -> Result<Version> {
        let mut b = WriteBatch::new();
        b.delete_range(start, end);
        self.write(b, opts).await
    }

    /// Applies `batch` atomically under one new version and returns it.
    /// With `opts.sync` it returns once the batch is durable.
    pub async fn write(&self, batch: WriteBatch, opts: &WriteOptions) -> Result<Version> {
        let inner = &self.inner;
        ferrisdb_io::executor::yield_if_needed().await;
        inner.validate(&batch)?;
        inner.make_room().await?;
        let (seq, lsn, needs_sync, version) = {
            let mut st = inner.state.borrow_mut();
            Inner::<D>::check_writable(&st)?;
            let version = match opts.version {
                Some(v) if v <= st.last_version => {
                    return Err(Error::InvalidArgument(format!(
                        "write version {v} is not above the last version {}",
                        st.last_version
                    )));
                }
                Some(v) => v,
                None => st.last_version + 1,
            };
            let lsn = match &inner.wal {
                Some(wal) => {
                    let payload = batch.encode(version);
                    st.stats.wal_bytes += payload.len() as u64 + 8;
                    wal.append(&payload).map_err(|e| match e {
                        ferrisdb_io::Error::RecordTooLarge { len, max } => Error::BatchTooLarge {
                            len,
                            ops: batch.len(),
                            max_bytes: max,
                            max_ops: inner.opts.batch_ops_max,
                        },
                        other => Error::Io(other),
                    })?
                }
                None => 0,
            };
            st.last_version = version;
            st.stats.user_bytes += batch_user_bytes(&batch);
            let seq = st.next_seq;
            st.next_seq += 1;
            let needs_sync = opts.sync && inner.wal.is_some();
            st.queue.push_back(Pending {
                seq,
                lsn,
                version,
                batch,
                needs_sync,
                applied_index: opts.applied_index,
            });
            (seq, lsn, needs_sync, version)
        };
        if let Some(wal) = &inner.wal {
            let io = if needs_sync {
                Some(wal.sync(lsn).await)
            } else if wal.pending_bytes() >= inner.opts.wal_write_out_bytes {
                Some(wal.write_out(lsn).await)
            } else {
                None
            };
            if let Some(Err(e)) = io {
                let err = Error::Io(e);
                inner.poison(&err);
                return Err(err);
            }
        }
        loop {
            inner.drain_queue();
            let wait = {
                let st = inner.state.borrow();
                if st.applied_seq >= seq {
                    break;
                }
                if let Some(p) = &st.poisoned {
                    return Err(Error::Poisoned(p.clone()));
                }
                inner.applied.notified()
            };
            wait.await;
        }
        let full = inner.state.borrow().mem.borrow().bytes() >= inner.opts.memtable_bytes_max;
        if full {
            inner.freeze_active();
        }
        Ok(version)
    }
}

fn batch_user_bytes(batch: &WriteBatch) -> u64 {
    batch
        .ops()
        .iter()
        .map(|op| match op {
            Op::Put { key, value } => key.len() + value.len(),
            Op::Delete { key } => key.len(),
            Op::DeleteRange { start, end } => start.len() + end.len(),
        } as u64)
        .sum()
}

impl<D: Disk> Inner<D> {
    fn validate(&self, batch: &WriteBatch) -> Result<()> {
        let o = &self.opts;
        if batch.is_empty() {
            return Err(Error::InvalidArgument("empty write batch".into()));
        }
        if batch.len() > o.batch_ops_max {
            return Err(Error::BatchTooLarge {
                len: batch.bytes(),
                ops: batch.len(),
                max_bytes: usize::MAX,
                max_ops: o.batch_ops_max,
            });
        }
        let key_ok = |k: &[u8]| {
            if k.len() > o.key_bytes_max {
                return Err(Error::KeyTooLarge {
                    len: k.len(),
                    max: o.key_bytes_max,
                });
            }
            Ok(())
        };
        for op in batch.ops() {
            match op {
                Op::Put { key, value } => {
                    key_ok(key)?;
                    if value.len() > o.value_bytes_max {
                        return Err(Error::ValueTooLarge {
                            len: value.len(),
                            max: o.value_bytes_max,
                        });
                    }
                }
                Op::Delete { key } => key_ok(key)?,
                Op::DeleteRange { start, end } => {
                    key_ok(start)?;
                    key_ok(end)?;
                    if start >= end {
                        return Err(Error::InvalidArgument(
                            "delete_range needs start < end".into(),
                        ));
                    }
                }
            }
        }
        Ok(())
    }

    /// Waits while the engine is over its memtable or L0 budget.
    async fn make_room(&self) -> Result<()> {
        let mut stalled = false;
        loop {
            let wait = {
                let mut st = self.state.borrow_mut();
                Inner::<D>::check_writable(&st)?;
                let over_mem = st.imm.len() >= self.opts.immutable_memtables_max;
                let over_l0 = st.levels.levels[0].len() >= self.opts.l0_stop_writes;
                if !over_mem && !over_l0 {
                    return Ok(());
                }
                if !stalled {
                    st.stats.stalls += 1;
                    stalled = true;
                }
                self.progress.notified()
            };
            self.work.notify_all();
            wait.await;
        }
    }

    /// Applies queued batches in order, as far as durability allows.
    pub(super) fn drain_queue(&self) {
        let durable = self.wal.as_ref().map_or(u64::MAX, |w| w.durable_lsn());
        let mut progressed = false;
        {
            let mut guard = self.state.borrow_mut();
            let st = &mut *guard;
            while st
                .queue
                .front()
                .is_some_and(|p| !p.needs_sync || p.lsn <= durable)
            {
                let p = st.queue.pop_front().expect("front exists");
                let mut mem = st.mem.borrow_mut();
                apply_batch(&mut mem, p.batch, p.version);
                mem.last_lsn = mem.last_lsn.max(p.lsn);
                if let Some(i) = p.applied_index {
                    mem.applied_index = mem.applied_index.max(i);
                }
                drop(mem);
                st.visible_version = p.version;
                st.applied_seq = p.seq;
                progressed = true;
            }
        }
        if progressed {
            self.applied.notify_all();
        }
    }
}
