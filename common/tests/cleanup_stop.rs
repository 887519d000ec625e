//! A stop that lands while the main thread runs its normal end (Cleanup::finish) must wait for
//! that end, not meet a main thread parked at a safe point inside it: the main thread holds what
//! the stop waits for, and both would wait for ever. Its own process: the gate is process-wide.

use std::sync::mpsc;
use std::time::{Duration, Instant};

use common::cleanup::{AtEnd, Cleanup};
use common::gate;

#[test]
fn a_stop_during_the_normal_end_waits_for_it_instead_of_parking_it() {
    let cleanup = Cleanup::register(AtEnd::Remove, Duration::from_secs(5), |_: u8| {});
    cleanup.made(1);
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut stop_thread = None;
        let ended = cleanup.finish(|_| {
            // What the stop thread does when a signal lands now.
            let (stopped_tx, stopped_rx) = mpsc::channel();
            std::thread::spawn(move || {
                gate::stop_main(Duration::from_secs(5));
                let _ = stopped_tx.send(());
            });
            let deadline = Instant::now() + Duration::from_secs(5);
            while !gate::stopping() && Instant::now() < deadline {
                std::thread::yield_now();
            }
            // What a channel's own end does (shm's did): with the stop asked, this used to park.
            gate::safe_point();
            stop_thread = Some(stopped_rx);
            Ok(())
        });
        // The stop's wait ends with the main thread's end (gate::done), long before its 5 s.
        let stopped = stop_thread.is_some_and(|rx| rx.recv_timeout(Duration::from_secs(4)).is_ok());
        let _ = tx.send((ended.is_ok(), stopped));
    });
    let finished = rx.recv_timeout(Duration::from_secs(10));
    assert_eq!(
        finished,
        Ok((true, true)),
        "the main thread parked inside its own end, holding what a stop must end, or the stop never saw it done"
    );
}
