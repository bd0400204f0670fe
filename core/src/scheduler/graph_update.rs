//! `update_graph`: a client's new tasks and wanted keys enter the scheduler.

use super::ids::{ClientId, Priority, RunId};
use super::messages::{Command, Report};
use super::small_set::SmallSet;
use super::state::{State, Task, TaskExtra, TaskId, TaskState};
use super::views::MAX_GROUP_INPUTS;
use crate::graph::{Adjacency, GraphError, Key, TaskSpec};
use foldhash::{HashMap, HashMapExt, HashSet};

impl State {
    pub(crate) fn update_graph(
        &mut self,
        client: ClientId,
        tasks: Vec<TaskSpec>,
        wanted: Vec<Key>,
    ) {
        self.clients.entry(client).or_default();
        self.work.entry(client).or_default();
        let (new, index) = self.new_tasks(tasks);
        let ranks = match self.check_graph(&new, &index, &wanted) {
            Ok(ranks) => ranks,
            Err(error) => {
                tracing::warn!(%client, %error, "graph rejected");
                self.out.push(Command::Report {
                    client,
                    report: Report::GraphRejected {
                        keys: wanted,
                        error: error.to_string(),
                    },
                });
                return;
            }
        };
        self.generation = self.generation.wrapping_add(1);
        let new_ids = self.insert_tasks(client, new, &ranks);

        let mut roots = Vec::with_capacity(wanted.len());
        let wanted_ids: Vec<TaskId> = wanted.iter().filter_map(|k| self.id_of(k)).collect();
        self.clients
            .entry(client)
            .or_default()
            .extend(wanted_ids.iter().copied());
        for &t in &wanted_ids {
            let task = self.task_mut(t);
            task.who_wants.insert(client);
            match task.state {
                TaskState::Released => roots.push(t),
                TaskState::Memory => {
                    if let Some(&worker) = task.who_has.as_slice().first() {
                        let report = Report::InMemory {
                            key: task.key.clone(),
                            worker,
                            nbytes: task.nbytes,
                        };
                        self.out.push(Command::Report { client, report });
                    }
                }
                TaskState::Erred => {
                    if let Some(error) = task.error().cloned() {
                        let report = Report::Erred {
                            key: task.key.clone(),
                            error,
                        };
                        self.out.push(Command::Report { client, report });
                    }
                }
                _ => {}
            }
        }
        self.make_waiting(&roots);
        // New tasks that no wanted key needs are culled here.
        let unneeded: Vec<TaskId> = new_ids
            .into_iter()
            .filter(|&t| {
                self.tasks[t as usize]
                    .as_ref()
                    .is_some_and(|x| x.state == TaskState::Released)
            })
            .collect();
        self.settle(unneeded);
    }

    /// Data a client put on workers becomes tasks in memory that the client wants.
    /// Such data cannot be recomputed: if its workers die, its dependents fail.
    pub(crate) fn scatter(
        &mut self,
        client: ClientId,
        keys: Vec<(Key, super::ids::WorkerId, u64)>,
    ) {
        self.clients.entry(client).or_default();
        let mut new = Vec::new();
        let mut placed = Vec::new();
        for (key, worker, nbytes) in keys {
            if self.worker(worker).is_none() {
                tracing::warn!(%key, %worker, "scattered to a worker that is gone");
                let error = super::messages::TaskError::new(
                    key.clone(),
                    format!("scattered data was lost: {worker} left"),
                );
                self.out.push(Command::Report {
                    client,
                    report: Report::Erred { key, error },
                });
                continue;
            }
            if self.id_of(&key).is_none() {
                new.push(TaskSpec::new(
                    key.clone(),
                    crate::ops::OpRef::Missing(std::sync::Arc::from(
                        "scattered data (it cannot be recomputed after its workers die)",
                    )),
                    Vec::new(),
                    Vec::new(),
                ));
            }
            placed.push((key, worker, nbytes));
        }
        let ranks = vec![0; new.len()];
        self.insert_tasks(client, new, &ranks);
        for (key, worker, nbytes) in placed {
            let Some(t) = self.id_of(&key) else { continue };
            let task = self.task_mut(t);
            if task.state != TaskState::Released && task.state != TaskState::Memory {
                continue;
            }
            task.nbytes = nbytes;
            task.who_wants.insert(client);
            self.set_state(t, TaskState::Memory);
            let task = self.task_mut(t);
            let added = task.who_has.insert(worker);
            if added {
                if let Some(record) = self.worker_mut(worker) {
                    record.has_what.insert(t);
                    record.nbytes += nbytes;
                }
            }
            self.clients.entry(client).or_default().insert(t);
            self.out.push(Command::Report {
                client,
                report: Report::InMemory {
                    key,
                    worker,
                    nbytes,
                },
            });
        }
    }

    /// The tasks not yet in the table, each key once (a key given twice keeps
    /// its last spec, like a dict), in submission order, and an index of their
    /// positions by key.
    fn new_tasks(&self, tasks: Vec<TaskSpec>) -> (Vec<TaskSpec>, BatchIndex) {
        let mut index = BatchIndex::with_capacity(tasks.len());
        let mut keep = vec![false; tasks.len()];
        for (i, task) in tasks.iter().enumerate() {
            if self.id_of(&task.key).is_some() {
                continue;
            }
            if let Some(earlier) = index.insert(&task.key, i as u32, &tasks) {
                keep[earlier as usize] = false;
            }
            keep[i] = true;
        }
        // Positions shift as duplicates and known keys drop out.
        let mut moved = Vec::with_capacity(tasks.len());
        let mut new = Vec::with_capacity(tasks.len());
        for (task, kept) in tasks.into_iter().zip(&keep) {
            moved.push(new.len() as u32);
            if *kept {
                new.push(task);
            }
        }
        index.renumber(&moved);
        (new, index)
    }

    /// Checks dependencies, arguments and acyclicity before anything changes; returns graph ranks.
    fn check_graph(
        &self,
        new: &[TaskSpec],
        index: &BatchIndex,
        wanted: &[Key],
    ) -> Result<Vec<u32>, GraphError> {
        let mut local_deps = Adjacency::with_capacity(new.len());
        for task in new {
            crate::graph::wire::check_arguments(task)?;
            let mut inputs = Vec::new();
            for dep in &task.deps {
                match index.get(dep, new) {
                    Some(i) => inputs.push(i),
                    None if self.id_of(dep).is_some() => {}
                    None => {
                        return Err(GraphError::MissingDependency {
                            key: task.key.clone(),
                            dependency: dep.clone(),
                        })
                    }
                }
            }
            local_deps.push(inputs);
        }
        for key in wanted {
            if index.get(key, new).is_none() && self.id_of(key).is_none() {
                return Err(GraphError::MissingDependency {
                    key: key.clone(),
                    dependency: key.clone(),
                });
            }
        }
        crate::graph::order(&local_deps, |i| new[i].key.clone())
    }

    fn insert_tasks(&mut self, client: ClientId, new: Vec<TaskSpec>, ranks: &[u32]) -> Vec<TaskId> {
        let generation = self.generation;
        let mut ids = Vec::with_capacity(new.len());
        self.tasks
            .reserve(new.len().saturating_sub(self.free_ids.len()));
        self.by_key.reserve(new.len(), &self.tasks);
        // First enter every task, so dependencies inside the batch resolve.
        let mut deps_of = Vec::with_capacity(new.len());
        for (spec, &rank) in new.into_iter().zip(ranks) {
            let t = match self.free_ids.pop() {
                Some(t) => t,
                None => {
                    self.tasks.push(None);
                    self.tasks.len() as TaskId - 1
                }
            };
            let group = self.join_group(&spec.key);
            let extra = spec.annotations.guides_placement().then(|| {
                Box::new(TaskExtra {
                    annotations: Some(spec.annotations.clone()),
                    ..Default::default()
                })
            });
            self.tasks[t as usize] = Some(Task {
                key: spec.key,
                run: spec.run,
                state: TaskState::Released,
                priority: Priority::new(spec.annotations.priority, generation, rank),
                group,
                client,
                deps: Vec::new(),
                dependents: Vec::new(),
                waiting_on: 0,
                waiters: 0,
                who_wants: SmallSet::Empty,
                who_has: SmallSet::Empty,
                processing_on: None,
                run_id: RunId::default(),
                nbytes: 0,
                retries_left: spec.annotations.retries,
                suspicious: 0,
                extra,
            });
            self.by_key.insert(t, &self.tasks);
            ids.push(t);
            deps_of.push(spec.deps);
        }
        let mut external: HashMap<u32, HashSet<TaskId>> = HashMap::new();
        for (&t, dep_keys) in ids.iter().zip(deps_of) {
            let group = self.task(t).group;
            // check_graph found every dependency in the batch or the table.
            let deps: Vec<TaskId> = dep_keys.iter().filter_map(|d| self.id_of(d)).collect();
            for &d in &deps {
                self.task_mut(d).dependents.push(t);
                if self.task(d).group != group {
                    external.entry(group).or_default().insert(d);
                }
            }
            self.task_mut(t).deps = deps;
        }
        for (group, deps) in external {
            let mut inputs = std::mem::take(&mut self.groups[group as usize].inputs);
            for &d in &deps {
                let from = self.task(d).group;
                if inputs.len() < MAX_GROUP_INPUTS && !inputs.contains(&from) {
                    inputs.push(from);
                }
            }
            let g = &mut self.groups[group as usize];
            g.inputs = inputs;
            g.external_deps = g.external_deps.saturating_add(deps.len() as u32);
        }
        ids
    }
}

/// Positions of a submitted batch's tasks by key: 4-byte slots, hashed by the
/// hash each key computed once.
struct BatchIndex {
    table: hashbrown::HashTable<u32>,
}

impl BatchIndex {
    fn with_capacity(n: usize) -> Self {
        BatchIndex {
            table: hashbrown::HashTable::with_capacity(n),
        }
    }

    /// Records `key` at position `at` of `tasks`; returns the earlier position
    /// it replaces.
    fn insert(&mut self, key: &Key, at: u32, tasks: &[TaskSpec]) -> Option<u32> {
        let hash = key.precomputed_hash();
        match self.table.entry(
            hash,
            |&i| tasks[i as usize].key == *key,
            |&i| tasks[i as usize].key.precomputed_hash(),
        ) {
            hashbrown::hash_table::Entry::Occupied(mut slot) => {
                Some(std::mem::replace(slot.get_mut(), at))
            }
            hashbrown::hash_table::Entry::Vacant(slot) => {
                slot.insert(at);
                None
            }
        }
    }

    /// Maps every recorded position through `moved` (old position → new).
    fn renumber(&mut self, moved: &[u32]) {
        for at in self.table.iter_mut() {
            *at = moved[*at as usize];
        }
    }

    /// The position of `key` in `tasks`.
    fn get(&self, key: &Key, tasks: &[TaskSpec]) -> Option<u32> {
        self.table
            .find(key.precomputed_hash(), |&i| tasks[i as usize].key == *key)
            .copied()
    }
}
