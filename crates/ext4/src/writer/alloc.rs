//! The block allocator: a map of free runs over the image's block range.
//!
//! Data is laid out from low block numbers up, each allocation continuing
//! where the previous one stopped (a goal), so files land contiguous and the
//! image file is written mostly sequentially. Blocks of removed files go back
//! to the map and are reused. The superblock copies and their descriptor
//! tables are never in the map: they are carved out when the allocator is
//! made, sized for the largest image this allocator can grow to.

use std::collections::BTreeMap;

/// Free runs of blocks, `start → length`, never adjacent to each other.
#[derive(Debug, Clone)]
pub(crate) struct Allocator {
    free: BTreeMap<u64, u64>,
    limit: u64,
    reserved: Vec<(u64, u64)>,
}

impl Allocator {
    /// Every block in `0..limit` is free except the `reserved` runs (sorted,
    /// not overlapping).
    pub fn new(limit: u64, reserved: &[(u64, u64)]) -> Self {
        let mut free = BTreeMap::new();
        let mut at = 0;
        for &(start, len) in reserved {
            let start = start.min(limit);
            let end = (start + len).min(limit);
            if start > at {
                free.insert(at, start - at);
            }
            at = at.max(end);
        }
        if at < limit {
            free.insert(at, limit - at);
        }
        Self {
            free,
            limit,
            reserved: reserved.to_vec(),
        }
    }

    /// Allocates up to `want` contiguous blocks, starting at `goal` when it
    /// is free, else at the first free run after it, else the first free run
    /// of all. `None` when no block is free.
    pub fn alloc(&mut self, goal: u64, want: u64) -> Option<(u64, u64)> {
        let (run_start, run_len) = self.run_for(goal)?;
        let start = if goal > run_start && goal < run_start + run_len {
            goal
        } else {
            run_start
        };
        let len = want.min(run_start + run_len - start);
        self.take(run_start, run_len, start, len);
        Some((start, len))
    }

    /// Allocates exactly `want` contiguous blocks (the first run that is
    /// long enough), for structures that must not be split.
    pub fn alloc_contiguous(&mut self, goal: u64, want: u64) -> Option<u64> {
        let found = self
            .free
            .range(goal..)
            .chain(self.free.range(..goal))
            .find(|&(_, &len)| len >= want)
            .map(|(&s, &l)| (s, l))?;
        self.take(found.0, found.1, found.0, want);
        Some(found.0)
    }

    fn run_for(&self, goal: u64) -> Option<(u64, u64)> {
        if let Some((&s, &l)) = self.free.range(..=goal).next_back()
            && goal < s + l
        {
            return Some((s, l));
        }
        self.free
            .range(goal..)
            .next()
            .or_else(|| self.free.iter().next())
            .map(|(&s, &l)| (s, l))
    }

    fn take(&mut self, run_start: u64, run_len: u64, start: u64, len: u64) {
        self.free.remove(&run_start);
        if start > run_start {
            self.free.insert(run_start, start - run_start);
        }
        let end = start + len;
        if end < run_start + run_len {
            self.free.insert(end, run_start + run_len - end);
        }
    }

    /// Returns `len` blocks from `start` to the free map.
    pub fn release(&mut self, start: u64, len: u64) {
        let mut start = start;
        let mut len = len;
        if let Some((&s, &l)) = self.free.range(..start).next_back()
            && s + l == start
        {
            self.free.remove(&s);
            start = s;
            len += l;
        }
        if let Some(&l) = self.free.get(&(start + len)) {
            self.free.remove(&(start + len));
            len += l;
        }
        self.free.insert(start, len);
    }

    /// One past the highest block handed out and still in use (reserved
    /// runs do not count).
    pub fn high_water(&self) -> u64 {
        let mut top = self.limit;
        for (&s, &l) in self.free.iter().rev() {
            if s + l != top && !self.is_reserved(s + l, top) {
                return top;
            }
            top = s;
        }
        if self.is_reserved(0, top) { 0 } else { top }
    }

    /// True when `from..to` lies inside one reserved run.
    fn is_reserved(&self, from: u64, to: u64) -> bool {
        from >= to || self.reserved.iter().any(|&(s, l)| s <= from && to <= s + l)
    }

    /// The free runs, lowest first.
    pub fn free_runs(&self) -> impl Iterator<Item = (u64, u64)> + '_ {
        self.free.iter().map(|(&s, &l)| (s, l))
    }

    /// Lowers the limit to `limit` (every block above must be free).
    pub fn truncate(&mut self, limit: u64) {
        let above: Vec<(u64, u64)> = self.free.range(limit..).map(|(&s, &l)| (s, l)).collect();
        for (s, _) in above {
            self.free.remove(&s);
        }
        if let Some((&s, &l)) = self.free.range(..limit).next_back()
            && s + l > limit
        {
            self.free.insert(s, limit - s);
        }
        self.limit = limit;
    }
}

#[cfg(test)]
mod tests {
    use super::Allocator;

    #[test]
    fn allocations_continue_at_the_goal_and_skip_reserved_runs() {
        let mut a = Allocator::new(100, &[(0, 3), (50, 2)]);
        assert_eq!(a.alloc(0, 10), Some((3, 10)));
        assert_eq!(a.alloc(13, 40), Some((13, 37)));
        assert_eq!(a.alloc(50, 5), Some((52, 5)));
        a.release(3, 10);
        assert_eq!(a.alloc(57, 100), Some((57, 43)));
        assert_eq!(a.alloc(100, 4), Some((3, 4)));
        assert_eq!(a.high_water(), 100);
        let mut b = Allocator::new(100, &[(0, 3), (50, 2), (90, 5)]);
        assert_eq!(b.high_water(), 0);
        assert_eq!(b.alloc(0, 10), Some((3, 10)));
        assert_eq!(b.high_water(), 13);
    }

    #[test]
    fn released_runs_merge_with_their_neighbours() {
        let mut a = Allocator::new(20, &[]);
        assert_eq!(a.alloc(0, 20), Some((0, 20)));
        a.release(5, 5);
        a.release(0, 5);
        a.release(10, 10);
        assert_eq!(a.free_runs().collect::<Vec<_>>(), [(0, 20)]);
        assert_eq!(a.high_water(), 0);
    }
}
