//! `/api/agents` and the call history filtered by agent.

use super::*;

#[tokio::test]
async fn the_agents_api_lists_routes_and_filters_calls_by_agent() {
    let (server, dir) = echo_agents(&[]).await;
    let (status, list) = server.api(Method::GET, "/api/agents", None).await;
    assert_eq!(status, 200, "{list}");
    assert_eq!(list["default"], "reception", "{list}");
    let agents = list["agents"].as_array().expect("agents");
    let by_name = |name: &str| {
        agents
            .iter()
            .find(|a| a["name"] == name)
            .unwrap_or_else(|| panic!("{name} in {list}"))
    };
    assert_eq!(
        agents
            .iter()
            .map(|a| a["name"].as_str())
            .collect::<Vec<_>>(),
        [
            "default",
            "pronto-it",
            "quiet",
            "reception",
            "sales",
            "support"
        ]
        .map(Some),
        "every file, and the agent of config/pronto.toml"
    );
    let sales = by_name("sales");
    assert_eq!(sales["routes"]["numbers"], json!([SALES_NUMBER]), "{sales}");
    assert_eq!(sales["routes"]["paths"], json!([]), "{sales}");
    assert_eq!(sales["routes"]["default"], false, "{sales}");
    assert_eq!(sales["webhook_url"], "https://pronto.test/voice/sales");
    assert_eq!(sales["description"], "Sales line");
    assert_eq!(sales["engine"], "echo");
    assert_eq!(
        sales["file"].as_str(),
        Some(dir.join("sales.toml").display().to_string().as_str())
    );
    assert_eq!(by_name("support")["routes"]["paths"], json!(["assistenza"]));
    let italian = by_name("pronto-it");
    assert_eq!(italian["routes"]["from_prefixes"], json!(["+39"]));
    assert_eq!(italian["language"], "it");
    assert_eq!(by_name("reception")["routes"]["default"], true);
    assert_eq!(by_name("reception")["language"], "en");
    let quiet = by_name("quiet")["routes"].clone();
    assert_eq!(
        quiet,
        json!({"numbers": [], "paths": [], "from_prefixes": [], "default": false})
    );
    assert_eq!(by_name("default")["file"], Value::Null);

    let (status, one) = server.api(Method::GET, "/api/agents/pronto-it", None).await;
    assert_eq!(status, 200, "{one}");
    assert_eq!(one["name"], "pronto-it");
    assert_eq!(one["greeting"], "Pronto!");
    assert_eq!(one["language"], "it");
    assert_eq!(one["routes"]["from_prefixes"], json!(["+39"]));
    assert!(one["prompt_file"].is_string(), "{one}");
    assert_eq!(one["knowledge_files"], json!([]));
    let (status, one) = server.api(Method::GET, "/api/agents/reception", None).await;
    assert_eq!((status, &one["greeting"]), (200, &json!("Reception here.")));
    for unknown in ["nobody", "Sales", "status"] {
        let (status, body) = server
            .api(Method::GET, &format!("/api/agents/{unknown}"), None)
            .await;
        assert_eq!(status, 404, "{unknown}: {body}");
        assert!(body["error"].is_string(), "{body}");
    }
    let (status, _) = server.get_json("/api/agents", None).await;
    assert_eq!(status, 401, "the agents are the operators'");

    // Calls by agent.
    let mut sids = Vec::new();
    for (path, from, to) in [
        ("/voice", US_CALLER, SALES_NUMBER),
        ("/voice/sales", US_CALLER, OTHER_NUMBER),
        ("/voice", ITALIAN_CALLER, OTHER_NUMBER),
        ("/voice", US_CALLER, OTHER_NUMBER),
    ] {
        let (sid, _) = webhook(&server, path, &sim_for(&server, from, to)).await;
        record(&server, &sid).await;
        sids.push(sid);
    }
    let listed = |query: &'static str| {
        let server = &server;
        async move {
            let (status, page) = server
                .api(Method::GET, &format!("/api/calls{query}"), None)
                .await;
            assert_eq!(status, 200, "{query}: {page}");
            let mut sids: Vec<String> = page["calls"]
                .as_array()
                .expect("calls")
                .iter()
                .map(|c| {
                    assert!(c["agent"].is_string(), "{c}");
                    c["call_sid"].as_str().expect("sid").to_string()
                })
                .collect();
            sids.sort();
            sids
        }
    };
    let sorted = |mut v: Vec<String>| {
        v.sort();
        v
    };
    assert_eq!(listed("?agent=sales").await, sorted(sids[..2].to_vec()));
    assert_eq!(listed("?agent=pronto-it").await, vec![sids[2].clone()]);
    assert_eq!(listed("?agent=reception").await, vec![sids[3].clone()]);
    assert_eq!(listed("?agent=nobody").await, Vec::<String>::new());
    assert_eq!(listed("").await, sorted(sids.clone()));
    for bad in ["Sales", "a%2Fb", "-x", "status"] {
        let (status, body) = server
            .api(Method::GET, &format!("/api/calls?agent={bad}"), None)
            .await;
        assert_eq!(status, 400, "{bad}: {body}");
        assert!(
            body["error"].as_str().is_some_and(|e| e.contains("agent")),
            "{body}"
        );
    }

    let (status, doc) = server.api(Method::GET, "/api/openapi.json", None).await;
    assert_eq!(status, 200);
    for path in ["/api/agents", "/api/agents/{name}", "/api/agents/reload"] {
        assert!(
            doc["paths"][path].is_object(),
            "{path} not in the OpenAPI document"
        );
    }
    assert!(doc["paths"]["/api/agents/reload"]["post"].is_object());
    let list_params = doc["paths"]["/api/calls"]["get"]["parameters"].to_string();
    assert!(list_params.contains("\"agent\""), "{list_params}");
}
