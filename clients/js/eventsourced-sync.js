// eventsourced-sync: a dependency-free JavaScript client of the sync protocol
// (docs/sync_protocol.md), for browsers and any runtime with a WebSocket.
//
//   import { SyncClient } from "./eventsourced-sync.js";
//   const client = new SyncClient("ws://localhost:8080/sync", { token: "secret-of-ann" });
//   client.onChange = (collection, id, doc) => render(collection, id, doc.body);
//   client.subscribe("players", "p1");
//   client.connect();
//   await client.write("players", "p1", { op: "patch", patch: [{ op: "replace", path: "/gold", value: 5 }] });
//
// What it keeps: for every subscribed document a local copy { version, body, vectorClock, error }
// (body null: deleted or not yet received). The versions are its state vector: after a
// reconnect it subscribes again with them and receives only what it missed. Writes carry a
// mutation id; writes not yet answered are sent again after a reconnect (the server applies each
// mutation id once). Events arriving at or below a copy's version are ignored; an event further
// ahead (which the server never sends) makes the client subscribe to that document again.
//
// Hostile or broken input: no message can crash the process or make the client loop. Every
// value from the server is walked with explicit stacks, never by recursion (JSON.parse is
// iterative in V8; JSON.stringify and Array.prototype.join are not), and is held to the depth
// limit the server enforces (MAX_JSON_DEPTH, the server's default max_json_depth). A snapshot or
// event that cannot be applied (a patch that fails, a value too deep) leaves the copy as it was,
// is reported to onError as an ApplyError, and stops the document (copy.error): replaying the same
// message would fail the same way, so the client unsubscribes from it rather than subscribing
// again in a loop. It is tried again on subscribe() and whenever the client subscribes to
// everything (a reconnect, resync_needed).
//
// Reconnecting: when the connection closes for any reason but close(), the client connects
// again after reconnectDelayMs (doubling up to maxReconnectDelayMs while attempts fail).

// The deepest nesting of a document (and of what a patch puts in it) that the client accepts:
// the server's default max_json_depth. A scalar has depth 0, {} and [] depth 1, {"a": [1]} depth 2.
export const MAX_JSON_DEPTH = 128;
// Operations per patch, as on the server.
export const MAX_PATCH_OPERATIONS = 1000;
// What the copy and move operations of one patch may copy in all, measured as the approximate
// length of the copied values' JSON text, as on the server: 40 copies that each double the
// document would otherwise fill any memory.
export const MAX_PATCH_COPIED_BYTES = 16 * 1024 * 1024;

export class SyncError extends Error {
  constructor(reply) {
    // Only strings make the message: String() of a deeply nested array recurses.
    super(stringOr(reply.message, stringOr(reply.code, "sync error")));
    this.name = "SyncError";
    this.code = stringOr(reply.code, undefined);
    this.reply = reply;
  }
}

// A patch or value over one of the limits above. limit: "depth", "operations" or "copiedBytes";
// max: the limit that was exceeded.
export class JsonLimitError extends Error {
  constructor(message, limit, max) {
    super(message);
    this.name = "JsonLimitError";
    this.limit = limit;
    this.max = max;
  }
}

// A snapshot or event the client could not apply to its copy of a document (the copy is left as
// it was and the document is no longer followed; see the top of this file). cause: the error.
export class ApplyError extends Error {
  constructor(message, { collection, id, version, cause }) {
    super(message, { cause });
    this.name = "ApplyError";
    this.collection = collection;
    this.id = id;
    this.version = version;
  }
}

export class SyncClient {
  // options: token (sent as the `token` query parameter), clientPrefix (mutation ids are
  // `${clientPrefix}-${n}`; default random), reconnectDelayMs (500), maxReconnectDelayMs (5000),
  // maxJsonDepth (MAX_JSON_DEPTH; at least the server store's max_json_depth),
  // WebSocket (the constructor to use; default globalThis.WebSocket).
  constructor(url, options = {}) {
    this.url = url;
    this.token = options.token;
    this.reconnectDelayMs = options.reconnectDelayMs ?? 500;
    this.maxReconnectDelayMs = options.maxReconnectDelayMs ?? 5000;
    this.maxJsonDepth = checkedMaxDepth(options.maxJsonDepth ?? MAX_JSON_DEPTH, "maxJsonDepth");
    this.WebSocket = options.WebSocket ?? globalThis.WebSocket;
    this.clientPrefix =
      options.clientPrefix ?? "m" + Math.random().toString(36).slice(2, 10) + Date.now().toString(36);
    this.docs = new Map(); // "collection/id" -> { collection, id, version, body, vectorClock, error }
    this.pendingWrites = new Map(); // mutation id -> { message, resolve, reject }
    this.pendingRequests = new Map(); // request id -> { resolve, reject }
    this.nextRequest = 1;
    this.nextMutation = 1;
    this.socket = null;
    this.status = "disconnected"; // "connecting" | "connected" | "disconnected" | "closed"
    this.closedByUser = false;
    this.currentDelay = this.reconnectDelayMs;
    this.reconnectTimer = null;
    // Callbacks (assign your own):
    this.onChange = () => {}; // (collection, id, doc) after a snapshot or an event is applied
    this.onStatus = () => {}; // (status, detail) on every status change
    this.onError = () => {}; // (error) for errors not tied to a request of yours
  }

  // Starts following a document. Safe before connect(): it is subscribed once connected. Also
  // follows a document again that stopped on a message it could not apply (copy.error).
  subscribe(collection, id) {
    const key = keyOf(collection, id);
    if (!this.docs.has(key)) {
      this.docs.set(key, { collection, id, version: 0, body: null, vectorClock: {}, error: null });
    }
    this.docs.get(key).error = null;
    if (this.status === "connected") {
      return this.request({ type: "subscribe", documents: [this.stateOf(key)] });
    }
    return Promise.resolve(null);
  }

  // The local copy of a document (or undefined when not subscribed).
  get(collection, id) {
    return this.docs.get(keyOf(collection, id));
  }

  // The state vector: [{ collection, id, version }] of every subscribed document.
  stateVector() {
    return [...this.docs.keys()].map((key) => this.stateOf(key));
  }

  // Sends a write; resolves with the server's "ok" reply, rejects with SyncError. change is
  // { op: "put", document } | { op: "patch", patch } | { op: "delete" }, plus an optional
  // baseVersion. Sent again after a reconnect until answered.
  write(collection, id, change) {
    const mutationId = `${this.clientPrefix}-${this.nextMutation++}`;
    const message = { type: "write", mutation_id: mutationId, collection, id, op: change.op };
    if (change.op === "put") message.document = change.document;
    if (change.op === "patch") message.patch = change.patch;
    if (change.baseVersion !== undefined) message.base_version = change.baseVersion;
    return new Promise((resolve, reject) => {
      this.pendingWrites.set(mutationId, { message, resolve, reject });
      if (this.status === "connected") this.sendWrite(mutationId);
    });
  }

  connect() {
    this.closedByUser = false;
    if (this.socket) return;
    this.setStatus("connecting");
    const url = this.token === undefined ? this.url : withToken(this.url, this.token);
    const socket = new this.WebSocket(url);
    this.socket = socket;
    socket.onopen = () => {
      if (this.socket !== socket) return;
      this.currentDelay = this.reconnectDelayMs;
      this.setStatus("connected");
      this.subscribeAll();
      for (const mutationId of this.pendingWrites.keys()) this.sendWrite(mutationId);
    };
    socket.onmessage = (e) => {
      if (this.socket !== socket) return;
      // An exception escaping an event handler can end a Node.js process: whatever a message
      // does (including the callbacks it runs) ends up in onError instead.
      try {
        this.handle(JSON.parse(e.data));
      } catch (error) {
        this.onError(error);
      }
    };
    socket.onclose = (e) => {
      if (this.socket !== socket) return;
      this.socket = null;
      this.failRequests(new Error(`connection closed (${e.code} ${e.reason})`));
      if (this.closedByUser) {
        this.setStatus("closed", { code: e.code, reason: e.reason });
        return;
      }
      this.setStatus("disconnected", { code: e.code, reason: e.reason });
      this.reconnectTimer = setTimeout(() => {
        this.reconnectTimer = null;
        if (!this.closedByUser) this.connect();
      }, this.currentDelay);
      this.currentDelay = Math.min(this.currentDelay * 2, this.maxReconnectDelayMs);
    };
    socket.onerror = () => {}; // onclose follows
  }

  // Closes the connection and stops reconnecting; unanswered writes stay pending for connect().
  close() {
    this.closedByUser = true;
    if (this.reconnectTimer) clearTimeout(this.reconnectTimer);
    this.reconnectTimer = null;
    if (this.socket) this.socket.close(1000, "closed by the client");
    else this.setStatus("closed");
  }

  // --- internals ---

  stateOf(key) {
    const d = this.docs.get(key);
    return { collection: d.collection, id: d.id, version: d.version };
  }

  // Subscribes to every document with the state vector (after connecting, on resync_needed).
  // Documents stopped on a message they could not apply are tried again.
  subscribeAll() {
    if (!this.socket || this.docs.size === 0) return;
    for (const doc of this.docs.values()) doc.error = null;
    this.request({ type: "subscribe", documents: this.stateVector() }).catch((e) => this.onError(e));
  }

  request(message) {
    const requestId = this.nextRequest++;
    return new Promise((resolve, reject) => {
      this.pendingRequests.set(requestId, { resolve, reject });
      this.socket.send(JSON.stringify({ ...message, request_id: requestId }));
    });
  }

  sendWrite(mutationId) {
    const pending = this.pendingWrites.get(mutationId);
    const requestId = this.nextRequest++;
    this.pendingRequests.set(requestId, {
      resolve: (reply) => {
        this.pendingWrites.delete(mutationId);
        pending.resolve(reply);
      },
      reject: (error) => {
        // A lost connection keeps the write pending (sent again on reconnect); an error reply
        // from the server ends it.
        if (error instanceof SyncError) {
          this.pendingWrites.delete(mutationId);
          pending.reject(error);
        }
      },
    });
    this.socket.send(JSON.stringify({ ...pending.message, request_id: requestId }));
  }

  failRequests(error) {
    const requests = [...this.pendingRequests.values()];
    this.pendingRequests.clear();
    for (const r of requests) r.reject(error);
  }

  // Members are type-checked before anything turns them into strings or numbers: a template
  // literal or a comparison of a deeply nested array recurses (Array.prototype.join).
  handle(m) {
    if (!isObject(m)) throw new Error("a message that is not a JSON object");
    switch (m.type) {
      case "snapshot":
        return this.applySnapshot(m);
      case "event":
        return this.applyEvent(m);
      case "resync_needed":
        return this.subscribeAll();
      case "ok":
      case "error": {
        const pending = this.pendingRequests.get(m.request_id);
        if (!pending) {
          if (m.type === "error") this.onError(new SyncError(m));
          return;
        }
        this.pendingRequests.delete(m.request_id);
        if (m.type === "ok") pending.resolve(m);
        else pending.reject(new SyncError(m));
        return;
      }
      default:
        throw new Error(`unknown message type ${describe(m.type)}`);
    }
  }

  // The copy a snapshot or event is for, or undefined (not followed, or stopped).
  docOf(m) {
    if (typeof m.collection !== "string" || typeof m.id !== "string" || !Number.isSafeInteger(m.version)) {
      throw new Error(`a ${m.type} message without a string collection and id and an integer version`);
    }
    const doc = this.docs.get(keyOf(m.collection, m.id));
    return doc && !doc.error ? doc : undefined;
  }

  applySnapshot(m) {
    const doc = this.docOf(m);
    if (!doc) return;
    if (!depthWithin(m.document, this.maxJsonDepth)) {
      return this.refuse(doc, m, depthError("the document is nested", this.maxJsonDepth));
    }
    if (!isVectorClock(m.vector_clock)) return this.refuse(doc, m, new Error(kBadVectorClock));
    doc.body = m.document;
    doc.version = m.version;
    doc.vectorClock = m.vector_clock || {};
    this.onChange(m.collection, m.id, doc);
  }

  applyEvent(m) {
    const doc = this.docOf(m);
    if (!doc || m.version <= doc.version) return; // not followed, or already applied
    if (m.version !== doc.version + 1) {
      // A gap: never sent by the server; start this document again from what we have.
      this.request({ type: "subscribe", documents: [this.stateOf(keyOf(m.collection, m.id))] }).catch(
        (e) => this.onError(e),
      );
      return;
    }
    if (!isVectorClock(m.vector_clock)) return this.refuse(doc, m, new Error(kBadVectorClock));
    let body;
    try {
      body = applyPatch(doc.body, m.json_patch, { maxDepth: this.maxJsonDepth });
    } catch (error) {
      return this.refuse(doc, m, error);
    }
    doc.body = m.op === "delete" ? null : body;
    doc.version = m.version;
    doc.vectorClock = m.vector_clock || doc.vectorClock;
    this.onChange(m.collection, m.id, doc);
  }

  // A snapshot or event that cannot be applied: the copy stays as it was and the document stops.
  // Subscribing again from the same version would bring the same message back, so the client
  // unsubscribes instead (what is already on its way is ignored) and says why.
  refuse(doc, m, cause) {
    const error = new ApplyError(
      `cannot apply the ${m.type} of ${shortened(`${m.collection}/${m.id}`)} version ${m.version} ` +
        `(the copy stays at version ${doc.version}): ${cause.message}`,
      { collection: doc.collection, id: doc.id, version: m.version, cause },
    );
    doc.error = error;
    if (this.socket) {
      this.request({ type: "unsubscribe", documents: [{ collection: doc.collection, id: doc.id }] }).catch(
        (e) => this.onError(e),
      );
    }
    this.onError(error);
  }

  setStatus(status, detail) {
    this.status = status;
    this.onStatus(status, detail);
  }
}

function keyOf(collection, id) {
  return `${collection}/${id}`;
}

function withToken(url, token) {
  return url + (url.includes("?") ? "&" : "?") + "token=" + encodeURIComponent(token);
}

function stringOr(value, fallback) {
  return typeof value === "string" ? value : fallback;
}

// Untrusted text for an error message, never longer than 300 characters.
function shortened(text) {
  return text.length > 300 ? text.slice(0, 300) + "..." : text;
}

// A member of an untrusted message, for an error message: strings quoted, anything else by type.
function describe(value) {
  if (typeof value === "string") return JSON.stringify(shortened(value));
  return value === null ? "null" : typeof value;
}

function isObject(value) {
  return value !== null && typeof value === "object" && !Array.isArray(value);
}

function isContainer(value) {
  return value !== null && typeof value === "object";
}

// A vector clock is absent or { client id: number of writes }.
const kBadVectorClock = "vector_clock is not an object of numbers";

function isVectorClock(value) {
  if (value === undefined || value === null) return true;
  return isObject(value) && Object.values(value).every((n) => typeof n === "number");
}

// what: "the document is nested", "JSON patch operation 2 (add at /a) would nest the document", ...
function depthError(what, maxDepth) {
  return new JsonLimitError(`${what} deeper than the limit of ${maxDepth} levels`, "depth", maxDepth);
}

function checkedMaxDepth(maxDepth, option) {
  if (!Number.isSafeInteger(maxDepth) || maxDepth < 1) {
    throw new RangeError(`${option} must be an integer >= 1`);
  }
  return maxDepth;
}

// --- RFC 6902 JSON Patch (RFC 6901 pointers), applied to a copy ---
//
// Patches and the values in them come from the network, so nothing here recurses on a value:
// every walk over one uses an explicit stack, and every value is measured against the depth
// limit (stopping one level past it) before it is copied or compared.

function parsePointer(pointer) {
  if (typeof pointer !== "string") throw new Error(`a JSON pointer is a string, got ${describe(pointer)}`);
  if (pointer === "") return [];
  if (pointer[0] !== "/") throw new Error(`invalid JSON pointer ${describe(pointer)}`);
  return pointer
    .slice(1)
    .split("/")
    .map((s) => s.replace(/~1/g, "/").replace(/~0/g, "~"));
}

// Sets a member as an own property, even "__proto__" (which assignment would take as the
// object's prototype), as JSON.parse does.
function setMember(object, key, value) {
  if (key === "__proto__") {
    Object.defineProperty(object, key, { value, writable: true, enumerable: true, configurable: true });
  } else {
    object[key] = value;
  }
}

// A deep copy of a JSON value (arrays and objects copied, anything else as is).
function clone(value) {
  if (!isContainer(value)) return value;
  const root = Array.isArray(value) ? [] : {};
  const stack = [value, root]; // pairs: a container to copy, its (empty) copy
  while (stack.length > 0) {
    const copy = stack.pop();
    const source = stack.pop();
    if (Array.isArray(source)) {
      for (let i = 0; i < source.length; i++) copy.push(copyShell(source[i], stack));
    } else {
      for (const key of Object.keys(source)) setMember(copy, key, copyShell(source[key], stack));
    }
  }
  return root;
}

// For clone: a scalar itself, or an empty container whose filling is pushed on the stack.
function copyShell(value, stack) {
  if (!isContainer(value)) return value;
  const copy = Array.isArray(value) ? [] : {};
  stack.push(value, copy);
  return copy;
}

// RFC 6902 equality: objects with the same members in any order, arrays with equal elements in
// the same order, numbers by value, anything else by ===.
function deepEqual(a, b) {
  const stack = [a, b];
  while (stack.length > 0) {
    const y = stack.pop();
    const x = stack.pop();
    if (x === y) continue;
    if (typeof x !== typeof y || x === null || y === null || typeof x !== "object") return false;
    if (Array.isArray(x) !== Array.isArray(y)) return false;
    if (Array.isArray(x)) {
      if (x.length !== y.length) return false;
      for (let i = 0; i < x.length; i++) stack.push(x[i], y[i]);
    } else {
      const keys = Object.keys(x);
      if (keys.length !== Object.keys(y).length) return false;
      for (const k of keys) {
        if (!Object.prototype.hasOwnProperty.call(y, k)) return false;
        stack.push(x[k], y[k]);
      }
    }
  }
  return true;
}

// Whether value is nested at most maxDepth deep (a scalar 0, {} and [] 1, {"a": [1]} 2). Walks no
// more than one level past maxDepth, so it answers quickly on any value, however deep; a value
// that refers to itself (never one from JSON.parse) comes out too deep instead of looping.
function depthWithin(value, maxDepth) {
  if (!isContainer(value)) return maxDepth >= 0;
  const stack = [value, 1]; // pairs: a container, its depth
  while (stack.length > 0) {
    const depth = stack.pop();
    const node = stack.pop();
    if (depth > maxDepth) return false;
    for (const child of Array.isArray(node) ? node : Object.values(node)) {
      if (isContainer(child)) stack.push(child, depth + 1);
    }
  }
  return true;
}

// The length of a value's JSON text, roughly (as the server counts it), counting no further than
// just past budget: the cost of measuring stays within the budget too.
function textBytes(value, budget) {
  let bytes = 0;
  const stack = [value];
  while (stack.length > 0 && bytes <= budget) {
    const node = stack.pop();
    if (typeof node === "string") {
      bytes += node.length + 2;
    } else if (Array.isArray(node)) {
      bytes += 2 + node.length;
      for (const item of node) stack.push(item);
    } else if (isContainer(node)) {
      bytes += 2;
      for (const key of Object.keys(node)) {
        bytes += key.length + 4;
        stack.push(node[key]);
      }
    } else {
      bytes += 8;
    }
  }
  return bytes;
}

function arrayIndex(token, length, forAdd) {
  if (forAdd && token === "-") return length;
  if (!/^(0|[1-9][0-9]*)$/.test(token)) throw new Error(`invalid array index ${describe(token)}`);
  const i = Number(token);
  if (i > length || (!forAdd && i === length)) throw new Error(`array index ${i} out of range`);
  return i;
}

// The container holding the target of `tokens` (walking all but the last).
function parentOf(doc, tokens) {
  const node = getAt(doc, tokens.slice(0, -1));
  if (node === null || typeof node !== "object") throw new Error("path does not lead into a container");
  return node;
}

function getAt(doc, tokens) {
  let node = doc;
  for (const t of tokens) {
    if (Array.isArray(node)) node = node[arrayIndex(t, node.length, false)];
    else if (node !== null && typeof node === "object" && Object.prototype.hasOwnProperty.call(node, t))
      node = node[t];
    else throw new Error(`path not found at ${describe(t)}`);
  }
  return node;
}

function addAt(doc, tokens, value) {
  if (tokens.length === 0) return value;
  const parent = parentOf(doc, tokens);
  const last = tokens[tokens.length - 1];
  if (Array.isArray(parent)) parent.splice(arrayIndex(last, parent.length, true), 0, value);
  else setMember(parent, last, value);
  return doc;
}

function removeAt(doc, tokens) {
  if (tokens.length === 0) return null;
  const parent = parentOf(doc, tokens);
  const last = tokens[tokens.length - 1];
  if (Array.isArray(parent)) parent.splice(arrayIndex(last, parent.length, false), 1);
  else if (Object.prototype.hasOwnProperty.call(parent, last)) delete parent[last];
  else throw new Error(`path not found at ${describe(last)}`);
  return doc;
}

// The "value" member an add, replace or test operation must have.
function valueOf(op, index) {
  if (!Object.prototype.hasOwnProperty.call(op, "value")) {
    throw new Error(`JSON patch operation ${index} (${op.op}) has no "value"`);
  }
  return op.value;
}

// Applies an RFC 6902 patch to a copy of doc and returns it; throws on an invalid operation or
// a failing test, and a JsonLimitError on a patch over the limits (options, defaults as on the
// server): maxDepth (MAX_JSON_DEPTH) — doc, and every value an operation puts in it or compares
// (a value at a path of k tokens counts k + its own depth), may be nested at most this deep;
// maxOperations (MAX_PATCH_OPERATIONS); maxCopiedBytes (MAX_PATCH_COPIED_BYTES) — what copy and
// move operations copy in all, as JSON text. All or nothing: when it throws, doc is unchanged
// (the operations work on the copy) and nothing is returned. Each limit is checked before the
// operation it concerns does anything, so the limits hold after every step, not only at the end.
export function applyPatch(doc, patch, options = {}) {
  const maxDepth = checkedMaxDepth(options.maxDepth ?? MAX_JSON_DEPTH, "maxDepth");
  const maxOperations = options.maxOperations ?? MAX_PATCH_OPERATIONS;
  const maxCopiedBytes = options.maxCopiedBytes ?? MAX_PATCH_COPIED_BYTES;
  if (!Array.isArray(patch)) {
    throw new Error(`a JSON patch is an array of operations, got ${describe(patch)}`);
  }
  if (patch.length > maxOperations) {
    throw new JsonLimitError(
      `a JSON patch of ${patch.length} operations; at most ${maxOperations}`,
      "operations",
      maxOperations,
    );
  }
  if (!depthWithin(doc, maxDepth)) throw depthError("the document is nested", maxDepth);
  let result = clone(doc);
  let copied = 0;
  for (let i = 0; i < patch.length; i++) {
    const op = patch[i];
    if (!isObject(op) || typeof op.op !== "string") {
      throw new Error(`JSON patch operation ${i} is not an object with a string "op"`);
    }
    const path = parsePointer(op.path);
    // A value placed at (or compared with what is at) `path` must fit in what is left of the limit.
    const checkDepth = (value) => {
      if (path.length > maxDepth || !depthWithin(value, maxDepth - path.length)) {
        const what = op.op === "test" ? "compares a value nested" : "would nest the document";
        throw depthError(`JSON patch operation ${i} (${op.op} at ${shortened(op.path)}) ${what}`, maxDepth);
      }
      return value;
    };
    switch (op.op) {
      case "add":
        result = addAt(result, path, clone(checkDepth(valueOf(op, i))));
        break;
      case "remove":
        result = removeAt(result, path);
        break;
      case "replace": {
        const value = checkDepth(valueOf(op, i));
        if (path.length > 0) getAt(result, path); // must exist
        result = path.length === 0 ? clone(value) : addAt(removeAt(result, path), path, clone(value));
        break;
      }
      case "move":
      case "copy": {
        const from = parsePointer(op.from);
        const value = checkDepth(getAt(result, from));
        copied += textBytes(value, maxCopiedBytes - copied);
        if (copied > maxCopiedBytes) {
          throw new JsonLimitError(
            `JSON patch operation ${i} (${op.op}): the patch copies more than ${maxCopiedBytes} bytes ` +
              "of JSON in all",
            "copiedBytes",
            maxCopiedBytes,
          );
        }
        if (op.op === "move") result = addAt(removeAt(result, from), path, value);
        else result = addAt(result, path, clone(value));
        break;
      }
      case "test": {
        const value = checkDepth(valueOf(op, i));
        if (!deepEqual(getAt(result, path), value)) throw new Error(`test failed at ${describe(op.path)}`);
        break;
      }
      default:
        throw new Error(`unknown patch operation ${describe(op.op)}`);
    }
  }
  return result;
}
