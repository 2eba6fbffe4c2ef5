//! Background work of an engine: flushing frozen memtables and compacting,
//! run on the core's background task queue.

use super::Inner;
use crate::cache::table_cache_id;
use crate::compaction::merge::{GcFilter, MergeConfig, merge_tables};
use crate::compaction::planner::{self, Task};
use crate::error::Result;
use crate::manifest::{Edit, FileRecord, TombstoneRecord};
use crate::sst::{Table, TableBuilder};
use crate::version::FileMeta;
use ferrisdb_io::Disk;
use std::rc::{Rc, Weak};

/// The worker loop: flush first (it unblocks writers), then compact.
pub(super) async fn run<D: Disk>(engine: Weak<Inner<D>>) {
    loop {
        let Some(inner) = engine.upgrade() else {
            return;
        };
        let work = inner.work.clone();
        let wait = work.notified();
        let (closing, poisoned) = {
            let st = inner.state.borrow();
            (st.closing, st.poisoned.is_some())
        };
        if poisoned || closing {
            return;
        }
        match step(&inner).await {
            Ok(true) => continue,
            Ok(false) => {}
            Err(e) => {
                inner.poison(&e);
                return;
            }
        }
        drop(inner);
        wait.await;
    }
}

/// Does one unit of work; false if there was none.
async fn step<D: Disk>(inner: &Rc<Inner<D>>) -> Result<bool> {
    if flush_one(inner).await? {
        return Ok(true);
    }
    let task = {
        let mut st = inner.state.borrow_mut();
        if st.compaction_running {
            return Ok(false);
        }
        let task = planner::plan(
            &st.levels,
            &inner.opts.planner_options(),
            &st.compact_cursors,
        );
        st.compaction_running = task.is_some();
        task
    };
    let Some(task) = task else { return Ok(false) };
    let result = run_task(inner, task).await;
    inner.state.borrow_mut().compaction_running = false;
    inner.progress.notify_all();
    result.map(|()| true)
}

fn alloc_number<D: Disk>(inner: &Inner<D>) -> u64 {
    let mut st = inner.state.borrow_mut();
    let n = st.manifest.next_file_number;
    st.manifest.next_file_number += 1;
    n
}

/// Writes the oldest frozen memtable as an L0 table and commits it.
#[expect(
    clippy::await_holding_refcell_ref,
    reason = "a frozen memtable is never borrowed mutably again, so this shared borrow cannot conflict"
)]
async fn flush_one<D: Disk>(inner: &Rc<Inner<D>>) -> Result<bool> {
    let Some(mem) = inner.state.borrow().imm.front().cloned() else {
        return Ok(false);
    };
    let number = alloc_number(inner);
    let mem_ref = mem.borrow();
    let mut added = Vec::new();
    let mut flushed = 0;
    if !mem_ref.is_empty() {
        let path = inner.dir.join(crate::sst::file_name(number));
        let mut b = TableBuilder::create(
            inner.disk.clone(),
            &path,
            inner.opts.block_bytes,
            inner.opts.bloom_bits_per_key,
            inner.cache_on_write(number),
        )
        .await?;
        for (k, v) in mem_ref.iter() {
            b.add(&k.key, k.version, v.kind, &v.value).await?;
        }
        let (props, size) = b.finish().await?;
        flushed = size;
        added.push(FileMeta::from_properties(number, size, props));
        inner.disk.sync_dir(&inner.dir).await?;
    }
    let edit = {
        let st = inner.state.borrow();
        Edit {
            added: added.iter().map(|f| FileRecord::from_meta(0, f)).collect(),
            tombstones_added: mem_ref
                .tombstones()
                .iter()
                .map(TombstoneRecord::from_tombstone)
                .collect(),
            next_file_number: st.manifest.next_file_number,
            last_version: mem_ref.max_version.max(st.manifest.last_version),
            wal_flushed_lsn: mem_ref.last_lsn,
            applied_index: mem_ref.applied_index,
            ..Default::default()
        }
    };
    let wal_flushed = mem_ref.last_lsn;
    drop(mem_ref);
    commit(inner, edit).await?;
    {
        let mut st = inner.state.borrow_mut();
        let front = st
            .imm
            .pop_front()
            .expect("the flushed memtable is still queued");
        assert!(Rc::ptr_eq(&front, &mem), "memtables flush in order");
        st.refresh_read_parts();
        st.stats.flushes += 1;
        st.stats.flush_bytes += flushed;
    }
    if let Some(wal) = &inner.wal {
        wal.truncate_before(wal_flushed + 1).await?;
    }
    inner.progress.notify_all();
    Ok(true)
}

/// Makes `edit` durable, then applies it: opens added tables, retires removed ones.
/// A table both removed and added (a move between levels) stays open and on disk.
async fn commit<D: Disk>(inner: &Rc<Inner<D>>, edit: Edit) -> Result<()> {
    let moved: std::collections::HashSet<u64> = edit
        .added
        .iter()
        .map(|f| f.number)
        .filter(|n| edit.removed.iter().any(|(_, r)| r == n))
        .collect();
    let mut opened = Vec::new();
    for f in edit.added.iter().filter(|f| !moved.contains(&f.number)) {
        let path = inner.dir.join(crate::sst::file_name(f.number));
        let id = table_cache_id(inner.cache_namespace, f.number);
        opened.push(Rc::new(
            Table::open(&inner.disk, &path, f.number, id).await?,
        ));
    }
    inner.manifest.commit(&edit).await?;
    let (removed, snapshot) = {
        let mut st = inner.state.borrow_mut();
        let label = inner.dir.clone();
        st.manifest.apply(&edit, &label, 0)?;
        st.manifest.levels.check_invariants();
        st.levels = Rc::new(st.manifest.levels.clone());
        st.tombstones = Rc::new(st.manifest.tombstones.clone());
        for t in opened {
            st.tables.insert(t.number, t);
        }
        let removed: Vec<Rc<Table<D>>> = edit
            .removed
            .iter()
            .filter(|(_, n)| !moved.contains(n))
            .filter_map(|(_, n)| st.tables.remove(n))
            .collect();
        st.refresh_read_parts();
        (removed, st.manifest.clone())
    };
    for t in removed {
        inner.cache.forget_table(t.cache_id());
        inner.disk.remove(t.path()).await?;
    }
    inner.manifest.maybe_rewrite(&snapshot).await?;
    Ok(())
}

/// Runs one planned compaction.
async fn run_task<D: Disk>(inner: &Rc<Inner<D>>, task: Task) -> Result<()> {
    let (hi_key, tables, gc) = {
        let st = inner.state.borrow();
        let tables: Vec<Rc<Table<D>>> = task
            .inputs
            .iter()
            .chain(&task.overlaps)
            .map(|f| st.tables[&f.number].clone())
            .collect();
        let oldest = Inner::<D>::oldest_snapshot(&st);
        (
            task.key_range().1,
            tables,
            GcFilter::new(oldest, &st.tombstones, task.bottommost),
        )
    };
    let mut edit = Edit::default();
    for f in &task.inputs {
        edit.removed.push((task.level as u32, f.number));
    }
    for f in &task.overlaps {
        edit.removed.push((task.output_level as u32, f.number));
    }
    let mut read = 0;
    let mut written = 0;
    if task.trivial_move {
        let f = &task.inputs[0];
        edit.added.push(FileRecord::from_meta(task.output_level, f));
    } else {
        let cfg = MergeConfig {
            dir: &inner.dir,
            block_bytes: inner.opts.block_bytes,
            bloom_bits_per_key: inner.opts.bloom_bits_per_key,
            sst_bytes_target: inner.opts.sst_bytes_target,
            bytes_per_sec: inner.opts.compaction_bytes_per_sec,
            cache_namespace: inner.opts.cache_on_write.then_some(inner.cache_namespace),
        };
        let out = merge_tables(&inner.disk, &inner.cache, &cfg, &tables, gc, || {
            alloc_number(inner)
        })
        .await?;
        inner.disk.sync_dir(&inner.dir).await?;
        read = out.bytes_read;
        written = out.bytes_written;
        edit.added = out
            .files
            .iter()
            .map(|f| FileRecord::from_meta(task.output_level, f))
            .collect();
    }
    {
        let st = inner.state.borrow();
        edit.next_file_number = st.manifest.next_file_number;
        edit.tombstones_removed = collectable_tombstones(&st, &edit);
    }
    commit(inner, edit).await?;
    let mut st = inner.state.borrow_mut();
    st.compact_cursors[task.level] = hi_key;
    st.stats.compactions += 1;
    st.stats.trivial_moves += u64::from(task.trivial_move);
    st.stats.compaction_read_bytes += read;
    st.stats.compaction_write_bytes += written;
    drop(st);
    inner.progress.notify_all();
    Ok(())
}

/// Range tombstones no reader needs any more: every reader sees them and no
/// table that will remain after `edit` can hold an older entry in their range.
fn collectable_tombstones<D: Disk>(st: &super::State<D>, edit: &Edit) -> Vec<TombstoneRecord> {
    let oldest = Inner::<D>::oldest_snapshot(st);
    let removed: std::collections::HashSet<u64> = edit.removed.iter().map(|(_, n)| *n).collect();
    let remaining = st
        .levels
        .all_files()
        .map(|(_, f)| {
            (
                f.smallest.clone(),
                f.largest.clone(),
                f.min_version,
                f.number,
            )
        })
        .filter(|f| !removed.contains(&f.3))
        .chain(edit.added.iter().map(|f| {
            (
                f.smallest.clone(),
                f.largest.clone(),
                f.min_version,
                f.number,
            )
        }));
    let remaining: Vec<_> = remaining.collect();
    st.tombstones
        .iter()
        .filter(|t| t.version <= oldest)
        .filter(|t| {
            !remaining.iter().any(|(lo, hi, min_version, _)| {
                *min_version < t.version
                    && lo.as_slice() < t.end.as_slice()
                    && t.start.as_slice() <= hi.as_slice()
            })
        })
        .map(TombstoneRecord::from_tombstone)
        .collect()
}

/// Merges every level's tables overlapping `[start, end]` down, level by level.
pub(super) async fn compact_range<D: Disk>(
    inner: &Rc<Inner<D>>,
    start: Option<&[u8]>,
    end: Option<&[u8]>,
) -> Result<()> {
    // One compaction at a time: wait for the worker's to finish.
    loop {
        let wait = {
            let mut st = inner.state.borrow_mut();
            if let Some(p) = &st.poisoned {
                return Err(crate::error::Error::Poisoned(p.clone()));
            }
            if !st.compaction_running {
                st.compaction_running = true;
                break;
            }
            inner.progress.notified()
        };
        wait.await;
    }
    let result = compact_range_inner(inner, start, end).await;
    inner.state.borrow_mut().compaction_running = false;
    inner.work.notify_all();
    inner.progress.notify_all();
    result
}

async fn compact_range_inner<D: Disk>(
    inner: &Rc<Inner<D>>,
    start: Option<&[u8]>,
    end: Option<&[u8]>,
) -> Result<()> {
    let levels = inner.opts.levels;
    let lo = start.unwrap_or(&[]).to_vec();
    for level in 0..levels - 1 {
        let task = {
            let st = inner.state.borrow();
            if let Some(p) = &st.poisoned {
                return Err(crate::error::Error::Poisoned(p.clone()));
            }
            let inputs: Vec<Rc<FileMeta>> = st.levels.levels[level]
                .iter()
                .filter(|f| {
                    f.largest.as_slice() >= lo.as_slice()
                        && end.is_none_or(|e| f.smallest.as_slice() <= e)
                })
                .cloned()
                .collect();
            if inputs.is_empty() {
                continue;
            }
            let inputs = if level == 0 {
                st.levels.levels[0].clone()
            } else {
                inputs
            };
            let mut task = planner::task_for(&st.levels, level, inputs, 0.0);
            task.trivial_move = false;
            task
        };
        run_task(inner, task).await?;
    }
    Ok(())
}
