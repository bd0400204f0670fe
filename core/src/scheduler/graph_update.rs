//! `update_graph`: a client's new tasks and wanted keys enter the scheduler.

use super::ids::{ClientId, Priority, RunId};
use super::messages::{Command, Report};
use super::small_set::SmallSet;
use super::state::{State, Task, TaskExtra, TaskId, TaskState};
use crate::graph::{GraphError, Key, TaskSpec};
use foldhash::{HashMap, HashMapExt, HashSet, HashSetExt};

impl State {
    pub(crate) fn update_graph(
        &mut self,
        client: ClientId,
        tasks: Vec<TaskSpec>,
        wanted: Vec<Key>,
    ) {
        self.clients.entry(client).or_default();
        let mut seen = HashSet::new();
        let mut new: Vec<TaskSpec> = Vec::with_capacity(tasks.len());
        // A key given twice keeps its last spec, like a dict.
        for task in tasks.into_iter().rev() {
            if !self.by_key.contains_key(&task.key) && seen.insert(task.key.clone()) {
                new.push(task);
            }
        }
        new.reverse();
        let ranks = match self.check_graph(&new, &wanted) {
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
        let new_ids = self.insert_tasks(new, &ranks);

        let mut roots = Vec::with_capacity(wanted.len());
        let wanted_ids: Vec<TaskId> = wanted
            .iter()
            .filter_map(|k| self.by_key.get(k).copied())
            .collect();
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
                let error = super::messages::TaskError {
                    blame: key.clone(),
                    message: format!("scattered data was lost: {worker} left"),
                };
                self.out.push(Command::Report {
                    client,
                    report: Report::Erred { key, error },
                });
                continue;
            }
            if !self.by_key.contains_key(&key) {
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
        self.insert_tasks(new, &ranks);
        for (key, worker, nbytes) in placed {
            let t = self.by_key[&key];
            let task = self.task_mut(t);
            if task.state != TaskState::Released && task.state != TaskState::Memory {
                continue;
            }
            task.state = TaskState::Memory;
            task.nbytes = nbytes;
            task.who_wants.insert(client);
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

    /// Checks dependencies, arguments and acyclicity before anything changes; returns graph ranks.
    fn check_graph(&self, new: &[TaskSpec], wanted: &[Key]) -> Result<Vec<u32>, GraphError> {
        let index: HashMap<&Key, u32> = new
            .iter()
            .enumerate()
            .map(|(i, t)| (&t.key, i as u32))
            .collect();
        let mut local_deps: Vec<Vec<u32>> = Vec::with_capacity(new.len());
        for task in new {
            crate::graph::wire::check_arguments(task)?;
            let mut ds = Vec::new();
            for dep in &task.deps {
                match index.get(dep) {
                    Some(&i) => ds.push(i),
                    None if self.by_key.contains_key(dep) => {}
                    None => {
                        return Err(GraphError::MissingDependency {
                            key: task.key.clone(),
                            dependency: dep.clone(),
                        })
                    }
                }
            }
            local_deps.push(ds);
        }
        for key in wanted {
            if !index.contains_key(key) && !self.by_key.contains_key(key) {
                return Err(GraphError::MissingDependency {
                    key: key.clone(),
                    dependency: key.clone(),
                });
            }
        }
        let keys: Vec<Key> = new.iter().map(|t| t.key.clone()).collect();
        crate::graph::order(&local_deps, &keys)
    }

    fn insert_tasks(&mut self, new: Vec<TaskSpec>, ranks: &[u32]) -> Vec<TaskId> {
        let generation = self.generation;
        let mut ids = Vec::with_capacity(new.len());
        // First allocate every id, so dependencies inside the batch resolve.
        for task in &new {
            let t = match self.free_ids.pop() {
                Some(t) => t,
                None => {
                    self.tasks.push(None);
                    self.tasks.len() as TaskId - 1
                }
            };
            self.by_key.insert(task.key.clone(), t);
            ids.push(t);
        }
        let mut external: HashMap<u32, HashSet<TaskId>> = HashMap::new();
        for ((spec, &t), &rank) in new.into_iter().zip(&ids).zip(ranks) {
            let group = self.join_group(&spec.key);
            let deps: Vec<TaskId> = spec.deps.iter().map(|d| self.by_key[d]).collect();
            let extra = spec.annotations.has_restrictions().then(|| {
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
            for &d in &deps {
                self.task_mut(d).dependents.push(t);
                if self.task(d).group != group {
                    external.entry(group).or_default().insert(d);
                }
            }
            self.task_mut(t).deps = deps;
        }
        for (group, deps) in external {
            let g = &mut self.groups[group as usize];
            g.external_deps = g.external_deps.saturating_add(deps.len() as u32);
        }
        ids
    }
}
