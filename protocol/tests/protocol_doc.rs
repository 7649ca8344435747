//! Keeps `docs/protocol.md` in step with this crate: every error reason, close code, event name, limit and reserved
//! room name the crate defines must appear in the document, in the place a reader looks for it.
//!
//! The values come from the crate's constants, never from copies, so changing a constant's value without updating the
//! document fails here. A second check reads the crate's source and fails when a module gains a `pub const` that this
//! test does not know about yet, so a new reason or event cannot slip past both the document and the test.

#![allow(clippy::unwrap_used)]

use std::collections::BTreeSet;

use protocol::{admin, api, chat, events, names, presence, reasons, reasons::CloseCode};

/// `(name, value)` of a constant, so failure messages can say which constant the document misses.
macro_rules! named {
    ($($module:ident :: $name:ident),* $(,)?) => {
        [$((stringify!($name), $module::$name)),*]
    };
}

/// Every error reason of `protocol::reasons`, `channel_crash` included.
const REASONS: [(&str, &str); 12] = named![
    reasons::UNMATCHED_TOPIC,
    reasons::INVALID_ROOM,
    reasons::TOO_MANY_CHANNELS,
    reasons::JOIN_CRASHED,
    reasons::UNAUTHORIZED,
    reasons::EMPTY_MESSAGE,
    reasons::MESSAGE_TOO_LONG,
    reasons::INVALID_PAYLOAD,
    reasons::RATE_LIMITED,
    reasons::UNAVAILABLE,
    reasons::UNKNOWN_EVENT,
    reasons::CHANNEL_CRASH,
];

/// Every error text of the HTTP API (`protocol::api`), each expected in a row of §12's error table.
const API_ERRORS: [(&str, &str); 7] = named![
    api::UNAUTHORIZED,
    api::NOT_FOUND,
    api::METHOD_NOT_ALLOWED,
    api::BODY_TOO_LARGE,
    api::INVALID_PAYLOAD,
    api::INVALID_USER,
    api::INVALID_QUERY,
];

/// The names of `CloseCode`'s constants: `ALL` and one per code (checked against `ALL` below).
const CLOSE_CODE_NAMES: [&str; 9] = [
    "ALL",
    "NORMAL",
    "GOING_AWAY",
    "PROTOCOL_ERROR",
    "INVALID_FRAME_PAYLOAD",
    "POLICY_VIOLATION",
    "MESSAGE_TOO_BIG",
    "INTERNAL_ERROR",
    "SERVICE_RESTART",
];

/// Every name in `protocol::events`: reserved Phoenix events, the heartbeat topic, chat events and reply statuses.
const EVENTS: [(&str, &str); 14] = named![
    events::PHX_JOIN,
    events::PHX_LEAVE,
    events::PHX_REPLY,
    events::PHX_ERROR,
    events::PHX_CLOSE,
    events::HEARTBEAT,
    events::PHOENIX_TOPIC,
    events::PRESENCE_STATE,
    events::PRESENCE_DIFF,
    events::MESSAGE_NEW,
    events::HISTORY_BEFORE,
    events::TYPING,
    events::STATUS_OK,
    events::STATUS_ERROR,
];

/// Wire names outside `events` that a client must know: the presence meta fields and the room topic prefix.
const OTHER_NAMES: [(&str, &str); 7] = named![
    admin::STATS_TOPIC,
    admin::STATS_EVENT,
    presence::PHX_REF,
    presence::PHX_REF_PREV,
    chat::META_ONLINE_AT,
    chat::META_TYPING,
    names::ROOM_TOPIC_PREFIX
];

/// A limit, and the words of the row of the limits table (§10.3) that must state its value.
struct Limit {
    constant: &'static str,
    value: usize,
    row_label: &'static str,
}

fn limits() -> [Limit; 10] {
    let usize_of = |value: u32| usize::try_from(value).unwrap();
    [
        Limit { constant: "chat::MAX_BODY_CHARS", value: chat::MAX_BODY_CHARS, row_label: "message body" },
        Limit { constant: "chat::JOIN_HISTORY", value: chat::JOIN_HISTORY, row_label: "join history" },
        Limit { constant: "chat::MAX_RECOVERY", value: chat::MAX_RECOVERY, row_label: "recovery window" },
        Limit {
            constant: "chat::HISTORY_DEFAULT_LIMIT",
            value: usize_of(chat::HISTORY_DEFAULT_LIMIT),
            row_label: "default page",
        },
        Limit {
            constant: "chat::HISTORY_MAX_LIMIT",
            value: usize_of(chat::HISTORY_MAX_LIMIT),
            row_label: "largest page",
        },
        Limit { constant: "chat::MAX_UNREAD", value: usize_of(chat::MAX_UNREAD), row_label: "unread count" },
        Limit { constant: "names::MAX_SLUG_LEN", value: names::MAX_SLUG_LEN, row_label: "room slug" },
        Limit { constant: "names::MAX_USER_NAME_CHARS", value: names::MAX_USER_NAME_CHARS, row_label: "user name" },
        Limit {
            constant: "api::ROOMS_DEFAULT_LIMIT",
            value: usize_of(api::ROOMS_DEFAULT_LIMIT),
            row_label: "`get /api/rooms`",
        },
        Limit {
            constant: "api::ROOMS_MAX_LIMIT",
            value: usize_of(api::ROOMS_MAX_LIMIT),
            row_label: "`get /api/rooms`",
        },
    ]
}

fn read_doc() -> String {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/protocol.md");
    std::fs::read_to_string(path).unwrap_or_else(|error| panic!("cannot read {path}: {error}"))
}

/// The lines of markdown tables (rows start with `|`).
fn table_rows(doc: &str) -> impl Iterator<Item = &str> {
    doc.lines().map(str::trim_start).filter(|line| line.starts_with('|'))
}

/// `value` as inline code: `` `value` ``.
fn code(value: &str) -> String {
    format!("`{value}`")
}

/// Whether `text` contains `number` as a whole number (not as part of a longer run of digits).
fn contains_number(text: &str, number: usize) -> bool {
    let needle = number.to_string();
    text.match_indices(&needle).any(|(at, _)| {
        let before = text[..at].chars().next_back();
        let after = text[at + needle.len()..].chars().next();
        !before.is_some_and(|c| c.is_ascii_digit()) && !after.is_some_and(|c| c.is_ascii_digit())
    })
}

/// Whether some table row's first cell is exactly `code` (optionally in backticks), as in the close-code table.
fn has_close_code_row(doc: &str, code: u16) -> bool {
    let code = code.to_string();
    table_rows(doc).any(|row| row.split('|').nth(1).is_some_and(|cell| cell.trim().trim_matches('`') == code))
}

/// Fails with every gap at once, so one run shows all that the document needs.
fn assert_nothing_missing(what: &str, missing: &[String]) {
    assert!(
        missing.is_empty(),
        "docs/protocol.md is out of step with the protocol crate ({what}); add these or update the document:\n  {}",
        missing.join("\n  ")
    );
}

/// Describes each item the document lacks; an empty list means it has them all.
fn missing<'a, T: 'a>(
    items: impl IntoIterator<Item = &'a T>,
    documented: impl Fn(&T) -> bool,
    describe: impl Fn(&T) -> String,
) -> Vec<String> {
    items.into_iter().filter(|item| !documented(item)).map(describe).collect()
}

#[test]
fn every_error_reason_is_in_an_error_table_row() {
    let doc = read_doc();
    let gaps = missing(
        &REASONS,
        |(_, reason)| table_rows(&doc).any(|row| row.contains(&code(reason))),
        |(name, reason)| format!("reasons::{name} = {reason:?} (expected `{reason}` in a table row)"),
    );
    assert_nothing_missing("error reasons", &gaps);
}

#[test]
fn every_http_api_error_is_in_a_status_table_row() {
    let doc = read_doc();
    let gaps = missing(
        &API_ERRORS,
        |(_, error)| table_rows(&doc).any(|row| row.starts_with("| 4") && row.contains(&code(error))),
        |(name, error)| format!("api::{name} = {error:?} (expected `{error}` in a row of §12.3's status table)"),
    );
    assert_nothing_missing("HTTP API errors", &gaps);
}

#[test]
fn every_close_code_has_a_row_in_the_close_code_table() {
    let doc = read_doc();
    assert_eq!(CLOSE_CODE_NAMES.len(), CloseCode::ALL.len() + 1, "one name per code in CloseCode::ALL, plus ALL");
    let gaps = missing(
        &CloseCode::ALL,
        |close| has_close_code_row(&doc, close.code()),
        |close| format!("close code {} ({}): expected a table row starting `| {} |`", close.0, close.phrase(), close.0),
    );
    assert_nothing_missing("close codes", &gaps);
}

#[test]
fn every_event_and_wire_name_is_documented() {
    let doc = read_doc();
    let gaps = missing(
        EVENTS.iter().chain(OTHER_NAMES.iter()),
        |(_, value)| doc.contains(&code(value)),
        |(name, value)| format!("{name} = {value:?} (expected `{value}`)"),
    );
    assert_nothing_missing("event and wire names", &gaps);
}

#[test]
fn every_limit_is_stated_in_its_limits_table_row() {
    let doc = read_doc();
    let missing: Vec<String> = limits()
        .iter()
        .filter(|limit| {
            !table_rows(&doc)
                .any(|row| row.to_lowercase().contains(limit.row_label) && contains_number(row, limit.value))
        })
        .map(|limit| {
            format!(
                "{} = {} (expected a table row mentioning {:?} and {})",
                limit.constant, limit.value, limit.row_label, limit.value
            )
        })
        .collect();
    assert_nothing_missing("limits", &missing);
}

#[test]
fn every_reserved_segment_is_listed() {
    let doc = read_doc();
    let missing: Vec<String> = names::RESERVED_SEGMENTS
        .iter()
        .filter(|segment| !doc.contains(&code(segment)))
        .map(|segment| format!("RESERVED_SEGMENTS entry {segment:?} (expected `{segment}`)"))
        .collect();
    assert_nothing_missing("reserved room names", &missing);
}

/// Names of the `pub const` items declared in a source file (`pub const NAME: Type = …`), at any indentation.
fn declared_consts(source: &str) -> BTreeSet<&str> {
    source
        .lines()
        .filter_map(|line| line.trim_start().strip_prefix("pub const "))
        .filter_map(|rest| rest.split(':').next())
        .map(str::trim)
        .filter(|name| {
            !name.is_empty() && name.chars().all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_')
        })
        .collect()
}

#[test]
fn this_test_knows_every_constant_the_documented_modules_declare() {
    let checked: BTreeSet<&str> = REASONS
        .iter()
        .map(|(name, _)| *name)
        .chain(CLOSE_CODE_NAMES)
        .chain(EVENTS.iter().map(|(name, _)| *name))
        .chain(OTHER_NAMES.iter().map(|(name, _)| *name))
        .chain(API_ERRORS.iter().map(|(name, _)| *name))
        .chain(limits().iter().filter_map(|limit| limit.constant.rsplit("::").next()))
        .chain(["RESERVED_SEGMENTS"])
        .collect();
    let sources = [
        ("src/reasons.rs", include_str!("../src/reasons.rs")),
        ("src/events.rs", include_str!("../src/events.rs")),
        ("src/chat.rs", include_str!("../src/chat.rs")),
        ("src/names.rs", include_str!("../src/names.rs")),
        ("src/api.rs", include_str!("../src/api.rs")),
    ];
    let unchecked: Vec<String> = sources
        .iter()
        .flat_map(|(file, source)| {
            declared_consts(source)
                .into_iter()
                .filter(|name| !checked.contains(name))
                .map(move |name| format!("{file}: {name}"))
        })
        .collect();
    assert!(
        unchecked.is_empty(),
        "protocol/tests/protocol_doc.rs does not check these constants against docs/protocol.md; add them to its \
         lists (and document them):\n  {}",
        unchecked.join("\n  ")
    );
}

#[test]
fn helpers_behave() {
    assert!(contains_number("| Room slug | 1–64 characters |", 64));
    assert!(!contains_number("| Frame size | 640 bytes |", 64));
    assert!(!contains_number("| x | 1064 |", 64));
    assert!(has_close_code_row("| 1007 | `invalid frame` |", 1007));
    assert!(has_close_code_row("  | `1012` | x |", 1012));
    assert!(!has_close_code_row("| x | 1007 |", 1007));
    let source = "pub const A: &str = \"a\";\n    pub const NORMAL: Self = Self(1000);\npub const fn code() {}";
    assert_eq!(declared_consts(source), BTreeSet::from(["A", "NORMAL"]));
}
