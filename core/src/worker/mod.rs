//! Workers: a pure state machine ([`WorkerState`]) that decides what to fetch, what
//! to run next and what to tell the scheduler; the runtime around it (a thread
//! pool and a data store that spills to disk) in [`runtime`]; in-process workers
//! in [`local`]; worker processes over TCP in [`process`] (one [`session`] per
//! connection to a scheduler, a data port in `data_server`, batched fetches from
//! peers in `fetcher`), with their memory
//! manager in [`memory`].

mod data_server;
mod fetcher;
pub mod local;
pub mod memory;
pub mod process;
pub mod runtime;
pub mod session;
mod state;
mod store;

pub use state::{WorkerCommand, WorkerEvent, WorkerMessage, WorkerState};
pub use store::{DataStore, StoreSizes};
