//! Carrying the state machine's commands to workers and clients: one batch
//! per destination per pass, over channels (in-process) or TCP outboxes. A
//! batch for a TCP peer goes in messages of at most [`BATCH_ITEMS`] items and
//! about [`BATCH_BYTES`], so no message passes the frame limit however large
//! the pass (a 10M-task graph, a cancel of everything).

use super::channels::{Order, ToClient, ToWorker};
use super::event_loop::{ClientLink, Loop, WorkerLink};
use crate::comm::protocol::{Message, WorkerOrder};
use crate::scheduler::{ClientId, Command, Report, WorkerId};
use foldhash::{HashMap, HashMapExt};

/// The most orders or reports in one message.
pub const BATCH_ITEMS: usize = 16_384;
/// About the most bytes of orders or reports in one message.
pub const BATCH_BYTES: usize = 8 << 20;

/// Splits `items` into runs of at most [`BATCH_ITEMS`] and about
/// [`BATCH_BYTES`] (by `size`); each run is one message.
fn batches<T>(mut items: Vec<T>, size: impl Fn(&T) -> usize) -> Vec<Vec<T>> {
    // Where each run ends, first: the common single run moves nothing.
    let mut ends = Vec::new();
    let (mut start, mut bytes) = (0, 0);
    for (i, item) in items.iter().enumerate() {
        let n = size(item);
        if i > start && (i - start >= BATCH_ITEMS || bytes + n > BATCH_BYTES) {
            ends.push(i);
            start = i;
            bytes = 0;
        }
        bytes += n;
    }
    if ends.is_empty() {
        return if items.is_empty() {
            Vec::new()
        } else {
            vec![items]
        };
    }
    let mut out = Vec::with_capacity(ends.len() + 1);
    for &end in ends.iter().rev() {
        out.push(items.split_off(end));
    }
    out.push(items);
    out.reverse();
    out
}

/// About how many bytes an order takes on the wire.
fn order_bytes(order: &WorkerOrder) -> usize {
    match order {
        WorkerOrder::Compute(task) => {
            let inputs: usize = task
                .inputs
                .iter()
                .map(|i| 24 + i.key.as_str().len() + 4 * i.holders.len())
                .sum();
            64 + task.key.as_str().len() + run_bytes(&task.run) + inputs
        }
        WorkerOrder::Release(key, _) | WorkerOrder::Steal(key, _) => 16 + key.as_str().len(),
        WorkerOrder::Replicate { key, holders, .. } => 32 + key.as_str().len() + 4 * holders.len(),
    }
}

fn run_bytes(run: &crate::graph::wire::WireRun) -> usize {
    use crate::graph::wire::{WireArg, WireOp};
    let op = match &run.op {
        WireOp::Named(name) => name.len(),
        WireOp::Fused(steps, _) => steps.iter().map(run_bytes).sum(),
    };
    op + run
        .args
        .iter()
        .map(|a| match a {
            WireArg::Bytes(b) => 8 + b.len(),
            WireArg::Dep(_) => 4,
        })
        .sum::<usize>()
}

/// About how many bytes a report takes on the wire.
fn report_bytes(report: &Report) -> usize {
    match report {
        Report::InMemory { key, .. } | Report::Cancelled { key } | Report::Lost { key } => {
            24 + key.as_str().len()
        }
        Report::Erred { key, error } => {
            32 + key.as_str().len() + error.blame.as_str().len() + error.message.len()
        }
        Report::GraphRejected { keys, error } => {
            32 + error.len() + keys.iter().map(|k| 4 + k.as_str().len()).sum::<usize>()
        }
    }
}

impl Loop {
    pub(super) fn route(&mut self, commands: &mut Vec<Command>) {
        let mut local: HashMap<WorkerId, Vec<Order>> = HashMap::new();
        let mut remote: HashMap<WorkerId, Vec<WorkerOrder>> = HashMap::new();
        let mut to_clients: HashMap<ClientId, Vec<Report>> = HashMap::new();
        let mut closing = Vec::new();
        for command in commands.drain(..) {
            let (worker, order) = match command {
                Command::Report { client, report } => {
                    to_clients.entry(client).or_default().push(report);
                    continue;
                }
                Command::CloseWorker { worker } => {
                    closing.push(worker);
                    continue;
                }
                Command::Compute { worker, task } => (worker, Order::Compute(task)),
                Command::Release { worker, key, as_of } => (worker, Order::Release(key, as_of)),
                Command::Steal {
                    worker,
                    key,
                    run_id,
                } => (worker, Order::Steal(key, run_id)),
                Command::Replicate {
                    worker,
                    key,
                    holders,
                    nbytes,
                } => (worker, Order::Replicate(key, holders, nbytes)),
            };
            // A worker that is gone has its RemoveWorker event on the way; drop its mail.
            match self.workers.get(&worker).map(|e| &e.link) {
                Some(WorkerLink::Local(_)) => local.entry(worker).or_default().push(order),
                Some(WorkerLink::Remote(..)) => match order.remote() {
                    Ok(order) => remote.entry(worker).or_default().push(order),
                    Err(error) => tracing::error!(%error, "cannot send a task to a worker process"),
                },
                None => {}
            }
        }
        for (worker, batch) in local {
            if let Some(WorkerLink::Local(inbox)) = self.workers.get(&worker).map(|e| &e.link) {
                let _ = inbox.send(ToWorker::Orders(batch));
            }
        }
        for (worker, batch) in remote {
            if let Some(WorkerLink::Remote(outbox, _)) = self.workers.get(&worker).map(|e| &e.link)
            {
                for orders in batches(batch, order_bytes) {
                    outbox.send(Message::Orders(orders));
                }
            }
        }
        for (client, batch) in to_clients {
            match self.clients.get(&client) {
                Some(ClientLink::Local(inbox)) => {
                    let _ = inbox.send(ToClient::Reports(batch));
                }
                Some(ClientLink::Remote(outbox)) => {
                    for reports in batches(batch, report_bytes) {
                        outbox.send(Message::Reports(reports));
                    }
                }
                None => {}
            }
        }
        for worker in closing {
            if let Some(entry) = self.workers.get(&worker) {
                tracing::info!(%worker, name = %entry.name, "retired; telling the worker to close");
                match &entry.link {
                    WorkerLink::Local(inbox) => {
                        let _ = inbox.send(ToWorker::Shutdown);
                    }
                    WorkerLink::Remote(outbox, _) => {
                        outbox.send(Message::Close {
                            reason: "retired".into(),
                        });
                    }
                }
            }
            self.worker_gone(worker);
        }
    }
}

impl Order {
    fn remote(self) -> Result<WorkerOrder, crate::graph::GraphError> {
        Ok(match self {
            Order::Compute(task) => WorkerOrder::Compute(crate::comm::protocol::WireCompute {
                run: crate::graph::wire::run_to_wire(&task.key, &task.run)?,
                run_id: task.run_id,
                key: task.key,
                inputs: task.inputs,
                priority: task.priority,
                resources: task.resources,
            }),
            Order::Release(key, as_of) => WorkerOrder::Release(key, as_of),
            Order::Steal(key, run_id) => WorkerOrder::Steal(key, run_id),
            Order::Replicate(key, holders, nbytes) => WorkerOrder::Replicate {
                key,
                holders,
                nbytes,
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batches_keep_order_and_respect_both_limits() {
        assert!(batches(Vec::<u32>::new(), |_| 1).is_empty());
        let one = batches(vec![1, 2, 3], |_| 1);
        assert_eq!(one, vec![vec![1, 2, 3]]);
        let many: Vec<usize> = (0..BATCH_ITEMS * 2 + 5).collect();
        let split = batches(many.clone(), |_| 1);
        assert_eq!(
            split.iter().map(Vec::len).collect::<Vec<_>>(),
            [BATCH_ITEMS, BATCH_ITEMS, 5]
        );
        assert_eq!(split.concat(), many);
        // By bytes: three items of 3 MiB make runs of two and one.
        let big = batches(vec![1, 2, 3], |_| 3 << 20);
        assert_eq!(big, vec![vec![1, 2], vec![3]]);
        // An item over the limit still goes, alone.
        let huge = batches(vec![1, 2], |_| BATCH_BYTES + 1);
        assert_eq!(huge, vec![vec![1], vec![2]]);
    }
}
