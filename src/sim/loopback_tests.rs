//! The simulator against a tiny fake Pronto on loopback: proves the session
//! (real sockets, real clock) does what the pure parts promise. The fake
//! validates signatures with the server's own `twilio::signature`, so these
//! tests also pin that the simulator signs what the server checks.

use std::time::Duration;

use super::*;

mod fake;

use fake::*;

fn is_echo(name: &'static str) -> impl Fn(&Event) -> bool {
    move |e| matches!(e, Event::MarkEchoed { name: n, .. } if n == name)
}

#[tokio::test]
async fn a_signed_call_hears_the_greeting_and_echoes_its_mark_after_playback() {
    let (cfg, inbound, _server) = fake(Act::Greet).await;
    let call = Call::dial(&cfg).await.unwrap();
    let received = call
        .wait_for(|e| matches!(e, Event::MarkReceived { .. }), WAIT)
        .await
        .unwrap();
    let echoed = call.wait_for(is_echo("greeting"), WAIT).await.unwrap();
    // 100 ms of audio were queued ahead of the mark.
    let waited = echoed.at_ms - received.at_ms;
    assert!((80..1000).contains(&waited), "echoed after {waited} ms");
    call.dtmf('5');
    call.wait_for(|e| matches!(e, Event::DtmfSent { digit: '5' }), WAIT)
        .await
        .unwrap();
    let report = call.hang_up().await.unwrap();

    assert!(report.audible_ms() >= 80, "{report}");
    assert!(
        report
            .events
            .iter()
            .any(|e| e.event == Event::AudioHeardStart)
    );
    assert!(
        report.events[0].at_ms <= 0,
        "the webhook comes first: {report}"
    );
    assert!(report.protocol_errors().is_empty());
    let close = report.close.clone().unwrap();
    assert_eq!((close.by, close.code), (Closer::Simulator, Some(1000)));

    let inbound = inbound.lock().unwrap();
    let events: Vec<&str> = inbound.iter().filter_map(|v| v["event"].as_str()).collect();
    assert_eq!(&events[..2], ["connected", "start"]);
    assert_eq!(events.last(), Some(&"stop"));
    assert!(events.contains(&"dtmf") && events.contains(&"mark"));
    let start = &inbound[1];
    assert_eq!(
        start["start"]["customParameters"]["callSid"],
        report.call_sid
    );
    // sequenceNumber counts every message after `connected`; chunk counts media.
    let seqs: Vec<u64> = inbound[1..]
        .iter()
        .map(|v| v["sequenceNumber"].as_str().unwrap().parse().unwrap())
        .collect();
    assert!(seqs.iter().zip(1..).all(|(s, n)| *s == n), "{seqs:?}");
    let chunks: Vec<u64> = inbound
        .iter()
        .filter(|v| v["event"] == "media")
        .map(|v| v["media"]["chunk"].as_str().unwrap().parse().unwrap())
        .collect();
    assert!(chunks.len() > 3 && chunks.iter().zip(1..).all(|(c, n)| *c == n));
}

#[tokio::test]
async fn unsigned_or_forged_requests_are_refused_cleanly() {
    let (cfg, _, _server) = fake(Act::Greet).await;
    let answer = post_voice(&cfg).await.unwrap();
    let url = answer.stream_url().unwrap().to_string();
    for signature in [
        SignatureHeader::Omit,
        SignatureHeader::Value("AAAAAAAAAAAAAAAAAAAAAAAAAAA=".into()),
    ] {
        let options = StreamOptions {
            signature,
            ..StreamOptions::for_answer(&answer)
        };
        match Call::connect_stream(&cfg, &url, options).await {
            Err(SimError::Handshake { status, .. }) => assert_eq!(status, 403),
            other => panic!(
                "expected a 403, got {:?}",
                other.map(|c| c.stream_sid().to_string())
            ),
        }
    }
    let mut unsigned = cfg.clone();
    unsigned.auth_token = None;
    let answer = post_voice(&unsigned).await.unwrap();
    assert_eq!(answer.status, 403);
    assert_eq!(answer.twiml, Err(TwimlError::Status(403)));
    assert!(matches!(Call::dial(&unsigned).await, Err(SimError::NoStream(a)) if a.status == 403));
}

#[tokio::test]
async fn the_servers_close_code_and_cut_off_audio_are_recorded() {
    let (cfg, _, _server) = fake(Act::CloseWith(1008, "bad token")).await;
    let call = Call::dial(&cfg).await.unwrap();
    call.wait_for(|e| matches!(e, Event::Closed(_)), WAIT)
        .await
        .unwrap();
    assert!(matches!(
        call.wait_for(|e| *e == Event::StopSent, WAIT).await,
        Err(SimError::Ended)
    ));
    assert!(call.is_closed());
    let report = call.hang_up().await.unwrap();
    let close = report.close.clone().unwrap();
    assert_eq!(close.by, Closer::Server);
    assert_eq!(close.code, Some(1008));
    assert_eq!(close.reason, "bad token");
    assert!(close.unplayed_ms > 500, "{close}");
    assert!(!report.events.iter().any(|e| e.event == Event::StopSent));
}

#[tokio::test]
async fn what_twilio_would_drop_is_recorded_and_ignored() {
    let (cfg, _, _server) = fake(Act::Garbage).await;
    let call = Call::dial(&cfg).await.unwrap();
    let echo = call.wait_for(is_echo("ok"), WAIT).await.unwrap();
    assert_eq!(
        echo.event,
        Event::MarkEchoed {
            name: "ok".into(),
            cleared: false
        }
    );
    let report = call.hang_up().await.unwrap();
    let errors = report.protocol_errors();
    assert_eq!(errors.len(), 3, "{errors:?}");
    assert_eq!(*errors[0], ProtocolError::BinaryFrame { len: 3 });
    assert!(matches!(errors[1], ProtocolError::NotJson { .. }));
    assert!(matches!(errors[2], ProtocolError::WrongStreamSid { got } if got == "MZwrong"));
    assert_eq!(report.audible_ms(), 0, "dropped audio is not played");
}

#[tokio::test]
async fn clear_drops_the_queue_and_returns_pending_marks_in_order() {
    let (cfg, _, _server) = fake(Act::ClearSoon).await;
    let call = Call::dial(&cfg).await.unwrap();
    let clear = call
        .wait_for(|e| matches!(e, Event::ClearReceived { .. }), WAIT)
        .await
        .unwrap();
    let Event::ClearReceived { dropped_ms } = clear.event else {
        unreachable!()
    };
    assert!((600..=960).contains(&dropped_ms), "dropped {dropped_ms} ms");
    let a = call.wait_for(is_echo("a"), WAIT).await.unwrap();
    let b = call.wait_for(is_echo("b"), WAIT).await.unwrap();
    assert!(matches!(a.event, Event::MarkEchoed { cleared: true, .. }));
    assert!(matches!(b.event, Event::MarkEchoed { cleared: true, .. }));
    let report = call.hang_up().await.unwrap();
    assert!(report.audible_ms() < 400, "{report}");
}

#[tokio::test]
async fn fast_speech_gets_a_reply_and_a_voice_to_voice_time() {
    let (mut cfg, inbound, _server) = fake(Act::Reply).await;
    cfg.fast = true;
    let call = Call::dial(&cfg).await.unwrap();
    let mut pcm: Vec<i16> = (0..2400)
        .map(|i| if i % 16 < 8 { 6000 } else { -6000 })
        .collect();
    pcm.extend(vec![0i16; 2400]); // trailing silence: not part of the speech
    call.say(&pcm);
    call.wait_said().await.unwrap();
    call.wait_for(is_echo("reply"), WAIT).await.unwrap();
    let report = call.hang_up().await.unwrap();
    assert_eq!(report.turns.len(), 1, "{report}");
    let turn = &report.turns[0];
    let end = turn.speech_end_ms.unwrap();
    assert!(end - turn.speech_start_ms < 250, "fast mode: {report}");
    let v2v = turn.voice_to_voice_ms.unwrap();
    // Fast mode sends the trailing silence at once too, so the fake's
    // "10 quiet frames" come immediately: the reply is heard within a tick
    // or two of arriving.
    assert!((0..2000).contains(&v2v), "{report}");
    let media = inbound
        .lock()
        .unwrap()
        .iter()
        .filter(|v| v["event"] == "media")
        .count();
    assert!(media >= 30);
}

#[tokio::test]
async fn a_scripted_real_time_call_measures_the_reply_and_hangs_up_by_itself() {
    let (cfg, _, _server) = fake(Act::Reply).await;
    let mut speech: Vec<i16> = (0..3200)
        .map(|i| if i % 16 < 8 { 6000 } else { -6000 })
        .collect();
    speech.extend(vec![0i16; 800]);
    let script = Script {
        utterances: vec![speech],
        dtmf: vec![(Duration::from_millis(100), '#')],
        greeting_timeout: Duration::from_millis(100),
        tail: Duration::from_millis(300),
        max_call: Duration::from_secs(10),
        ..Script::default()
    };
    let report = run(&cfg, &script).await.unwrap();
    assert_eq!(report.turns.len(), 1, "{report}");
    let turn = &report.turns[0];
    // Real time: 400 ms of speech take about 400 ms to send.
    let spoken = turn.speech_end_ms.unwrap() - turn.speech_start_ms;
    assert!((300..1000).contains(&spoken), "{report}");
    // The fake answers after 10 quiet frames (200 ms) at real-time pace.
    let v2v = turn.voice_to_voice_ms.unwrap();
    assert!((100..3000).contains(&v2v), "{report}");
    assert_eq!(report.marks_echoed(), ["reply"]);
    assert!(
        report
            .events
            .iter()
            .any(|e| e.event == Event::DtmfSent { digit: '#' })
    );
    assert_eq!(report.close.as_ref().map(|c| c.by), Some(Closer::Simulator));
    let reply = report.heard_between(turn.reply_start_ms.unwrap(), i64::MAX);
    assert!(
        level::is_audible(&reply[..160]),
        "the reply is where the report says"
    );
}

#[tokio::test]
async fn pronto_call_writes_what_the_caller_heard() {
    let (cfg, _, _server) = fake(Act::Reply).await;
    let dir = std::env::temp_dir().join(format!("pronto-sim-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    // A 16 kHz utterance: the CLI resamples it.
    let wav = dir.join("say.wav");
    let spec = hound::WavSpec {
        channels: 1,
        sample_rate: 16_000,
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    };
    let mut w = hound::WavWriter::create(&wav, spec).unwrap();
    for i in 0..6400 {
        w.write_sample(((i as f64 * 0.2).sin() * 8000.0) as i16)
            .unwrap();
    }
    for _ in 0..3200 {
        w.write_sample(0i16).unwrap();
    }
    w.finalize().unwrap();
    let out = dir.join("heard.wav");
    let args = cli::CallArgs {
        server: cfg.server.clone(),
        wavs: vec![wav],
        public_url: cfg.public_base_url.clone(),
        auth_token: cfg.auth_token.clone(),
        account_sid: None,
        fast: true,
        dtmf: vec![(50, '1')],
        out: out.clone(),
        from: "+15550000001".into(),
        to: "+15550000002".into(),
        agent: None,
        api_token: None,
        tail_ms: 300,
        max_secs: 10,
    };
    cli::run_cli(args).await.unwrap();
    let heard = load_wav_8k(&out).unwrap();
    assert!(
        heard.chunks(160).any(level::is_audible),
        "the reply was written"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}
