//! A queue of ready tasks, best priority first: the scheduler's root-ish
//! tasks waiting for room, a worker's tasks waiting for a thread.
//!
//! Tasks mostly arrive in priority order (a map's tasks, one graph's roots,
//! batch after batch), so those go to the back of a deque: O(1) and sequential
//! in memory, where a binary heap of millions of tasks misses the cache at
//! every level of each pop. Tasks that arrive out of order go to a heap; a pop
//! takes the better of the two fronts.

use super::ids::Priority;
use std::cmp::Reverse;
use std::collections::{BinaryHeap, VecDeque};

/// Queued tasks (`T` names one) by priority; stale entries are skipped by the
/// caller.
pub struct TaskQueue<T> {
    in_order: VecDeque<(Priority, T)>,
    out_of_order: BinaryHeap<Reverse<(Priority, T)>>,
}

impl<T> Default for TaskQueue<T> {
    fn default() -> Self {
        TaskQueue {
            in_order: VecDeque::new(),
            out_of_order: BinaryHeap::new(),
        }
    }
}

impl<T: Ord + Clone> TaskQueue<T> {
    /// Queues task `t` at `priority`.
    pub fn push(&mut self, priority: Priority, t: T) {
        let item = (priority, t);
        if self.in_order.back().is_none_or(|last| *last <= item) {
            self.in_order.push_back(item);
        } else {
            self.out_of_order.push(Reverse(item));
        }
    }

    /// The best queued task.
    pub fn peek(&self) -> Option<&(Priority, T)> {
        match (self.in_order.front(), self.out_of_order.peek()) {
            (Some(a), Some(Reverse(b))) => Some(a.min(b)),
            (Some(a), None) => Some(a),
            (None, Some(Reverse(b))) => Some(b),
            (None, None) => None,
        }
    }

    /// Removes the best queued task.
    pub fn pop(&mut self) -> Option<(Priority, T)> {
        let from_deque = match (self.in_order.front(), self.out_of_order.peek()) {
            (Some(a), Some(Reverse(b))) => a <= b,
            (Some(_), None) => true,
            (None, _) => false,
        };
        if from_deque {
            self.in_order.pop_front()
        } else {
            self.out_of_order.pop().map(|Reverse(item)| item)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pops_in_priority_order_whatever_the_arrival_order() {
        let mut queue = TaskQueue::<u32>::default();
        let arrivals = [5, 6, 9, 2, 7, 7, 1, 10, 3, 12, 11];
        for (t, &p) in arrivals.iter().enumerate() {
            queue.push(Priority::new(0, 0, p), t as u32);
        }
        let mut popped = Vec::new();
        while let Some((p, _)) = queue.pop() {
            popped.push(p.order);
        }
        let mut sorted: Vec<u32> = arrivals.to_vec();
        sorted.sort();
        assert_eq!(popped, sorted);
        assert!(queue.peek().is_none());
    }
}
