//! Workers: a pure state machine ([`WorkerState`]) that decides what to fetch, what
//! to run next and what to tell the scheduler; the runtime around it (a thread
//! pool and a data store that spills to disk) in [`runtime`]; in-process workers
//! in [`local`]; worker processes over TCP in [`process`], with their memory
//! manager in [`memory`].

pub mod local;
pub mod memory;
pub mod process;
pub mod runtime;
mod state;
mod store;

pub use state::{WorkerCommand, WorkerEvent, WorkerMessage, WorkerState};
pub use store::{DataStore, StoreSizes};
