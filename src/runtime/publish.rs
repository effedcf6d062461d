//! A value one thread publishes and any thread reads, where the publisher
//! never waits for a reader.
//!
//! The receiver thread keeps its figures to itself and, every few
//! milliseconds, publishes a copy here; `Receiver::figures` reads the latest
//! copy. Two slots, each a `Mutex<Arc<T>>`: a reader locks the newest slot
//! only to clone its `Arc` (an atomic increment), never while copying `T`;
//! the publisher only ever `try_lock`s, and takes whichever slot is free,
//! marking it the newest. A publish fails, and is retried at the
//! publisher's next chance, only while readers hold both slots at once
//! (two readers each preempted inside those few instructions); the
//! publisher still never waits. [`Published::deferred`] counts such
//! failures.
//!
//! Guarantees: a read returns a value that was published whole (never a
//! mix of two), and successive reads by one thread never go back in time.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, TryLockError};

/// See the module docs.
#[derive(Debug)]
pub(crate) struct Published<T> {
    slots: [Mutex<Arc<T>>; 2],
    /// Which slot holds the newest value.
    newest: AtomicUsize,
    /// Publishes that found both slots held by readers.
    deferred: AtomicU64,
}

impl<T> Published<T> {
    /// Publishes `first`.
    pub(crate) fn new(first: T) -> Published<T> {
        let first = Arc::new(first);
        Published {
            slots: [Mutex::new(Arc::clone(&first)), Mutex::new(first)],
            newest: AtomicUsize::new(0),
            deferred: AtomicU64::new(0),
        }
    }

    /// Publishes `value` without waiting: into the slot that is not the
    /// newest, else the newest, whichever no reader holds. Hands `value`
    /// back if readers held both.
    pub(crate) fn try_publish(&self, value: Arc<T>) -> Result<(), Arc<T>> {
        let newest = self.newest.load(Ordering::Acquire);
        for i in [1 - newest, newest] {
            let slot = match self.slots[i].try_lock() {
                Ok(g) => g,
                // A reader that panicked held only an Arc clone: the value is whole.
                Err(TryLockError::Poisoned(p)) => p.into_inner(),
                Err(TryLockError::WouldBlock) => continue,
            };
            // Marked newest while the slot is still held: a reader that
            // takes this value then finds `newest` pointing here or later,
            // never at the other slot's older value (released first, a
            // reader could read this value, then the older one).
            let old = replace(slot, value, || self.newest.store(i, Ordering::Release));
            // The old value is dropped after the lock is released.
            drop(old);
            return Ok(());
        }
        self.deferred.fetch_add(1, Ordering::Relaxed);
        Err(value)
    }

    /// Publishes `value`, waiting for a slot if readers hold both: for a
    /// publisher that is about to end and must leave its last value.
    pub(crate) fn publish(&self, value: Arc<T>) {
        let value = match self.try_publish(value) {
            Ok(()) => return,
            Err(v) => v,
        };
        let i = 1 - self.newest.load(Ordering::Acquire);
        let slot = self.slots[i].lock().unwrap_or_else(|e| e.into_inner());
        drop(replace(slot, value, || {
            self.newest.store(i, Ordering::Release)
        }));
    }

    /// The newest value published.
    pub(crate) fn read(&self) -> Arc<T> {
        let i = self.newest.load(Ordering::Acquire);
        let slot = self.slots[i].lock().unwrap_or_else(|e| e.into_inner());
        Arc::clone(&slot)
    }

    /// Publishes so far that found both slots held by readers (each retried
    /// later by the publisher, which never waited).
    pub(crate) fn deferred(&self) -> u64 {
        self.deferred.load(Ordering::Relaxed)
    }

    /// Holds both slots, as two stalled readers would, until the guards drop.
    #[cfg(test)]
    pub(crate) fn hold_both(&self) -> [MutexGuard<'_, Arc<T>>; 2] {
        let lock = |i: usize| self.slots[i].lock().unwrap_or_else(|e| e.into_inner());
        [lock(0), lock(1)]
    }
}

/// Puts `value` in the slot and releases it; returns the value it held.
/// Puts `value` in the held slot, runs `mark` (which marks the slot
/// newest) before the slot is released, and returns the old value (to be
/// dropped once the lock is gone).
fn replace<T>(mut slot: MutexGuard<'_, Arc<T>>, value: Arc<T>, mark: impl FnOnce()) -> Arc<T> {
    let old = std::mem::replace(&mut *slot, value);
    mark();
    drop(slot);
    old
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_read_sees_the_newest_publish() {
        let p = Published::new(0u64);
        assert_eq!(*p.read(), 0);
        for v in 1..=5 {
            p.try_publish(Arc::new(v)).unwrap();
            assert_eq!(*p.read(), v);
        }
        p.publish(Arc::new(6));
        assert_eq!(*p.read(), 6);
        assert_eq!(p.deferred(), 0);
    }

    #[test]
    fn the_publisher_never_waits_for_readers_holding_the_slots() {
        let p = Published::new(0u64);
        {
            let held = p.hold_both();
            // Both slots held: the publish is handed back at once, counted.
            assert_eq!(p.try_publish(Arc::new(1)), Err(Arc::new(1)));
            assert_eq!(p.deferred(), 1);
            drop(held);
        }
        p.try_publish(Arc::new(2)).unwrap();
        assert_eq!(*p.read(), 2);
        {
            // One slot held (a reader of the newest): the other takes it.
            let i = p.newest.load(Ordering::Acquire);
            let _reader = p.slots[i].lock().unwrap();
            p.try_publish(Arc::new(3)).unwrap();
            assert_eq!(p.newest.load(Ordering::Acquire), 1 - i);
            p.try_publish(Arc::new(4)).unwrap();
        }
        assert_eq!(*p.read(), 4);
        assert_eq!(p.deferred(), 1);
    }

    #[test]
    fn readers_racing_a_publisher_see_whole_values_that_never_go_back() {
        // A value whose two halves must agree, as received + lost == expected.
        let p = Arc::new(Published::new((0u64, 0u64)));
        let readers: Vec<_> = (0..2)
            .map(|_| {
                let p = Arc::clone(&p);
                std::thread::spawn(move || {
                    let mut last = 0;
                    // Bounded: until the last value is seen, or 10 million reads.
                    for _ in 0..10_000_000 {
                        let v = *p.read();
                        assert_eq!(v.0, v.1, "a whole value");
                        assert!(v.0 >= last, "never back in time: {} then {}", last, v.0);
                        last = v.0;
                        if last == 20_000 {
                            break;
                        }
                    }
                })
            })
            .collect();
        for v in 1..=20_000u64 {
            if p.try_publish(Arc::new((v, v))).is_err() {
                p.publish(Arc::new((v, v)));
            }
        }
        for r in readers {
            r.join().unwrap();
        }
        assert_eq!(*p.read(), (20_000, 20_000));
    }
}
