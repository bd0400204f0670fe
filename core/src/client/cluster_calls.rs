//! A client that serves a scheduler's cluster requests: the launcher of a
//! cluster whose scheduler runs elsewhere (`rask cluster up` on Kubernetes
//! makes pods, while the scheduler runs in one). Other clients' `scale`,
//! `adapt` and `cluster_status` reach it through the scheduler.

use super::{Client, Error};
use crate::comm::launcher::{ClusterRequest, ClusterStatus};
use crate::comm::protocol::{Reply, Request};
use crate::server::{LauncherCall, ToScheduler};
use crossbeam_channel::{Receiver, Sender};
use std::sync::Mutex;

/// One cluster request another client made; answer it once (dropped
/// unanswered, it answers with an error).
#[derive(Debug)]
pub struct ClusterCall {
    request: ClusterRequest,
    token: u64,
    scheduler: Sender<ToScheduler>,
    answered: bool,
}

impl ClusterCall {
    /// What is asked.
    pub fn request(&self) -> &ClusterRequest {
        &self.request
    }

    /// Answers with the cluster's status after the request, or why it failed.
    pub fn answer(mut self, answer: Result<ClusterStatus, String>) {
        self.reply(answer);
    }

    fn reply(&mut self, answer: Result<ClusterStatus, String>) {
        if std::mem::replace(&mut self.answered, true) {
            return;
        }
        let reply = match answer {
            Ok(status) => Reply::Cluster(status),
            Err(why) => Reply::Error(why),
        };
        let _ = self.scheduler.send(ToScheduler::LauncherReply {
            token: self.token,
            reply,
        });
    }
}

impl Drop for ClusterCall {
    fn drop(&mut self) {
        self.reply(Err("the cluster's launcher did not answer".into()));
    }
}

/// Where a client's incoming cluster requests go, once it serves them.
pub(crate) struct CallSlot {
    served: Mutex<Option<Sender<ClusterCall>>>,
    /// The way to the scheduler, for answers.
    scheduler: Sender<ToScheduler>,
}

impl CallSlot {
    pub(crate) fn new(scheduler: Sender<ToScheduler>) -> Self {
        CallSlot {
            served: Mutex::new(None),
            scheduler,
        }
    }

    /// Passes a call on to whoever serves them; with no one (the receiver
    /// dropped), the call fails at once rather than leave its client waiting.
    pub(crate) fn deliver(&self, call: LauncherCall) {
        let call = ClusterCall {
            request: call.request,
            token: call.token,
            scheduler: self.scheduler.clone(),
            answered: false,
        };
        let served = self.served.lock().unwrap_or_else(|e| e.into_inner());
        let unserved = match served.as_ref() {
            Some(calls) => calls.send(call).err().map(|e| e.0),
            None => Some(call),
        };
        if let Some(call) = unserved {
            call.answer(Err(
                "the cluster's launcher no longer serves requests".into()
            ));
        }
    }
}

impl Client {
    /// Serves the cluster requests (`scale`, `adapt`, `cluster_status`) that
    /// clients send this scheduler, as the cluster's launcher: each arrives
    /// on the returned channel and must be answered
    /// ([`ClusterCall::answer`]). Fails when another launcher serves them.
    pub fn serve_cluster_requests(&self) -> Result<Receiver<ClusterCall>, Error> {
        let (tx, rx) = crossbeam_channel::unbounded();
        *self
            .inner
            .cluster_calls
            .served
            .lock()
            .unwrap_or_else(|e| e.into_inner()) = Some(tx);
        match self.request(Request::ServeClusterRequests)? {
            Reply::Ok => Ok(rx),
            Reply::Error(why) => Err(Error::Scheduler(why)),
            other => Err(Error::Scheduler(format!("unexpected reply {other:?}"))),
        }
    }
}
