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
use crate::logic::to_status;
use crate::logic::{Logic, SendQueue, SystemPush};
use crate::task::TaskService;

/// Logic over gRPC.
pub struct LogicGrpc {
    logic: Arc<Logic>,
    sends: SendQueue,
}

impl LogicGrpc {
    /// The tonic service.
    pub fn service(logic: Arc<Logic>, sends: SendQueue) -> LogicServer<Self> {
        LogicServer::new(Self { logic, sends })
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
        let reply = match self.sends.send(Id(r.from_user_id), frame, None).await {
            Ok(ack) => ServerFrame::Ack(ack),
            Err(e) if e.is_retryable() => return Err(to_status(&e)),
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
        let push = SystemPush {
            user_ids: r.user_ids.into_iter().map(Id).collect(),
            all: r.all,
            title: r.title,
            content: r.content,
            category: r.category,
        };
        let accepted = self
            .logic
            .admin_push(Id(r.operator_user_id), push)
            .await
            .map_err(|e| to_status(&e))?;
        Ok(Response::new(SystemPushReply {
            delivered_to: u64::try_from(accepted).unwrap_or(u64::MAX),
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
