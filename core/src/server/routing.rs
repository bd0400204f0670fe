//! Carrying the state machine's commands to workers and clients: one batch
//! per destination per pass, over channels (in-process) or TCP outboxes.

use super::channels::{ToClient, ToWorker};
use super::event_loop::{ClientLink, Loop, WorkerLink};
use crate::comm::protocol::{Message, WorkerOrder};
use crate::graph::Key;
use crate::scheduler::{ClientId, Command, Report, RunId, WorkerId};
use crate::worker::WorkerEvent;
use std::collections::HashMap;

impl Loop {
    pub(super) fn route(&mut self, commands: &mut Vec<Command>) {
        let mut local: HashMap<WorkerId, Vec<WorkerEvent>> = HashMap::new();
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
                Command::Release { worker, key } => (worker, Order::Release(key)),
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
                Some(WorkerLink::Local(_)) => local.entry(worker).or_default().push(order.local()),
                Some(WorkerLink::Remote(..)) => match order.remote() {
                    Ok(order) => remote.entry(worker).or_default().push(order),
                    Err(error) => tracing::error!(%error, "cannot send a task to a worker process"),
                },
                None => {}
            }
        }
        for (worker, batch) in local {
            if let Some(WorkerLink::Local(inbox)) = self.workers.get(&worker).map(|e| &e.link) {
                let _ = inbox.send(ToWorker::Events(batch));
            }
        }
        for (worker, batch) in remote {
            if let Some(WorkerLink::Remote(outbox, _)) = self.workers.get(&worker).map(|e| &e.link)
            {
                outbox.send(Message::Orders(batch));
            }
        }
        for (client, batch) in to_clients {
            match self.clients.get(&client) {
                Some(ClientLink::Local(inbox)) => {
                    let _ = inbox.send(ToClient::Reports(batch));
                }
                Some(ClientLink::Remote(outbox)) => {
                    outbox.send(Message::Reports(batch));
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

enum Order {
    Compute(crate::scheduler::ComputeTask),
    Release(Key),
    Steal(Key, RunId),
    Replicate(Key, Vec<WorkerId>, u64),
}

impl Order {
    fn local(self) -> WorkerEvent {
        match self {
            Order::Compute(task) => WorkerEvent::Compute(task),
            Order::Release(key) => WorkerEvent::Release(key),
            Order::Steal(key, run_id) => WorkerEvent::Steal(key, run_id),
            Order::Replicate(key, holders, nbytes) => WorkerEvent::Replicate {
                key,
                holders,
                nbytes,
            },
        }
    }

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
            Order::Release(key) => WorkerOrder::Release(key),
            Order::Steal(key, run_id) => WorkerOrder::Steal(key, run_id),
            Order::Replicate(key, holders, nbytes) => WorkerOrder::Replicate {
                key,
                holders,
                nbytes,
            },
        })
    }
}
