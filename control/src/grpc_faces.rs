//! The gRPC faces of logic and task (`proto/logic.proto`, `proto/task.proto`),
//! thin adapters over the same services the REST API and consumers use.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use gochat_proto::frames::{SendFrame, ServerFrame};
use gochat_proto::ids::Id;
use gochat_proto::kafka::TaskRecord;
use gochat_proto::logic::logic_server::{Logic as PbLogic, LogicServer};
use gochat_proto::logic::{SendReply, SendRequest, SystemPushReply, SystemPushRequest};
use gochat_proto::task::task_server::{Task as PbTask, TaskServer};
use gochat_proto::task::{StatsReply, StatsRequest, SubmitReply, SubmitRequest};
use tonic::{Request, Response, Status};

use crate::bus::Bus;
use crate::logic::Logic;
use crate::task::TaskService;

/// Logic over gRPC.
pub struct LogicGrpc {
    logic: Arc<Logic>,
}

impl LogicGrpc {
    /// The tonic service.
    pub fn service(logic: Arc<Logic>) -> LogicServer<Self> {
        LogicServer::new(Self { logic })
    }
}

#[tonic::async_trait]
impl PbLogic for LogicGrpc {
    async fn send(&self, request: Request<SendRequest>) -> Result<Response<SendReply>, Status> {
        let r = request.into_inner();
        let frame: SendFrame = serde_json::from_str(&r.frame_json)
            .map_err(|e| Status::invalid_argument(e.to_string()))?;
        let cmid = frame.client_msg_id.clone();
        // Business refusals are answered as error frames, like on a WebSocket.
        let reply = match self.logic.send(Id(r.from_user_id), frame, None).await {
            Ok(ack) => ServerFrame::Ack(ack),
            Err(e) if e.is_retryable() => return Err(Status::unavailable(e.to_string())),
            Err(e) => ServerFrame::error(Some(cmid), e.code(), e.public_message()),
        };
        Ok(Response::new(SendReply {
            frame_json: reply.to_json(),
        }))
    }

    async fn system_push(
        &self,
        request: Request<SystemPushRequest>,
    ) -> Result<Response<SystemPushReply>, Status> {
        let r = request.into_inner();
        let targets = if r.all {
            self.logic
                .repo
                .list_user_ids()
                .await
                .map_err(crate::repo::grpc::to_status)?
        } else {
            r.user_ids
        };
        let metadata = serde_json::json!({"title": r.title, "category": r.category});
        let mut delivered = 0;
        for user in targets {
            self.logic
                .post_system_notice(Id(user), r.content.clone(), metadata.clone())
                .await
                .map_err(|e| Status::unavailable(e.to_string()))?;
            delivered += 1;
        }
        Ok(Response::new(SystemPushReply {
            delivered_to: delivered,
        }))
    }
}

/// Task over gRPC.
pub struct TaskGrpc {
    task: Arc<TaskService>,
    bus: Arc<dyn Bus>,
}

impl TaskGrpc {
    /// The tonic service.
    pub fn service(task: Arc<TaskService>, bus: Arc<dyn Bus>) -> TaskServer<Self> {
        TaskServer::new(Self { task, bus })
    }
}

#[tonic::async_trait]
impl PbTask for TaskGrpc {
    async fn submit(
        &self,
        request: Request<SubmitRequest>,
    ) -> Result<Response<SubmitReply>, Status> {
        let record: TaskRecord = serde_json::from_str(&request.into_inner().record_json)
            .map_err(|e| Status::invalid_argument(e.to_string()))?;
        self.bus
            .send_task(&record)
            .await
            .map_err(|e| Status::unavailable(e.to_string()))?;
        Ok(Response::new(SubmitReply {
            task_id: record.task_id,
        }))
    }

    async fn stats(&self, _: Request<StatsRequest>) -> Result<Response<StatsReply>, Status> {
        let s = &self.task.stats;
        Ok(Response::new(StatsReply {
            handled: s.handled.load(Ordering::Relaxed),
            retried: s.retried.load(Ordering::Relaxed),
            dead_lettered: s.dead_lettered.load(Ordering::Relaxed),
        }))
    }
}
