//! `POST /admin/users` (PROTOCOL v1.1 §6.5): accounts in bulk for operators,
//! checked like registrations, all created or none, admin only.

mod support;

use anyhow::{Context, Result};
use serde_json::{Value, json};
use support::{Backend, start_server};

fn accounts(names: &[&str]) -> Value {
    let users: Vec<Value> = names
        .iter()
        .map(|n| json!({"username": n, "password": "bulk-password", "nickname": n.to_uppercase()}))
        .collect();
    json!({ "users": users })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admins_create_accounts_in_bulk_all_or_none() -> Result<()> {
    let s = start_server(Backend::Embedded).await?;
    let admin = s.user("admin").await?;
    let bob = s.user("bob").await?;
    let (status, body) = s
        .post(
            &admin,
            "/admin/users",
            accounts(&["bulk_a", "bulk_b", "bulk_c"]),
        )
        .await?;
    assert_eq!(status, 201, "{body}");
    let ids: Vec<i64> = body["user_ids"]
        .as_array()
        .context("user_ids")?
        .iter()
        .filter_map(|id| id.as_str()?.parse().ok())
        .collect();
    assert!(
        ids.len() == 3 && ids.windows(2).all(|w| w[0] < w[1]),
        "{body}"
    );
    let login = |name: &str| {
        s.post_anonymous(
            "/auth/login",
            json!({"username": name, "password": "bulk-password"}),
        )
    };
    let (status, session) = login("bulk_b").await?;
    assert_eq!(status, 200, "{session}");
    assert_eq!(
        session["user_id"].as_str(),
        Some(ids[1].to_string().as_str())
    );

    let (status, _) = s.post(&bob, "/admin/users", accounts(&["bulk_x"])).await?;
    assert_eq!(status, 403, "not an admin");
    let (status, body) = s
        .post(&admin, "/admin/users", accounts(&["bulk_d", "bulk_a"]))
        .await?;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (409, Some("conflict"))
    );
    assert_eq!(
        login("bulk_d").await?.0,
        401,
        "nothing of a refused batch is created"
    );
    for (bad, why) in [
        (accounts(&["bulk_e", "BULK_E"]), "a name twice"),
        (accounts(&[]), "no accounts"),
        (accounts(&vec!["bulk_many"; 1001]), "over 1,000"),
        (accounts(&["x"]), "a bad username"),
    ] {
        let (status, body) = s.post(&admin, "/admin/users", bad).await?;
        assert_eq!(status, 400, "{why}: {body}");
    }
    Ok(())
}
