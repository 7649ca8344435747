//! `test:*`: a channel that misbehaves on request, to exercise the generic socket machinery (failures, crashes,
//! binary payloads, stops, large broadcasts) without touching the chat logic.

use std::sync::Arc;

use async_trait::async_trait;
use protocol::{frame::Payload, reasons::ErrorReply};
use serde_json::{Value, json};
use server::{
    channel::{
        Broadcasts, Channel, ChannelContext, ChannelFailure, ChannelInstance, JoinRequest, Joined, Outcome, Push,
        Termination,
    },
    pubsub::{Broadcast, PubSub},
};

pub struct TestChannel {
    pubsub: Arc<dyn PubSub>,
}

impl TestChannel {
    pub fn new(pubsub: Arc<dyn PubSub>) -> Self {
        Self { pubsub }
    }
}

#[async_trait]
impl Channel for TestChannel {
    async fn join(&self, request: JoinRequest<'_>, _context: ChannelContext<'_>) -> Result<Joined, ErrorReply> {
        let params = request.payload.as_json().cloned().unwrap_or(Value::Null);
        if params["refuse"] == json!(true) {
            return Err(ErrorReply::new("refused"));
        }
        if params["crash"] == json!(true) {
            panic!("join crash requested by the test");
        }
        let pushes = vec![Push::Payload {
            event: "welcome".to_owned(),
            payload: Payload::Json(json!({"topic": request.topic.to_string()})),
        }];
        Ok(Joined {
            reply: json!({"joined": request.topic.to_string()}),
            instance: Box::new(TestInstance {
                topic: request.topic.clone(),
                pubsub: self.pubsub.clone(),
                // {"terminate": "panic"}: a channel whose `terminate` panics.
                panic_on_terminate: params["terminate"] == json!("panic"),
            }),
            delivered_up_to: None,
            pushes,
            broadcasts: Broadcasts::All,
        })
    }
}

struct TestInstance {
    topic: Arc<str>,
    pubsub: Arc<dyn PubSub>,
    panic_on_terminate: bool,
}

#[async_trait]
impl ChannelInstance for TestInstance {
    async fn handle_in(
        &mut self,
        event: &str,
        payload: Payload,
        _: ChannelContext<'_>,
    ) -> Result<Outcome, ChannelFailure> {
        match event {
            "echo" => Ok(Outcome::Reply { status: "ok", response: payload }),
            "fail" => Err(ChannelFailure("failure requested".into())),
            "boom" => panic!("crash requested by the test"),
            "stop" => Ok(Outcome::Stop { reply: Some(("ok", Payload::Json(json!({"bye": true})))) }),
            "noreply" => Ok(Outcome::NoReply),
            "broadcast" => {
                self.pubsub.broadcast(Arc::new(Broadcast::new(self.topic.clone(), "shout", payload)));
                Ok(Outcome::ok(json!({})))
            }
            "flood" => {
                // {"count": N, "size": S}: N broadcasts of S bytes each, for the slow-consumer test.
                let json = payload.as_json().cloned().unwrap_or(Value::Null);
                let count = json["count"].as_u64().unwrap_or(0);
                let filler = "x".repeat(json["size"].as_u64().unwrap_or(0) as usize);
                for n in 0..count {
                    let body = Payload::Json(json!({"n": n, "filler": filler}));
                    self.pubsub.broadcast(Arc::new(Broadcast::new(self.topic.clone(), "flood", body)));
                }
                Ok(Outcome::ok(json!({})))
            }
            _ => Ok(Outcome::error("unknown event")),
        }
    }

    fn terminate(&mut self, _reason: Termination) {
        if self.panic_on_terminate {
            panic!("terminate crash requested by the test");
        }
    }
}
