//! Priority ordering: a depth-first order that finishes one branch of a reduction
//! before starting the next, so intermediate results are freed early (the aim of
//! `dask.order`). Cheaper dependencies (shorter chains) go first.

use super::GraphError;
use super::Key;

/// Dependencies of tasks `0..n` as one flat list (compressed rows): task `i`'s
/// inputs are `targets[offsets[i]..offsets[i + 1]]`. Two allocations for a whole
/// graph, where a list per task took one each.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Adjacency {
    offsets: Vec<u32>,
    targets: Vec<u32>,
}

impl Adjacency {
    /// An empty adjacency with room for `tasks` tasks.
    pub fn with_capacity(tasks: usize) -> Self {
        let mut offsets = Vec::with_capacity(tasks + 1);
        offsets.push(0);
        Adjacency {
            offsets,
            targets: Vec::new(),
        }
    }

    /// Appends the next task, with these inputs.
    pub fn push(&mut self, inputs: impl IntoIterator<Item = u32>) {
        if self.offsets.is_empty() {
            self.offsets.push(0);
        }
        self.targets.extend(inputs);
        self.offsets.push(self.targets.len() as u32);
    }

    /// The inputs of task `i`.
    pub fn of(&self, i: usize) -> &[u32] {
        &self.targets[self.offsets[i] as usize..self.offsets[i + 1] as usize]
    }

    /// Number of tasks.
    pub fn len(&self) -> usize {
        self.offsets.len().saturating_sub(1)
    }

    /// Whether there are no tasks.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Number of edges.
    pub fn edges(&self) -> usize {
        self.targets.len()
    }

    /// The reverse edges: for each task, the tasks that take it as input.
    fn reversed(&self) -> Adjacency {
        let n = self.len();
        let mut offsets = vec![0_u32; n + 1];
        for &d in &self.targets {
            offsets[d as usize + 1] += 1;
        }
        for i in 0..n {
            offsets[i + 1] += offsets[i];
        }
        let mut fill = offsets.clone();
        let mut targets = vec![0_u32; self.targets.len()];
        for i in 0..n {
            for &d in self.of(i) {
                targets[fill[d as usize] as usize] = i as u32;
                fill[d as usize] += 1;
            }
        }
        Adjacency { offsets, targets }
    }
}

impl FromIterator<Vec<u32>> for Adjacency {
    fn from_iter<I: IntoIterator<Item = Vec<u32>>>(lists: I) -> Self {
        let mut adjacency = Adjacency::with_capacity(0);
        for list in lists {
            adjacency.push(list);
        }
        adjacency
    }
}

/// Orders the tasks of `deps` (inputs inside the graph; every index below
/// `deps.len()`); returns each task's rank (0 runs first). Every task ranks
/// after all its inputs.
///
/// `key_of(i)` names task `i` in the error for a cycle.
pub fn order(deps: &Adjacency, key_of: impl Fn(usize) -> Key) -> Result<Vec<u32>, GraphError> {
    let n = deps.len();
    if deps.edges() == 0 {
        // Independent tasks: submission order.
        return Ok((0..n as u32).collect());
    }
    let dependents = deps.reversed();
    let height = heights(deps, &dependents, key_of)?;
    // Visit cheap branches first: they finish sooner and free memory sooner.
    let mut by_height = deps.clone();
    for i in 0..n {
        let (start, end) = (
            by_height.offsets[i] as usize,
            by_height.offsets[i + 1] as usize,
        );
        by_height.targets[start..end].sort_by_key(|&d| height[d as usize]);
    }
    const UNSEEN: u32 = u32::MAX;
    let mut rank = vec![UNSEEN; n];
    let mut next = 0_u32;
    let mut stack: Vec<(u32, usize)> = Vec::new();
    for sink in (0..n as u32).filter(|&s| dependents.of(s as usize).is_empty()) {
        stack.push((sink, 0));
        while let Some((node, child)) = stack.last_mut() {
            let node = *node as usize;
            match by_height.of(node).get(*child) {
                Some(&d) => {
                    *child += 1;
                    if rank[d as usize] == UNSEEN {
                        stack.push((d, 0));
                    }
                }
                None => {
                    stack.pop();
                    if rank[node] == UNSEEN {
                        rank[node] = next;
                        next += 1;
                    }
                }
            }
        }
    }
    Ok(rank)
}

/// Length of the longest dependency chain below each task; errors on a cycle (Kahn).
fn heights(
    deps: &Adjacency,
    dependents: &Adjacency,
    key_of: impl Fn(usize) -> Key,
) -> Result<Vec<u32>, GraphError> {
    let n = deps.len();
    let mut missing: Vec<u32> = (0..n).map(|i| deps.of(i).len() as u32).collect();
    let mut height = vec![0_u32; n];
    let mut ready: Vec<u32> = (0..n as u32)
        .filter(|&i| missing[i as usize] == 0)
        .collect();
    let mut done = 0;
    while let Some(i) = ready.pop() {
        done += 1;
        for &j in dependents.of(i as usize) {
            let j = j as usize;
            height[j] = height[j].max(height[i as usize] + 1);
            missing[j] -= 1;
            if missing[j] == 0 {
                ready.push(j as u32);
            }
        }
    }
    if done < n {
        let stuck = (0..n).find(|&i| missing[i] > 0).unwrap_or(0);
        return Err(GraphError::Cycle { key: key_of(stuck) });
    }
    Ok(height)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn name(i: usize) -> Key {
        Key::new(format!("t{i}"))
    }

    #[test]
    fn a_tree_reduction_finishes_each_pair_before_the_next() {
        // 0,1 -> 4 ; 2,3 -> 5 ; 4,5 -> 6
        let deps: Adjacency = [
            vec![],
            vec![],
            vec![],
            vec![],
            vec![0, 1],
            vec![2, 3],
            vec![4, 5],
        ]
        .into_iter()
        .collect();
        let rank = order(&deps, name).unwrap();
        assert!(
            rank[4] < rank[2],
            "pair (0,1) reduced before leaf 2 starts: {rank:?}"
        );
        for i in 0..deps.len() {
            for &d in deps.of(i) {
                assert!(rank[d as usize] < rank[i]);
            }
        }
    }

    #[test]
    fn independent_tasks_keep_their_order() {
        let deps: Adjacency = (0..5).map(|_| vec![]).collect();
        assert_eq!(order(&deps, name).unwrap(), vec![0, 1, 2, 3, 4]);
    }

    #[test]
    fn a_cycle_is_an_error_naming_a_task() {
        let deps: Adjacency = [vec![1], vec![0]].into_iter().collect();
        assert!(matches!(order(&deps, name), Err(GraphError::Cycle { .. })));
    }
}
