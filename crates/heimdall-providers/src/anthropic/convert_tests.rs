//! Unit tests of the request/response translations.

use serde_json::json;

use super::*;

fn openai(body: serde_json::Value) -> ChatRequest {
    serde_json::from_value(body).unwrap()
}

#[test]
fn system_images_and_tools_translate_to_anthropic() {
    let req = openai(json!({
        "model": "claude", "max_tokens": 50, "stop": "END", "user": "u1",
        "messages": [
            {"role": "system", "content": "sys one"},
            {"role": "developer", "content": "sys two"},
            {"role": "user", "content": [
                {"type": "text", "text": "what is this"},
                {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}},
                {"type": "image_url", "image_url": {"url": "https://x/y.png"}}]},
            {"role": "assistant", "content": null, "tool_calls": [
                {"id": "c1", "type": "function", "function": {"name": "f", "arguments": "{\"a\":1}"}}]},
            {"role": "tool", "tool_call_id": "c1", "content": "42"},
            {"role": "tool", "tool_call_id": "c2", "content": "43"}
        ],
        "tools": [{"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}],
        "tool_choice": "required", "parallel_tool_calls": false
    }));
    let out = serde_json::to_value(openai_request_to_anthropic(&req).unwrap()).unwrap();
    assert_eq!(out["system"], "sys one\n\nsys two");
    assert_eq!(out["max_tokens"], 50);
    assert_eq!(out["stop_sequences"], json!(["END"]));
    assert_eq!(out["metadata"]["user_id"], "u1");
    let user = &out["messages"][0]["content"];
    assert_eq!(
        user[1]["source"],
        json!({"type": "base64", "media_type": "image/png", "data": "AAAA"})
    );
    assert_eq!(
        user[2]["source"],
        json!({"type": "url", "url": "https://x/y.png"})
    );
    assert_eq!(out["messages"][1]["content"][0]["type"], "tool_use");
    assert_eq!(out["messages"][1]["content"][0]["input"], json!({"a": 1}));
    // both tool results merged into one user turn
    assert_eq!(out["messages"][2]["role"], "user");
    assert_eq!(out["messages"][2]["content"].as_array().unwrap().len(), 2);
    assert_eq!(out["tools"][0]["input_schema"], json!({"type": "object"}));
    assert_eq!(
        out["tool_choice"],
        json!({"type": "any", "disable_parallel_tool_use": true})
    );
}

#[test]
fn missing_max_tokens_gets_a_default() {
    let req = openai(json!({"model": "c", "messages": [{"role": "user", "content": "hi"}]}));
    assert_eq!(
        openai_request_to_anthropic(&req).unwrap().max_tokens,
        Some(DEFAULT_MAX_TOKENS)
    );
}

#[test]
fn anthropic_response_with_tool_use_and_cache_becomes_openai() {
    let resp: MessagesResponse = serde_json::from_value(json!({
        "id": "msg_1", "type": "message", "role": "assistant", "model": "claude",
        "content": [{"type": "text", "text": "calling"}, {"type": "tool_use", "id": "t1", "name": "f", "input": {"x": 2}}],
        "stop_reason": "tool_use", "stop_sequence": null,
        "usage": {"input_tokens": 10, "output_tokens": 5, "cache_read_input_tokens": 100, "cache_creation_input_tokens": 20}
    }))
    .unwrap();
    let out = anthropic_response_to_openai(resp, 7);
    assert_eq!(out.choices[0].finish_reason.as_deref(), Some("tool_calls"));
    let call = &out.choices[0].message.tool_calls.as_ref().unwrap()[0];
    assert_eq!(call.function.arguments, "{\"x\":2}");
    let u = out.usage.unwrap();
    assert_eq!(
        (u.prompt_tokens, u.completion_tokens, u.total_tokens),
        (130, 5, 135)
    );
    assert_eq!(u.cached_tokens(), 100);
    assert_eq!(u.cache_creation_tokens(), 20);
    // and back again
    let back = usage_to_anthropic(&u);
    assert_eq!(
        (
            back.input_tokens,
            back.cache_read_input_tokens,
            back.cache_creation_input_tokens
        ),
        (10, Some(100), Some(20))
    );
}

#[test]
fn stop_reasons_map_both_ways() {
    for (a, o) in [
        ("end_turn", "stop"),
        ("max_tokens", "length"),
        ("tool_use", "tool_calls"),
    ] {
        assert_eq!(finish_reason_from_anthropic(a), o);
        assert_eq!(stop_reason_from_openai(o), a);
    }
}

#[test]
fn anthropic_request_translates_to_openai() {
    let req: MessagesRequest = serde_json::from_value(json!({
        "model": "m", "max_tokens": 10, "system": [{"type": "text", "text": "sys"}],
        "messages": [
            {"role": "user", "content": [{"type": "text", "text": "look"},
                {"type": "image", "source": {"type": "base64", "media_type": "image/jpeg", "data": "BBBB"}}]},
            {"role": "assistant", "content": [{"type": "tool_use", "id": "t1", "name": "f", "input": {"q": 1}}]},
            {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t1", "content": [{"type": "text", "text": "res"}]}]}
        ],
        "tools": [{"name": "f", "input_schema": {"type": "object"}}],
        "tool_choice": {"type": "tool", "name": "f"},
        "stop_sequences": ["x"]
    }))
    .unwrap();
    let out = serde_json::to_value(anthropic_request_to_openai(&req).unwrap()).unwrap();
    assert_eq!(
        out["messages"][0],
        json!({"role": "system", "content": "sys"})
    );
    assert_eq!(
        out["messages"][1]["content"][1]["image_url"]["url"],
        "data:image/jpeg;base64,BBBB"
    );
    assert_eq!(
        out["messages"][2]["tool_calls"][0]["function"]["arguments"],
        "{\"q\":1}"
    );
    assert_eq!(
        out["messages"][3],
        json!({"role": "tool", "content": "res", "tool_call_id": "t1"})
    );
    assert_eq!(
        out["tool_choice"],
        json!({"type": "function", "function": {"name": "f"}})
    );
    assert_eq!(out["stop"], json!(["x"]));
    assert_eq!(out["max_tokens"], 10);
}

#[test]
fn openai_response_translates_to_anthropic() {
    let resp: ChatResponse = serde_json::from_value(json!({
        "id": "c", "object": "chat.completion", "created": 1, "model": "gpt",
        "choices": [{"index": 0, "finish_reason": "length", "message": {"role": "assistant", "content": "hi"}}],
        "usage": {"prompt_tokens": 12, "completion_tokens": 3, "total_tokens": 15, "prompt_tokens_details": {"cached_tokens": 2}}
    }))
    .unwrap();
    let out = openai_response_to_anthropic(resp);
    assert_eq!(out.stop_reason.as_deref(), Some("max_tokens"));
    assert_eq!(out.content[0].text.as_deref(), Some("hi"));
    assert_eq!(
        (
            out.usage.input_tokens,
            out.usage.output_tokens,
            out.usage.cache_read_input_tokens
        ),
        (10, 3, Some(2))
    );
}
