// applyPatch against examples of RFC 6902, Appendix A (node --test clients/js/test).
import { test } from "node:test";
import assert from "node:assert/strict";
import { applyPatch } from "../eventsourced-sync.js";

const cases = [
  ["A.1 add an object member", { foo: "bar" }, [{ op: "add", path: "/baz", value: "qux" }], { baz: "qux", foo: "bar" }],
  ["A.2 add an array element", { foo: ["bar", "baz"] }, [{ op: "add", path: "/foo/1", value: "qux" }], { foo: ["bar", "qux", "baz"] }],
  ["A.3 remove an object member", { baz: "qux", foo: "bar" }, [{ op: "remove", path: "/baz" }], { foo: "bar" }],
  ["A.4 remove an array element", { foo: ["bar", "qux", "baz"] }, [{ op: "remove", path: "/foo/1" }], { foo: ["bar", "baz"] }],
  ["A.5 replace a value", { baz: "qux", foo: "bar" }, [{ op: "replace", path: "/baz", value: "boo" }], { baz: "boo", foo: "bar" }],
  ["A.6 move a value", { foo: { bar: "baz", waldo: "fred" }, qux: { corge: "grault" } },
    [{ op: "move", from: "/foo/waldo", path: "/qux/thud" }],
    { foo: { bar: "baz" }, qux: { corge: "grault", thud: "fred" } }],
  ["A.7 move an array element", { foo: ["all", "grass", "cows", "eat"] }, [{ op: "move", from: "/foo/1", path: "/foo/3" }],
    { foo: ["all", "cows", "eat", "grass"] }],
  ["A.8 test succeeds", { baz: "qux", foo: ["a", 2, "c"] },
    [{ op: "test", path: "/baz", value: "qux" }, { op: "test", path: "/foo/1", value: 2 }], { baz: "qux", foo: ["a", 2, "c"] }],
  ["A.10 add a nested member object", { foo: "bar" }, [{ op: "add", path: "/child", value: { grandchild: {} } }],
    { foo: "bar", child: { grandchild: {} } }],
  ["A.14 ~ escape ordering", { "/": 9, "~1": 10 }, [{ op: "test", path: "/~01", value: 10 }], { "/": 9, "~1": 10 }],
  ["A.16 add an array value", { foo: ["bar"] }, [{ op: "add", path: "/foo/-", value: ["abc", "def"] }], { foo: ["bar", ["abc", "def"]] }],
  ["whole document replaced (a create)", null, [{ op: "replace", path: "", value: { id: "p1", gold: 0 } }], { id: "p1", gold: 0 }],
  ["copy", { a: { b: 1 } }, [{ op: "copy", from: "/a", path: "/c" }], { a: { b: 1 }, c: { b: 1 } }],
];

for (const [name, doc, patch, expected] of cases) {
  test(name, () => {
    const before = JSON.stringify(doc);
    assert.deepEqual(applyPatch(doc, patch), expected);
    assert.equal(JSON.stringify(doc), before, "the input is not modified");
  });
}

const errors = [
  ["A.9 test fails", { baz: "qux" }, [{ op: "test", path: "/baz", value: "bar" }]],
  ["A.12 add to a nonexistent target", { foo: "bar" }, [{ op: "add", path: "/baz/bat", value: "qux" }]],
  ["A.15 comparing strings and numbers", { "/": 9, "~1": 10 }, [{ op: "test", path: "/~01", value: "10" }]],
  ["remove a missing member", { a: 1 }, [{ op: "remove", path: "/b" }]],
  ["replace a missing member", { a: 1 }, [{ op: "replace", path: "/b", value: 2 }]],
  ["array index out of range", { a: [1] }, [{ op: "add", path: "/a/5", value: 2 }]],
  ["leading zero index", { a: [1, 2] }, [{ op: "remove", path: "/a/01" }]],
  ["unknown operation", { a: 1 }, [{ op: "frobnicate", path: "/a" }]],
];

for (const [name, doc, patch] of errors) {
  test(name, () => {
    assert.throws(() => applyPatch(doc, patch));
  });
}
