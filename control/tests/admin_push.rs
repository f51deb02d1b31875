//! Admin push: one set of rules for REST and gRPC, durable through the task
//! log (accepted before any task service runs, posted when one starts), and
//! idempotent per (push, user) when a `system_notice` task is handled twice.

mod support;

use std::time::Duration;

use anyhow::{Context, Result};
use gochat_control::config::parse_services;
use gochat_proto::ids::{Id, SYSTEM_USER, single_conversation_id};
use gochat_proto::kafka::{SystemNotice, Task, TaskRecord};
use gochat_proto::logic::SystemPushRequest;
use gochat_proto::logic::logic_client::LogicClient;
use gochat_proto::task::SubmitRequest;
use gochat_proto::task::task_client::TaskClient;
use serde_json::{Value, json};
use support::{Backend, TestServer, TestUser, start_server, start_with, test_config};
use tonic::Code;

fn id_of(user: &TestUser) -> Id {
    Id(user.id.parse().unwrap_or(0))
}

fn grpc_url(s: &TestServer) -> Result<String> {
    let addr = s
        .running
        .as_ref()
        .and_then(|r| r.grpc_addr)
        .context("grpc address")?;
    Ok(format!("http://{addr}"))
}

/// `user`'s notices from the system user (status, messages).
async fn notices(s: &TestServer, user: &TestUser) -> Result<(u16, Vec<Value>)> {
    let cid = single_conversation_id(SYSTEM_USER, id_of(user));
    let (status, page) = s
        .get(user, &format!("/conversations/{cid}/messages?after_seq=0"))
        .await?;
    let messages = page["messages"].as_array().cloned().unwrap_or_default();
    Ok((status, messages))
}

/// Waits until `user` has at least `n` notices.
async fn await_notices(s: &TestServer, user: &TestUser, n: usize) -> Result<Vec<Value>> {
    for _ in 0..200 {
        let (status, messages) = notices(s, user).await?;
        if status == 200 && messages.len() >= n {
            return Ok(messages);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    anyhow::bail!("{n} notice(s) for {} never arrived", user.id)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grpc_push_is_checked_like_rest() -> Result<()> {
    let s = start_server(Backend::Embedded).await?;
    let admin = s.user("admin").await?;
    let bob = s.user("bob").await?;
    let mut client = LogicClient::connect(grpc_url(&s)?).await?;
    let request = |operator: &TestUser, content: &str, all: bool| SystemPushRequest {
        user_ids: vec![id_of(&bob).0],
        all,
        title: "Maintenance".into(),
        content: content.into(),
        category: "ops".into(),
        operator_user_id: id_of(operator).0,
    };
    let refused = |r: Result<tonic::Response<_>, tonic::Status>| r.err().map(|e| e.code());
    assert_eq!(
        refused(client.system_push(request(&bob, "tonight", false)).await),
        Some(Code::PermissionDenied),
        "a non-admin operator"
    );
    assert_eq!(
        refused(client.system_push(request(&admin, "", false)).await),
        Some(Code::InvalidArgument),
        "empty content"
    );
    let huge = "x".repeat(s.config.logic.max_content_bytes + 1);
    assert_eq!(
        refused(client.system_push(request(&admin, &huge, false)).await),
        Some(Code::InvalidArgument),
        "content over the message limit"
    );
    assert_eq!(
        refused(client.system_push(request(&admin, "tonight", true)).await),
        Some(Code::InvalidArgument),
        "user_ids and all at once"
    );
    let reply = client
        .system_push(request(&admin, "tonight", false))
        .await?
        .into_inner();
    assert_eq!(reply.delivered_to, 1);
    let got = await_notices(&s, &bob, 1).await?;
    assert_eq!(
        (got[0]["message_type"].as_str(), got[0]["content"].as_str()),
        (Some("system"), Some("tonight"))
    );
    Ok(())
}

/// The push is on the log when it is accepted: a process without the task
/// service accepts it, and a task service started afterwards posts it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn accepted_push_waits_on_the_log_for_a_task_service() -> Result<()> {
    let mut config = test_config(Backend::Real).await?;
    config.services = parse_services("repo,logic")?;
    let front = start_with(config.clone()).await?;
    let admin = front.user("admin").await?;
    let bob = front.user("bob").await?;
    let body = json!({"user_ids":[bob.id],"title":"t","content":"durable","category":"ops"});
    let (status, accepted) = front.post(&admin, "/admin/push", body).await?;
    assert_eq!((status, accepted["accepted"].as_u64()), (202, Some(1)));
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        notices(&front, &bob).await?.0,
        404,
        "posted with no task service"
    );

    let mut worker_config = config;
    worker_config.services = parse_services("task")?;
    worker_config.grpc.repo_endpoint = Some(grpc_url(&front)?);
    let _worker = start_with(worker_config).await?;
    let got = await_notices(&front, &bob, 1).await?;
    assert_eq!(got.len(), 1);
    assert_eq!(got[0]["content"], "durable");
    Ok(())
}

/// A `system_notice` batch handled twice (a redelivery, a retry after a
/// partial failure) posts each user's notice once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_notice_batch_handled_twice_posts_once() -> Result<()> {
    let s = start_server(Backend::Embedded).await?;
    let bob = s.user("bob").await?;
    let carol = s.user("carol").await?;
    let dave = s.user("dave").await?;
    let mut tasks = TaskClient::connect(grpc_url(&s)?).await?;
    let notice = |users: &[&TestUser]| SystemNotice {
        push_id: Id(4242),
        user_ids: users.iter().map(|u| id_of(u)).collect(),
        title: "t".into(),
        content: "once".into(),
        category: String::new(),
    };
    // The same batch twice, then the batch grown by dave: all three share the
    // record key (push id + first user), so they are handled in this order and
    // dave's notice arriving means both duplicates were handled before it.
    let batches = [
        notice(&[&bob, &carol]),
        notice(&[&bob, &carol]),
        notice(&[&bob, &carol, &dave]),
    ];
    for (attempt, batch) in batches.into_iter().enumerate() {
        let record = TaskRecord::new(format!("task-dup-{attempt}"), Task::SystemNotice(batch));
        let record_json = serde_json::to_string(&record)?;
        tasks.submit(SubmitRequest { record_json }).await?;
    }
    await_notices(&s, &dave, 1).await?;
    for user in [&bob, &carol, &dave] {
        let (status, messages) = notices(&s, user).await?;
        assert_eq!((status, messages.len()), (200, 1), "{messages:?}");
    }
    Ok(())
}

/// An admin named by id may push without any username; a listed username
/// with a password file is made before the listeners open, so registering it
/// is refused (no squatting) and the generated password (owner-only file)
/// logs in.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admins_by_id_and_by_a_username_nobody_can_take() -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let mut config = test_config(Backend::Embedded).await?;
    let file = std::env::temp_dir().join(support::unique("gochat-admin-"));
    config.auth.admin_usernames = vec!["root".into()];
    config.auth.admin_password_file = Some(file.clone());
    config.auth.admin_user_ids = vec![424_242];
    let s = start_with(config).await?;

    let (status, _) = s
        .post_anonymous(
            "/auth/register",
            json!({"username":"root","password":"squatter-password"}),
        )
        .await?;
    assert_eq!(
        status, 409,
        "the listed username exists before anyone registers"
    );
    let written = std::fs::read_to_string(&file)?;
    assert_eq!(
        std::fs::metadata(&file)?.permissions().mode() & 0o777,
        0o600
    );
    let password = written
        .lines()
        .find_map(|l| l.strip_prefix("password: "))
        .context("a password line")?;
    let (status, _) = s
        .post_anonymous(
            "/auth/login",
            json!({"username":"root","password":password,"device_id":"d"}),
        )
        .await?;
    assert_eq!(status, 200);

    let bob = s.user("bob").await?;
    let mut client = LogicClient::connect(grpc_url(&s)?).await?;
    let push = |operator: i64| SystemPushRequest {
        user_ids: vec![id_of(&bob).0],
        all: false,
        title: "Maintenance".into(),
        content: "tonight".into(),
        category: "ops".into(),
        operator_user_id: operator,
    };
    assert!(
        client.system_push(push(424_242)).await.is_ok(),
        "admin by id"
    );
    let refused = client.system_push(push(id_of(&bob).0)).await;
    assert_eq!(
        refused.err().map(|e| e.code()),
        Some(Code::PermissionDenied)
    );
    std::fs::remove_file(&file)?;
    Ok(())
}
