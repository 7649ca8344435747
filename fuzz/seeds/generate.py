#!/usr/bin/env python3
"""Writes the seed corpora of the fuzz targets, fuzz/seeds/<target>/<name>, from the test vectors of the crates
(protocol/src/serializer, protocol/src/chat.rs and names.rs, protocol/src/presence.rs, server/src/auth/etf.rs and
token.rs) and docs/protocol.md. Run it after changing a vector; its output is committed. Standard library only."""

import base64
import json
import pathlib
import shutil
import struct

SEEDS = pathlib.Path(__file__).resolve().parent


def write(target, name, data):
    path = SEEDS / target / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data.encode() if isinstance(data, str) else data)


def seeds(target, items):
    for i, item in enumerate(items):
        write(target, f"{i:02}", item)


# --- frames (serializer tests.rs, v1_json.rs, v2_json.rs, v2_binary.rs; docs/protocol.md §4) -------------------
seeds("v1_json", [
    '{"topic":"t","event":"e","payload":{"a":1},"ref":"2","join_ref":"1"}',
    '{"topic":"t","event":"e","payload":[1],"ref":null,"x":0}',
    '{"topic":"t","event":"e","payload":{},"ref":7}',
    '{"topic":"room:lobby","event":"phx_join","payload":{"last_seen_id":10},"ref":"1","join_ref":"1"}',
    '{"topic":"phoenix","event":"heartbeat","payload":{},"ref":"5"}',
    '{"topic":"t","event":"e","payload":{},"ref":null,"join_ref":[]}',
    '{"topic":1,"event":"e","payload":{},"ref":null}',
    '{"event":"phx_reply","payload":{"response":{"id":9},"status":"ok"},"ref":"4","topic":"t"}',
])
seeds("v2_json", [
    '[null,"1","phoenix","heartbeat",{}]',
    '["0","1","t","e",{"foo":1}]',
    '["1","2","t","e",[1,2],"extra",null]',
    '[null,null,"t","e","just a string"]',
    '[3,-4,"t","e",{}]',
    '[18446744073709551615,null,"t","e",{}]',
    '["1","2","room:a","phx_reply",{"response":{"id":7},"status":"ok"}]',
    '[null,"6","room:nope","phx_reply",{"response":{"reason":"unmatched topic"},"status":"error"}]',
    '["3",null,"room:lobby","message:new",{"body":"hello","client_id":"c-1"}]',
    '["4",null,"room:a","presence_state",{"alice":{"metas":[]}}]',
    '[null,null,"r\\"q","message:new",{"n":1}]',
    '["1",1.5,"t","e",{}]',
    '["a","|[",",",",[0",7e5780]',  # found by fuzzing: a payload no Value holds (see fuzz/README.md)
])


def cat(*parts):
    return b"".join(p if isinstance(p, bytes) else bytes(p) for p in parts)


seeds("v2_binary", [
    cat([0, 1, 1, 1, 1], b"0", b"1", b"t", b"e", [1]),
    cat([0, 2, 1, 3, 2], b"10", b"1", b"top", b"ev", [1]),
    cat([0, 3, 3, 10], b"123", b"top", b"some-event", [1, 1]),
    cat([1, 3, 2, 3, 2], b"100", b"12", b"top", b"ok", [1, 1]),
    cat([2, 3, 10], b"top", b"some-event", [1, 1]),
    cat([0, 2, 3, 5, 5], b"12", b"123", b"topic", b"event", [101, 102, 103]),
    cat([1, 2, 3, 5, 2], b"12", b"123", b"topic", b"ok", [101, 102, 103]),
    cat([0, 0, 0, 1, 1], b"t", b"e", [9]),
    cat([0, 2, 1, 7, 7], b"10", b"1", "tôpîc".encode(), "évént".encode(), [1]),
    cat([1, 0, 0, 1, 2], b"t", [0xC3, 0x28]),
])

# --- Erlang terms (server/src/auth/etf.rs tests) ----------------------------------------------------------------
ETF = [
    "836100", "8361ff", "836200000100", "8362ffffffff", "836200015180", "83627fffffff", "836280000000",
    "836e040000000080", "836e040101000080", "836e06000068e5cf8b01", "836e1000ffffffffffffffffffffffffffffff7f",
    "836e100100000000000000000000000000000080", "836f0000000300000100", "836e0001",
    "836803610161006200015180", "83680361636e06000068e5cf8b016200015180",
    "8368036d00000007757365723a34326e06000068e5cf8b016200015180", "8377027631", "83463ff8000000000000",
    "836b00026869", "836c0000000162000001006a", "836c000000006a", "836b0000", "836400036e696c", "837301e9",
    "83690000000261016102", "83760002c3a9", "836c0000000161016101", "8374000000026101610261016103",
    "8374000000027704646174616d00000003626f6277067369676e65646200000001",
]
seeds("etf", [bytes.fromhex(h) for h in ETF])

# --- tokens (server/src/auth/token.rs tests; layout in fuzz_targets/token.rs) ------------------------------------
T0 = 1_700_000_000_000


def token_input(mode, options, now, override, body):
    return bytes([mode, options]) + struct.pack(">qq", now, override) + body


ROWS = [
    "SFMyNTY.g2gDYWNuBgAAaOXPiwFiAAFRgA.uvJEDHa-IjTolIYW4Crh8PlZJCIGkSHuF4_nhnqPLRk",
    "SFMyNTY.g2gDbQAAAAd1c2VyOjQybgYAAGjlz4sBYgABUYA.BfL56c1k8BZatwmclWjr85TlPfhqynrporCN01luwYc",
]
token_seeds = [token_input(0, 2, T0 + 1000, 0, row.encode()) for row in ROWS]
token_seeds += [token_input(0, 0, T0, 0, b""), token_input(0, 0, T0, 0, b"SFMyNTY.%%%.###")]
for i, h in enumerate(ETF[14:17] + ETF[-1:]):
    token_seeds.append(token_input(1, (i % 3) << 2, T0 + 5000, 0, bytes.fromhex(h)))
token_seeds.append(token_input(1, 16, T0, 60, bytes.fromhex(ETF[16])))
token_seeds.append(token_input(2, 0, T0, 0, struct.pack(">qq", T0 - 1000, 86_400) + b"\x01\x05alice"))
seeds("token", token_seeds)

# --- chat payloads (protocol/src/chat.rs, names.rs, serializer/vsn.rs tests) -------------------------------------
seeds("chat_payloads", [
    '{"last_seen_id": 10, "extra": true}', '{"last_seen_id": null}', '{"body": "hi", "client_id": "u-1"}',
    '{"before_id": 9, "limit": 5000}', '{"typing": true}',
    '{"id": 17, "user": "alice", "body": "hello", "timestamp": 1763780000000}',
    '{"user": "bob", "messages": [], "recovered": true}',
    '{"online_at": 7, "typing": true, "phx_ref": "r", "phx_ref_prev": "q"}',
    '{"ada": {"metas": [{"online_at": 1, "typing": false, "phx_ref": "a"}]}}',
    '{"joins": {}, "leaves": {"ada": {"metas": [{"online_at": 1, "typing": false, "phx_ref": "a"}]}}}',
    '{"reason": "unmatched topic"}',
    "  hi there \n", "\u3000全角\u3000", "o'brien-jr_2.0", "Zoë", "smile😀", "zero\u200bwidth", "a\u0000b",
    "panther-silk-empire", "-a", "room:lobby", "favicon.ico", "2.0.0", "1.0.5", "2.0.1-rc.1", "2.0.0+build.7",
    "02.0.0",
])

# --- presence (protocol/src/presence.rs tests: the phoenix.js presence_test.js fixtures) --------------------------
def meta(n, ref):
    return {"id": n, "phx_ref": ref}


fixture = {f"u{n}": {"metas": [meta(n, str(n))]} for n in (1, 2, 3)}
scripts = [
    [["presence_state", "1", fixture],
     ["presence_diff", "1", {"joins": {"u1": {"metas": [meta(1, "1.2")]}}, "leaves": {"u2": {"metas": [meta(2, "2")]}}}]],
    [["presence_diff", "1", {"joins": {"u9": {"metas": [meta(9, "9")]}}, "leaves": {}}],
     ["presence_state", "1", fixture],
     ["presence_diff", "2", {"joins": {}, "leaves": {"u1": {"metas": [meta(1, "1")]}}}],
     ["presence_state", "2", {"u4": {"metas": [meta(4, "4")]}}]],
    [["presence_state", "1", {"10": {"metas": [meta(1, "a")]}, "2": {"metas": [meta(2, "b")]},
                              "__proto__": {"metas": [meta(3, "c")]}, "constructor": {"metas": [meta(4, "d")]}}],
     ["presence_diff", "1", {"joins": {"__proto__": {"metas": [meta(5, "e")], "user": "x"}},
                             "leaves": {"constructor": {"metas": [meta(4, "d")]}}}]],
    [["presence_state", None, {"a": {"metas": [{"phx_ref": {}}, {"phx_ref": 1}]}}],
     ["presence_diff", None, {"joins": {}, "leaves": {"a": {"metas": [{"phx_ref": {}}, {"phx_ref": 1.0}]}}}]],
]
seeds("presence_wire", [json.dumps(s) for s in scripts] + [json.dumps(fixture), json.dumps({"joins": fixture})])

# presence_sync reads its steps through `arbitrary`, so no vector maps onto its input; its seeds are the inputs that
# found something (see fuzz/README.md), kept so every run starts by re-checking them.
shutil.rmtree(SEEDS / "presence_sync", ignore_errors=True)
for name, b64 in [
    ("object-ref-left", "AwBhKQrNMSlS9/f3DwgICCM="),
    ("update-keeps-key-place", "zenNzZrNMSGac82aczGhzzHhzUDN"),
    ("empty-metas-key", "KQoGBgYpBgYGBik="),
]:
    write("presence_sync", name, base64.b64decode(b64))


# --- long-poll POST bodies (server/src/transport/longpoll/body.rs; docs/protocol.md §2.1) ----------------------
# Byte 0 is the mode: 1 = application/x-ndjson, 0 = any other content type (one text frame).
seeds("longpoll_body", [
    "\x01" + '[null,"1","phoenix","heartbeat",{}]',
    "\x01" + '["1","1","room:a","phx_join",{}]\n["1","2","room:a","message:new",{"body":"hi"}]',
    "\x01" + '["1","1","room:a","phx_join",{}]\r\n\r\n' + base64.b64encode(b"\x00\x00\x01\x07\x09" + b"1phoenixheartbeat").decode(),
    "\x01" + "\n".join(["[]"] * 101),
    "\x01" + "not base64!",
    "\x00" + '[null,"1","phoenix","heartbeat",{}]',
])
