// Hostile and pathological input: applyPatch's limits (depth, operations, copied bytes), its
// non-recursive helpers, and a SyncClient fed messages it cannot apply (node --test clients/js/test).
//
// Deep values are built without recursion: a loop wrapping arrays, or JSON.parse of '['.repeat(n)
// (V8's JSON.parse is iterative; JSON.stringify is not and throws RangeError on such values).
import { test } from "node:test";
import assert from "node:assert/strict";
import {
  ApplyError,
  JsonLimitError,
  MAX_JSON_DEPTH,
  MAX_PATCH_COPIED_BYTES,
  MAX_PATCH_OPERATIONS,
  SyncClient,
  applyPatch,
} from "../eventsourced-sync.js";

// An array nested `depth` deep around `inner` ([[[inner]]]: depth 3 around a scalar).
function nested(depth, inner = 0) {
  let value = inner;
  for (let i = 0; i < depth; i++) value = [value];
  return value;
}

// The same as JSON text, for messages.
function nestedText(depth) {
  return "[".repeat(depth) + "]".repeat(depth);
}

function isLimit(limit, max) {
  return (error) => {
    assert.ok(error instanceof JsonLimitError, `a JsonLimitError, got ${error && error.name}: ${error && error.message}`);
    assert.equal(error.limit, limit);
    if (max !== undefined) assert.equal(error.max, max);
    return true;
  };
}

test("V8's JSON.parse builds a 100,000-deep value without running out of stack", () => {
  let node = JSON.parse(nestedText(100000));
  let depth = 1;
  while (node.length > 0) {
    node = node[0];
    depth++;
  }
  assert.equal(depth, 100000);
});

test("the exported limits are the server's defaults", () => {
  assert.equal(MAX_JSON_DEPTH, 128);
  assert.equal(MAX_PATCH_OPERATIONS, 1000);
  assert.equal(MAX_PATCH_COPIED_BYTES, 16 * 1024 * 1024);
});

test("a 100,000-deep value in a test operation gets the depth error, not RangeError", () => {
  const doc = { a: 1 };
  assert.throws(() => applyPatch(doc, [{ op: "test", path: "/a", value: nested(100000) }]), isLimit("depth", 128));
  assert.throws(() => applyPatch(doc, [{ op: "test", path: "", value: JSON.parse(nestedText(100000)) }]), isLimit("depth"));
  assert.deepEqual(doc, { a: 1 });
});

test("a 100,000-deep value in an add or replace operation gets the depth error, not RangeError", () => {
  const doc = { a: 1 };
  for (const op of ["add", "replace"]) {
    assert.throws(() => applyPatch(doc, [{ op, path: "/a", value: nested(100000) }]), isLimit("depth", 128));
    assert.throws(() => applyPatch(doc, [{ op, path: "", value: JSON.parse(nestedText(100000)) }]), isLimit("depth"));
  }
  assert.deepEqual(doc, { a: 1 });
});

test("a document nested 100,000 deep is refused with the depth error, not RangeError", () => {
  const doc = { a: nested(100000) };
  assert.throws(() => applyPatch(doc, [{ op: "remove", path: "/a" }]), isLimit("depth"));
  // Allowed by maxDepth, it is copied and compared without recursion.
  assert.deepEqual(applyPatch(doc, [{ op: "remove", path: "/a" }], { maxDepth: 200000 }), {});
  const copy = applyPatch(doc, [{ op: "test", path: "/a", value: nested(100000) }], { maxDepth: 200000 });
  assert.notEqual(copy.a, doc.a);
  assert.throws(
    () => applyPatch(doc, [{ op: "test", path: "/a", value: nested(100000, 1) }], { maxDepth: 200000 }),
    /test failed/,
  );
});

test("a value exactly at the depth limit is accepted, one level more is refused", () => {
  // At the root: the value's own depth.
  assert.deepEqual(applyPatch(null, [{ op: "replace", path: "", value: nested(128) }]), nested(128));
  assert.throws(() => applyPatch(null, [{ op: "replace", path: "", value: nested(129) }]), isLimit("depth"));
  // Under a path of k tokens: k + the value's depth.
  const doc = { a: { b: {} } };
  const at = applyPatch(doc, [{ op: "add", path: "/a/b/c", value: nested(125) }]);
  assert.deepEqual(at.a.b.c, nested(125));
  assert.throws(() => applyPatch(doc, [{ op: "add", path: "/a/b/c", value: nested(126) }]), isLimit("depth"));
  // A scalar at a path of 128 tokens would be at the limit; at 129, past it.
  assert.throws(() => applyPatch(doc, [{ op: "add", path: "/x".repeat(129), value: 1 }]), isLimit("depth"));
  // test: the compared value counts the same way.
  assert.deepEqual(applyPatch(at, [{ op: "test", path: "/a/b/c", value: nested(125) }]), at);
  assert.throws(() => applyPatch(at, [{ op: "test", path: "/a/b/c", value: nested(126) }]), isLimit("depth"));
  // A document at the limit is accepted, one deeper refused.
  assert.deepEqual(applyPatch(nested(128), [{ op: "test", path: "", value: nested(128) }]), nested(128));
  assert.throws(() => applyPatch(nested(129), []), isLimit("depth"));
});

test("copy and move may not nest the document deeper than the limit", () => {
  const doc = { a: nested(127) }; // depth 128
  const copyDeeper = [{ op: "copy", from: "/a", path: "/b" }, { op: "copy", from: "/b", path: "/a/0" }];
  assert.throws(() => applyPatch(doc, copyDeeper), isLimit("depth"));
  const moveDeeper = [{ op: "add", path: "/b", value: [] }, { op: "move", from: "/a", path: "/b/0" }];
  assert.throws(() => applyPatch(doc, moveDeeper), isLimit("depth"));
  assert.deepEqual(applyPatch(doc, [{ op: "move", from: "/a", path: "/b" }]), { b: nested(127) });
  assert.deepEqual(doc, { a: nested(127) });
});

test("the maxDepth option sets the limit", () => {
  assert.deepEqual(applyPatch({}, [{ op: "add", path: "/a", value: [[]] }], { maxDepth: 3 }), { a: [[]] });
  assert.throws(() => applyPatch({}, [{ op: "add", path: "/a", value: [[[]]] }], { maxDepth: 3 }), isLimit("depth", 3));
  assert.deepEqual(applyPatch({}, [{ op: "add", path: "/a", value: nested(300) }], { maxDepth: 301 }), { a: nested(300) });
  assert.throws(() => applyPatch({}, [], { maxDepth: 0 }), RangeError);
  assert.throws(() => applyPatch({}, [], { maxDepth: "deep" }), RangeError);
});

test("the depth error names the operation and the limit", () => {
  assert.throws(
    () => applyPatch({ a: {} }, [{ op: "test", path: "/a", value: {} }, { op: "add", path: "/a/b", value: nested(200) }]),
    (e) => isLimit("depth", 128)(e) && /operation 1 \(add at \/a\/b\).*limit of 128 levels/.test(e.message),
  );
});

test("a patch of 40 copies doubling the document is refused by the copy budget and changes nothing", () => {
  const doc = { text: "x".repeat(1024) };
  const patch = [];
  for (let i = 0; i < 40; i++) patch.push({ op: "copy", from: "", path: `/copy${i}` });
  const before = JSON.stringify(doc);
  const started = Date.now();
  assert.throws(() => applyPatch(doc, patch), isLimit("copiedBytes", 16 * 1024 * 1024));
  assert.ok(Date.now() - started < 10000, "refused without copying for ever");
  assert.equal(JSON.stringify(doc), before);
});

test("the copy budget counts copy and move, in all, and maxCopiedBytes sets it", () => {
  const doc = { a: "x".repeat(100), b: {} };
  // "x" * 100 is about 102 bytes of JSON.
  assert.ok(applyPatch(doc, [{ op: "copy", from: "/a", path: "/c" }], { maxCopiedBytes: 110 }));
  const copy = [{ op: "copy", from: "/a", path: "/c" }];
  assert.throws(() => applyPatch(doc, copy, { maxCopiedBytes: 90 }), isLimit("copiedBytes", 90));
  const copyThenMove = [...copy, { op: "move", from: "/c", path: "/d" }];
  assert.throws(() => applyPatch(doc, copyThenMove, { maxCopiedBytes: 150 }), isLimit("copiedBytes"));
  assert.deepEqual(doc, { a: "x".repeat(100), b: {} });
});

test("more than 1000 operations are refused, 1000 are accepted", () => {
  const ops = (n) => Array.from({ length: n }, () => ({ op: "test", path: "/a", value: 1 }));
  assert.deepEqual(applyPatch({ a: 1 }, ops(1000)), { a: 1 });
  assert.throws(() => applyPatch({ a: 1 }, ops(1001)), isLimit("operations", 1000));
  assert.throws(() => applyPatch({ a: 1 }, ops(3), { maxOperations: 2 }), isLimit("operations", 2));
});

test("applyPatch is all or nothing: a refused operation after applied ones changes nothing", () => {
  const doc = { a: [1, 2], b: { c: true } };
  const before = JSON.stringify(doc);
  for (const failing of [
    { op: "add", path: "/b/d", value: nested(1000) },
    { op: "test", path: "/a", value: [2, 1] },
    { op: "remove", path: "/missing" },
  ]) {
    assert.throws(() => applyPatch(doc, [{ op: "add", path: "/a/-", value: 3 }, { op: "remove", path: "/b/c" }, failing]));
    assert.equal(JSON.stringify(doc), before);
  }
});

test("test compares deep-but-allowed values by RFC 6902 equality", () => {
  const deep = (inner) => nested(120, inner);
  const doc = { v: deep({ a: 1, b: { c: [1, 2, { d: null }], e: "s" } }) };
  const ok = (value) => applyPatch(doc, [{ op: "test", path: "/v", value }]);
  const fails = (value) => assert.throws(() => ok(value), /test failed/);
  // Member order does not matter; numbers compare by value.
  assert.deepEqual(ok(deep({ b: { e: "s", c: [1.0, 2e0, { d: null }] }, a: 1 })), doc);
  // Array order, member names, types and counts do.
  fails(deep({ a: 1, b: { c: [2, 1, { d: null }], e: "s" } }));
  fails(deep({ a: 1, b: { c: [1, 2, { d: null }], e: "s" }, extra: 0 }));
  fails(deep({ a: 1, b: { c: [1, 2, { d: null }] } }));
  fails(deep({ a: 1, b: { c: [1, 2, { d: null }], f: "s" } }));
  fails(deep({ a: "1", b: { c: [1, 2, { d: null }], e: "s" } }));
  fails(deep({ a: 1, b: { c: [1, 2, { d: {} }], e: "s" } }));
  fails(deep({ a: 1, b: { c: [1, 2], e: "s" } }));
  fails(nested(121, [{ a: 1 }]));
  fails(nested(119, 0));
  // Arrays and objects with the same keys differ; so do null and {}.
  assert.throws(() => applyPatch({ v: [1] }, [{ op: "test", path: "/v", value: { 0: 1 } }]), /test failed/);
  assert.throws(() => applyPatch({ v: null }, [{ op: "test", path: "/v", value: {} }]), /test failed/);
  assert.deepEqual(applyPatch({ v: [] }, [{ op: "test", path: "/v", value: [] }]), { v: [] });
});

test("add, replace and copy put deep copies in the document", () => {
  const value = { a: nested(100, { b: 1 }) };
  const result = applyPatch({ x: {} }, [
    { op: "add", path: "/x/v", value },
    { op: "copy", from: "/x/v", path: "/y" },
  ]);
  assert.deepEqual(result, { x: { v: value }, y: value });
  assert.notEqual(result.x.v, value, "add copies");
  assert.notEqual(result.y, result.x.v, "copy copies");
  let a = result.x.v.a;
  let b = result.y.a;
  for (let i = 0; i < 100; i++) {
    assert.notEqual(a, b);
    a = a[0];
    b = b[0];
  }
  const replaced = applyPatch({ x: 1 }, [{ op: "replace", path: "/x", value }]);
  assert.notEqual(replaced.x, value, "replace copies");
  assert.deepEqual(replaced.x, value);
});

test("a __proto__ member is an own member, not the object's prototype", () => {
  const result = applyPatch({}, [{ op: "add", path: "/__proto__", value: { polluted: true } }]);
  assert.equal(Object.getPrototypeOf(result), Object.prototype);
  assert.equal(result.polluted, undefined);
  assert.deepEqual(Object.keys(result), ["__proto__"]);
  const copied = applyPatch(JSON.parse('{"__proto__": {"p": 1}}'), [{ op: "test", path: "/__proto__", value: { p: 1 } }]);
  assert.equal(Object.getPrototypeOf(copied), Object.prototype);
});

test("operations of the wrong shape are refused with an Error, whatever their members hold", () => {
  const deep = nested(100000);
  for (const patch of [
    deep,
    [deep],
    [null],
    [{ op: deep, path: "/a" }],
    [{ op: "add", path: deep, value: 1 }],
    [{ op: "copy", from: deep, path: "/b" }],
    [{ op: "add", path: "/a" }],
    [{ op: "test", path: "/" + "x".repeat(1e6), value: 1 }],
  ]) {
    assert.throws(
      () => applyPatch({ a: 1 }, patch),
      (e) => e instanceof Error && !(e instanceof RangeError) && e.message.length < 1000,
    );
  }
});

test("a document that refers to itself is refused as too deep instead of looping", () => {
  const loop = [];
  loop.push(loop, loop);
  assert.throws(() => applyPatch(loop, []), isLimit("depth"));
  const shared = { s: { t: 1 } };
  shared.u = shared.s; // shared, not circular: copied twice, as before
  assert.deepEqual(applyPatch(shared, [{ op: "replace", path: "/s/t", value: 2 }]), { s: { t: 2 }, u: { t: 1 } });
});

// --- SyncClient with messages it cannot apply ---

class FakeSocket {
  constructor(url) {
    this.url = url;
    this.sent = [];
    FakeSocket.last = this;
  }
  send(text) {
    this.sent.push(JSON.parse(text));
  }
  close() {}
}

// A client subscribed to players/p1, connected to a FakeSocket, with the copy at version 1.
function connectedClient(options = {}) {
  const client = new SyncClient("ws://test/sync", { WebSocket: FakeSocket, ...options });
  const errors = [];
  const changes = [];
  client.onError = (e) => errors.push(e);
  client.onChange = (collection, id, doc) => changes.push(doc.version);
  client.subscribe("players", "p1");
  client.connect();
  const socket = FakeSocket.last;
  socket.onopen();
  const receive = (message) => socket.onmessage({ data: typeof message === "string" ? message : JSON.stringify(message) });
  const snapshot = { collection: "players", id: "p1", version: 1, document: { gold: 1 }, vector_clock: { server: 1 } };
  receive({ type: "snapshot", ...snapshot });
  receive({ type: "ok", request_id: socket.sent[0].request_id, subscribed: [] });
  return { client, socket, errors, changes, receive };
}

const event = (version, patch) => ({
  type: "event",
  collection: "players",
  id: "p1",
  version,
  op: "update",
  json_patch: patch,
  vector_clock: { server: version },
});

test("an event whose patch fails leaves the copy, reports an ApplyError, unsubscribes, and does not loop", () => {
  const { client, socket, errors, changes, receive } = connectedClient();
  receive(event(2, [{ op: "test", path: "/gold", value: 999 }, { op: "replace", path: "/gold", value: 2 }]));
  assert.equal(errors.length, 1);
  assert.ok(errors[0] instanceof ApplyError);
  assert.equal(errors[0].version, 2);
  assert.match(errors[0].cause.message, /test failed/);
  const doc = client.get("players", "p1");
  assert.deepEqual([doc.version, doc.body, doc.error], [1, { gold: 1 }, errors[0]]);
  assert.deepEqual(socket.sent.at(-1).type, "unsubscribe");
  assert.deepEqual(socket.sent.at(-1).documents, [{ collection: "players", id: "p1" }]);
  // What is already on its way is ignored: no subscribe again, no loop.
  const sent = socket.sent.length;
  receive(event(3, [{ op: "replace", path: "/gold", value: 3 }]));
  receive(event(2, [{ op: "test", path: "/gold", value: 999 }]));
  assert.equal(socket.sent.length, sent);
  assert.deepEqual(changes, [1]);
  // subscribe() follows it again, from the version it has.
  client.subscribe("players", "p1");
  assert.equal(doc.error, null);
  assert.deepEqual(socket.sent.at(-1).documents, [{ collection: "players", id: "p1", version: 1 }]);
  receive(event(2, [{ op: "replace", path: "/gold", value: 2 }]));
  assert.deepEqual([doc.version, doc.body], [2, { gold: 2 }]);
});

test("an event nesting the copy deeper than the limit is refused the same way", () => {
  const { client, errors, receive } = connectedClient();
  receive(`{"type":"event","collection":"players","id":"p1","version":2,"op":"update",` +
    `"json_patch":[{"op":"add","path":"/deep","value":${nestedText(100000)}}]}`);
  assert.equal(errors.length, 1);
  assert.ok(errors[0] instanceof ApplyError);
  assert.ok(errors[0].cause instanceof JsonLimitError);
  assert.deepEqual(client.get("players", "p1").body, { gold: 1 });
});

test("a snapshot nested deeper than maxJsonDepth is refused the same way; one at the limit is applied", () => {
  const { client, socket, errors, receive } = connectedClient();
  const snapshot = (version, depth) =>
    `{"type":"snapshot","collection":"players","id":"p1","version":${version},"document":{"x":${nestedText(depth - 1)}}}`;
  receive(snapshot(5, 128));
  assert.equal(errors.length, 0);
  assert.equal(client.get("players", "p1").version, 5);
  receive(snapshot(6, 100000));
  assert.equal(errors.length, 1);
  assert.ok(errors[0] instanceof ApplyError);
  assert.ok(errors[0].cause instanceof JsonLimitError);
  assert.equal(errors[0].cause.max, 128);
  assert.equal(client.get("players", "p1").version, 5);
  assert.equal(socket.sent.at(-1).type, "unsubscribe");
  // A client told the server allows deeper documents accepts them.
  const deeper = connectedClient({ maxJsonDepth: 300 });
  deeper.receive(snapshot(2, 300));
  assert.equal(deeper.errors.length, 0);
  assert.equal(deeper.client.get("players", "p1").version, 2);
});

test("resync_needed tries a stopped document again", () => {
  const { client, socket, receive } = connectedClient();
  receive(event(2, [{ op: "remove", path: "/missing" }]));
  assert.ok(client.get("players", "p1").error);
  receive({ type: "resync_needed", reason: "queue_full" });
  assert.equal(client.get("players", "p1").error, null);
  assert.equal(socket.sent.at(-1).type, "subscribe");
  assert.deepEqual(socket.sent.at(-1).documents, [{ collection: "players", id: "p1", version: 1 }]);
});

test("messages of the wrong shape, or with deeply nested members, go to onError without throwing", () => {
  const { client, errors, receive } = connectedClient();
  const deep = nestedText(100000);
  const messages = [
    "null",
    "[]",
    "42",
    "not json",
    deep,
    `{"type":${deep}}`,
    `{"type":"snapshot","collection":${deep},"id":"p1","version":2,"document":{}}`,
    `{"type":"snapshot","collection":"players","id":"p1","version":${deep},"document":{}}`,
    `{"type":"event","collection":"players","id":"p1","version":${deep},"json_patch":[]}`,
    `{"type":"event","collection":"players","id":"p1","version":2,"json_patch":${deep}}`,
    `{"type":"error","request_id":12345,"code":${deep},"message":${deep}}`,
  ];
  for (const message of messages) assert.doesNotThrow(() => receive(message), message.slice(0, 60));
  assert.equal(errors.length, messages.length);
  for (const e of errors) assert.ok(!(e instanceof RangeError), e.message);
  assert.equal(errors.at(-1).message, "sync error");
  assert.equal(client.get("players", "p1").version, 1);
});

test("a callback that throws goes to onError instead of out of the socket's handler", () => {
  const { client, errors, receive } = connectedClient();
  client.onChange = () => {
    throw new Error("render failed");
  };
  assert.doesNotThrow(() => receive(event(2, [{ op: "replace", path: "/gold", value: 2 }])));
  assert.deepEqual(errors.map((e) => e.message), ["render failed"]);
  assert.equal(client.get("players", "p1").version, 2);
});
