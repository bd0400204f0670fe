//! Client-side handles on the scheduler's primitives: [`Lock`], [`Semaphore`],
//! [`Queue`], [`Variable`] and [`Event`]. Any client of the same scheduler that
//! uses the same name shares the primitive.

use super::{Client, Error};
use crate::comm::protocol::{Reply, Request};
use crate::coordination::{PrimitiveReply, PrimitiveRequest};
use crate::value::{Data, Value};
use std::marker::PhantomData;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

fn call(client: &Client, request: PrimitiveRequest) -> Result<PrimitiveReply, Error> {
    match client.request_primitive(Request::Primitive(request))? {
        Reply::Primitive(PrimitiveReply::Error(message)) => Err(Error::Scheduler(message)),
        Reply::Primitive(reply) => Ok(reply),
        other => Err(Error::Scheduler(format!("unexpected reply {other:?}"))),
    }
}

fn flag(reply: PrimitiveReply) -> Result<bool, Error> {
    match reply {
        PrimitiveReply::Flag(b) => Ok(b),
        other => Err(Error::Scheduler(format!("unexpected reply {other:?}"))),
    }
}

fn millis(timeout: Option<Duration>) -> Option<u64> {
    timeout.map(|t| t.as_millis() as u64)
}

fn unique_holder() -> String {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    format!(
        "{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

/// A cluster-wide lock (Dask's `distributed.Lock`).
pub struct Lock {
    semaphore: Semaphore,
}

impl Lock {
    /// The lock called `name`.
    pub fn new(client: &Client, name: &str) -> Self {
        Lock {
            semaphore: Semaphore::new(client, name, 1),
        }
    }

    /// Takes the lock, waiting up to `timeout` (forever with `None`); returns
    /// whether it was taken.
    pub fn acquire(&self, timeout: Option<Duration>) -> Result<bool, Error> {
        self.semaphore.acquire(timeout)
    }

    /// Gives the lock back.
    pub fn release(&self) -> Result<(), Error> {
        self.semaphore.release()
    }
}

/// A cluster-wide semaphore with `max_leases` leases (Dask's `Semaphore`).
pub struct Semaphore {
    client: Client,
    name: String,
    holder: String,
    max_leases: u32,
}

impl Semaphore {
    /// The semaphore called `name`.
    pub fn new(client: &Client, name: &str, max_leases: u32) -> Self {
        Semaphore {
            client: client.clone(),
            name: name.to_string(),
            holder: unique_holder(),
            max_leases,
        }
    }

    /// Takes a lease, waiting up to `timeout`; returns whether it was taken.
    pub fn acquire(&self, timeout: Option<Duration>) -> Result<bool, Error> {
        flag(call(
            &self.client,
            PrimitiveRequest::Acquire {
                name: self.name.clone(),
                holder: self.holder.clone(),
                max_leases: self.max_leases,
                timeout_ms: millis(timeout),
            },
        )?)
    }

    /// Gives the lease back.
    pub fn release(&self) -> Result<(), Error> {
        call(
            &self.client,
            PrimitiveRequest::Release {
                name: self.name.clone(),
                holder: self.holder.clone(),
            },
        )
        .map(|_| ())
    }
}

/// A cluster-wide FIFO queue of values (Dask's `Queue`).
pub struct Queue<T> {
    client: Client,
    name: String,
    items: PhantomData<fn() -> T>,
}

impl<T: Data + Clone> Queue<T> {
    /// The queue called `name`.
    pub fn new(client: &Client, name: &str) -> Self {
        Queue {
            client: client.clone(),
            name: name.to_string(),
            items: PhantomData,
        }
    }

    /// Appends an item.
    pub fn put(&self, item: T) -> Result<(), Error> {
        let item = Value::new(item).to_bytes().map_err(Error::Encode)?.to_vec();
        call(
            &self.client,
            PrimitiveRequest::Put {
                name: self.name.clone(),
                item,
            },
        )
        .map(|_| ())
    }

    /// Takes the oldest item, waiting up to `timeout`; `None` when it timed out.
    pub fn get(&self, timeout: Option<Duration>) -> Result<Option<T>, Error> {
        let reply = call(
            &self.client,
            PrimitiveRequest::Get {
                name: self.name.clone(),
                timeout_ms: millis(timeout),
            },
        )?;
        decode(reply)
    }

    /// Items waiting.
    pub fn qsize(&self) -> Result<u64, Error> {
        match call(
            &self.client,
            PrimitiveRequest::QueueSize {
                name: self.name.clone(),
            },
        )? {
            PrimitiveReply::Count(n) => Ok(n),
            other => Err(Error::Scheduler(format!("unexpected reply {other:?}"))),
        }
    }
}

fn decode<T: Data + Clone>(reply: PrimitiveReply) -> Result<Option<T>, Error> {
    match reply {
        PrimitiveReply::Value(Some(bytes)) => Value::Encoded(bytes.into())
            .extract::<T>()
            .map(Some)
            .map_err(Error::Encode),
        PrimitiveReply::Value(None) => Ok(None),
        other => Err(Error::Scheduler(format!("unexpected reply {other:?}"))),
    }
}

/// A cluster-wide named value (Dask's `Variable`).
pub struct Variable<T> {
    client: Client,
    name: String,
    value: PhantomData<fn() -> T>,
}

impl<T: Data + Clone> Variable<T> {
    /// The variable called `name`.
    pub fn new(client: &Client, name: &str) -> Self {
        Variable {
            client: client.clone(),
            name: name.to_string(),
            value: PhantomData,
        }
    }

    /// Sets the value.
    pub fn set(&self, value: T) -> Result<(), Error> {
        let value = Value::new(value)
            .to_bytes()
            .map_err(Error::Encode)?
            .to_vec();
        call(
            &self.client,
            PrimitiveRequest::SetVariable {
                name: self.name.clone(),
                value,
            },
        )
        .map(|_| ())
    }

    /// The value, waiting up to `timeout` for one to be set.
    pub fn get(&self, timeout: Option<Duration>) -> Result<Option<T>, Error> {
        decode(call(
            &self.client,
            PrimitiveRequest::GetVariable {
                name: self.name.clone(),
                timeout_ms: millis(timeout),
            },
        )?)
    }

    /// Deletes the value.
    pub fn delete(&self) -> Result<(), Error> {
        call(
            &self.client,
            PrimitiveRequest::DeleteVariable {
                name: self.name.clone(),
            },
        )
        .map(|_| ())
    }
}

/// A cluster-wide event flag (Dask's `Event`).
pub struct Event {
    client: Client,
    name: String,
}

impl Event {
    /// The event called `name`.
    pub fn new(client: &Client, name: &str) -> Self {
        Event {
            client: client.clone(),
            name: name.to_string(),
        }
    }

    /// Sets the flag; every waiter wakes.
    pub fn set(&self) -> Result<(), Error> {
        call(
            &self.client,
            PrimitiveRequest::SetEvent {
                name: self.name.clone(),
            },
        )
        .map(|_| ())
    }

    /// Clears the flag.
    pub fn clear(&self) -> Result<(), Error> {
        call(
            &self.client,
            PrimitiveRequest::ClearEvent {
                name: self.name.clone(),
            },
        )
        .map(|_| ())
    }

    /// Waits for the flag, up to `timeout`; returns whether it is set.
    pub fn wait(&self, timeout: Option<Duration>) -> Result<bool, Error> {
        flag(call(
            &self.client,
            PrimitiveRequest::WaitEvent {
                name: self.name.clone(),
                timeout_ms: millis(timeout),
            },
        )?)
    }

    /// Whether the flag is set.
    pub fn is_set(&self) -> Result<bool, Error> {
        flag(call(
            &self.client,
            PrimitiveRequest::IsEventSet {
                name: self.name.clone(),
            },
        )?)
    }
}
