//! Conversation settings (PROTOCOL v1.1 §6.4) follow the user to their other
//! devices, on standalone and across the cluster's two gateways.

use std::time::Duration;

use anyhow::Result;
use serde_json::json;

use super::unique;
use crate::support::Target;

pub async fn settings_reach_the_users_other_devices(t: &Target) -> Result<()> {
    // REST calls carry the token's device, `default`.
    let alice = t.user(&unique("alice")).await?;
    let bob = t.user(&unique("bob")).await?;
    let (_, ack) = t
        .send(
            &alice,
            json!({"client_msg_id":"s1","to_user_id":bob.id,"content":"hi"}),
        )
        .await?;
    let cid = ack["conversation_id"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let mut phone = t.connect_device(&alice, 1, "phone").await?;
    let mut same = t.connect_device(&alice, 0, "default").await?;
    let (status, now) = t
        .put(
            &alice,
            &format!("/conversations/{cid}/settings"),
            json!({"muted":true}),
        )
        .await?;
    let expected = json!({"conversation_id":cid,"muted":true,"pinned":false,"archived":false});
    assert_eq!((status, &now), (200, &expected));
    let mut frame = phone.next_of("conversation_settings").await?;
    frame.as_object_mut().map(|f| f.remove("type"));
    assert_eq!(frame, expected);
    // The device that made the change is not told of it.
    tokio::time::sleep(Duration::from_millis(500)).await;
    same.send(json!({"type":"ping"})).await?;
    loop {
        let next = same.next().await?;
        assert_ne!(
            next["type"], "conversation_settings",
            "the asking device was told"
        );
        if next["type"] == "pong" {
            break;
        }
    }
    // Bob's settings are his own.
    let (_, list) = t.get(&bob, "/conversations").await?;
    let entry = &list["conversations"][0];
    assert_eq!(
        (&entry["conversation_id"], &entry["muted"]),
        (&json!(cid), &json!(false))
    );
    Ok(())
}
