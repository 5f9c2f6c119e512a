//! Fuzzed control-API requests (proptest): whatever the method, path and body, the router never
//! panics and answers a bad request with a 4xx, never a 5xx. The backend here is a fake (no
//! camera or queue), so only the API's own parsing and validation are under test.

use proptest::prelude::*;
use serde_json::{json, Value};

use kiosk_agent::api::{route, AcceptAll as Fake};
use kiosk_agent::httpd::Request;

fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        any::<f64>().prop_map(|f| json!(f)),
        "[a-zA-Z0-9_ ]{0,12}".prop_map(Value::String),
        prop_oneof![Just("NG"), Just("PASSPORT"), Just("true"), Just("")].prop_map(|s| Value::String(s.into())),
    ];
    leaf.prop_recursive(3, 24, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::btree_map(
                prop_oneof![
                    Just("job_type".to_string()),
                    Just("user_id".to_string()),
                    Just("job_id".to_string()),
                    Just("id_info".to_string()),
                    Just("options".to_string()),
                    Just("partner_params".to_string()),
                    Just("granted".to_string()),
                    Just("country".to_string()),
                    Just("entered".to_string()),
                    Just("id_number".to_string()),
                    Just("id_type".to_string()),
                    "[a-z_]{1,8}",
                ],
                inner,
                0..6
            )
            .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

fn request() -> impl Strategy<Value = Request> {
    let method = prop_oneof![
        Just("GET".to_string()),
        Just("POST".to_string()),
        Just("DELETE".to_string()),
        Just("PUT".to_string()),
        "[A-Z]{1,7}"
    ];
    let path = prop_oneof![
        Just("/v1/sessions".to_string()),
        Just("/v1/sessions/s".to_string()),
        Just("/v1/sessions/s/consent".to_string()),
        Just("/v1/sessions/x/cancel".to_string()),
        Just("/v1/jobs".to_string()),
        Just("/v1/jobs/j".to_string()),
        Just("/v1/enhanced_kyc".to_string()),
        Just("/v1/health".to_string()),
        Just("/metrics".to_string()),
        "/[a-z0-9/._%-]{0,30}",
    ];
    let body = prop_oneof![
        json_value().prop_map(|v| serde_json::to_vec(&v).unwrap()),
        prop::collection::vec(any::<u8>(), 0..64),
        Just(Vec::new()),
    ];
    (method, path, body).prop_map(|(m, p, b)| Request {
        method: m,
        path: p,
        query: String::new(),
        headers: vec![],
        body: b,
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 4000, ..ProptestConfig::default() })]

    #[test]
    fn any_request_gets_an_answer_and_never_a_5xx(req in request()) {
        let resp = route(&Fake, &req);
        prop_assert!(resp.status < 500, "{} {} -> {}", req.method, req.path, resp.status);
        if resp.status >= 400 {
            let v: Value = serde_json::from_slice(&resp.body).unwrap();
            prop_assert!(v["error"].as_str().is_some_and(|e| !e.is_empty()));
        }
    }

    #[test]
    fn session_bodies_are_accepted_or_refused_with_a_named_field(body in json_value()) {
        let req = Request { method: "POST".into(), path: "/v1/sessions".into(), query: String::new(), headers: vec![], body: serde_json::to_vec(&body).unwrap() };
        let resp = route(&Fake, &req);
        prop_assert!(resp.status == 202 || (400..500).contains(&resp.status));
        if resp.status == 422 {
            let v: Value = serde_json::from_slice(&resp.body).unwrap();
            prop_assert!(v["error"].as_str().unwrap().starts_with("invalid "), "{v}");
        }
    }
}

#[test]
fn a_valid_session_request_is_accepted() {
    let body = json!({"job_type": 1, "user_id": "u", "id_info": {"country": "NG", "id_type": "NIN_V2", "id_number": "1", "entered": true}});
    let req = Request {
        method: "POST".into(),
        path: "/v1/sessions".into(),
        query: String::new(),
        headers: vec![],
        body: serde_json::to_vec(&body).unwrap(),
    };
    assert_eq!(route(&Fake, &req).status, 202);
}
