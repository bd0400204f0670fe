//! Task transitions: waiting → ready → processing → memory / erred, and the
//! release-and-forget cascade that frees results nobody needs any more.

use super::ids::{RunId, WorkerId};
use super::messages::{Command, Report, TaskError};
use super::state::{State, TaskId, TaskState};
use crate::graph::{Key, ShuffleRole};

impl State {
    /// Makes `roots` (released tasks someone needs) and every released task they
    /// depend on wait for their inputs, deepest first; ready ones are placed.
    pub(crate) fn make_waiting(&mut self, roots: &[TaskId]) {
        // Iterative post-order over released inputs: a long chain must not overflow the stack.
        let mut post: Vec<TaskId> = Vec::new();
        let mut seen = foldhash::HashSet::default();
        let mut stack: Vec<(TaskId, usize)> = Vec::new();
        for &root in roots {
            if self.task(root).state != TaskState::Released || !seen.insert(root) {
                continue;
            }
            stack.push((root, 0));
            while let Some((t, child)) = stack.last_mut() {
                let t = *t;
                let deps = &self.task(t).deps;
                match deps.get(*child) {
                    Some(&d) => {
                        *child += 1;
                        if self.task(d).state == TaskState::Released && seen.insert(d) {
                            stack.push((d, 0));
                        }
                    }
                    None => {
                        stack.pop();
                        post.push(t);
                    }
                }
            }
        }
        for t in post {
            self.wait_for_inputs(t);
        }
    }

    /// released → waiting for one task whose released inputs are already waiting.
    fn wait_for_inputs(&mut self, t: TaskId) {
        let deps = std::mem::take(&mut self.task_mut(t).deps);
        let mut waiting_on = 0;
        let mut erred_input = None;
        for &d in &deps {
            let dep = self.task_mut(d);
            dep.waiters += 1;
            match dep.state {
                TaskState::Memory => {}
                TaskState::Erred => erred_input = erred_input.or(Some(d)),
                _ => waiting_on += 1,
            }
        }
        let task = self.task_mut(t);
        task.deps = deps;
        task.waiting_on = waiting_on;
        self.set_state(t, TaskState::Waiting);
        if let Some(d) = erred_input {
            let error = self
                .task(d)
                .error()
                .cloned()
                .unwrap_or_else(|| TaskError::new(self.task(d).key.clone(), "an input failed"));
            self.mark_erred(t, error);
        } else if waiting_on == 0 {
            self.ready(t);
        }
    }

    /// A waiting task whose inputs are all in memory: queue it or place it.
    pub(crate) fn ready(&mut self, t: TaskId) {
        debug_assert_eq!(self.task(t).state, TaskState::Waiting);
        if self.running_workers.is_empty() {
            self.set_state(t, TaskState::NoWorker);
            self.no_worker.insert(t);
            return;
        }
        if self.config.worker_saturation.is_finite() && self.is_rootish(t) {
            match self.worker_with_room(t) {
                Some(w) => self.assign(t, w),
                None => {
                    self.set_state(t, TaskState::Queued);
                    let priority = self.task(t).priority;
                    self.queued.push(priority, t);
                }
            }
            return;
        }
        match self.decide_worker(t) {
            Some(w) => self.assign(t, w),
            None => {
                self.set_state(t, TaskState::NoWorker);
                self.no_worker.insert(t);
            }
        }
    }

    /// Sends a ready task to a worker.
    pub(crate) fn assign(&mut self, t: TaskId, w: WorkerId) {
        let estimate = self.duration_estimate(t);
        let needs: Vec<(String, f64)> = self
            .task(t)
            .annotations()
            .map(|a| a.resources.clone())
            .unwrap_or_default();
        let Some(worker) = self.worker_mut(w) else {
            return;
        };
        worker.processing.insert(t);
        worker.occupancy += estimate;
        for (name, amount) in &needs {
            if let Some(at) = worker.resources.iter().position(|(n, _)| n == name) {
                worker.used_resources[at] += amount;
            }
        }
        self.last_run_id = self.last_run_id.wrapping_add(1);
        let run_id = RunId::new(t, self.last_run_id);
        self.set_state(t, TaskState::Processing);
        let task = self.task_mut(t);
        task.processing_on = Some(w);
        task.run_id = run_id;
        let (key, run, priority) = (task.key.clone(), task.run.clone(), task.priority);
        let inputs = task
            .deps
            .clone()
            .into_iter()
            .map(|d| {
                let dep = self.task(d);
                super::messages::Input {
                    key: dep.key.clone(),
                    holders: dep.who_has.as_slice().to_vec(),
                    nbytes: dep.nbytes,
                }
            })
            .collect();
        self.out.push(Command::Compute {
            worker: w,
            task: super::messages::ComputeTask {
                key,
                run_id,
                run,
                inputs,
                priority,
                resources: needs,
            },
        });
    }

    /// Tells worker `w` to drop `key`, stamped with the last assignment handed
    /// out so far (a shuffle's runs up to it are over).
    pub(crate) fn release_on(&mut self, w: WorkerId, key: Key) {
        let as_of = self.last_run_id;
        self.out.push(Command::Release {
            worker: w,
            key,
            as_of,
        });
    }

    /// Takes a processing task off its worker's books (it finished, failed, moved or was cancelled).
    pub(crate) fn detach(&mut self, t: TaskId) -> Option<WorkerId> {
        let estimate = self.duration_estimate(t);
        let needs: Vec<(String, f64)> = self
            .task(t)
            .annotations()
            .map(|a| a.resources.clone())
            .unwrap_or_default();
        let task = self.task_mut(t);
        let w = task.processing_on.take()?;
        if let Some(extra) = task.extra.as_mut() {
            extra.steal_to = None;
        }
        if let Some(worker) = self.worker_mut(w) {
            if worker.processing.remove(&t) {
                worker.occupancy = (worker.occupancy - estimate).max(0.0);
            }
            if worker.processing.is_empty() {
                worker.occupancy = 0.0;
            }
            for (name, amount) in &needs {
                if let Some(at) = worker.resources.iter().position(|(n, _)| n == name) {
                    worker.used_resources[at] -= amount;
                }
            }
        }
        Some(w)
    }

    /// Whether `t`'s current assignment is `run_id` on worker `w`. Anything
    /// else a worker says about the task answers an assignment withdrawn since
    /// (and the worker was, or will be, told to release it): it is ignored.
    /// The task a worker's answer about `key` for assignment `run_id` refers
    /// to: the slot the run id names when that slot holds `key`, else the
    /// task found by key.
    pub(crate) fn answered_task(&self, key: &crate::graph::Key, run_id: RunId) -> Option<TaskId> {
        let slot = run_id.slot();
        match self.tasks.get(slot as usize) {
            Some(Some(task)) if task.key == *key => Some(slot),
            _ => self.id_of(key),
        }
    }

    pub(crate) fn is_current(&self, t: TaskId, w: WorkerId, run_id: RunId) -> bool {
        let task = self.task(t);
        task.state == TaskState::Processing
            && task.processing_on == Some(w)
            && task.run_id == run_id
    }

    pub(crate) fn task_finished(
        &mut self,
        w: WorkerId,
        key: &crate::graph::Key,
        run_id: RunId,
        nbytes: u64,
        duration_us: u64,
    ) {
        let Some(t) = self.answered_task(key, run_id) else {
            // A result nobody needs any more: let the worker drop it.
            self.release_on(w, key.clone());
            return;
        };
        if !self.is_current(t, w, run_id) {
            tracing::debug!(%key, worker = %w, "ignoring the result of a withdrawn assignment");
            return;
        }
        self.detach(t);
        self.learn_duration(t, duration_us as f64 * 1e-6);
        self.set_state(t, TaskState::Memory);
        let task = self.task_mut(t);
        task.nbytes = nbytes;
        task.who_has.insert(w);
        if let Some(worker) = self.worker_mut(w) {
            worker.has_what.insert(t);
            worker.nbytes += nbytes;
        }
        self.report(t, |key| Report::InMemory {
            key: key.clone(),
            worker: w,
            nbytes,
        });
        let task = self.task(t);
        let dependents = task.dependents.clone();
        for d in dependents {
            let dependent = self.task_mut(d);
            if dependent.state == TaskState::Waiting {
                dependent.waiting_on = dependent.waiting_on.saturating_sub(1);
                if dependent.waiting_on == 0 {
                    self.ready(d);
                }
            }
        }
        let mut settle = Vec::with_capacity(self.task(t).deps.len() + 1);
        self.let_go_of_inputs(t, &mut settle);
        settle.push(t);
        self.settle(settle);
        self.fill_from_queue(w);
    }

    pub(crate) fn task_erred(
        &mut self,
        w: WorkerId,
        key: &crate::graph::Key,
        run_id: RunId,
        failure: crate::ops::TaskFailure,
    ) {
        let Some(t) = self.answered_task(key, run_id) else {
            return;
        };
        if !self.is_current(t, w, run_id) {
            return;
        }
        self.detach(t);
        let task = self.task_mut(t);
        if task.retries_left > 0 {
            task.retries_left -= 1;
            tracing::debug!(key = %task.key, left = task.retries_left, "task failed; retrying");
            self.set_state(t, TaskState::Waiting);
            self.ready(t);
        } else {
            let blame = task.key.clone();
            let error = TaskError {
                blame,
                message: failure.message,
                worker: self.worker(w).map(|record| record.name.clone()),
            };
            self.mark_erred(t, error);
        }
        self.fill_from_queue(w);
    }

    /// Fails a task and, with the same cause, every task waiting on it.
    pub(crate) fn mark_erred(&mut self, t: TaskId, error: TaskError) {
        let mut stack = vec![t];
        let mut settle = Vec::new();
        while let Some(t) = stack.pop() {
            let state = self.task(t).state;
            match state {
                TaskState::Memory | TaskState::Erred | TaskState::Released => continue,
                TaskState::Processing => {
                    if let Some(w) = self.detach(t) {
                        let key = self.task(t).key.clone();
                        self.release_on(w, key);
                    }
                }
                TaskState::NoWorker => {
                    self.no_worker.remove(&t);
                }
                TaskState::Waiting | TaskState::Queued => {}
            }
            self.set_state(t, TaskState::Erred);
            self.task_mut(t).extra_mut().error = Some(error.clone());
            self.report(t, |key| Report::Erred {
                key: key.clone(),
                error: error.clone(),
            });
            let task = self.task(t);
            stack.extend(task.dependents.iter().copied());
            self.let_go_of_inputs(t, &mut settle);
            settle.push(t);
        }
        self.settle(settle);
    }

    /// Releases what nobody needs and forgets what nobody can need, starting from
    /// `stack` and cascading to inputs.
    pub(crate) fn settle(&mut self, mut stack: Vec<TaskId>) {
        let mut freed_slots: Vec<WorkerId> = Vec::new();
        while let Some(t) = stack.pop() {
            let Some(task) = self.tasks[t as usize].as_ref() else {
                continue;
            };
            if !task.who_wants.is_empty() || task.waiters > 0 {
                continue;
            }
            match task.state {
                TaskState::Memory => self.release_data(t),
                TaskState::Waiting
                | TaskState::Queued
                | TaskState::NoWorker
                | TaskState::Processing => {
                    if task.state == TaskState::Processing {
                        if let Some(w) = self.detach(t) {
                            let key = self.task(t).key.clone();
                            self.release_on(w, key);
                            freed_slots.push(w);
                        }
                    }
                    self.no_worker.remove(&t);
                    self.set_state(t, TaskState::Released);
                    self.let_go_of_inputs(t, &mut stack);
                }
                TaskState::Released | TaskState::Erred => {}
            }
            let task = self.task(t);
            if matches!(task.state, TaskState::Released | TaskState::Erred)
                && task.dependents.is_empty()
            {
                let deps = self.forget(t);
                stack.extend(deps);
            }
        }
        for w in freed_slots {
            self.fill_from_queue(w);
        }
    }

    /// Task `t` no longer needs its inputs: each loses a waiter and is queued in
    /// `settle` to be released if nobody else needs it.
    fn let_go_of_inputs(&mut self, t: TaskId, settle: &mut Vec<TaskId>) {
        for i in 0..self.task(t).deps.len() {
            let d = self.task(t).deps[i];
            let dep = self.task_mut(d);
            dep.waiters = dep.waiters.saturating_sub(1);
            settle.push(d);
        }
    }

    /// memory → released: tells every holder to drop the result.
    pub(crate) fn release_data(&mut self, t: TaskId) {
        self.set_state(t, TaskState::Released);
        self.release_copies(t);
    }

    /// Tells every worker holding task `t`'s result to drop it, and forgets
    /// that they hold it. A shuffle's layout is released on every worker:
    /// each drops the shards it holds for the shuffle, which is over (or
    /// restarts).
    pub(crate) fn release_copies(&mut self, t: TaskId) {
        let task = self.task_mut(t);
        let holders = std::mem::take(&mut task.who_has);
        let (key, nbytes) = (task.key.clone(), task.nbytes);
        for &w in holders.as_slice() {
            if let Some(worker) = self.worker_mut(w) {
                worker.has_what.remove(&t);
                worker.nbytes = worker.nbytes.saturating_sub(nbytes);
            }
            self.release_on(w, key.clone());
        }
        if key.as_str().starts_with(ShuffleRole::LAYOUT_KEY_PREFIX) {
            let others: Vec<WorkerId> = self
                .live_workers()
                .filter(|w| !holders.as_slice().contains(w))
                .collect();
            for w in others {
                self.release_on(w, key.clone());
            }
        }
    }

    /// The ids of the workers connected now.
    pub(crate) fn live_workers(&self) -> impl Iterator<Item = WorkerId> + '_ {
        (0..self.workers.len() as u32)
            .map(WorkerId)
            .filter(|&w| self.worker(w).is_some())
    }

    /// Tells every client that wants task `t` what happened to it.
    pub(crate) fn report(&mut self, t: TaskId, report: impl Fn(&crate::graph::Key) -> Report) {
        let Some(task) = self.tasks[t as usize].as_ref() else {
            return;
        };
        for &client in task.who_wants.as_slice() {
            self.out.push(Command::Report {
                client,
                report: report(&task.key),
            });
        }
    }

    /// Removes a task from the table; returns its inputs, which may now be forgettable.
    fn forget(&mut self, t: TaskId) -> Vec<TaskId> {
        if !self.by_key.remove_id(t, &self.tasks) {
            return Vec::new();
        }
        let Some(task) = self.tasks[t as usize].take() else {
            return Vec::new();
        };
        self.free_ids.push(t);
        self.leave_group(task.group, task.state);
        for &d in &task.deps {
            if let Some(dep) = self.tasks[d as usize].as_mut() {
                if let Some(at) = dep.dependents.iter().position(|&x| x == t) {
                    dep.dependents.swap_remove(at);
                }
            }
        }
        task.deps
    }
}
