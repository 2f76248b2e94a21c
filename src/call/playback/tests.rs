use super::*;

const FRAME: Duration = Duration::from_millis(20);

fn audio(ms: usize) -> Bytes {
    Bytes::from(vec![0x55; ms * 8])
}

/// Sends everything the pacing allows at `now`.
fn drain(p: &mut Playback, now: Instant) -> Vec<Outbound> {
    std::iter::from_fn(|| p.poll(now)).collect()
}

#[test]
fn sends_at_most_the_lead_ahead_then_paces() {
    let t0 = Instant::now();
    let mut p = Playback::new(Duration::from_millis(100));
    p.push_audio(audio(300));
    p.push_mark("t1-s0".into());
    let first = drain(&mut p, t0);
    // 100 ms of lead = 5 frames (the fifth reaches exactly 100 ms)
    assert_eq!(first.len(), 5);
    assert!(
        first
            .iter()
            .all(|o| matches!(o, Outbound::Media(f) if f.len() == 160))
    );
    assert_eq!(p.lead(t0), Duration::from_millis(100));
    // Full: the next frames go once a batch (a fifth of the lead, here
    // one frame) has played beyond the frame's own room, together.
    assert_eq!(p.next_send_at(t0), Some(t0 + FRAME + FRAME));
    assert_eq!(drain(&mut p, t0 + Duration::from_millis(10)), vec![]);
    assert_eq!(drain(&mut p, t0 + FRAME), vec![]);
    assert_eq!(drain(&mut p, t0 + FRAME + FRAME).len(), 2);
    // after a pause the lead refills to the limit, no more
    assert_eq!(drain(&mut p, t0 + Duration::from_millis(300)).len(), 5);
    // the rest, then the mark right after the last audio
    let rest = drain(&mut p, t0 + Duration::from_millis(400));
    assert_eq!(rest.len(), 4);
    assert_eq!(rest.last(), Some(&Outbound::Mark("t1-s0".into())));
    assert_eq!(p.queued(), Duration::ZERO);
    assert!(!p.is_idle(), "the mark is outstanding");
    assert_eq!(
        p.on_mark("t1-s0", t0 + Duration::from_millis(300)),
        MarkEcho::Played
    );
    assert!(p.is_idle());
}

#[test]
fn a_full_lead_is_topped_up_in_batches_of_200_ms() {
    let t0 = Instant::now();
    let mut p = Playback::new(Duration::from_secs(1));
    p.push_audio(audio(3000));
    assert_eq!(drain(&mut p, t0).len(), 50);
    // Nothing goes until 200 ms have played; then 10 frames at once.
    assert_eq!(drain(&mut p, t0 + Duration::from_millis(200)), vec![]);
    assert_eq!(p.next_send_at(t0), Some(t0 + Duration::from_millis(220)));
    assert_eq!(drain(&mut p, t0 + Duration::from_millis(220)).len(), 11);
    assert_eq!(
        p.lead(t0 + Duration::from_millis(220)),
        Duration::from_secs(1)
    );
}

#[test]
fn odd_sized_chunks_are_sent_without_copying_across_chunks() {
    let t0 = Instant::now();
    let mut p = Playback::new(Duration::from_secs(10));
    p.push_audio(Bytes::from(vec![1; 200]));
    p.push_audio(Bytes::from(vec![2; 10]));
    let sizes: Vec<usize> = drain(&mut p, t0)
        .into_iter()
        .map(|o| match o {
            Outbound::Media(f) => f.len(),
            Outbound::Mark(_) => 0,
        })
        .collect();
    assert_eq!(sizes, vec![160, 40, 10]);
    assert_eq!(p.queued(), Duration::ZERO);
}

#[test]
fn a_late_mark_holds_back_further_audio() {
    let t0 = Instant::now();
    let mut p = Playback::new(Duration::from_millis(100));
    p.push_audio(audio(100));
    p.push_mark("a".into());
    p.push_audio(audio(200));
    drain(&mut p, t0); // 100 ms audio + mark
    // Twilio reaches the mark 100 ms late (at 200 ms instead of 100 ms):
    // it has played nothing after it yet, so 100 ms more may go out, no more.
    let late = t0 + Duration::from_millis(200);
    assert_eq!(p.on_mark("a", late), MarkEcho::Played);
    let sent = drain(&mut p, late);
    assert_eq!(sent.len(), 5);
    assert_eq!(p.lead(late), Duration::from_millis(100));
}

#[test]
fn clear_drops_the_queue_and_pending_marks_come_back_cleared() {
    let t0 = Instant::now();
    let mut p = Playback::new(Duration::from_secs(1));
    p.push_audio(audio(100));
    p.push_mark("t1-s0".into());
    p.push_audio(audio(2000));
    p.push_mark("t1-s1".into());
    drain(&mut p, t0);
    assert_eq!(
        p.on_mark("t1-s0", t0 + Duration::from_millis(100)),
        MarkEcho::Played
    );
    assert_eq!(
        p.clear(t0 + Duration::from_millis(150)),
        Vec::<String>::new(),
        "t1-s1 was never sent"
    );
    assert!(p.is_idle());
    assert_eq!(p.queued(), Duration::ZERO);
    assert_eq!(p.lead(t0 + Duration::from_millis(150)), Duration::ZERO);

    let mut p = Playback::new(Duration::from_secs(10));
    p.push_audio(audio(100));
    p.push_mark("t2-s0".into());
    drain(&mut p, t0);
    assert_eq!(p.clear(t0), vec!["t2-s0".to_string()]);
    assert_eq!(p.on_mark("t2-s0", t0), MarkEcho::Cleared);
    assert_eq!(p.on_mark("t2-s0", t0), MarkEcho::Unknown);
    // A cleared mark has no round trip.
    let measured = p.take_measured();
    assert!(measured.roundtrips().is_empty(), "{measured:?}");
}

#[test]
fn a_played_mark_measures_its_round_trip() {
    let t0 = Instant::now();
    let mut p = Playback::new(Duration::from_secs(1));
    p.push_audio(audio(100));
    p.push_mark("t1-s0".into());
    drain(&mut p, t0);
    p.on_mark("t1-s0", t0 + Duration::from_millis(130));
    assert_eq!(p.take_measured().roundtrips(), [Duration::from_millis(130)]);
    assert_eq!(p.take_measured(), Default::default(), "taken");
}

#[test]
fn an_earlier_mark_counts_as_played_when_a_later_one_returns() {
    let t0 = Instant::now();
    let mut p = Playback::new(Duration::from_secs(10));
    for name in ["a", "b"] {
        p.push_audio(audio(20));
        p.push_mark(name.into());
    }
    drain(&mut p, t0);
    assert_eq!(
        p.on_mark("b", t0 + Duration::from_millis(40)),
        MarkEcho::Played
    );
    assert!(p.is_idle());
    assert_eq!(
        p.on_mark("a", t0 + Duration::from_millis(40)),
        MarkEcho::Unknown
    );
}

#[test]
fn a_lost_mark_expires_after_the_grace_period() {
    let t0 = Instant::now();
    let mut p = Playback::new(Duration::from_secs(10));
    p.push_audio(audio(100));
    p.push_mark("lost".into());
    drain(&mut p, t0);
    let deadline = p.next_mark_deadline().expect("outstanding");
    assert_eq!(deadline, t0 + Duration::from_millis(100) + MARK_GRACE);
    assert!(
        p.expire_overdue_marks(deadline - Duration::from_millis(1))
            .is_empty()
    );
    assert_eq!(p.expire_overdue_marks(deadline), vec!["lost".to_string()]);
    assert!(p.is_idle());
}

#[test]
fn a_mark_with_nothing_before_it_is_expected_now() {
    let t0 = Instant::now();
    let mut p = Playback::new(Duration::from_secs(1));
    p.push_mark("empty".into());
    assert_eq!(p.poll(t0), Some(Outbound::Mark("empty".into())));
    assert_eq!(p.next_mark_deadline(), Some(t0 + MARK_GRACE));
}

#[test]
fn the_played_position_follows_the_clock_and_stops_at_an_unechoed_mark() {
    let t0 = Instant::now();
    let ms = Duration::from_millis;
    let mut p = Playback::new(Duration::from_secs(10));
    p.push_audio(audio(300));
    p.push_mark("a".into());
    p.push_audio(audio(500));
    p.push_mark("b".into());
    drain(&mut p, t0);
    assert_eq!(p.sent(), 800 * 8);
    assert_eq!(p.played(t0), 0);
    assert_eq!(p.played(t0 + ms(120)), 120 * 8, "by the clock");
    // Playback stalled: "a" is overdue, so the position waits at it.
    assert_eq!(p.played(t0 + ms(450)), 300 * 8);
    // "a" came back late: the estimate restarts from there.
    assert_eq!(p.on_mark("a", t0 + ms(450)), MarkEcho::Played);
    assert_eq!(p.played(t0 + ms(450)), 300 * 8);
    assert_eq!(p.played(t0 + ms(500)), 350 * 8);
    assert_eq!(p.played(t0 + ms(2000)), 800 * 8, "never past what was sent");
}

#[test]
fn a_frame_sent_after_the_playback_ran_out_is_told() {
    let t0 = Instant::now();
    let mut p = Playback::new(Duration::from_secs(1));
    p.push_audio(audio(100));
    drain(&mut p, t0);
    assert!(!p.ran_dry(), "the first frame of all");
    // More audio within a frame of the estimated end: no gap heard.
    p.push_audio(audio(20));
    drain(&mut p, t0 + Duration::from_millis(110));
    assert!(!p.ran_dry());
    // More audio 100 ms after everything had played.
    p.push_audio(audio(20));
    drain(&mut p, t0 + Duration::from_millis(220));
    assert!(p.ran_dry());
}
