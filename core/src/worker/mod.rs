//! Workers: a pure state machine ([`WorkerState`]) that decides what to fetch, what
//! to run next and what to tell the scheduler, and the runtime around it (a thread
//! pool and a data store) in [`local`].

pub mod local;
mod state;
mod store;

pub use state::{WorkerCommand, WorkerEvent, WorkerMessage, WorkerState};
pub use store::DataStore;
