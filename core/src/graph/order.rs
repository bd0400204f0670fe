//! Priority ordering: a depth-first order that finishes one branch of a reduction
//! before starting the next, so intermediate results are freed early (the aim of
//! `dask.order`). Cheaper dependencies (shorter chains) go first.

use super::GraphError;
use super::Key;

/// Orders `n` tasks whose in-set dependencies are `deps[i]`; returns each task's
/// rank (0 runs first). Every task ranks after all its dependencies.
///
/// `keys[i]` names task `i` in the error for a cycle.
pub fn order(deps: &[Vec<u32>], keys: &[Key]) -> Result<Vec<u32>, GraphError> {
    let n = deps.len();
    let height = heights(deps, keys)?;
    let mut has_dependents = vec![false; n];
    for ds in deps {
        for &d in ds {
            has_dependents[d as usize] = true;
        }
    }
    // Visit cheap branches first: they finish sooner and free memory sooner.
    let by_height: Vec<Vec<u32>> = deps
        .iter()
        .map(|ds| {
            let mut sorted = ds.clone();
            sorted.sort_by_key(|&d| height[d as usize]);
            sorted
        })
        .collect();
    const UNSEEN: u32 = u32::MAX;
    let mut rank = vec![UNSEEN; n];
    let mut next = 0_u32;
    let mut stack: Vec<(u32, usize)> = Vec::new();
    for sink in (0..n as u32).filter(|&s| !has_dependents[s as usize]) {
        stack.push((sink, 0));
        while let Some((node, child)) = stack.last_mut() {
            let node = *node as usize;
            match by_height[node].get(*child) {
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
fn heights(deps: &[Vec<u32>], keys: &[Key]) -> Result<Vec<u32>, GraphError> {
    let n = deps.len();
    let mut dependents: Vec<Vec<u32>> = vec![Vec::new(); n];
    let mut missing: Vec<u32> = vec![0; n];
    for (i, ds) in deps.iter().enumerate() {
        missing[i] = ds.len() as u32;
        for &d in ds {
            dependents[d as usize].push(i as u32);
        }
    }
    let mut height = vec![0_u32; n];
    let mut ready: Vec<u32> = (0..n as u32)
        .filter(|&i| missing[i as usize] == 0)
        .collect();
    let mut done = 0;
    while let Some(i) = ready.pop() {
        done += 1;
        for &j in &dependents[i as usize] {
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
        return Err(GraphError::Cycle {
            key: keys.get(stuck).cloned().unwrap_or_else(|| Key::new("?")),
        });
    }
    Ok(height)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(n: usize) -> Vec<Key> {
        (0..n).map(|i| Key::new(format!("t{i}"))).collect()
    }

    #[test]
    fn a_tree_reduction_finishes_each_pair_before_the_next() {
        // 0,1 -> 4 ; 2,3 -> 5 ; 4,5 -> 6
        let deps = vec![
            vec![],
            vec![],
            vec![],
            vec![],
            vec![0, 1],
            vec![2, 3],
            vec![4, 5],
        ];
        let rank = order(&deps, &keys(7)).unwrap();
        assert!(
            rank[4] < rank[2],
            "pair (0,1) reduced before leaf 2 starts: {rank:?}"
        );
        for (i, ds) in deps.iter().enumerate() {
            for &d in ds {
                assert!(rank[d as usize] < rank[i]);
            }
        }
    }

    #[test]
    fn a_cycle_is_an_error_naming_a_task() {
        let deps = vec![vec![1], vec![0]];
        assert!(matches!(
            order(&deps, &keys(2)),
            Err(GraphError::Cycle { .. })
        ));
    }
}
