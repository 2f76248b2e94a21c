use std::time::Duration;

use super::*;
use crate::providers::ToolSpec;
use crate::providers::sse::replay;

fn settings(temperature: Option<f32>) -> LlmSettings {
    LlmSettings {
        model: "claude-haiku-4-5".into(),
        max_tokens: 300,
        temperature,
        first_token_timeout: Duration::from_secs(3),
    }
}

fn message(role: Role, content: &str) -> ChatMessage {
    ChatMessage {
        role,
        content: content.into(),
    }
}

fn text(s: &str) -> LlmEvent {
    LlmEvent::Text(s.into())
}

/// `(event name, data)` pairs as a stream.
fn sse(events: &[(&str, &str)]) -> String {
    events
        .iter()
        .map(|(name, data)| format!("event: {name}\ndata: {data}\n\n"))
        .collect()
}

#[test]
fn body_has_system_on_top_tools_with_input_schema_and_a_short_temperature() {
    let request = ChatRequest {
        system: "Be brief.".into(),
        messages: vec![message(Role::User, "Hi")],
        tools: vec![ToolSpec {
            name: "end_call".into(),
            description: "Hang up".into(),
            parameters: json!({"type": "object", "properties": {}}),
        }],
    };
    let body = request_body(&settings(Some(0.7)), &request);
    assert_eq!(
        body,
        json!({
            "model": "claude-haiku-4-5",
            "max_tokens": 300,
            "system": "Be brief.",
            "stream": true,
            "messages": [{"role": "user", "content": "Hi"}],
            "tools": [{
                "name": "end_call",
                "description": "Hang up",
                "input_schema": {"type": "object", "properties": {}},
            }],
            "temperature": 0.7,
        })
    );
    let bare = ChatRequest {
        system: String::new(),
        tools: vec![],
        ..request
    };
    let body = request_body(&settings(None), &bare);
    for absent in ["system", "tools", "temperature"] {
        assert!(body.get(absent).is_none(), "{absent} sent: {body}");
    }
}

#[test]
fn empty_messages_are_dropped_and_the_turns_they_separated_joined() {
    let history = [
        message(Role::User, "Hello?"),
        message(Role::Assistant, " "),
        message(Role::User, "Are you there?"),
        message(Role::Assistant, "Yes."),
    ];
    assert_eq!(
        messages(&history),
        vec![
            json!({"role": "user", "content": "Hello?\n\nAre you there?"}),
            json!({"role": "assistant", "content": "Yes."}),
        ]
    );
}

/// anthropic-sdk-python `tests/lib/streaming/fixtures/tool_use_response.txt`
/// (<https://docs.anthropic.com/en/api/messages-streaming>), with an unknown event added.
const TOOL_USE: &str = r#"event: message_start
data: {"type":"message_start","message":{"id":"msg_019Q1hrJbZG26Fb9BQhrkHEr","type":"message","role":"assistant","model":"claude-sonnet-4-20250514","content":[],"stop_reason":null,"stop_sequence":null,"usage":{"input_tokens":377,"output_tokens":1}}}

event: content_block_start
data: {"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}

event: ping
data: {"type": "ping"}

event: content_block_delta
data: {"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"I"}}

event: content_block_delta
data: {"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"'ll check the current weather in Paris for you."}}

event: content_block_stop
data: {"type":"content_block_stop","index":0}

event: some_future_event
data: {"type":"some_future_event","index":7}

event: content_block_start
data: {"type":"content_block_start","index":1,"content_block":{"type":"tool_use","id":"toolu_01NRLabsLyVHZPKxbKvkfSMn","name":"get_weather","caller":{"type":"direct"},"input":{}}}

event: content_block_delta
data: {"type":"content_block_delta","index":1,"delta":{"type":"input_json_delta","partial_json":""}}

event: content_block_delta
data: {"type":"content_block_delta","index":1,"delta":{"type":"input_json_delta","partial_json":"{\"locati"}}

event: content_block_delta
data: {"type":"content_block_delta","index":1,"delta":{"type":"input_json_delta","partial_json":"on\": \"P"}}

event: content_block_delta
data: {"type":"content_block_delta","index":1,"delta":{"type":"input_json_delta","partial_json":"ar"}}

event: content_block_delta
data: {"type":"content_block_delta","index":1,"delta":{"type":"input_json_delta","partial_json":"is\"}"}}

event: content_block_stop
data: {"type":"content_block_stop","index":1}

event: message_delta
data: {"type":"message_delta","delta":{"stop_reason":"tool_use","stop_sequence":null},"usage":{"output_tokens":65}}

event: message_stop
data: {"type":"message_stop"}

"#;

#[test]
fn text_then_a_tool_call_assembled_from_fragments() {
    assert_eq!(
        replay(&mut Answer::default(), TOOL_USE),
        Ok(vec![
            text("I"),
            text("'ll check the current weather in Paris for you."),
            LlmEvent::ToolCall {
                id: "toolu_01NRLabsLyVHZPKxbKvkfSMn".into(),
                name: "get_weather".into(),
                arguments: json!({"location": "Paris"}),
            },
        ])
    );
}

#[test]
fn a_tool_without_input_gets_an_empty_object() {
    let stream = sse(&[
        (
            "content_block_start",
            r#"{"type":"content_block_start","index":0,"content_block":{"type":"tool_use","id":"toolu_1","name":"end_call","input":{}}}"#,
        ),
        (
            "content_block_delta",
            r#"{"type":"content_block_delta","index":0,"delta":{"type":"input_json_delta","partial_json":""}}"#,
        ),
        (
            "content_block_stop",
            r#"{"type":"content_block_stop","index":0}"#,
        ),
        ("message_stop", r#"{"type":"message_stop"}"#),
    ]);
    assert_eq!(
        replay(&mut Answer::default(), &stream),
        Ok(vec![LlmEvent::ToolCall {
            id: "toolu_1".into(),
            name: "end_call".into(),
            arguments: json!({}),
        }])
    );
}

#[test]
fn thinking_blocks_are_skipped() {
    let stream = sse(&[
        (
            "content_block_start",
            r#"{"type":"content_block_start","index":0,"content_block":{"type":"thinking","thinking":""}}"#,
        ),
        (
            "content_block_delta",
            r#"{"type":"content_block_delta","index":0,"delta":{"type":"thinking_delta","thinking":"Hmm"}}"#,
        ),
        (
            "content_block_delta",
            r#"{"type":"content_block_delta","index":1,"delta":{"type":"text_delta","text":"Hi."}}"#,
        ),
        ("message_stop", r#"{"type":"message_stop"}"#),
    ]);
    assert_eq!(
        replay(&mut Answer::default(), &stream),
        Ok(vec![text("Hi.")])
    );
}

fn protocol_error(stream: &str) -> String {
    match replay(&mut Answer::default(), stream) {
        Err(ProviderError::Protocol { detail, .. }) => detail,
        other => panic!("expected a protocol error, got {other:?}"),
    }
}

#[test]
fn errors_in_the_stream() {
    let overloaded = sse(&[(
        "error",
        r#"{"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}"#,
    )]);
    assert!(protocol_error(&overloaded).contains("overloaded_error: Overloaded"));

    let cut = sse(&[(
        "content_block_delta",
        r#"{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"Hi"}}"#,
    )]);
    assert!(protocol_error(&cut).contains("before message_stop"));

    let broken = sse(&[("content_block_delta", r#"{"type":"content_blo"#)]);
    assert!(protocol_error(&broken).contains("not valid JSON"));

    let bad_input = sse(&[
        (
            "content_block_start",
            r#"{"type":"content_block_start","index":0,"content_block":{"type":"tool_use","id":"t","name":"f","input":{}}}"#,
        ),
        (
            "content_block_delta",
            r#"{"type":"content_block_delta","index":0,"delta":{"type":"input_json_delta","partial_json":"{\"a\":"}}"#,
        ),
        (
            "content_block_stop",
            r#"{"type":"content_block_stop","index":0}"#,
        ),
    ]);
    assert!(protocol_error(&bad_input).contains("arguments of tool f"));

    let stray_input = sse(&[(
        "content_block_delta",
        r#"{"type":"content_block_delta","index":3,"delta":{"type":"input_json_delta","partial_json":"{}"}}"#,
    )]);
    assert!(protocol_error(&stray_input).contains("block 3"));
}
