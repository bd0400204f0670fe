//! Read-only views of the state for the dashboard: tasks by state per group
//! (kept up to date by [`State::set_state`], so reading them costs the number
//! of groups, not of tasks), which groups feed which, each worker's load, and
//! the tasks themselves for small graphs.

use super::ids::WorkerId;
use super::state::{State, TaskState};
use serde::{Deserialize, Serialize};

/// One task group: the chunks of one collection step, or one op's calls.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct GroupView {
    /// The group's name (keys without their index).
    pub name: String,
    /// The op (the keys' prefix).
    pub op: String,
    /// Live tasks by state, in [`TaskState::ALL`] order.
    pub states: [u32; TaskState::COUNT],
    /// Tasks that finished since the group was made (released ones too).
    pub finished: u32,
    /// Names of the groups its tasks take inputs from.
    pub inputs: Vec<String>,
}

/// One task, for drawing small graphs task by task.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct TaskView {
    /// Its key.
    pub key: String,
    /// Its group's name.
    pub group: String,
    /// Its state.
    pub state: String,
    /// Positions (in the same list) of its inputs.
    pub deps: Vec<u32>,
}

/// What the scheduler has given one worker.
#[derive(Clone, Copy, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct WorkerLoad {
    /// Tasks assigned and not finished.
    pub processing: u32,
    /// Results it holds.
    pub in_memory: u32,
    /// Bytes of those results.
    pub nbytes: u64,
    /// Its memory limit (0: none).
    pub memory_limit: u64,
}

/// The most groups an input list keeps (a group fed by more is drawn with these).
pub(crate) const MAX_GROUP_INPUTS: usize = 64;

impl State {
    /// The live groups, in creation order of their slots.
    pub fn group_views(&self) -> Vec<GroupView> {
        self.groups
            .iter()
            .filter(|g| g.size > 0)
            .map(|g| GroupView {
                name: g.name.to_string(),
                op: self.prefixes[g.prefix as usize].name.to_string(),
                states: g.states,
                finished: g.finished,
                inputs: g
                    .inputs
                    .iter()
                    .filter_map(|&i| self.groups.get(i as usize))
                    .filter(|i| i.size > 0)
                    .map(|i| i.name.to_string())
                    .collect(),
            })
            .collect()
    }

    /// Tasks by state, from the groups' counts.
    pub fn tasks_by_state(&self) -> [u64; TaskState::COUNT] {
        let mut counts = [0u64; TaskState::COUNT];
        for group in self.groups.iter().filter(|g| g.size > 0) {
            for (count, n) in counts.iter_mut().zip(group.states) {
                *count += u64::from(n);
            }
        }
        counts
    }

    /// Every task, when there are at most `limit` of them.
    pub fn task_views(&self, limit: usize) -> Option<Vec<TaskView>> {
        if self.by_key.len() > limit {
            return None;
        }
        let mut position = vec![u32::MAX; self.tasks.len()];
        let mut n = 0;
        for (t, task) in self.tasks.iter().enumerate() {
            if task.is_some() {
                position[t] = n;
                n += 1;
            }
        }
        Some(
            self.tasks
                .iter()
                .flatten()
                .map(|task| TaskView {
                    key: task.key.to_string(),
                    group: self.groups[task.group as usize].name.to_string(),
                    state: task.state.name().to_string(),
                    deps: task.deps.iter().map(|&d| position[d as usize]).collect(),
                })
                .collect(),
        )
    }

    /// What `worker` has been given, if it is connected.
    pub fn worker_load(&self, worker: WorkerId) -> Option<WorkerLoad> {
        self.worker(worker).map(|w| WorkerLoad {
            processing: w.processing.len() as u32,
            in_memory: w.has_what.len() as u32,
            nbytes: w.nbytes,
            memory_limit: w.memory_limit,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::graph::{Key, TaskSpec};
    use crate::scheduler::{ClientId, Command, Event};

    crate::op! { fn view_one() -> u64 { 1 } }
    crate::op! { fn view_add(a: u64, b: u64) -> u64 { a + b } }

    #[test]
    fn groups_count_their_tasks_by_state_and_know_their_inputs() {
        let mut state = State::new(Default::default());
        state.handle(Event::AddWorker {
            worker: WorkerId(0),
            name: "w0".into(),
            nthreads: 1,
            resources: vec![],
            memory_limit: 0,
        });
        state.handle(Event::AddClient {
            client: ClientId(0),
        });
        let one = |i: u32| {
            TaskSpec::new(
                Key::new(format!("one-{i}")),
                crate::ops::Op::op_ref(&view_one),
                vec![],
                vec![],
            )
        };
        let add = TaskSpec::new(
            Key::new("add-7"),
            crate::ops::Op::op_ref(&view_add),
            vec![],
            vec![Key::new("one-0"), Key::new("one-1")],
        );
        let out = state.handle(Event::UpdateGraph {
            client: ClientId(0),
            tasks: vec![one(0), one(1), add],
            wanted: vec![Key::new("add-7")],
        });
        let views = state.group_views();
        let ones = views.iter().find(|g| g.name == "one").unwrap();
        let adds = views.iter().find(|g| g.op == "add").unwrap();
        assert_eq!(adds.inputs, vec!["one".to_string()]);
        assert_eq!(ones.states.iter().sum::<u32>(), 2);
        assert_eq!(adds.states[TaskState::Waiting as usize], 1);
        let processing = ones.states[TaskState::Processing as usize];
        let sent = out
            .iter()
            .filter(|c| matches!(c, Command::Compute { .. }))
            .count();
        assert_eq!(
            processing as usize, sent,
            "processing: the tasks sent to the worker"
        );
        let Command::Compute { task, .. } = &out[0] else {
            panic!("{out:?}")
        };
        state.handle(Event::TaskFinished {
            worker: WorkerId(0),
            key: task.key.clone(),
            run_id: task.run_id,
            nbytes: 8,
            duration_us: 10,
            thread: 0,
        });
        let ones = state
            .group_views()
            .into_iter()
            .find(|g| g.name == "one")
            .unwrap();
        assert_eq!(ones.finished, 1);
        assert_eq!(ones.states[TaskState::Memory as usize], 1);
        let totals = state.tasks_by_state();
        assert_eq!(totals.iter().sum::<u64>(), 3);
        let tasks = state.task_views(10).unwrap();
        let add = tasks.iter().find(|t| t.key == "add-7").unwrap();
        assert_eq!(add.deps.len(), 2);
        assert!(state.task_views(2).is_none());
    }
}
