//! Requests to the scheduler that get one reply: datasets, coordination
//! primitives, retirement, adaptive scaling, cluster requests for the launcher,
//! and information about workers and keys.

use super::channels::{LauncherCall, ToClient};
use super::event_loop::{ClientLink, LauncherLink, Loop, Waiter, DATASETS, LAUNCHER_CALL_TIMEOUT};
use crate::comm::protocol::{Message, Reply, Request, WorkerSummary};
use crate::scheduler::{ClientId, Event, WorkerId};

impl Loop {
    /// Handles a request; returns the reply when it is due now.
    pub(super) fn request(
        &mut self,
        waiter: Waiter,
        request: Request,
        events: &mut Vec<Event>,
    ) -> Option<(Waiter, Reply)> {
        // Requests see the effects of events that came before them.
        let mut commands = Vec::new();
        self.events_handled += events.len() as u64;
        let now = self.now();
        self.state
            .handle_batch(now, events.drain(..), &mut commands);
        self.route(&mut commands);
        let client = match &waiter {
            Waiter::Client(c, _) => *c,
            Waiter::Query(_) => DATASETS,
        };
        let reply = match request {
            Request::Scatter { keys } => {
                events.push(Event::Scatter { client, keys });
                Reply::Ok
            }
            Request::Publish { name, keys } => {
                if self.datasets.contains_key(&name) {
                    Reply::Error(format!("a dataset named {name:?} already exists"))
                } else if let Some(missing) =
                    keys.iter().find(|k| self.state.task_state(k).is_none())
                {
                    Reply::Error(format!(
                        "cannot publish {name:?}: {missing} is not on the cluster"
                    ))
                } else {
                    events.push(Event::UpdateGraph {
                        client: DATASETS,
                        tasks: Vec::new(),
                        wanted: keys.clone(),
                    });
                    self.datasets.insert(name, keys);
                    Reply::Ok
                }
            }
            Request::GetDataset { name } => match self.datasets.get(&name) {
                Some(keys) => Reply::Keys(keys.clone()),
                None => Reply::Error(format!("no dataset named {name:?}")),
            },
            Request::Unpublish { name } => match self.datasets.remove(&name) {
                Some(keys) => {
                    events.push(Event::ReleaseKeys {
                        client: DATASETS,
                        keys,
                    });
                    Reply::Ok
                }
                None => Reply::Error(format!("no dataset named {name:?}")),
            },
            Request::UploadPlugin {
                name,
                hash,
                library,
            } => return self.upload_plugin(waiter, name, hash, library),
            Request::ListDatasets => {
                let mut names: Vec<String> = self.datasets.keys().cloned().collect();
                names.sort();
                Reply::Names(names)
            }
            Request::Primitive(request) => {
                let replies = self
                    .primitives
                    .handle(waiter, request, std::time::Instant::now());
                self.answer(replies);
                return None;
            }
            Request::RetireWorkers { workers, n } => {
                let chosen = if workers.is_empty() {
                    self.state.workers_to_close(n as usize)
                } else {
                    workers
                };
                let summaries = self.summaries(&chosen);
                events.push(Event::RetireWorkers { workers: chosen });
                Reply::Workers(summaries)
            }
            Request::AdaptiveTarget => Reply::Count(self.state.adaptive_target()),
            Request::WorkersToClose { n } => {
                let chosen = self.state.workers_to_close(n as usize);
                Reply::Workers(self.summaries(&chosen))
            }
            Request::Cluster(request) => {
                let token = self.next_launcher_token;
                self.next_launcher_token += 1;
                let call = LauncherCall { token, request };
                if self.call_launcher(call) {
                    self.launcher_waiters
                        .insert(token, (waiter, std::time::Instant::now()));
                    return None;
                }
                Reply::Error(
                    "this scheduler has no launcher: cluster requests need a cluster \
                     started by `rask cluster up` or the Kubernetes operator"
                        .into(),
                )
            }
            Request::ServeClusterRequests => match &self.launcher {
                _ if client == DATASETS => {
                    Reply::Error("only a client connection can serve cluster requests".into())
                }
                Some(LauncherLink::InProcess(_)) => {
                    Reply::Error("this scheduler's launcher runs in its process already".into())
                }
                Some(LauncherLink::Client(other)) if *other != client => Reply::Error(format!(
                    "another client ({other}) serves this scheduler's cluster requests"
                )),
                _ => {
                    self.launcher = Some(LauncherLink::Client(client));
                    Reply::Ok
                }
            },
            Request::WhoHas { keys } => {
                Reply::WhoHas(keys.iter().map(|k| self.state.who_has(k)).collect())
            }
            Request::Progress => Reply::Progress(self.state.progress(client)),
            Request::Dashboard(query) => Reply::Dashboard(Box::new(self.dashboard(query))),
            Request::Info => {
                let mut ids: Vec<WorkerId> = self.workers.keys().copied().collect();
                ids.sort();
                Reply::Workers(self.summaries(&ids))
            }
        };
        Some((waiter, reply))
    }

    fn summaries(&self, ids: &[WorkerId]) -> Vec<WorkerSummary> {
        ids.iter()
            .filter_map(|id| {
                self.workers.get(id).map(|e| WorkerSummary {
                    id: *id,
                    name: e.name.clone(),
                    data_address: e.data_address.clone(),
                    pid: e.pid,
                    nthreads: e.nthreads,
                    metrics: e.metrics.clone(),
                    resources: e.resources.clone(),
                    plugins: e.plugins.clone(),
                })
            })
            .collect()
    }

    pub(super) fn answer(&self, replies: Vec<(Waiter, crate::coordination::PrimitiveReply)>) {
        for (waiter, reply) in replies {
            self.answer_one(waiter, Reply::Primitive(reply));
        }
    }

    /// Hands a cluster request to the launcher; false when there is none.
    fn call_launcher(&self, call: LauncherCall) -> bool {
        match &self.launcher {
            Some(LauncherLink::InProcess(calls)) => calls.send(call).is_ok(),
            Some(LauncherLink::Client(client)) => match self.clients.get(client) {
                Some(ClientLink::Local(inbox)) => inbox.send(ToClient::LauncherCall(call)).is_ok(),
                Some(ClientLink::Remote(outbox)) => {
                    outbox.send(Message::LauncherCall {
                        token: call.token,
                        request: call.request,
                    });
                    true
                }
                None => false,
            },
            None => false,
        }
    }

    /// A client that served cluster requests left: the requests it had not
    /// answered fail, and later ones find no launcher.
    pub(super) fn launcher_client_gone(&mut self, gone: ClientId) {
        if !matches!(self.launcher, Some(LauncherLink::Client(c)) if c == gone) {
            return;
        }
        self.launcher = None;
        for (_, (waiter, _)) in std::mem::take(&mut self.launcher_waiters) {
            self.answer_one(
                waiter,
                Reply::Error("the cluster's launcher disconnected before answering".into()),
            );
        }
    }

    /// Fails the cluster requests the launcher has left unanswered for
    /// [`LAUNCHER_CALL_TIMEOUT`]; a client launcher that did so no longer
    /// serves them, so that another (a `rask cluster up` started again) may.
    pub(super) fn expire_launcher_calls(&mut self, now: std::time::Instant) {
        let overdue: Vec<u64> = self
            .launcher_waiters
            .iter()
            .filter(|(_, (_, since))| now.duration_since(*since) > LAUNCHER_CALL_TIMEOUT)
            .map(|(token, _)| *token)
            .collect();
        if overdue.is_empty() {
            return;
        }
        let who = match &self.launcher {
            Some(LauncherLink::Client(client)) => format!("the cluster's launcher ({client})"),
            _ => "the cluster's launcher".to_string(),
        };
        let why = format!(
            "{who} did not answer within {} s",
            LAUNCHER_CALL_TIMEOUT.as_secs()
        );
        tracing::warn!("{why}; it no longer serves cluster requests");
        for token in overdue {
            if let Some((waiter, _)) = self.launcher_waiters.remove(&token) {
                self.answer_one(waiter, Reply::Error(why.clone()));
            }
        }
        if matches!(self.launcher, Some(LauncherLink::Client(_))) {
            self.launcher = None;
        }
    }

    pub(super) fn answer_one(&self, waiter: Waiter, reply: Reply) {
        match waiter {
            Waiter::Client(client, id) => match self.clients.get(&client) {
                Some(ClientLink::Local(inbox)) => {
                    let _ = inbox.send(ToClient::Reply { id, reply });
                }
                Some(ClientLink::Remote(outbox)) => {
                    outbox.send(Message::Reply { id, reply });
                }
                None => {}
            },
            Waiter::Query(sender) => {
                let _ = sender.send(reply);
            }
        }
    }
}
