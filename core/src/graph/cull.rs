//! Culling: keep only the tasks the requested keys need.

use super::{Graph, Key};
use foldhash::{HashSet, HashSetExt};

impl Graph {
    /// The subgraph needed to compute `wanted` (keys outside the graph are ignored).
    pub fn cull(&self, wanted: &[Key]) -> Graph {
        let mut keep: HashSet<&Key> = HashSet::new();
        let mut stack: Vec<&Key> = wanted.iter().filter(|k| self.contains(k)).collect();
        while let Some(key) = stack.pop() {
            if !keep.insert(key) {
                continue;
            }
            if let Some(task) = self.get(key) {
                stack.extend(
                    task.deps
                        .iter()
                        .filter(|d| self.contains(d) && !keep.contains(d)),
                );
            }
        }
        self.tasks()
            .iter()
            .filter(|t| keep.contains(&t.key))
            .cloned()
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests_support::chain;
    use super::*;

    #[test]
    fn cull_drops_what_the_wanted_keys_do_not_need() {
        let mut graph = chain(&["a", "b", "c"]);
        graph.insert(crate::graph::tests_support::leaf("unrelated"));
        let culled = graph.cull(&[Key::new("b")]);
        let keys: Vec<&str> = culled.tasks().iter().map(|t| t.key.as_str()).collect();
        assert_eq!(keys, ["a", "b"]);
    }
}
