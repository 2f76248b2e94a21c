//! The fake's wire behaviour over a real loopback socket, with a bare
//! WebSocket client: so that Pronto's tests that pass against the fake pass
//! against OpenAI's GA event shapes, not against the fake agreeing with
//! Pronto by mistake.

use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::{self, Message};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use super::*;
use crate::fakes::hearing::test_audio::{silence, tone};

type Client = WebSocketStream<MaybeTlsStream<TcpStream>>;

const MODEL: &str = "?model=gpt-realtime";

async fn connect_with(
    fake: &FakeRealtimeVoice,
    query: &str,
    headers: &[(&'static str, &str)],
) -> Result<Client, tungstenite::Error> {
    let mut request = format!("{}/realtime{query}", fake.ws_url())
        .into_client_request()
        .expect("a request");
    for (name, value) in headers {
        request
            .headers_mut()
            .insert(*name, value.parse().expect("a header value"));
    }
    tokio_tungstenite::connect_async(request)
        .await
        .map(|(socket, _)| socket)
}

/// A connected client, past `session.created` (returned).
async fn connect(fake: &FakeRealtimeVoice) -> (Client, Value) {
    let mut client = connect_with(fake, MODEL, &[("authorization", "Bearer sk-test")])
        .await
        .expect("connected");
    let created = next(&mut client).await.expect("session.created");
    assert_eq!(created["type"], "session.created");
    (client, created)
}

/// The status and body of a refused upgrade.
async fn refused(
    fake: &FakeRealtimeVoice,
    query: &str,
    headers: &[(&'static str, &str)],
) -> (u16, String) {
    match connect_with(fake, query, headers).await {
        Err(tungstenite::Error::Http(response)) => (
            response.status().as_u16(),
            String::from_utf8_lossy(response.body().as_deref().unwrap_or_default()).to_string(),
        ),
        other => panic!("not refused: {:?}", other.map(|_| ())),
    }
}

async fn send(client: &mut Client, event: Value) {
    client
        .send(Message::Text(event.to_string().into()))
        .await
        .expect("sent");
}

/// Appends μ-law in 20 ms frames, as Pronto forwards Twilio's.
async fn append(client: &mut Client, audio: &[u8]) {
    for frame in audio.chunks(160) {
        let event = json!({"type": "input_audio_buffer.append", "audio": STANDARD.encode(frame)});
        send(client, event).await;
    }
}

/// The next event, or the close frame's code and reason (`None`: the
/// connection ended without one).
async fn next(client: &mut Client) -> Result<Value, Option<(u16, String)>> {
    let message = tokio::time::timeout(Duration::from_secs(5), client.next())
        .await
        .expect("an answer in time");
    match message {
        Some(Ok(Message::Text(text))) => Ok(serde_json::from_str(text.as_str()).expect("JSON")),
        Some(Ok(Message::Close(frame))) => {
            Err(frame.map(|f| (u16::from(f.code), f.reason.to_string())))
        }
        None | Some(Err(_)) => Err(None),
        other => panic!("{other:?}"),
    }
}

/// Nothing arrives within `ms`.
async fn quiet(client: &mut Client, ms: u64) -> bool {
    tokio::time::timeout(Duration::from_millis(ms), client.next())
        .await
        .is_err()
}

/// Waits until the fake has handled everything sent so far (it answers
/// in order).
async fn sync(client: &mut Client) {
    send(
        client,
        json!({"type": "conversation.item.retrieve", "item_id": "item_none"}),
    )
    .await;
    until(client, "error").await;
}

/// Every event up to and including the first of type `kind`.
async fn until(client: &mut Client, kind: &str) -> Vec<Value> {
    let mut events = Vec::new();
    loop {
        let event = next(client).await.expect("an event");
        let done = event["type"] == kind;
        events.push(event);
        if done {
            return events;
        }
    }
}

/// Every event up to the close: (events, close code and reason).
async fn until_close(client: &mut Client) -> (Vec<Value>, Option<(u16, String)>) {
    let mut events = Vec::new();
    loop {
        match next(client).await {
            Ok(event) => events.push(event),
            Err(close) => return (events, close),
        }
    }
}

fn kinds(events: &[Value]) -> Vec<&str> {
    events
        .iter()
        .map(|e| e["type"].as_str().unwrap_or_default())
        .collect()
}

fn first<'a>(events: &'a [Value], kind: &str) -> &'a Value {
    events
        .iter()
        .find(|e| e["type"] == kind)
        .unwrap_or_else(|| panic!("no {kind} in {:?}", kinds(events)))
}

fn position(events: &[Value], kind: &str) -> usize {
    events
        .iter()
        .position(|e| e["type"] == kind)
        .unwrap_or_else(|| panic!("no {kind} in {:?}", kinds(events)))
}

/// The audio of the reply's deltas, in order.
fn audio_of(events: &[Value]) -> Vec<u8> {
    events
        .iter()
        .filter(|e| e["type"] == "response.output_audio.delta")
        .flat_map(|e| {
            STANDARD
                .decode(e["delta"].as_str().expect("delta"))
                .expect("base64")
        })
        .collect()
}

fn text_of(events: &[Value], kind: &str) -> String {
    events
        .iter()
        .filter(|e| e["type"] == kind)
        .map(|e| e["delta"].as_str().expect("delta").to_string())
        .collect()
}

/// What Pronto sends for Twilio: μ-law both ways, server VAD with
/// `silence_ms`, caller transcription on.
async fn update_for_twilio(client: &mut Client, turn_detection: Value) -> Value {
    send(
        client,
        json!({"type": "session.update", "event_id": "evt_update", "session": {
            "type": "realtime",
            "instructions": "",
            "audio": {
                "input": {"format": {"type": "audio/pcmu"}, "turn_detection": turn_detection,
                          "transcription": {"model": "gpt-4o-transcribe"}},
                "output": {"format": {"type": "audio/pcmu"}, "voice": "marin"},
            },
        }}),
    )
    .await;
    let updated = next(client).await.expect("session.updated");
    assert_eq!(updated["type"], "session.updated", "{updated}");
    updated
}

fn server_vad(silence_ms: u64) -> Value {
    json!({"type": "server_vad", "silence_duration_ms": silence_ms})
}

#[tokio::test]
async fn the_beta_header_gets_beta_api_shape_disabled_and_close_4000() {
    let fake = FakeRealtimeVoice::start().await;
    let mut client = connect_with(
        &fake,
        MODEL,
        &[
            ("authorization", "Bearer sk-test"),
            ("openai-beta", "realtime=v1"),
        ],
    )
    .await
    .expect("the upgrade is accepted");
    let (events, close) = until_close(&mut client).await;
    assert_eq!(kinds(&events), ["error"]);
    assert_eq!(events[0]["error"]["code"], "beta_api_shape_disabled");
    assert_eq!(events[0]["error"]["type"], "invalid_request_error");
    assert!(
        events[0]["error"]["message"]
            .as_str()
            .is_some_and(|m| m.starts_with("The Realtime Beta API is no longer supported."))
    );
    assert_eq!(close.map(|c| c.0), Some(4000));
    let connection = &fake.connections()[0];
    assert!(connection.beta_header && connection.authorization);
    assert_eq!(connection.closed_with, Some(4000));
}

#[tokio::test]
async fn the_upgrade_wants_a_bearer_key_and_a_model() {
    let fake = FakeRealtimeVoice::start().await;
    let (status, body) = refused(&fake, MODEL, &[]).await;
    assert_eq!(status, 401);
    assert!(body.contains("invalid_api_key"), "{body}");
    assert_eq!(
        refused(&fake, MODEL, &[("authorization", "Bearer ")])
            .await
            .0,
        401
    );
    let key = [("authorization", "Bearer sk-test")];
    assert_eq!(refused(&fake, "", &key).await.0, 400);
    assert_eq!(refused(&fake, "?intent=transcription", &key).await.0, 400);
    fake.push_fault(RealtimeVoiceFault::RefuseKey);
    assert_eq!(refused(&fake, MODEL, &key).await.0, 401);
    fake.push_fault(RealtimeVoiceFault::RateLimit);
    let (status, body) = refused(&fake, MODEL, &key).await;
    assert_eq!(status, 429);
    assert!(body.contains("rate_limit_exceeded"), "{body}");
    let connections = fake.connections();
    assert_eq!(connections.len(), 6);
    assert!(!connections[0].authorization);
    assert_eq!(connections[4].model.as_deref(), Some("gpt-realtime"));
    assert!(
        !format!("{connections:?}").contains("sk-test"),
        "the key is never recorded"
    );
}

#[tokio::test]
async fn session_update_is_checked_then_merged() {
    let fake = FakeRealtimeVoice::start().await;
    let (mut client, created) = connect(&fake).await;
    let session = &created["session"];
    assert_eq!(session["type"], "realtime");
    assert_eq!(session["model"], "gpt-realtime");
    assert_eq!(
        session["audio"]["input"]["format"],
        json!({"type": "audio/pcm", "rate": 24000})
    );
    assert_eq!(
        session["audio"]["output"]["format"],
        json!({"type": "audio/pcm", "rate": 24000})
    );
    assert_eq!(session["audio"]["output"]["voice"], "alloy");
    assert_eq!(
        session["audio"]["input"]["turn_detection"]["type"],
        "server_vad"
    );

    send(
        &mut client,
        json!({"type": "session.update", "event_id": "evt_1",
               "session": {"audio": {"output": {"format": {"type": "audio/pcmu"}}}}}),
    )
    .await;
    let error = next(&mut client).await.expect("an error");
    assert_eq!(error["type"], "error");
    assert_eq!(error["error"]["code"], "missing_required_parameter");
    assert_eq!(error["error"]["param"], "session.type");
    assert_eq!(error["error"]["event_id"], "evt_1");

    send(
        &mut client,
        json!({"type": "session.update", "event_id": "evt_2",
               "session": {"type": "realtime", "input_audio_format": "g711_ulaw"}}),
    )
    .await;
    let error = next(&mut client).await.expect("an error");
    assert_eq!(error["error"]["code"], "unknown_parameter");
    assert_eq!(error["error"]["param"], "session.input_audio_format");
    assert_eq!(error["error"]["event_id"], "evt_2");

    send(
        &mut client,
        json!({"type": "session.update", "session": {"type": "realtime",
               "audio": {"input": {"format": {"type": "audio/pcmu"}},
                         "output": {"format": {"type": "audio/pcmu"}}}}}),
    )
    .await;
    let updated = next(&mut client).await.expect("session.updated");
    assert_eq!(updated["type"], "session.updated");
    let audio = &updated["session"]["audio"];
    assert_eq!(audio["input"]["format"], json!({"type": "audio/pcmu"}));
    assert_eq!(audio["output"]["format"], json!({"type": "audio/pcmu"}));
    assert_eq!(audio["output"]["voice"], "alloy", "absent fields stay");
    assert_eq!(audio["input"]["turn_detection"]["type"], "server_vad");

    send(
        &mut client,
        json!({"type": "session.update", "session": {"type": "realtime",
               "audio": {"output": {"voice": "marin"}},
               "instructions": "Answer for a bicycle shop."}}),
    )
    .await;
    let updated = next(&mut client).await.expect("session.updated");
    assert_eq!(updated["session"]["audio"]["output"]["voice"], "marin");
    assert_eq!(
        updated["session"]["audio"]["output"]["format"],
        json!({"type": "audio/pcmu"}),
        "the earlier update stays"
    );
    assert_eq!(fake.connections()[0].session_updates.len(), 4);
}

#[tokio::test]
async fn a_caller_turn_is_heard_committed_transcribed_and_answered() {
    let fake = FakeRealtimeVoice::start().await;
    let (mut client, _) = connect(&fake).await;
    update_for_twilio(&mut client, server_vad(300)).await;
    append(&mut client, &tone(600)).await;
    append(&mut client, &silence(600)).await;
    let events = until(&mut client, "response.done").await;

    let started = first(&events, "input_audio_buffer.speech_started");
    assert_eq!(started["audio_start_ms"], 0);
    let item = started["item_id"].as_str().expect("an item id");
    assert!(item.starts_with("item_"));
    let stopped = first(&events, "input_audio_buffer.speech_stopped");
    assert_eq!(
        stopped["audio_end_ms"], 900,
        "600 ms of speech + 300 ms of silence"
    );
    assert_eq!(stopped["item_id"], item);
    let committed = first(&events, "input_audio_buffer.committed");
    assert_eq!(committed["item_id"], item);
    assert_eq!(committed["previous_item_id"], Value::Null);
    let added = first(&events, "conversation.item.added");
    assert_eq!(added["item"]["id"], item);
    assert_eq!(added["item"]["role"], "user");
    let transcript = first(
        &events,
        "conversation.item.input_audio_transcription.completed",
    );
    assert_eq!(transcript["item_id"], item);
    assert_eq!(transcript["transcript"], "hello");

    // Sequence D, deltas aside.
    let from = position(&events, "response.created");
    let reply: Vec<Value> = events[from..].to_vec();
    let steps: Vec<&str> = kinds(&reply)
        .into_iter()
        .filter(|k| !k.ends_with(".delta"))
        .collect();
    assert_eq!(
        steps,
        [
            "response.created",
            "rate_limits.updated",
            "response.output_item.added",
            "conversation.item.added",
            "response.content_part.added",
            "response.output_audio.done",
            "response.output_audio_transcript.done",
            "response.content_part.done",
            "response.output_item.done",
            "conversation.item.done",
            "response.done",
        ]
    );
    let response_id = reply[0]["response"]["id"].as_str().expect("an id");
    assert!(response_id.starts_with("resp_"));
    assert_eq!(reply[0]["response"]["status"], "in_progress");
    let assistant = &first(&reply, "response.output_item.added")["item"];
    assert_eq!(assistant["role"], "assistant");
    let delta = first(&reply, "response.output_audio.delta");
    assert_eq!(delta["response_id"], response_id);
    assert_eq!(delta["item_id"], assistant["id"]);
    assert_eq!(delta["content_index"], 0);

    // "You said: hello": 3 words, 900 ms of μ-law, 100 ms per delta.
    let audio = audio_of(&reply);
    assert_eq!(audio, reply_audio(0, 7200));
    assert_eq!(
        kinds(&reply)
            .iter()
            .filter(|k| **k == "response.output_audio.delta")
            .count(),
        9
    );
    assert!(audio.iter().any(|&b| b != 0xFF && b != 0x7F), "not silence");
    assert_eq!(
        text_of(&reply, "response.output_audio_transcript.delta"),
        "You said: hello"
    );
    assert_eq!(
        first(&reply, "response.output_audio_transcript.done")["transcript"],
        "You said: hello"
    );
    let done = &first(&reply, "response.done")["response"];
    assert_eq!(done["status"], "completed");
    assert_eq!(
        done["output"][0]["content"][0]["transcript"],
        "You said: hello"
    );
    assert_eq!(done["usage"], usage(900, 900, 0, 3));
    assert_eq!(done["usage"]["input_token_details"]["audio_tokens"], 9);
    assert_eq!(done["usage"]["output_token_details"]["audio_tokens"], 18);

    sync(&mut client).await;
    let connection = &fake.connections()[0];
    assert_eq!(connection.audio_bytes, 1200 * 8);
    assert_eq!(connection.appends, 60);
    let record = &connection.replies[0];
    assert_eq!(record.response_id, response_id);
    assert_eq!(record.item_id.as_deref(), assistant["id"].as_str());
    assert_eq!((record.audio_bytes, record.audio_bytes_sent), (7200, 7200));
    assert!(!record.cancelled);
}

#[tokio::test]
async fn a_late_transcript_arrives_after_the_reply() {
    let fake = FakeRealtimeVoice::start().await;
    fake.set_latency(Latency {
        transcript: Duration::from_millis(400),
        ..Latency::default()
    });
    fake.push_transcript("my bike has a flat");
    let (mut client, _) = connect(&fake).await;
    update_for_twilio(&mut client, server_vad(200)).await;
    append(&mut client, &tone(400)).await;
    append(&mut client, &silence(300)).await;
    let events = until(&mut client, "response.done").await;
    assert!(
        !kinds(&events)
            .iter()
            .any(|k| k.starts_with("conversation.item.input_audio_transcription")),
        "{:?}",
        kinds(&events)
    );
    let committed = first(&events, "input_audio_buffer.committed")["item_id"].clone();
    assert_eq!(
        first(&events, "response.output_audio_transcript.done")["transcript"],
        "You said: my bike has a flat",
        "the model understood before the transcript came"
    );
    let later = until(
        &mut client,
        "conversation.item.input_audio_transcription.completed",
    )
    .await;
    let completed = later.last().expect("completed");
    assert_eq!(completed["item_id"], committed);
    assert_eq!(completed["transcript"], "my bike has a flat");
    assert_eq!(
        text_of(&later, "conversation.item.input_audio_transcription.delta"),
        "my bike has a flat"
    );
}

#[tokio::test]
async fn truncate_beyond_the_audio_sent_is_refused_and_within_it_acknowledged() {
    let fake = FakeRealtimeVoice::start().await;
    fake.push_reply(Reply::say("Welcome to Spoke and Chain.").with_audio_ms(500));
    let (mut client, _) = connect(&fake).await;
    update_for_twilio(&mut client, server_vad(300)).await;
    send(&mut client, json!({"type": "response.create"})).await;
    let events = until(&mut client, "response.done").await;
    assert_eq!(audio_of(&events).len(), 4000);
    let item = first(&events, "response.output_item.added")["item"]["id"]
        .as_str()
        .expect("an item id")
        .to_string();

    let truncate = |ms: u64| {
        json!({"type": "conversation.item.truncate", "event_id": format!("evt_{ms}"),
               "item_id": item, "content_index": 0, "audio_end_ms": ms})
    };
    send(&mut client, truncate(600)).await;
    let error = next(&mut client).await.expect("an error");
    assert_eq!(error["error"]["code"], "invalid_value");
    assert_eq!(
        error["error"]["message"],
        "Audio content of 500ms is already shorter than 600ms"
    );
    assert_eq!(error["error"]["event_id"], "evt_600");

    send(&mut client, truncate(200)).await;
    let truncated = next(&mut client).await.expect("truncated");
    assert_eq!(
        truncated,
        json!({"type": "conversation.item.truncated", "item_id": item, "content_index": 0,
               "audio_end_ms": 200, "event_id": truncated["event_id"]})
    );
    send(&mut client, truncate(300)).await;
    let error = next(&mut client).await.expect("an error");
    assert_eq!(
        error["error"]["message"], "Audio content of 200ms is already shorter than 300ms",
        "the item is now 200 ms long"
    );

    send(
        &mut client,
        json!({"type": "conversation.item.create", "item": {"type": "message", "role": "user",
               "content": [{"type": "input_text", "text": "Is my bike ready?"}]}}),
    )
    .await;
    let added = until(&mut client, "conversation.item.done").await;
    let user_item = first(&added, "conversation.item.added")["item"]["id"].clone();
    assert_eq!(
        first(&added, "conversation.item.added")["previous_item_id"],
        item
    );
    send(
        &mut client,
        json!({"type": "conversation.item.truncate", "item_id": user_item,
               "content_index": 0, "audio_end_ms": 0}),
    )
    .await;
    let error = next(&mut client).await.expect("an error");
    assert_eq!(error["error"]["code"], "unsupported_content_type");
    assert_eq!(
        error["error"]["message"],
        "Only model output audio messages can be truncated"
    );

    let connection = &fake.connections()[0];
    let truncates: Vec<(u64, bool)> = connection
        .truncates
        .iter()
        .map(|t| (t.audio_end_ms, t.accepted))
        .collect();
    assert_eq!(
        truncates,
        [(600, false), (200, true), (300, false), (0, false)]
    );
    assert_eq!(connection.items_created.len(), 1);
    assert_eq!(connection.events_of("conversation.item.truncate").len(), 4);
}

#[tokio::test]
async fn barge_in_cancels_the_reply_in_progress() {
    let fake = FakeRealtimeVoice::start().await;
    fake.set_latency(Latency {
        delta_interval: Duration::from_millis(40),
        ..Latency::default()
    });
    let (mut client, _) = connect(&fake).await;
    update_for_twilio(&mut client, server_vad(300)).await;
    let instructions =
        "Greet the caller. Say exactly: \"Thanks for calling Spoke and Chain, how can I help?\"";
    send(
        &mut client,
        json!({"type": "response.create", "response": {"instructions": instructions}}),
    )
    .await;
    let mut events = until(&mut client, "response.output_audio.delta").await;
    send(
        &mut client,
        json!({"type": "response.create", "event_id": "evt_again"}),
    )
    .await;
    events.extend(until(&mut client, "error").await);
    let error = events.last().expect("an error");
    assert_eq!(
        error["error"]["code"],
        "conversation_already_has_active_response"
    );
    assert_eq!(error["error"]["event_id"], "evt_again");

    append(&mut client, &tone(100)).await;
    events.extend(until(&mut client, "response.done").await);
    let started = position(&events, "input_audio_buffer.speech_started");
    let cancelled: Vec<&str> = kinds(&events[started..])
        .into_iter()
        .filter(|k| !k.ends_with(".delta"))
        .collect();
    assert_eq!(
        cancelled,
        [
            "input_audio_buffer.speech_started",
            "response.output_audio.done",
            "response.output_audio_transcript.done",
            "response.content_part.done",
            "response.output_item.done",
            "conversation.item.done",
            "response.done",
        ]
    );
    let done = &first(&events, "response.done")["response"];
    assert_eq!(done["status"], "cancelled");
    assert_eq!(
        done["status_details"],
        json!({"type": "cancelled", "reason": "turn_detected"})
    );
    assert_eq!(done["output"][0]["status"], "incomplete");

    let line = "Thanks for calling Spoke and Chain, how can I help?";
    let full = words(line) * 300 * 8;
    let heard = audio_of(&events);
    assert!(
        !heard.is_empty() && heard.len() < full,
        "{} of {full}",
        heard.len()
    );
    assert_eq!(heard, reply_audio(0, full)[..heard.len()]);
    let said = first(&events, "response.output_audio_transcript.done")["transcript"]
        .as_str()
        .expect("a transcript")
        .to_string();
    assert!(line.starts_with(&said) && said.len() < line.len(), "{said}");
    assert_eq!(
        done["usage"],
        usage(0, heard.len() as u64 / 8, words(instructions), words(&said))
    );

    send(
        &mut client,
        json!({"type": "response.cancel", "event_id": "evt_cancel"}),
    )
    .await;
    let error = until(&mut client, "error").await;
    assert_eq!(
        error.last().expect("an error")["error"]["code"],
        "response_cancel_not_active"
    );

    let record = &fake.connections()[0].replies[0];
    assert!(record.cancelled);
    assert_eq!(record.cancel_reason.as_deref(), Some("turn_detected"));
    assert_eq!(record.audio_bytes_sent, heard.len());
    assert_eq!(record.transcript, line);
}

#[tokio::test]
async fn response_cancel_stops_the_reply_the_client_asked_to_stop() {
    let fake = FakeRealtimeVoice::start().await;
    fake.set_latency(Latency {
        delta_interval: Duration::from_millis(40),
        first_audio: Duration::from_millis(30),
        ..Latency::default()
    });
    fake.push_reply(Reply::say("one two three four five six seven eight"));
    let (mut client, _) = connect(&fake).await;
    update_for_twilio(
        &mut client,
        json!({"type": "server_vad", "silence_duration_ms": 300, "interrupt_response": false}),
    )
    .await;
    send(&mut client, json!({"type": "response.create"})).await;
    let events = until(&mut client, "response.output_audio.delta").await;
    let response_id = first(&events, "response.created")["response"]["id"].clone();
    // The caller's speech does not stop it: interrupt_response is false.
    append(&mut client, &tone(60)).await;
    let heard = until(&mut client, "input_audio_buffer.speech_started").await;
    assert!(!kinds(&heard).contains(&"response.done"));
    send(
        &mut client,
        json!({"type": "response.cancel", "response_id": response_id}),
    )
    .await;
    let events = until(&mut client, "response.done").await;
    let done = &events.last().expect("done")["response"];
    assert_eq!(done["id"], response_id);
    assert_eq!(done["status_details"]["reason"], "client_cancelled");
    assert_eq!(
        fake.connections()[0].replies[0].cancel_reason.as_deref(),
        Some("client_cancelled")
    );
}

#[tokio::test]
async fn a_function_call_reply_then_its_output() {
    let fake = FakeRealtimeVoice::start().await;
    let arguments = r#"{"ticket":"A-42","include_parts":true}"#;
    fake.push_reply(Reply::say_then_call(
        "Let me check.",
        "check_repair_status",
        arguments,
    ));
    fake.push_reply(Reply::call("hang_up", "{}"));
    let (mut client, _) = connect(&fake).await;
    update_for_twilio(&mut client, server_vad(300)).await;
    send(&mut client, json!({"type": "response.create"})).await;
    let events = until(&mut client, "response.done").await;

    let call_added = events
        .iter()
        .find(|e| e["type"] == "response.output_item.added" && e["item"]["type"] == "function_call")
        .expect("a function call item");
    assert_eq!(call_added["output_index"], 1, "after the spoken item");
    assert_eq!(call_added["item"]["name"], "check_repair_status");
    let call_id = call_added["item"]["call_id"].as_str().expect("a call id");
    assert!(call_id.starts_with("call_"));
    assert_eq!(
        text_of(&events, "response.function_call_arguments.delta"),
        arguments
    );
    let args_done = first(&events, "response.function_call_arguments.done");
    assert_eq!(args_done["call_id"], call_id);
    assert_eq!(args_done["name"], "check_repair_status");
    assert_eq!(args_done["arguments"], arguments);
    assert!(
        position(&events, "response.output_audio.done")
            < position(&events, "response.function_call_arguments.done")
    );
    let done = &events.last().expect("done")["response"];
    assert_eq!(done["status"], "completed");
    assert_eq!(done["output"][0]["type"], "message");
    assert_eq!(done["output"][1]["type"], "function_call");
    assert_eq!(done["output"][1]["arguments"], arguments);
    assert_eq!(done["output"][1]["call_id"], call_id);

    send(
        &mut client,
        json!({"type": "conversation.item.create", "item": {
            "type": "function_call_output", "call_id": call_id, "output": "{\"status\":\"ready\"}"}}),
    )
    .await;
    let added = until(&mut client, "conversation.item.done").await;
    assert_eq!(
        kinds(&added),
        ["conversation.item.added", "conversation.item.done"]
    );
    assert_eq!(added[1]["item"]["call_id"], call_id);

    // A reply that only calls: no spoken item, no audio.
    send(&mut client, json!({"type": "response.create"})).await;
    let events = until(&mut client, "response.done").await;
    assert!(audio_of(&events).is_empty());
    let done = &events.last().expect("done")["response"];
    assert_eq!(done["output"].as_array().map(Vec::len), Some(1));
    assert_eq!(done["output"][0]["name"], "hang_up");

    let connection = &fake.connections()[0];
    assert_eq!(connection.items_created[0]["type"], "function_call_output");
    let call = connection.replies[0].function_call.clone().expect("a call");
    assert_eq!(
        call,
        (
            "check_repair_status".to_string(),
            call_id.to_string(),
            arguments.to_string()
        )
    );
}

#[tokio::test]
async fn manual_turns_commit_on_request_and_echo_typed_text() {
    let fake = FakeRealtimeVoice::start().await;
    let (mut client, _) = connect(&fake).await;
    update_for_twilio(&mut client, Value::Null).await;
    append(&mut client, &tone(60)).await;
    send(&mut client, json!({"type": "input_audio_buffer.commit"})).await;
    let error = next(&mut client).await.expect("an error");
    assert_eq!(error["error"]["code"], "input_audio_buffer_commit_empty");
    append(&mut client, &tone(300)).await;
    send(&mut client, json!({"type": "input_audio_buffer.commit"})).await;
    let events = until(&mut client, "conversation.item.done").await;
    assert_eq!(
        kinds(&events),
        [
            "input_audio_buffer.committed",
            "conversation.item.added",
            "conversation.item.done"
        ],
        "no voice detection without turn_detection"
    );
    send(
        &mut client,
        json!({"type": "conversation.item.create", "item": {"type": "message", "role": "user",
               "content": [{"type": "input_text", "text": "press one"}]}}),
    )
    .await;
    send(&mut client, json!({"type": "response.create"})).await;
    let events = until(&mut client, "response.done").await;
    assert_eq!(
        first(&events, "response.output_audio_transcript.done")["transcript"],
        "You said: press one"
    );
}

#[tokio::test]
async fn bad_events_get_errors_and_the_session_goes_on() {
    let fake = FakeRealtimeVoice::start().await;
    let (mut client, _) = connect(&fake).await;
    client
        .send(Message::Text("{not json".into()))
        .await
        .expect("sent");
    let error = next(&mut client).await.expect("an error");
    assert_eq!(error["error"]["type"], "invalid_request_error");
    send(
        &mut client,
        json!({"type": "output_audio_buffer.clear", "event_id": "evt_webrtc"}),
    )
    .await;
    let error = next(&mut client).await.expect("an error");
    assert_eq!(error["error"]["type"], "invalid_request_error");
    assert_eq!(error["error"]["event_id"], "evt_webrtc");
    send(
        &mut client,
        json!({"type": "input_audio_buffer.append", "audio": "%%%"}),
    )
    .await;
    assert_eq!(next(&mut client).await.expect("an error")["type"], "error");
    send(&mut client, json!({"type": "response.create"})).await;
    let events = until(&mut client, "response.done").await;
    assert_eq!(
        first(&events, "response.output_audio_transcript.done")["transcript"],
        DEFAULT_REPLY
    );
    // Still PCM 24 kHz: 300 ms is 14,400 bytes of PCM16.
    assert_eq!(audio_of(&events).len(), 300 * 48);
    assert_eq!(fake.connections()[0].events.len(), 3, "appends aside");
}

#[tokio::test]
async fn keep_pcm_answers_the_update_but_keeps_pcm() {
    let fake = FakeRealtimeVoice::start().await;
    fake.push_fault(RealtimeVoiceFault::KeepPcm);
    let (mut client, _) = connect(&fake).await;
    let updated = update_for_twilio(&mut client, server_vad(300)).await;
    let audio = &updated["session"]["audio"];
    assert_eq!(audio["input"]["format"]["type"], "audio/pcm");
    assert_eq!(
        audio["output"]["format"],
        json!({"type": "audio/pcm", "rate": 24000})
    );
    assert_eq!(audio["output"]["voice"], "marin", "the rest applies");
    send(&mut client, json!({"type": "response.create"})).await;
    let events = until(&mut client, "response.done").await;
    assert_eq!(audio_of(&events).len(), 300 * 48, "PCM16 24 kHz");
}

#[tokio::test]
async fn faults_after_audio_error_close_and_drop() {
    let fake = FakeRealtimeVoice::start().await;
    fake.push_fault(RealtimeVoiceFault::ErrorEvent {
        code: "server_error".into(),
        message: "The server had an error.".into(),
        after_audio_ms: 100,
    });
    fake.push_fault(RealtimeVoiceFault::CloseWith {
        close_code: 1011,
        code: "server_error".into(),
        after_audio_ms: 100,
    });
    fake.push_fault(RealtimeVoiceFault::Drop {
        after_audio_ms: 100,
    });

    let (mut client, _) = connect(&fake).await;
    update_for_twilio(&mut client, server_vad(300)).await;
    append(&mut client, &silence(200)).await;
    let error = next(&mut client).await.expect("an error");
    assert_eq!(error["error"]["code"], "server_error");
    assert_eq!(error["error"]["type"], "server_error");
    append(&mut client, &silence(200)).await;
    assert!(
        quiet(&mut client, 100).await,
        "once, and the session goes on"
    );
    send(&mut client, json!({"type": "response.create"})).await;
    until(&mut client, "response.done").await;

    let (mut client, _) = connect(&fake).await;
    update_for_twilio(&mut client, server_vad(300)).await;
    append(&mut client, &silence(200)).await;
    let (events, close) = until_close(&mut client).await;
    assert_eq!(kinds(&events), ["error"]);
    assert_eq!(close.map(|c| c.0), Some(1011));

    let (mut client, _) = connect(&fake).await;
    update_for_twilio(&mut client, server_vad(300)).await;
    append(&mut client, &silence(200)).await;
    let (events, close) = until_close(&mut client).await;
    assert!(events.is_empty() && close.is_none(), "{events:?} {close:?}");

    let connections = fake.connections();
    assert_eq!(connections[1].closed_with, Some(1011));
    assert_eq!(connections[2].closed_with, None);
}

#[tokio::test]
async fn the_session_cap_closes_with_1001() {
    let fake = FakeRealtimeVoice::start().await;
    fake.push_fault(RealtimeVoiceFault::SessionCap { after_ms: 150 });
    let (mut client, _) = connect(&fake).await;
    let (events, close) = until_close(&mut client).await;
    assert_eq!(kinds(&events), ["error"]);
    assert_eq!(events[0]["error"]["code"], "session_expired");
    let (code, reason) = close.expect("a close frame");
    assert_eq!(code, 1001);
    assert_eq!(
        reason,
        "Your session hit the maximum duration of 60 minutes."
    );
}

#[test]
fn reply_audio_is_loud_deterministic_and_differs_per_reply() {
    let first = reply_audio(0, 800);
    assert_eq!(first, reply_audio(0, 800));
    assert_eq!(reply_audio(0, 1600)[..800], first[..]);
    assert_ne!(first, reply_audio(1, 800));
    let pcm = mulaw::decode(&first);
    let level = pcm.iter().map(|&s| i32::from(s).abs()).sum::<i32>() / pcm.len() as i32;
    assert!(level > 3000, "{level}");
}

#[test]
fn usage_bills_ten_tokens_a_second_in_and_twenty_out() {
    let usage = usage(3000, 1500, 4, 2);
    assert_eq!(usage["input_token_details"]["audio_tokens"], 30);
    assert_eq!(usage["output_token_details"]["audio_tokens"], 30);
    assert_eq!(usage["input_tokens"], 34);
    assert_eq!(usage["output_tokens"], 32);
    assert_eq!(usage["total_tokens"], 66);
}
