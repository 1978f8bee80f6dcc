//! The checking thread. The server's loop hands it the versions to analyse and goes on
//! answering requests; the thread analyses only the latest version of each document: what
//! arrived while it was busy is coalesced (a newer version replaces an older one that has not
//! started), and a check overtaken by a newer version of its document is abandoned between
//! its steps (after parsing, after checking). Results come back as [`Done`] through the
//! callback, which posts them to the server's loop.
//!
//! Versions are told apart by generation numbers the server gives each text it receives, not
//! by the client's version numbers (which a client may reuse after closing and reopening).

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::sync::mpsc::{Receiver, Sender, TryRecvError, channel};

use lsp_types as lsp;

use super::doc::{Doc, Text};

/// A version to analyse.
pub struct Job {
    pub uri: lsp::Uri,
    pub generation: u64,
    pub version: i32,
    pub text: Arc<Text>,
}

pub enum Order {
    Check(Job),
    /// The document was closed: drop its waiting version.
    Forget(lsp::Uri),
}

/// A finished analysis; `doc` is `None` if the analysis panicked (a bug).
pub struct Done {
    pub uri: lsp::Uri,
    pub generation: u64,
    pub doc: Option<Box<Doc>>,
}

/// Start the thread; it stops when the returned sender is dropped or `post` returns false.
pub fn spawn(post: impl Fn(Done) -> bool + Send + 'static) -> std::io::Result<Sender<Order>> {
    let (tx, rx) = channel();
    std::thread::Builder::new()
        .name("gbpc-check".to_string())
        .spawn(move || run(&rx, post))?;
    Ok(tx)
}

/// The versions waiting, oldest first; at most one per document.
struct Queue(Vec<Job>);

impl Queue {
    fn take(&mut self, order: Order) {
        match order {
            Order::Check(job) => match self.0.iter_mut().find(|j| j.uri == job.uri) {
                Some(j) if j.generation <= job.generation => *j = job,
                Some(_) => {}
                None => self.0.push(job),
            },
            Order::Forget(uri) => self.0.retain(|j| j.uri != uri),
        }
    }

    /// Take every order that has arrived; false when the server is gone.
    fn drain(&mut self, rx: &Receiver<Order>) -> bool {
        loop {
            match rx.try_recv() {
                Ok(order) => self.take(order),
                Err(TryRecvError::Empty) => return true,
                Err(TryRecvError::Disconnected) => return false,
            }
        }
    }

    /// A newer version of this document is waiting.
    fn overtakes(&self, uri: &lsp::Uri, generation: u64) -> bool {
        self.0
            .iter()
            .any(|j| &j.uri == uri && j.generation > generation)
    }
}

fn run(rx: &Receiver<Order>, post: impl Fn(Done) -> bool) {
    let mut queue = Queue(Vec::new());
    loop {
        if queue.0.is_empty() {
            match rx.recv() {
                Ok(order) => queue.take(order),
                Err(_) => return,
            }
        }
        if !queue.drain(rx) {
            return;
        }
        if queue.0.is_empty() {
            continue;
        }
        let job = queue.0.remove(0);
        let mut gone = false;
        let outcome = catch_unwind(AssertUnwindSafe(|| {
            Doc::analyse(job.text.clone(), job.version, || {
                gone |= !queue.drain(rx);
                gone || queue.overtakes(&job.uri, job.generation)
            })
        }));
        if gone {
            return;
        }
        let doc = match outcome {
            Ok(Some(doc)) => Some(Box::new(doc)),
            Ok(None) => continue, // overtaken: the newer version is in the queue
            Err(_) => None,
        };
        let done = Done {
            uri: job.uri,
            generation: job.generation,
            doc,
        };
        if !post(done) {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job(uri: &str, generation: u64) -> Order {
        Order::Check(Job {
            uri: uri.parse().unwrap_or_else(|_| unreachable!()),
            generation,
            version: generation as i32,
            text: Arc::new(Text::new(format!("tenant t{generation} {{ }}"))),
        })
    }

    #[test]
    fn the_queue_keeps_the_latest_version_of_each_document_in_arrival_order() {
        let mut q = Queue(Vec::new());
        for order in [
            job("file:///a", 1),
            job("file:///b", 2),
            job("file:///a", 3),
            job("file:///a", 2),
        ] {
            q.take(order);
        }
        let got: Vec<(String, u64)> =
            q.0.iter()
                .map(|j| (j.uri.as_str().to_string(), j.generation))
                .collect();
        assert_eq!(
            got,
            [("file:///a".to_string(), 3), ("file:///b".to_string(), 2)]
        );
        let b: lsp::Uri = "file:///b".parse().unwrap_or_else(|_| unreachable!());
        assert!(q.overtakes(&b, 1) && !q.overtakes(&b, 2));
        q.take(Order::Forget(b));
        assert_eq!(q.0.len(), 1);
    }

    /// Versions sent while the thread is held up are analysed once, the latest only.
    #[test]
    fn a_burst_is_analysed_once() {
        let (done_tx, done_rx) = channel();
        let Ok(tx) = spawn(move |d: Done| done_tx.send(d).is_ok()) else {
            unreachable!("cannot start the thread")
        };
        for g in 1..=50 {
            assert!(tx.send(job("file:///a", g)).is_ok());
        }
        let mut seen = Vec::new();
        while seen.last() != Some(&50) {
            let Ok(d) = done_rx.recv_timeout(std::time::Duration::from_secs(30)) else {
                unreachable!("no result")
            };
            assert!(d.doc.is_some_and(|doc| doc.version == d.generation as i32));
            seen.push(d.generation);
        }
        // The first may have started before the others arrived; everything else is skipped.
        assert!(seen.len() <= 2, "{seen:?}");
    }
}
