use std::time::Duration;

use super::*;
use crate::providers::sse::replay;
use crate::providers::{ChatMessage, ToolSpec};

fn text(s: &str) -> LlmEvent {
    LlmEvent::Text(s.into())
}

fn call(id: &str, name: &str, arguments: Value) -> LlmEvent {
    LlmEvent::ToolCall {
        id: id.into(),
        name: name.into(),
        arguments,
    }
}

/// `data:` lines as a stream.
fn sse(chunks: &[&str]) -> String {
    chunks.iter().map(|c| format!("data: {c}\n\n")).collect()
}

fn decode(chunks: &[&str]) -> Result<Vec<LlmEvent>, ProviderError> {
    replay(&mut Answer::default(), &sse(chunks))
}

#[test]
fn the_token_limit_is_max_completion_tokens_only_at_openai() {
    for (base, field) in [
        ("https://api.openai.com/v1", "max_completion_tokens"),
        ("https://API.OpenAI.com/v1/", "max_completion_tokens"),
        ("http://localhost:11434/v1", "max_tokens"),
        ("https://api.groq.com/openai/v1", "max_tokens"),
        ("https://api.openai.com.example.net/v1", "max_tokens"),
        ("not a url", "max_tokens"),
    ] {
        assert_eq!(token_limit_field(base), field, "{base}");
    }
}

#[test]
fn body_has_the_system_prompt_first_and_tools_as_functions() {
    let settings = LlmSettings {
        model: "gpt-4o-mini".into(),
        max_tokens: 300,
        temperature: Some(0.2),
        first_token_timeout: Duration::from_secs(3),
    };
    let request = ChatRequest {
        system: "Be brief.".into(),
        messages: vec![
            ChatMessage {
                role: Role::User,
                content: "Hi".into(),
            },
            ChatMessage {
                role: Role::Assistant,
                content: "Hello!".into(),
            },
        ],
        tools: vec![ToolSpec {
            name: "end_call".into(),
            description: "Hang up".into(),
            parameters: json!({"type": "object"}),
        }],
    };
    assert_eq!(
        request_body(&settings, "max_completion_tokens", &request),
        json!({
            "model": "gpt-4o-mini",
            "stream": true,
            "stream_options": {"include_usage": true},
            "max_completion_tokens": 300,
            "messages": [
                {"role": "system", "content": "Be brief."},
                {"role": "user", "content": "Hi"},
                {"role": "assistant", "content": "Hello!"},
            ],
            "tools": [{
                "type": "function",
                "function": {"name": "end_call", "description": "Hang up", "parameters": {"type": "object"}},
            }],
            "temperature": 0.2,
        })
    );
    let settings = LlmSettings {
        temperature: None,
        ..settings
    };
    let bare = ChatRequest {
        system: String::new(),
        tools: vec![],
        ..request
    };
    let body = request_body(&settings, "max_tokens", &bare);
    assert_eq!(body["max_tokens"], 300);
    assert_eq!(body["messages"][0]["role"], "user");
    assert!(body.get("tools").is_none() && body.get("temperature").is_none());
}

/// openai-python fixture `e2aad469….bin`
/// (<https://github.com/openai/openai-python>,
/// `.inline-snapshot/external/`),
/// middle chunks elided, with the newer `usage: null` and `obfuscation`.
#[test]
fn text_chunks_then_usage_then_done() {
    let head = r#""id":"chatcmpl-AB","object":"chat.completion.chunk","created":1727346168,"model":"gpt-4o-2024-08-06","system_fingerprint":"fp_5050236cbd""#;
    let chunks = [
        format!(
            r#"{{{head},"choices":[{{"index":0,"delta":{{"role":"assistant","content":"","refusal":null}},"logprobs":null,"finish_reason":null}}],"usage":null,"obfuscation":"r4N7"}}"#
        ),
        format!(
            r#"{{{head},"choices":[{{"index":0,"delta":{{"content":"I'm"}},"logprobs":null,"finish_reason":null}}],"usage":null}}"#
        ),
        format!(
            r#"{{{head},"choices":[{{"index":0,"delta":{{"content":" unable."}},"logprobs":null,"finish_reason":null}}]}}"#
        ),
        format!(
            r#"{{{head},"choices":[{{"index":0,"delta":{{}},"logprobs":null,"finish_reason":"stop"}}]}}"#
        ),
        format!(
            r#"{{{head},"choices":[],"usage":{{"prompt_tokens":14,"completion_tokens":30,"total_tokens":44}}}}"#
        ),
        "[DONE]".to_string(),
    ];
    let chunks: Vec<&str> = chunks.iter().map(String::as_str).collect();
    assert_eq!(decode(&chunks), Ok(vec![text("I'm"), text(" unable.")]));
}

#[test]
fn a_fragmented_tool_call_is_emitted_whole_at_its_finish() {
    let events = decode(&[
        r#"{"choices":[{"index":0,"delta":{"role":"assistant","content":"One moment."}}]}"#,
        r#"{"choices":[{"index":0,"delta":{"content":null,"tool_calls":[{"index":0,"id":"call_4X","type":"function","function":{"name":"get_weather","arguments":""}}]}}]}"#,
        r#"{"choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"function":{"arguments":"{\""}}]}}]}"#,
        r#"{"choices":[{"index":0,"delta":{"tool_calls":[{"index":1,"id":"call_DN","type":"function","function":{"name":"get_time","arguments":""}}]}}]}"#,
        r#"{"choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"function":{"arguments":"city\":\"New York\"}"}}]}}]}"#,
        r#"{"choices":[{"index":0,"delta":{},"finish_reason":"tool_calls"}]}"#,
        "[DONE]",
    ]);
    assert_eq!(
        events,
        Ok(vec![
            text("One moment."),
            call("call_4X", "get_weather", json!({"city": "New York"})),
            call("call_DN", "get_time", json!({})),
        ])
    );
}

#[test]
fn ollama_whole_tool_calls_repeated_roles_and_no_done_after_the_finish() {
    let events = decode(&[
        r#"{"id":"chatcmpl-18","system_fingerprint":"fp_ollama","choices":[{"index":0,"delta":{"role":"assistant","content":"Sure."},"finish_reason":null}]}"#,
        r#"{"choices":[{"index":0,"delta":{"role":"assistant","content":"","tool_calls":[{"id":"call_a","index":0,"type":"function","function":{"name":"run","arguments":"{\"command\":\"ls\"}"}}]},"finish_reason":null}]}"#,
        r#"{"choices":[{"index":0,"delta":{"role":"assistant","content":"","tool_calls":[{"id":"call_b","index":0,"type":"function","function":{"name":"run","arguments":{"command":"ls -l"}}}]},"finish_reason":null}]}"#,
        r#"{"choices":[{"index":0,"delta":{"role":"assistant","content":""},"finish_reason":"tool_calls"}]}"#,
    ]);
    assert_eq!(
        events,
        Ok(vec![
            text("Sure."),
            call("call_a", "run", json!({"command": "ls"})),
            call("call_b", "run", json!({"command": "ls -l"})),
        ])
    );
}

fn protocol_error(chunks: &[&str]) -> String {
    match decode(chunks) {
        Err(ProviderError::Protocol { detail, .. }) => detail,
        other => panic!("expected a protocol error, got {other:?}"),
    }
}

#[test]
fn errors_in_the_stream() {
    let cut = protocol_error(&[r#"{"choices":[{"index":0,"delta":{"content":"Hi"}}]}"#]);
    assert!(cut.contains("before [DONE]"), "{cut}");

    let error = protocol_error(&[
        r#"{"choices":[{"index":0,"delta":{"content":"Hi"}}]}"#,
        r#"{"error":{"message":"The server had an error","type":"server_error","param":null,"code":null}}"#,
    ]);
    assert!(error.contains("The server had an error"), "{error}");

    let broken = protocol_error(&[r#"{"choices":[{"index":0,"delta":{"content":"Hi"#]);
    assert!(broken.contains("not valid JSON"), "{broken}");

    let bad_arguments = protocol_error(&[
        r#"{"choices":[{"delta":{"tool_calls":[{"index":0,"id":"c","function":{"name":"f","arguments":"{\"a\""}}]},"finish_reason":"tool_calls"}]}"#,
    ]);
    assert!(
        bad_arguments.contains("arguments of tool f"),
        "{bad_arguments}"
    );

    let nameless = protocol_error(&[
        r#"{"choices":[{"delta":{"tool_calls":[{"index":0,"function":{"arguments":"{}"}}]}}]}"#,
        "[DONE]",
    ]);
    assert!(nameless.contains("no name"), "{nameless}");
}
