//! The two ring buffers, typed: queued tasks in (kernel -> user), decisions
//! out (user -> kernel). The only place that converts records, and the only
//! place that allocates their buffers, up front, so the loop never does.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::rc::Rc;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use libbpf_rs::{libbpf_sys, AsRawLibbpf, MapCore, RingBuffer, RingBufferBuilder, UserRingBuffer};

use storeland::intf::{dispatch_decision, queued_task, RING_ENTRIES};
use storeland::policy::{Decision, TaskObservation};
use storeland::stats::RingSample;

pub struct Rings {
    queued: RingBuffer<'static>,
    decisions: UserRingBuffer,
    inbox: Rc<RefCell<Vec<queued_task>>>,
    outbox: VecDeque<dispatch_decision>,
    /// Submissions refused because the decision ring was full.
    pub decisions_deferred: u64,
    /// For the stats: tasks drained, non-empty drains, largest drain.
    tasks_drained: u64,
    drains_nonempty: u64,
    drain_batch_max: u64,
}

impl Rings {
    pub fn new(queued: &dyn MapCore, decisions: &dyn MapCore) -> Result<Self> {
        let inbox = Rc::new(RefCell::new(Vec::with_capacity(RING_ENTRIES)));
        let sink = inbox.clone();
        let mut builder = RingBufferBuilder::new();
        builder
            .add(queued, move |data: &[u8]| {
                if data.len() < std::mem::size_of::<queued_task>() {
                    return 0; // not one of ours; nothing sane to do with it
                }
                // SAFETY: BPF writes exactly one queued_task per record; the
                // record may not be aligned for u64, hence read_unaligned.
                let task = unsafe { std::ptr::read_unaligned(data.as_ptr().cast::<queued_task>()) };
                sink.borrow_mut().push(task);
                0
            })
            .context("setting up the queued-task ring")?;
        let queued = builder.build().context("opening the queued-task ring")?;
        let decisions = UserRingBuffer::new(decisions).context("opening the decision ring")?;
        Ok(Self {
            queued,
            decisions,
            inbox,
            outbox: VecDeque::with_capacity(RING_ENTRIES),
            decisions_deferred: 0,
            tasks_drained: 0,
            drains_nonempty: 0,
            drain_batch_max: 0,
        })
    }

    /// Move queued tasks into `out` without blocking; returns how many.
    /// Takes no more than the space left, so no buffer ever grows.
    pub fn drain(&mut self, out: &mut Vec<TaskObservation>) -> Result<usize> {
        let room = RING_ENTRIES.saturating_sub(self.outbox.len());
        if room == 0 {
            return Ok(0);
        }
        let n = self.queued.consume_raw_n(room);
        if n < 0 {
            bail!("reading the queued-task ring failed: error {n}");
        }
        let mut inbox = self.inbox.borrow_mut();
        out.extend(inbox.iter().map(TaskObservation::from));
        let got = inbox.len();
        inbox.clear();
        if got > 0 {
            self.tasks_drained += got as u64;
            self.drains_nonempty += 1;
            self.drain_batch_max = self.drain_batch_max.max(got as u64);
        }
        Ok(got)
    }

    /// The rings' state for the stats: two atomic loads, no syscall.
    pub fn sample(&self) -> RingSample {
        // Each record carries an 8-byte header and is padded to 8 bytes.
        let record = (std::mem::size_of::<queued_task>() + 8).next_multiple_of(8) as u64;
        // SAFETY: the ring_buffer pointer is valid while `self.queued` lives;
        // ring 0 is the only ring added to it.
        let (avail, size) = unsafe {
            let ring = libbpf_sys::ring_buffer__ring(self.queued.as_libbpf_object().as_ptr(), 0);
            if ring.is_null() {
                (0, 0)
            } else {
                (
                    libbpf_sys::ring__avail_data_size(ring) as u64,
                    libbpf_sys::ring__size(ring) as u64,
                )
            }
        };
        RingSample {
            queued_tasks: avail / record,
            capacity_tasks: size / record,
            tasks_drained: self.tasks_drained,
            drains_nonempty: self.drains_nonempty,
            drain_batch_max: self.drain_batch_max,
            decisions_pending: self.outbox.len() as u64,
            decisions_deferred: self.decisions_deferred,
        }
    }

    /// Sleep until a task is queued or `timeout` passes.
    pub fn wait(&self, timeout: Duration) {
        let mut event = libc::epoll_event { events: 0, u64: 0 };
        let ms = timeout.as_millis().min(i32::MAX as u128) as i32;
        // SAFETY: a valid epoll fd owned by `queued`, one event slot.
        // EINTR (a signal) and timeouts are both fine: the caller loops.
        unsafe { libc::epoll_wait(self.queued.epoll_fd(), &mut event, 1, ms) };
    }

    /// Queue a decision for submission.
    pub fn push(&mut self, d: &Decision) {
        self.outbox.push_back(dispatch_decision::from(d));
    }

    pub fn pending_decisions(&self) -> usize {
        self.outbox.len()
    }

    /// Submit queued decisions until the ring is full; returns how many.
    pub fn flush(&mut self) -> Result<usize> {
        let size = std::mem::size_of::<dispatch_decision>();
        let mut sent = 0;
        while let Some(d) = self.outbox.front() {
            let mut sample = match self.decisions.reserve(size) {
                Ok(sample) => sample,
                Err(_) => {
                    // Full: BPF drains it on the next ops.dispatch().
                    self.decisions_deferred += 1;
                    break;
                }
            };
            let bytes = sample.as_mut();
            // SAFETY: the sample is exactly `size` bytes, reserved above.
            unsafe {
                std::ptr::write_unaligned(bytes.as_mut_ptr().cast::<dispatch_decision>(), *d)
            };
            self.decisions
                .submit(sample)
                .context("submitting a decision")?;
            self.outbox.pop_front();
            sent += 1;
        }
        Ok(sent)
    }
}
