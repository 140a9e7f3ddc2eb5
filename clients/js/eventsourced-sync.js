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
// What it keeps: for every subscribed document a local copy { version, body, vectorClock }
// (body null: deleted or not yet received). The versions are its state vector: after a
// reconnect it subscribes again with them and receives only what it missed. Writes carry a
// mutation id; writes not yet answered are sent again after a reconnect (the server applies each
// mutation id once). Events arriving at or below a copy's version are ignored; an event further
// ahead (which the server never sends) makes the client subscribe to that document again.
//
// Reconnecting: when the connection closes for any reason but close(), the client connects
// again after reconnectDelayMs (doubling up to maxReconnectDelayMs while attempts fail).

export class SyncError extends Error {
  constructor(reply) {
    super(reply.message || reply.code || "sync error");
    this.name = "SyncError";
    this.code = reply.code;
    this.reply = reply;
  }
}

export class SyncClient {
  // options: token (sent as the `token` query parameter), clientPrefix (mutation ids are
  // `${clientPrefix}-${n}`; default random), reconnectDelayMs (500), maxReconnectDelayMs (5000),
  // WebSocket (the constructor to use; default globalThis.WebSocket).
  constructor(url, options = {}) {
    this.url = url;
    this.token = options.token;
    this.reconnectDelayMs = options.reconnectDelayMs ?? 500;
    this.maxReconnectDelayMs = options.maxReconnectDelayMs ?? 5000;
    this.WebSocket = options.WebSocket ?? globalThis.WebSocket;
    this.clientPrefix =
      options.clientPrefix ?? "m" + Math.random().toString(36).slice(2, 10) + Date.now().toString(36);
    this.docs = new Map(); // "collection/id" -> { collection, id, version, body, vectorClock }
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

  // Starts following a document. Safe before connect(): it is subscribed once connected.
  subscribe(collection, id) {
    const key = keyOf(collection, id);
    if (!this.docs.has(key)) {
      this.docs.set(key, { collection, id, version: 0, body: null, vectorClock: {} });
    }
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
      if (this.docs.size > 0) {
        this.request({ type: "subscribe", documents: this.stateVector() }).catch((e) => this.onError(e));
      }
      for (const mutationId of this.pendingWrites.keys()) this.sendWrite(mutationId);
    };
    socket.onmessage = (e) => {
      if (this.socket !== socket) return;
      let message;
      try {
        message = JSON.parse(e.data);
      } catch (error) {
        this.onError(error);
        return;
      }
      this.handle(message);
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

  handle(m) {
    switch (m.type) {
      case "snapshot":
        return this.applySnapshot(m);
      case "event":
        return this.applyEvent(m);
      case "resync_needed":
        if (this.socket && this.docs.size > 0) {
          this.request({ type: "subscribe", documents: this.stateVector() }).catch((e) => this.onError(e));
        }
        return;
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
        this.onError(new Error(`unknown message type ${m.type}`));
    }
  }

  applySnapshot(m) {
    const doc = this.docs.get(keyOf(m.collection, m.id));
    if (!doc) return;
    doc.body = m.document;
    doc.version = m.version;
    doc.vectorClock = m.vector_clock || {};
    this.onChange(m.collection, m.id, doc);
  }

  applyEvent(m) {
    const doc = this.docs.get(keyOf(m.collection, m.id));
    if (!doc || m.version <= doc.version) return; // not followed, or already applied
    if (m.version !== doc.version + 1) {
      // A gap: never sent by the server; start this document again from what we have.
      this.request({ type: "subscribe", documents: [this.stateOf(keyOf(m.collection, m.id))] }).catch(
        (e) => this.onError(e),
      );
      return;
    }
    doc.body = applyPatch(doc.body, m.json_patch);
    if (m.op === "delete") doc.body = null;
    doc.version = m.version;
    doc.vectorClock = m.vector_clock || doc.vectorClock;
    this.onChange(m.collection, m.id, doc);
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

// --- RFC 6902 JSON Patch (RFC 6901 pointers), applied to a copy ---

function parsePointer(pointer) {
  if (pointer === "") return [];
  if (pointer[0] !== "/") throw new Error(`invalid JSON pointer "${pointer}"`);
  return pointer
    .slice(1)
    .split("/")
    .map((s) => s.replace(/~1/g, "/").replace(/~0/g, "~"));
}

function clone(value) {
  return value === undefined ? undefined : JSON.parse(JSON.stringify(value));
}

function deepEqual(a, b) {
  if (a === b) return true;
  if (typeof a !== typeof b || a === null || b === null || typeof a !== "object") return false;
  if (Array.isArray(a) !== Array.isArray(b)) return false;
  const ka = Object.keys(a);
  const kb = Object.keys(b);
  if (ka.length !== kb.length) return false;
  return ka.every((k) => Object.prototype.hasOwnProperty.call(b, k) && deepEqual(a[k], b[k]));
}

function arrayIndex(token, length, forAdd) {
  if (forAdd && token === "-") return length;
  if (!/^(0|[1-9][0-9]*)$/.test(token)) throw new Error(`invalid array index "${token}"`);
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
    else throw new Error(`path not found at "${t}"`);
  }
  return node;
}

function addAt(doc, tokens, value) {
  if (tokens.length === 0) return value;
  const parent = parentOf(doc, tokens);
  const last = tokens[tokens.length - 1];
  if (Array.isArray(parent)) parent.splice(arrayIndex(last, parent.length, true), 0, value);
  else parent[last] = value;
  return doc;
}

function removeAt(doc, tokens) {
  if (tokens.length === 0) return null;
  const parent = parentOf(doc, tokens);
  const last = tokens[tokens.length - 1];
  if (Array.isArray(parent)) parent.splice(arrayIndex(last, parent.length, false), 1);
  else if (Object.prototype.hasOwnProperty.call(parent, last)) delete parent[last];
  else throw new Error(`path not found at "${last}"`);
  return doc;
}

// Applies an RFC 6902 patch to a copy of doc and returns it; throws on an invalid operation or
// a failing test (the original is unchanged).
export function applyPatch(doc, patch) {
  let result = clone(doc);
  for (const op of patch) {
    const path = parsePointer(op.path);
    switch (op.op) {
      case "add":
        result = addAt(result, path, clone(op.value));
        break;
      case "remove":
        result = removeAt(result, path);
        break;
      case "replace":
        if (path.length > 0) getAt(result, path); // must exist
        result = path.length === 0 ? clone(op.value) : addAt(removeAt(result, path), path, clone(op.value));
        break;
      case "move": {
        const from = parsePointer(op.from);
        const value = getAt(result, from);
        result = addAt(removeAt(result, from), path, value);
        break;
      }
      case "copy":
        result = addAt(result, path, clone(getAt(result, parsePointer(op.from))));
        break;
      case "test":
        if (!deepEqual(getAt(result, path), op.value)) throw new Error(`test failed at "${op.path}"`);
        break;
      default:
        throw new Error(`unknown patch operation "${op.op}"`);
    }
  }
  return result;
}
