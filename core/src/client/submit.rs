//! Turning ops, arguments and delayed graphs into tasks, and the client calls that
//! send them: `submit`, `map`, `compute`, `persist`, `gather`, `cancel`.

use super::lazy::{ArgSource, IntoArgs, Lazy, Node, NodeKind};
use super::{Client, Error, Future, FutureHandle};
use crate::graph::{fuse_tasks, Annotations, Arg, Graph, Key, TaskSpec};
use crate::ops::{short_name, Op, OpRef};
use crate::scheduler::Event;
use foldhash::{HashMap, HashMapExt, HashSet};
use std::sync::Arc;

/// Tasks of one `map` sent to the scheduler at a time.
const MAP_BATCH: usize = 65_536;

/// Collects tasks from argument sources and delayed nodes, each key once.
#[derive(Default)]
pub struct GraphBuilder {
    pub(crate) tasks: Vec<TaskSpec>,
    seen: HashSet<Key>,
    /// Futures the graph uses: kept alive until the graph reaches the scheduler.
    pub(crate) keepalive: Vec<FutureHandle>,
}

impl GraphBuilder {
    /// Adds one task whose arguments come from `sources`.
    pub fn add_task(
        &mut self,
        key: Key,
        op: OpRef,
        sources: Vec<ArgSource>,
        annotations: Annotations,
    ) {
        if !self.seen.insert(key.clone()) {
            return;
        }
        let mut deps: Vec<Key> = Vec::new();
        // Inputs are few, so a scan finds repeats; a map only past a few dozen.
        let mut index: HashMap<Key, u32> = HashMap::new();
        let mut dep = |key: &Key, deps: &mut Vec<Key>| -> Arg {
            const SCAN: usize = 32;
            if deps.len() < SCAN {
                if let Some(n) = deps.iter().position(|d| d == key) {
                    return Arg::Dep(n as u32);
                }
                deps.push(key.clone());
                if deps.len() == SCAN {
                    index.extend(deps.iter().cloned().zip(0..));
                }
                return Arg::Dep(deps.len() as u32 - 1);
            }
            let n = *index.entry(key.clone()).or_insert_with(|| {
                deps.push(key.clone());
                deps.len() as u32 - 1
            });
            Arg::Dep(n)
        };
        let mut args = Vec::with_capacity(sources.len());
        for source in sources {
            args.push(match source {
                ArgSource::Literal(value) => Arg::Value(value),
                ArgSource::Node(node) => {
                    let arg = dep(&node.key, &mut deps);
                    self.add_node(&node);
                    arg
                }
                ArgSource::Future(handle) => {
                    let arg = dep(handle.key(), &mut deps);
                    self.keepalive.push(handle);
                    arg
                }
            });
        }
        let mut task = TaskSpec::new(key, op, args, deps);
        task.annotations = annotations;
        self.tasks.push(task);
    }

    /// Adds a delayed node and everything it depends on, inputs first.
    pub fn add_node(&mut self, root: &Arc<Node>) {
        // Iterative: a long chain of delayed calls must not overflow the stack.
        let mut stack: Vec<(Arc<Node>, bool)> = vec![(root.clone(), false)];
        while let Some((node, expanded)) = stack.pop() {
            if self.seen.contains(&node.key) {
                continue;
            }
            match &node.kind {
                NodeKind::Persisted(handle) => {
                    self.seen.insert(node.key.clone());
                    self.keepalive.push(handle.clone());
                }
                NodeKind::Task {
                    op,
                    args,
                    annotations,
                } => {
                    if expanded {
                        self.add_task(
                            node.key.clone(),
                            op.clone(),
                            args.clone(),
                            annotations.clone(),
                        );
                    } else {
                        stack.push((node.clone(), true));
                        for arg in args.iter().rev() {
                            if let ArgSource::Node(input) = arg {
                                if !self.seen.contains(&input.key) {
                                    stack.push((input.clone(), false));
                                }
                            }
                        }
                    }
                }
            }
        }
    }

    /// The collected graph.
    pub fn graph(&self) -> Graph {
        self.tasks.iter().cloned().collect()
    }
}

impl Client {
    /// Runs `op` on `args` on the cluster (Dask's `client.submit`).
    ///
    /// Arguments may be values, futures or delayed values.
    pub fn submit<O: Op>(
        &self,
        op: O,
        args: impl IntoArgs<O::Args>,
    ) -> Result<Future<O::Output>, Error> {
        let mut futures = self.map(op, std::iter::once(args))?;
        futures.pop().ok_or(Error::ClusterClosed)
    }

    /// Runs `op` once per item, in one submission (Dask's `client.map`).
    pub fn map<O: Op, A: IntoArgs<O::Args>>(
        &self,
        op: O,
        items: impl IntoIterator<Item = A>,
    ) -> Result<Vec<Future<O::Output>>, Error> {
        // Only the conversions are generic: the rest is compiled once, in
        // rask, not in every crate (and notebook cell) that maps a new op.
        let mut args = items.into_iter().map(IntoArgs::into_args);
        let handles = self.map_args(op.op_ref(), op.name(), &mut args)?;
        Ok(handles.into_iter().map(Future::from_handle).collect())
    }

    /// [`Client::map`] on the ops' arguments.
    fn map_args(
        &self,
        op_ref: OpRef,
        op_name: &str,
        items: &mut dyn Iterator<Item = Vec<ArgSource>>,
    ) -> Result<Vec<FutureHandle>, Error> {
        let name = short_name(op_name).to_string();
        let mut builder = GraphBuilder::default();
        let mut keys = Vec::new();
        let mut handles = Vec::new();
        for args in items {
            let key = Key::unique(&name);
            builder.add_task(key.clone(), op_ref.clone(), args, Annotations::default());
            keys.push(key);
            // While every task is an item of this map (no delayed inputs that
            // later items may share), send them in batches: the cluster starts
            // on the first while the rest are built.
            if keys.len() == MAP_BATCH && builder.tasks.len() == keys.len() {
                let batch = std::mem::take(&mut builder);
                handles.extend(self.submit_tasks(batch, std::mem::take(&mut keys))?);
            }
        }
        handles.extend(self.submit_tasks(builder, keys)?);
        Ok(handles)
    }

    /// Starts computing a lazy value (a delayed value); returns its future
    /// (Dask's `client.compute`).
    pub fn compute<L: Lazy>(&self, value: &L) -> Result<Future<L::Output>, Error> {
        let mut futures = self.compute_many(std::slice::from_ref(value))?;
        futures.pop().ok_or(Error::ClusterClosed)
    }

    /// Starts computing several lazy values in one graph (shared inputs run once).
    pub fn compute_many<L: Lazy>(&self, values: &[L]) -> Result<Vec<Future<L::Output>>, Error> {
        let mut builder = GraphBuilder::default();
        let keys: Vec<Key> = values.iter().map(|v| v.node().key.clone()).collect();
        for value in values {
            builder.add_node(value.node());
        }
        // Fuse linear chains, keeping the keys asked for.
        let keep: HashSet<Key> = keys.iter().cloned().collect();
        builder.tasks = fuse_tasks(std::mem::take(&mut builder.tasks), |key| keep.contains(key));
        let handles = self.submit_tasks(builder, keys)?;
        Ok(handles.into_iter().map(Future::from_handle).collect())
    }

    /// Computes a lazy value and keeps it in cluster memory; the value returned
    /// refers to the stored result (Dask's `client.persist`).
    pub fn persist<L: Lazy>(&self, value: &L) -> Result<L, Error> {
        let future = self.compute(value)?;
        Ok(L::from_future(future))
    }

    /// Cancels futures: their tasks, and this client's tasks depending on them, stop
    /// (Dask's `client.cancel`).
    pub fn cancel<T>(&self, futures: &[Future<T>]) -> Result<(), Error> {
        let keys = futures.iter().map(|f| f.key().clone()).collect();
        self.inner.table.flush();
        self.send(vec![Event::Cancel {
            client: self.id(),
            keys,
        }])
    }

    /// Starts noting the futures this client creates, for
    /// [`Client::cancel_noted`] (the kernel notes each notebook cell's).
    pub(crate) fn note_new_futures(&self) {
        self.inner.table.start_noting();
    }

    /// Cancels the futures created since [`Client::note_new_futures`] that
    /// have not finished (an interrupted cell's); returns how many. Waits on
    /// them end with [`Error::Cancelled`].
    pub(crate) fn cancel_noted(&self) -> Result<usize, Error> {
        let keys = self.inner.table.take_noted_pending();
        if keys.is_empty() {
            return Ok(0);
        }
        let count = keys.len();
        self.inner.table.flush();
        self.send(vec![Event::Cancel {
            client: self.id(),
            keys,
        }])?;
        Ok(count)
    }

    /// Sends a graph; returns one handle per wanted key.
    fn submit_tasks(
        &self,
        mut builder: GraphBuilder,
        wanted: Vec<Key>,
    ) -> Result<Vec<FutureHandle>, Error> {
        self.assign_shuffle_owners(&mut builder.tasks)?;
        if !self.is_in_process() {
            for task in &builder.tasks {
                if task.run.op.is_closure() {
                    // The wire conversion names the closure in its error.
                    task.to_wire()?;
                }
            }
        }
        builder
            .tasks
            .iter()
            .try_for_each(crate::graph::wire::check_arguments)?;
        self.inner.table.register(&wanted);
        let handles: Vec<FutureHandle> = wanted
            .iter()
            .map(|k| FutureHandle::new(k.clone(), self.inner.clone()))
            .collect();
        self.send(vec![Event::UpdateGraph {
            client: self.id(),
            tasks: builder.tasks,
            wanted,
        }])?;
        drop(builder.keepalive);
        Ok(handles)
    }
}
