//! The read path: point lookups and merged scans over memtables and tables.

use super::{Engine, Inner, ReadOptions, ScanOptions};
use crate::cache::BlockCache;
use crate::error::{Error, Result};
use crate::memtable::{MemKey, MemValue, Memtable};
use crate::sst::{Table, TableCursor};
use crate::types::{Kind, RangeTombstone, Version};
use ferrisdb_io::Disk;
use std::cell::RefCell;
use std::ops::Bound;
use std::rc::Rc;

/// Everything a read needs, captured at its start so it stays consistent
/// while flushes and compactions change the engine underneath.
struct View<D: Disk> {
    version: Version,
    /// Newest first.
    mems: Vec<Rc<RefCell<Memtable>>>,
    /// (level, tables): L0 newest first, then one entry per deeper level in key order.
    levels: Rc<super::LevelTables<D>>,
    tombstones: Vec<RangeTombstone>,
}

impl<D: Disk> Inner<D> {
    fn view(&self, version: Option<Version>) -> View<D> {
        let st = self.state.borrow();
        let version = version.unwrap_or(st.visible_version);
        let parts = st.read_parts.clone();
        let mems = parts.mems.clone();
        let levels = parts.levels.clone();
        let mut tombstones: Vec<RangeTombstone> = st
            .tombstones
            .iter()
            .filter(|t| t.version <= version)
            .cloned()
            .collect();
        for m in &mems {
            tombstones.extend(
                m.borrow()
                    .tombstones()
                    .iter()
                    .filter(|t| t.version <= version)
                    .cloned(),
            );
        }
        View {
            version,
            mems,
            levels,
            tombstones,
        }
    }
}

fn hidden(
    tombstones: &[RangeTombstone],
    key: &[u8],
    entry_version: Version,
    read_version: Version,
) -> bool {
    tombstones
        .iter()
        .any(|t| t.hides(key, entry_version, read_version))
}

impl<D: Disk> Engine<D> {
    /// The value of `key` as of the read version, if any.
    pub async fn get(&self, key: &[u8], opts: &ReadOptions) -> Result<Option<Vec<u8>>> {
        ferrisdb_io::executor::yield_if_needed().await;
        let view = self.inner.view(opts.version);
        let v = view.version;
        let mut found: Option<(Version, Kind, Vec<u8>)> = None;
        for m in &view.mems {
            if let Some((ver, e)) = m.borrow().get(key, v) {
                found = Some((ver, e.kind, e.value.clone()));
                break;
            }
        }
        if found.is_none() {
            'levels: for (level, tables) in view.levels.iter() {
                let candidates: Vec<&Rc<Table<D>>> = if *level == 0 {
                    tables.iter().collect()
                } else {
                    let i = tables.partition_point(|t| t.props.largest_key.as_slice() < key);
                    tables
                        .get(i)
                        .filter(|t| t.props.smallest_key.as_slice() <= key)
                        .into_iter()
                        .collect()
                };
                for t in candidates {
                    if key < t.props.smallest_key.as_slice() || key > t.props.largest_key.as_slice()
                    {
                        continue;
                    }
                    if let Some(f) = t.get(key, v, &self.inner.cache).await? {
                        found = Some((f.version, f.kind, f.value));
                        break 'levels;
                    }
                }
            }
        }
        Ok(match found {
            Some((ver, Kind::Put, value)) if !hidden(&view.tombstones, key, ver, v) => Some(value),
            _ => None,
        })
    }

    /// Pairs in `[start, end)` (None = unbounded), as of the read version,
    /// forward or reverse, at most `opts.limit` (0 = all).
    pub async fn scan(
        &self,
        start: Option<&[u8]>,
        end: Option<&[u8]>,
        opts: &ScanOptions,
    ) -> Result<Vec<(Vec<u8>, Vec<u8>)>> {
        let mut iter = self.iter(start, end, opts).await?;
        let mut out = Vec::new();
        while opts.limit == 0 || out.len() < opts.limit {
            match iter.next().await? {
                Some(pair) => out.push(pair),
                None => break,
            }
        }
        Ok(out)
    }

    /// A streaming iterator over `[start, end)`; `opts.limit` is ignored.
    pub async fn iter(
        &self,
        start: Option<&[u8]>,
        end: Option<&[u8]>,
        opts: &ScanOptions,
    ) -> Result<ScanIter<D>> {
        if let (Some(s), Some(e)) = (start, end)
            && s > e
        {
            return Err(Error::InvalidArgument("scan start is after its end".into()));
        }
        let view = self.inner.view(opts.version);
        let reverse = opts.reverse;
        let mut sources = Vec::new();
        for m in &view.mems {
            let mut s = Source::Mem(MemCursor::new(m.clone(), reverse));
            s.seek(start, end).await?;
            sources.push(s);
        }
        for (level, tables) in view.levels.iter() {
            if *level == 0 {
                for t in tables {
                    let mut s = Source::Table(TableCursor::new(
                        t.clone(),
                        self.inner.cache.clone(),
                        reverse,
                    ));
                    s.seek(start, end).await?;
                    sources.push(s);
                }
            } else if !tables.is_empty() {
                let mut s = Source::Level(LevelCursor {
                    tables: tables.clone(),
                    cache: self.inner.cache.clone(),
                    reverse,
                    index: 0,
                    cursor: None,
                });
                s.seek(start, end).await?;
                sources.push(s);
            }
        }
        Ok(ScanIter {
            sources,
            version: view.version,
            tombstones: view.tombstones,
            start: start.map(<[u8]>::to_vec),
            end: end.map(<[u8]>::to_vec),
            reverse,
        })
    }
}

/// Cursor over one memtable that re-seeks from its last key at each step, so
/// it never holds a borrow across an await.
struct MemCursor {
    mem: Rc<RefCell<Memtable>>,
    reverse: bool,
    current: Option<(MemKey, MemValue)>,
}

impl MemCursor {
    fn new(mem: Rc<RefCell<Memtable>>, reverse: bool) -> Self {
        MemCursor {
            mem,
            reverse,
            current: None,
        }
    }

    fn seek(&mut self, start: Option<&[u8]>, end: Option<&[u8]>) {
        let m = self.mem.borrow();
        let probe = |k: &[u8]| MemKey {
            key: k.to_vec(),
            version: u64::MAX,
        };
        self.current = if self.reverse {
            let upper = end.map(probe);
            let hi = upper.as_ref().map_or(Bound::Unbounded, Bound::Excluded);
            m.step(Bound::Unbounded, hi, true)
        } else {
            let lower = start.map(probe);
            let lo = lower.as_ref().map_or(Bound::Unbounded, Bound::Included);
            m.step(lo, Bound::Unbounded, false)
        }
        .map(|(k, v)| (k.clone(), v.clone()));
    }

    fn advance(&mut self) {
        let Some((key, _)) = self.current.take() else {
            return;
        };
        let m = self.mem.borrow();
        let next = if self.reverse {
            m.step(Bound::Unbounded, Bound::Excluded(&key), true)
        } else {
            m.step(Bound::Excluded(&key), Bound::Unbounded, false)
        };
        self.current = next.map(|(k, v)| (k.clone(), v.clone()));
    }
}

/// Cursor over a sorted level: one table at a time, in key order.
struct LevelCursor<D: Disk> {
    tables: Vec<Rc<Table<D>>>,
    cache: Rc<BlockCache>,
    reverse: bool,
    index: usize,
    cursor: Option<TableCursor<D>>,
}

impl<D: Disk> LevelCursor<D> {
    async fn seek(&mut self, start: Option<&[u8]>, end: Option<&[u8]>) -> Result<()> {
        let n = self.tables.len();
        if self.reverse {
            // Last table whose smallest key is below `end`.
            let i = match end {
                Some(e) => self
                    .tables
                    .partition_point(|t| t.props.smallest_key.as_slice() < e),
                None => n,
            };
            if i == 0 {
                self.cursor = None;
                return Ok(());
            }
            self.index = i - 1;
            self.open(end).await
        } else {
            let i = match start {
                Some(s) => self
                    .tables
                    .partition_point(|t| t.props.largest_key.as_slice() < s),
                None => 0,
            };
            if i >= n {
                self.cursor = None;
                return Ok(());
            }
            self.index = i;
            self.open(start).await
        }
    }

    async fn open(&mut self, key: Option<&[u8]>) -> Result<()> {
        loop {
            let mut c = TableCursor::new(
                self.tables[self.index].clone(),
                self.cache.clone(),
                self.reverse,
            );
            c.seek(key).await?;
            if c.current().is_some() {
                self.cursor = Some(c);
                return Ok(());
            }
            if !self.step_table() {
                self.cursor = None;
                return Ok(());
            }
        }
    }

    fn step_table(&mut self) -> bool {
        if self.reverse {
            if self.index == 0 {
                return false;
            }
            self.index -= 1;
        } else {
            if self.index + 1 >= self.tables.len() {
                return false;
            }
            self.index += 1;
        }
        true
    }

    async fn advance(&mut self) -> Result<()> {
        let Some(c) = self.cursor.as_mut() else {
            return Ok(());
        };
        c.advance().await?;
        if c.current().is_none() {
            if self.step_table() {
                return Box::pin(self.open(None)).await;
            }
            self.cursor = None;
        }
        Ok(())
    }
}

enum Source<D: Disk> {
    Mem(MemCursor),
    Table(TableCursor<D>),
    Level(LevelCursor<D>),
}

impl<D: Disk> Source<D> {
    async fn seek(&mut self, start: Option<&[u8]>, end: Option<&[u8]>) -> Result<()> {
        match self {
            Source::Mem(m) => {
                m.seek(start, end);
                Ok(())
            }
            Source::Table(t) => t.seek(if t.is_reverse() { end } else { start }).await,
            Source::Level(l) => l.seek(start, end).await,
        }
    }

    /// (key, version, kind, value) under the cursor.
    fn current(&self) -> Option<(&[u8], Version, u8, &[u8])> {
        match self {
            Source::Mem(m) => m.current.as_ref().map(|(k, v)| {
                (
                    k.key.as_slice(),
                    k.version,
                    v.kind as u8,
                    v.value.as_slice(),
                )
            }),
            Source::Table(t) => t.current().map(|e| (e.key, e.version, e.kind, e.value)),
            Source::Level(l) => l
                .cursor
                .as_ref()
                .and_then(|c| c.current())
                .map(|e| (e.key, e.version, e.kind, e.value)),
        }
    }

    async fn advance(&mut self) -> Result<()> {
        match self {
            Source::Mem(m) => {
                m.advance();
                Ok(())
            }
            Source::Table(t) => t.advance().await,
            Source::Level(l) => l.advance().await,
        }
    }
}

/// Merges all sources into the visible pairs of a range.
pub struct ScanIter<D: Disk> {
    sources: Vec<Source<D>>,
    version: Version,
    tombstones: Vec<RangeTombstone>,
    start: Option<Vec<u8>>,
    end: Option<Vec<u8>>,
    reverse: bool,
}

impl<D: Disk> ScanIter<D> {
    /// The next visible (key, value), or None at the end of the range.
    pub async fn next(&mut self) -> Result<Option<(Vec<u8>, Vec<u8>)>> {
        loop {
            let mut next: Option<&[u8]> = None;
            for s in &self.sources {
                if let Some((k, ..)) = s.current() {
                    let better = match next {
                        None => true,
                        Some(n) if self.reverse => k > n,
                        Some(n) => k < n,
                    };
                    if better {
                        next = Some(k);
                    }
                }
            }
            let Some(key) = next.map(<[u8]>::to_vec) else {
                return Ok(None);
            };
            let out_of_range = if self.reverse {
                self.start
                    .as_ref()
                    .is_some_and(|s| key.as_slice() < s.as_slice())
            } else {
                self.end
                    .as_ref()
                    .is_some_and(|e| key.as_slice() >= e.as_slice())
            };
            if out_of_range {
                return Ok(None);
            }
            // Collect every version of `key` from every source; keep the newest visible.
            let mut best: Option<(Version, u8, Vec<u8>)> = None;
            for s in &mut self.sources {
                while let Some((k, ver, kind, value)) = s.current() {
                    if k != key.as_slice() {
                        break;
                    }
                    if ver <= self.version && best.as_ref().is_none_or(|b| ver > b.0) {
                        best = Some((ver, kind, value.to_vec()));
                    }
                    s.advance().await?;
                }
            }
            if let Some((ver, kind, value)) = best
                && kind == Kind::Put as u8
                && !hidden(&self.tombstones, &key, ver, self.version)
            {
                return Ok(Some((key, value)));
            }
        }
    }
}
