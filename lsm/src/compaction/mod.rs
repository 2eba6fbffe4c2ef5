//! Leveled compaction with a tiered L0: planned by a pure function over the
//! level state ([`planner`]), executed by [`merge`] in the background queue.

pub mod merge;
pub mod planner;

pub use planner::{PlannerOptions, Task, plan};
