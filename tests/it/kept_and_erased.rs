//! What Pronto keeps of a call beyond its record, and how an erase removes
//! it: the two-channel recording (and what happens to it on a nearly full
//! disk or as a broken file), the caller's memory, and `DELETE
//! /api/calls/{sid}` during a live call.

use std::time::Duration;

use crate::agent_world::{
    ACCOUNT_SID, Provider, World, conversation, hear_mark, say_hello_and_hear,
};
use crate::harness::{self, WAIT, temp_dir};
use pronto::fakes::llm_reply::Reply;
use pronto::sim::Call;
use reqwest::Method;

#[tokio::test]
async fn a_recorded_call_has_both_sides_on_two_channels() {
    let (w, _dir) = recording_world("recordings", &[]).await;
    w.audio.push_transcript("Hello?");
    w.llm.fake().push_reply(Reply::text("Hello there."));
    // Real time, as Twilio streams: the recording places the caller's audio
    // by Twilio's timestamps and the agent's by the clock.
    let call = Call::dial(&w.server.sim()).await.expect("call connects");
    hear_mark(&call, "t0-s0").await;
    say_hello_and_hear(&call, "t1-s0").await;
    let sid = call.call_sid().to_string();
    call.hang_up().await.expect("report");
    let path = format!("/api/calls/{sid}/recording.wav");
    let deadline = tokio::time::Instant::now() + WAIT;
    let wav = loop {
        let resp = w
            .server
            .http()
            .get(format!("{}{path}", w.server.url))
            .bearer_auth(harness::API_TOKEN)
            .send()
            .await
            .expect("GET");
        if resp.status() == 200 {
            break resp.bytes().await.expect("body");
        }
        assert!(tokio::time::Instant::now() < deadline, "no recording");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let reader = hound::WavReader::new(std::io::Cursor::new(wav.to_vec())).expect("a WAV");
    let spec = reader.spec();
    assert_eq!(
        (spec.channels, spec.sample_rate, spec.bits_per_sample),
        (2, 8000, 16)
    );
    let samples: Vec<i16> = reader.into_samples().map(|s| s.expect("sample")).collect();
    // Where each side is loud, in samples of its channel.
    let loud = |channel: usize| -> Vec<usize> {
        samples
            .iter()
            .skip(channel)
            .step_by(2)
            .enumerate()
            .filter(|(_, s)| s.unsigned_abs() > 2000)
            .map(|(i, _)| i)
            .collect()
    };
    let (caller, agent) = (loud(0), loud(1));
    assert!(caller.len() > 1000, "the caller's speech is on the left");
    assert!(agent.len() > 1000, "the agent's voice is on the right");
    // On the call's clock: the greeting, then the caller, then the answer.
    let (first_caller, last_caller) = (caller[0], caller[caller.len() - 1]);
    assert!(agent[0] < first_caller, "the greeting comes first");
    assert!(
        agent.iter().any(|&i| i > last_caller),
        "the answer follows the question"
    );
    assert!(
        !agent.iter().any(|&i| i > first_caller && i < last_caller),
        "nobody talks over the caller"
    );
    let (status, erased) = w
        .server
        .api(Method::DELETE, &format!("/api/calls/{sid}"), None)
        .await;
    assert_eq!(status, 200, "{erased}");
    assert_eq!(erased["recording"], "deleted", "{erased}");
    let (status, _) = w.server.api(Method::GET, &path, None).await;
    assert_eq!(status, 404, "the recording is erased with the call");
}

/// With less free disk than `recordings_min_free_mb`, a call is not
/// recorded, and goes on as if recordings were off.
#[tokio::test]
async fn a_call_on_a_nearly_full_disk_goes_on_unrecorded() {
    let (w, dir) = recording_world(
        "full-disk",
        &[
            // More than any disk here has free.
            ("PRONTO_STORE_RECORDINGS_MIN_FREE_MB", "1073741824"),
        ],
    )
    .await;
    w.audio.push_transcript("Hello?");
    w.llm.fake().push_reply(Reply::text("Hello there."));
    let call = w.dial_and_hear_greeting().await;
    say_hello_and_hear(&call, "t1-s0").await;
    let sid = call.call_sid().to_string();
    call.hang_up().await.expect("report");
    assert!(!dir.join(format!("{sid}.wav")).exists(), "not recorded");
    let (status, _) = w
        .server
        .api(
            Method::GET,
            &format!("/api/calls/{sid}/recording.wav"),
            None,
        )
        .await;
    assert_eq!(status, 404);
    let _ = std::fs::remove_dir_all(&dir);
}

/// A file that is not a playable recording (0 bytes after a full disk, a
/// header cut short) is never served as `audio/wav`: 409 says why.
#[tokio::test]
async fn an_empty_or_broken_recording_is_not_served_as_one() {
    let dir = temp_dir("broken-recordings");
    let dir_text = dir.to_string_lossy().into_owned();
    let server = harness::TestServer::with(
        &[
            ("PRONTO_STORE_RECORDINGS", "true"),
            ("PRONTO_STORE_RECORDINGS_DIR", dir_text.as_str()),
        ],
        None,
    )
    .await;
    std::fs::create_dir_all(&dir).expect("dir");
    let empty = format!("CA{:032x}", 0xe);
    let cut = format!("CA{:032x}", 0xc);
    std::fs::write(dir.join(format!("{empty}.wav")), b"").expect("write");
    std::fs::write(dir.join(format!("{cut}.wav")), b"RIFF\x24\0\0\0WAVEfmt ").expect("write");
    for sid in [&empty, &cut] {
        let (status, body) = server
            .api(
                Method::GET,
                &format!("/api/calls/{sid}/recording.wav"),
                None,
            )
            .await;
        assert_eq!(status, 409, "{sid}: {body}");
        assert!(
            body["error"]
                .as_str()
                .is_some_and(|e| e.contains("recording")),
            "{body}"
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// An erase during the call is total and final: the recording being
/// written goes when the call ends and is never served, a late status
/// callback does not bring the call back, and the caller-memory summary
/// written at the end is not kept.
#[tokio::test]
async fn erasing_a_live_call_leaves_nothing_behind() {
    let (w, dir) = recording_world("erase-live", &[("PRONTO_STORE_CALLER_MEMORY", "true")]).await;
    let call = anna_books_a_table(&w).await;
    let sid = call.call_sid().to_string();
    let file = dir.join(format!("{sid}.wav"));
    assert!(file.exists(), "being recorded");

    let (status, erased) = w
        .server
        .api(Method::DELETE, &format!("/api/calls/{sid}"), None)
        .await;
    assert_eq!(status, 200, "{erased}");
    assert_eq!(erased["call_sid"], sid.as_str());
    assert_eq!(erased["history"]["call"], true, "{erased}");
    assert!(erased["history"]["turns"].as_u64() >= Some(1), "{erased}");
    assert_eq!(erased["recording"], "at_call_end", "{erased}");
    let recording = format!("/api/calls/{sid}/recording.wav");
    assert_eq!(w.server.api(Method::GET, &recording, None).await.0, 404);

    call.hang_up().await.expect("report");
    // The summary is still asked for (the engine does not know), never kept.
    summary_is_asked_for(&w).await;
    let deadline = tokio::time::Instant::now() + WAIT;
    while file.exists() || w.server.state.switchboard.is_live(&sid) {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the recording outlived its call"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // Twilio's final status arrives late.
    let callback = [
        ("CallSid", sid.as_str()),
        ("AccountSid", ACCOUNT_SID),
        ("CallStatus", "completed"),
        ("SequenceNumber", "3"),
        ("CallDuration", "9"),
    ]
    .map(|(k, v)| (k.to_string(), v.to_string()));
    let (code, _) = w.server.post_signed("/voice/status", &callback).await;
    assert_eq!(code, 200, "Twilio is answered, so it does not retry");
    // Give the summary and the session's last records time to arrive.
    tokio::time::sleep(Duration::from_millis(300)).await;
    w.server.state.switchboard.flush_records().await;

    let (status, body) = w
        .server
        .api(Method::GET, &format!("/api/calls/{sid}"), None)
        .await;
    assert_eq!(status, 404, "{body}");
    let (_, list) = w.server.api(Method::GET, "/api/calls", None).await;
    assert!(
        !list.to_string().contains(&sid),
        "listed after the erase: {list}"
    );
    assert_eq!(w.server.api(Method::GET, &recording, None).await.0, 404);
    assert!(!file.exists());
    let store = &w.server.state.store;
    assert!(
        store
            .recent_summaries("+15551230001", 5)
            .await
            .expect("store")
            .is_empty(),
        "the caller-memory summary of an erased call is not kept"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn a_caller_is_remembered_on_the_next_call_when_memory_is_on() {
    let w = World::start_with(
        Provider::Anthropic,
        false,
        &[("PRONTO_STORE_CALLER_MEMORY", "true")],
    )
    .await;
    let call = anna_books_a_table(&w).await;
    call.hang_up().await.expect("report");
    summary_is_asked_for(&w).await;

    // Once the summary is kept, the same number calls again.
    let store = w.server.state.store.clone();
    let deadline = tokio::time::Instant::now() + WAIT;
    while store
        .recent_summaries("+15551230001", 3)
        .await
        .expect("store")
        .is_empty()
    {
        assert!(tokio::time::Instant::now() < deadline, "no summary kept");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    w.audio.push_transcript("Hi, it's me again.");
    let call = w.dial_and_hear_greeting().await;
    say_hello_and_hear(&call, "t1-s0").await;
    let (system, _) = conversation(&w.llm_request(3).await);
    assert!(
        system.contains("You spoke with this caller before"),
        "{system}"
    );
    assert!(
        system.contains("Anna called to book a table for Friday"),
        "{system}"
    );
    call.hang_up().await.expect("report");
}

/// A world whose calls are recorded into a fresh folder (returned), with
/// `more` settings.
async fn recording_world(name: &str, more: &[(&str, &str)]) -> (World, std::path::PathBuf) {
    let dir = temp_dir(name);
    let dir_text = dir.to_string_lossy().into_owned();
    let mut env = vec![
        ("PRONTO_STORE_RECORDINGS", "true"),
        ("PRONTO_STORE_RECORDINGS_DIR", dir_text.as_str()),
    ];
    env.extend_from_slice(more);
    let w = World::start_with(Provider::Anthropic, false, &env).await;
    (w, dir)
}

/// Anna calls (as +15551230001) and books a table; the LLM's next answer
/// after hers is the call's summary.
async fn anna_books_a_table(w: &World) -> Call {
    w.audio
        .push_transcript("This is Anna, I'd like to book a table for Friday.");
    w.llm
        .fake()
        .push_reply(Reply::text("Booked for Friday, Anna."));
    w.llm.fake().push_reply(Reply::text(
        "Anna called to book a table for Friday; it was booked.",
    ));
    let call = w.dial_and_hear_greeting().await;
    say_hello_and_hear(&call, "t1-s0").await;
    call
}

/// The LLM's second request of the world asks for the call's summary.
async fn summary_is_asked_for(w: &World) {
    let summary_request = w.llm_request(2).await;
    let (_, messages) = conversation(&summary_request);
    assert!(
        messages
            .last()
            .is_some_and(|(_, text)| text.contains("Summarize the phone call")),
        "{messages:?}"
    );
}
