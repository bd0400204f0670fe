//! Workers: a pure state machine ([`WorkerState`]) that decides what to fetch, what
//! to run next and what to tell the scheduler; the runtime around it (a thread
//! pool and a data store that spills to disk) in [`runtime`]; in-process workers
//! in [`local`], which read each other's stores through [`local_peers`]; worker
//! processes over TCP in [`process`] (one [`session`] per connection to a
//! scheduler, a data port in `data_server`, batched fetches from peers in
//! `fetcher`), with their memory manager in [`memory`] and the allocators' tuning
//! in [`allocator`]; the shards of peer-to-peer shuffles each worker keeps in [`shuffle_buffers`]. Workers take the
//! scheduler's orders ([`crate::server::Order`] in process,
//! [`crate::comm::protocol::WorkerOrder`] over TCP) and answer with
//! [`WorkerMessage`]s.

pub mod allocator;
mod data_server;
mod fetcher;
pub mod local;
pub mod local_peers;
pub mod memory;
pub mod process;
pub mod runtime;
pub mod session;
pub mod shuffle_buffers;
mod state;
mod store;

pub use crate::comm::protocol::WorkerMessage;
pub use state::{WorkerCommand, WorkerEvent, WorkerState};
pub use store::{DataStore, StoreSizes};
