//! The end checks against what the server stored: each room's whole history read back through the socket (a join,
//! then `history:before` pages back to id 1), compared with the ledger. Every acknowledged message must be stored
//! exactly once, at its acknowledged id, with the body sent; nothing refused may be stored; ids are dense. Every
//! membership must have been delivered every acknowledged message of its room after it started (a member that stayed:
//! up to the room's last message; one that left: up to the last id it saw), each with the stored body.

use std::{
    collections::{BTreeSet, HashMap},
    net::SocketAddr,
};

use protocol::chat::{HistoryBefore, JoinParams, Message};
use serde::Serialize;

use super::{
    conn,
    exchange::Exchange,
    ledger::{Record, body_hash},
    text,
};

/// Samples of each kind of finding kept for the report.
const SAMPLES: usize = 8;

/// Reads every message of each room, oldest first.
pub async fn read_history(addr: SocketAddr, topics: &[String], run: &str) -> Result<Vec<Vec<Message>>, String> {
    let ws = conn::open(addr, &format!("verify-{run}"), None).await?;
    let mut client = Exchange::new(ws);
    let mut rooms = Vec::with_capacity(topics.len());
    for topic in topics {
        let (join_ref, reply) =
            client.join(topic, &JoinParams::default(), |_| {}).await.map_err(|e| format!("join {topic}: {e}"))?;
        let mut messages = reply.messages;
        while let Some(oldest) = messages.first().map(|m| m.id).filter(|&id| id > 1) {
            let page = HistoryBefore { before_id: oldest, limit: Some(100) };
            let older = client
                .push(&join_ref, topic, &page, |_| {})
                .await
                .map_err(|e| format!("history:before {oldest} in {topic}: {e}"))?
                .messages;
            if older.is_empty() {
                break;
            }
            messages.splice(0..0, older);
        }
        rooms.push(messages);
    }
    let _ = client.ws.close(None).await;
    Ok(rooms)
}

/// What the checks found.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Findings {
    /// Messages acknowledged.
    pub acked: usize,
    /// Messages stored in the soak's rooms.
    pub stored: usize,
    /// Extra stored copies of one `client_id`.
    pub duplicates: usize,
    /// Acknowledged messages not stored.
    pub missing: usize,
    /// Acknowledged messages stored under another id or with another body.
    pub mismatched: usize,
    /// Stored messages the server had refused.
    pub refused_stored: usize,
    /// Stored messages no soak client sent.
    pub foreign: usize,
    /// Ids missing between 1 and a room's last id.
    pub holes: usize,
    /// Sent, never answered (cut off by a kill, given up) and stored anyway: allowed, once.
    pub unanswered_stored: usize,
    /// Sent, never answered, and not stored: allowed.
    pub unanswered_lost: usize,
    /// Memberships checked, and those that stayed to the end.
    pub memberships: usize,
    pub stayed: usize,
    /// Deliveries the memberships were owed.
    pub owed: usize,
    /// Owed acknowledged messages a membership never got.
    pub undelivered: usize,
    /// Deliveries whose body differs from the stored one (or whose id is not stored).
    pub wrong_deliveries: usize,
    /// Examples.
    pub samples: Vec<String>,
}

impl Findings {
    /// Check (1): every acknowledged message stored exactly once, nothing else.
    pub fn stored_exactly_once(&self) -> bool {
        self.duplicates + self.missing + self.mismatched + self.refused_stored + self.foreign + self.holes == 0
    }

    /// Check (2): every membership got everything it was owed, as stored.
    pub fn delivered_to_members(&self) -> bool {
        self.undelivered + self.wrong_deliveries == 0
    }

    fn sample(&mut self, line: String) {
        if self.samples.len() < SAMPLES * 4 {
            self.samples.push(line);
        }
    }
}

/// Compares what the server stored (`rooms`, by room index) with what the ledger recorded.
pub fn check(record: &Record, rooms: &[Vec<Message>]) -> Findings {
    let mut findings = Findings { stored: rooms.iter().map(Vec::len).sum(), ..Findings::default() };
    // client_id → where it is stored.
    let mut copies: HashMap<&str, Vec<(usize, &Message)>> = HashMap::new();
    for (room, messages) in rooms.iter().enumerate() {
        let ids: BTreeSet<u64> = messages.iter().map(|m| m.id).collect();
        let last = ids.last().copied().unwrap_or(0);
        let holes = (last as usize).saturating_sub(ids.len());
        if holes > 0 {
            findings.holes += holes;
            findings.sample(format!("room {room}: {holes} ids missing below {last}"));
        }
        for message in messages {
            let client_id = text::client_id_of(&message.body).unwrap_or_default();
            copies.entry(client_id).or_default().push((room, message));
        }
    }
    for (client_id, stored) in &copies {
        if stored.len() > 1 {
            findings.duplicates += stored.len() - 1;
            let ids: Vec<u64> = stored.iter().map(|(_, m)| m.id).collect();
            findings.sample(format!("{client_id} stored {} times: ids {ids:?}", stored.len()));
        }
        if !record.sent.contains_key(*client_id) {
            findings.foreign += stored.len();
            findings.sample(format!("{client_id} stored but never sent"));
        }
    }
    for (client_id, sent) in &record.sent {
        let stored = copies.get(client_id.as_str()).map_or(&[][..], Vec::as_slice);
        match (sent.acked, &sent.refused) {
            (Some(id), _) => {
                findings.acked += 1;
                match stored.first() {
                    None => {
                        findings.missing += 1;
                        findings.sample(format!("{client_id} acked as {id} in room {}, not stored", sent.room));
                    }
                    Some((room, message)) if *room != sent.room || message.id != id || message.body != sent.body => {
                        findings.mismatched += 1;
                        findings.sample(format!(
                            "{client_id} acked as {id} in room {}, stored as {} in {room}",
                            sent.room, message.id
                        ));
                    }
                    Some(_) => {}
                }
            }
            (None, Some(reason)) => {
                if !stored.is_empty() {
                    findings.refused_stored += stored.len();
                    findings.sample(format!("{client_id} refused ({reason}) but stored"));
                }
            }
            (None, None) if stored.is_empty() => findings.unanswered_lost += 1,
            (None, None) => findings.unanswered_stored += 1,
        }
    }
    check_deliveries(record, rooms, &mut findings);
    findings
}

fn check_deliveries(record: &Record, rooms: &[Vec<Message>], findings: &mut Findings) {
    let stored: Vec<HashMap<u64, u64>> =
        rooms.iter().map(|messages| messages.iter().map(|m| (m.id, body_hash(&m.body))).collect()).collect();
    let mut acked: Vec<BTreeSet<u64>> = vec![BTreeSet::new(); rooms.len()];
    for sent in record.sent.values() {
        if let (Some(id), Some(room)) = (sent.acked, acked.get_mut(sent.room)) {
            room.insert(id);
        }
    }
    for membership in &record.memberships {
        let Some((stored, acked)) = stored.get(membership.room).zip(acked.get(membership.room)) else { continue };
        findings.memberships += 1;
        let mut seen = BTreeSet::new();
        for &(id, hash) in &membership.seen {
            seen.insert(id);
            if stored.get(&id) != Some(&hash) {
                findings.wrong_deliveries += 1;
                findings.sample(format!(
                    "{} was delivered id {id} in room {} unlike the stored one",
                    membership.who, membership.room
                ));
            }
        }
        let upto = if membership.stayed {
            findings.stayed += 1;
            acked.last().copied().unwrap_or(0)
        } else {
            seen.last().copied().unwrap_or(0)
        };
        let owed: Vec<u64> = if upto > membership.from {
            acked.range(membership.from + 1..=upto).copied().collect()
        } else {
            Vec::new()
        };
        findings.owed += owed.len();
        let missed: Vec<u64> = owed.into_iter().filter(|id| !seen.contains(id)).collect();
        if !missed.is_empty() {
            findings.undelivered += missed.len();
            let first: Vec<u64> = missed.iter().take(5).copied().collect();
            findings.sample(format!(
                "{} (stayed: {}) missed {} of room {} after id {}: {first:?}…",
                membership.who,
                membership.stayed,
                missed.len(),
                membership.room,
                membership.from
            ));
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Instant;

    use super::*;
    use crate::soak::ledger::{Membership, Sent};

    fn message(id: u64, client_id: &str) -> Message {
        Message { id, user: "u".into(), body: format!("{client_id} hi"), timestamp: 0 }
    }

    fn sent(room: usize, client_id: &str, acked: Option<u64>, refused: Option<&str>) -> Sent {
        Sent {
            room,
            body: format!("{client_id} hi"),
            at: Instant::now(),
            acked,
            refused: refused.map(str::to_owned),
            abandoned: false,
        }
    }

    #[test]
    fn a_clean_run_passes() {
        let mut record = Record::default();
        record.sent.insert("a".into(), sent(0, "a", Some(1), None));
        record.sent.insert("b".into(), sent(0, "b", Some(2), None));
        record.sent.insert("c".into(), sent(0, "c", None, Some("rate limited")));
        record.sent.insert("d".into(), sent(0, "d", None, None));
        let seen = vec![(1, body_hash("a hi")), (2, body_hash("b hi"))];
        record.memberships.push(Membership { who: "m".into(), room: 0, stayed: true, from: 0, seen });
        let findings = check(&record, &[vec![message(1, "a"), message(2, "b")]]);
        assert!(findings.stored_exactly_once() && findings.delivered_to_members(), "{findings:?}");
        assert_eq!((findings.acked, findings.stored, findings.owed, findings.unanswered_lost), (2, 2, 2, 1));
    }

    #[test]
    fn duplicates_losses_refusals_and_missed_deliveries_are_found() {
        let mut record = Record::default();
        record.sent.insert("a".into(), sent(0, "a", Some(1), None));
        record.sent.insert("b".into(), sent(0, "b", Some(2), None));
        record.sent.insert("c".into(), sent(0, "c", None, Some("rate limited")));
        record.sent.insert("e".into(), sent(0, "e", Some(4), None));
        record.memberships.push(Membership {
            who: "m".into(),
            room: 0,
            stayed: true,
            from: 0,
            seen: vec![(1, body_hash("a hi")), (3, body_hash("x"))],
        });
        let stored = vec![message(1, "a"), message(2, "a"), message(3, "c"), message(5, "z")];
        let findings = check(&record, &[stored]);
        assert_eq!(findings.duplicates, 1, "{findings:?}");
        assert_eq!((findings.missing, findings.refused_stored, findings.foreign, findings.holes), (2, 1, 1, 1));
        assert_eq!((findings.undelivered, findings.wrong_deliveries), (2, 1), "{findings:?}");
        assert!(!findings.stored_exactly_once() && !findings.delivered_to_members());
    }
}
