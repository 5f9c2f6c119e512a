//! Fuzzed control-API requests (proptest): whatever the method, path, body and caller, the router
//! never panics, answers a bad request with a 4xx, never a 5xx, and answers 403 exactly when the
//! caller lacks the route's role. The backend here is a fake (no camera or queue), so only the
//! API's own parsing, limits, roles and validation are under test.

use proptest::prelude::*;
use serde_json::{json, Value};

use kiosk_agent::api::{required_role, route, AcceptAll as Fake, Caller, Role};
use kiosk_agent::httpd::Request;

fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        any::<f64>().prop_map(|f| json!(f)),
        "[a-zA-Z0-9_ ]{0,12}".prop_map(Value::String),
        // Text-direction and control characters, and texts past every cap.
        "[a-z\u{202E}\u{2066}\u{0007}\u{00E9}]{0,6}".prop_map(Value::String),
        (1usize..300).prop_map(|n| Value::String("x".repeat(n))),
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

fn caller() -> impl Strategy<Value = Caller> {
    prop_oneof![Just(None), Just(Some(Role::Operate)), Just(Some(Role::Administer))]
        .prop_map(|role| Caller { uid: 4242, role })
}

const ADMIN: Caller = Caller { uid: 0, role: Some(Role::Administer) };

proptest! {
    #![proptest_config(ProptestConfig { cases: 4000, ..ProptestConfig::default() })]

    #[test]
    fn any_request_gets_an_answer_and_never_a_5xx(req in request(), who in caller()) {
        let resp = route(&Fake, &who, &req);
        prop_assert!(resp.status < 500, "{} {} -> {}", req.method, req.path, resp.status);
        let lacking = required_role(&req).is_some_and(|need| who.role.is_none_or(|r| r < need));
        prop_assert_eq!(resp.status == 403, lacking, "{} {} by {:?}", req.method, req.path, who.role);
        if resp.status >= 400 {
            let v: Value = serde_json::from_slice(&resp.body).unwrap();
            prop_assert!(v["error"].as_str().is_some_and(|e| !e.is_empty()));
        }
        // A 405 lists the methods the path takes, and each of them is taken.
        if resp.status == 405 {
            let allow = resp.allow.expect("a 405 says what is allowed");
            for m in allow.split(", ").filter(|m| *m != "HEAD") {
                let other = route(&Fake, &ADMIN, &Request { method: m.into(), ..req.clone() });
                prop_assert!(other.status != 405, "{m} {} is listed in Allow but refused", req.path);
            }
        }
    }

    #[test]
    fn session_bodies_are_accepted_or_refused_with_a_named_field(body in json_value()) {
        let req = Request { method: "POST".into(), path: "/v1/sessions".into(), query: String::new(), headers: vec![], body: serde_json::to_vec(&body).unwrap() };
        let resp = route(&Fake, &Caller { uid: 4242, role: Some(Role::Operate) }, &req);
        prop_assert!(resp.status == 202 || (400..500).contains(&resp.status));
        prop_assert!(resp.status != 403, "an operator may start sessions");
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
    assert_eq!(route(&Fake, &ADMIN, &req).status, 202);
}

fn post(path: &str, body: Value) -> Request {
    Request {
        method: "POST".into(),
        path: path.into(),
        query: String::new(),
        headers: vec![],
        body: serde_json::to_vec(&body).unwrap(),
    }
}

fn error_of(resp: &kiosk_agent::httpd::Response) -> String {
    let v: Value = serde_json::from_slice(&resp.body).unwrap();
    v["error"].as_str().unwrap().to_string()
}

#[test]
fn texts_have_caps_and_no_direction_overrides() {
    let base = json!({"job_type": 1, "user_id": "u", "id_info": {"country": "NG", "id_type": "NIN_V2", "id_number": "1", "entered": true}});
    let with = |f: &dyn Fn(&mut Value)| {
        let mut b = base.clone();
        f(&mut b);
        route(&Fake, &ADMIN, &post("/v1/sessions", b))
    };
    let r = with(&|b| b["user_id"] = json!("user\u{202E}gpj.exe"));
    assert_eq!(r.status, 422);
    assert!(error_of(&r).contains("user_id") && error_of(&r).contains("U+202E"), "{}", error_of(&r));
    let r = with(&|b| b["id_info"]["first_name"] = json!("A".repeat(101)));
    assert!(error_of(&r).contains("id_info.first_name") && error_of(&r).contains("100"), "{}", error_of(&r));
    let r = with(&|b| b["id_info"]["first_name"] = json!("Ọlábísí Adébáyọ̀"));
    assert_eq!(r.status, 202, "names in their own script are fine: {}", error_of(&r));
    let r = with(&|b| b["options"] = json!({"callback_url": "http://partner.example/cb"}));
    assert!(r.status == 422 && error_of(&r).contains("https"), "{}", error_of(&r));
    let r = with(&|b| b["job_id"] = json!("job\u{2066}1"));
    assert_eq!(r.status, 422);
}

#[test]
fn an_operator_reads_only_its_own_jobs_and_administers_nothing() {
    let op = Caller { uid: 4242, role: Some(Role::Operate) };
    let get = |path: &str| Request {
        method: "GET".into(),
        path: path.into(),
        query: String::new(),
        headers: vec![],
        body: vec![],
    };
    for (req, need) in [
        (get("/v1/jobs"), "administer"),
        (Request { method: "DELETE".into(), ..get("/v1/jobs/j") }, "administer"),
        (post("/v1/enhanced_kyc", json!({})), "administer"),
        (get("/metrics"), "administer"),
    ] {
        let r = route(&Fake, &op, &req);
        assert_eq!(r.status, 403, "{} {}", req.method, req.path);
        assert!(error_of(&r).contains(need) && error_of(&r).contains("uid 4242"), "{}", error_of(&r));
    }
    let nobody = Caller { uid: 4243, role: None };
    let health = |who: &Caller| {
        let r = route(&Fake, who, &get("/v1/health"));
        assert_eq!(r.status, 200, "health is open to any peer");
        serde_json::from_slice::<serde_json::Value>(&r.body).unwrap()
    };
    // What the server said about the link (it may quote the request) is for callers with a role.
    let open = health(&nobody);
    assert_eq!((&open["status"], &open["uplink"]["link"]), (&json!("link_down"), &json!("down")), "{open}");
    assert!(!open.to_string().contains("502"), "{open}");
    assert!(health(&op)["uplink"]["error"].as_str().unwrap().contains("HTTP 502"));
    assert_eq!(route(&Fake, &nobody, &get("/v1/sessions/s")).status, 403);
    assert_eq!(route(&Fake, &op, &get("/v1/sessions/s")).status, 200);
    // A path that names nothing is a 404 for everyone: an operator's typo is not answered with
    // advice to make it an admin.
    for path in ["/v1/session", "/v2/sessions", "//v1/sessions", "/v1/job/abc"] {
        for who in [&op, &nobody] {
            let r = route(&Fake, who, &get(path));
            assert_eq!(r.status, 404, "{path}: {}", error_of(&r));
            assert!(error_of(&r).contains("no endpoint") && !error_of(&r).contains("admins"), "{}", error_of(&r));
        }
    }
    assert!(error_of(&route(&Fake, &op, &get("//v1/sessions"))).contains("trailing"));
    // Nor is a method no endpoint takes: 405 for everyone.
    let wrong = Request { method: "DELETE".into(), ..get("/v1/jobs") };
    assert_eq!((route(&Fake, &op, &wrong).status, route(&Fake, &ADMIN, &wrong).status), (405, 405));
    assert_eq!(route(&Fake, &op, &wrong).allow, Some("GET, HEAD"));
}
