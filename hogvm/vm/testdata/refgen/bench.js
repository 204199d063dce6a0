const {exec} = require('@posthog/hogvm');
const fs = require('fs');
const props = {"$browser": "Chrome", "$os": "Mac OS X", "$current_url": "https://example.com/pricing", "$lib": "web"};
for (let i = 0; i < 30; i++) props[`prop_${i}`] = `value ${i}`;
const globals = {
  event: {uuid: "0190b9e4-5a5e-7b1e-9a4a-1d2e3f4a5b6c", event: "$pageview", distinct_id: "user-42", timestamp: "2024-05-03T12:34:56Z", properties: props, url: "https://app/events/1"},
  person: {id: "p1", name: "Ada", properties: {email: "ada@example.com", plan: "pro"}},
  project: {id: 1, name: "Web", url: "https://app/project/1"},
  inputs: {url: "https://hooks.example.com/x", token: "secret"},
  properties: props,
};
const filterGlobals = {...globals, event: "$pageview"};
const progs = {
  filter: [["_H", 1, 32, "$pageview", 32, "event", 1, 1, 11, 32, "Chrome", 32, "$browser", 32, "properties", 1, 2, 11, 3, 2], filterGlobals],
  template: [["_H", 1, 32, "event", 32, "event", 1, 2, 32, " by ", 32, "email", 32, "properties", 32, "person", 1, 3, 32, " on ", 32, "$current_url", 32, "properties", 32, "event", 1, 3, 2, "concat", 5, 38], globals],
  webhook: [["_H", 1, 32, "event", 32, "event", 32, "event", 1, 2, 32, "distinct_id", 32, "distinct_id", 32, "event", 1, 2, 32, "properties", 32, "properties", 32, "event", 1, 2, 32, "person", 32, "name", 32, "person", 1, 2, 32, "ts", 32, "timestamp", 32, "event", 1, 2, 42, 5, 2, "jsonStringify", 1, 38], globals],
  fib: [JSON.parse(fs.readFileSync('fib.json')), {}],
};
const which = process.argv[2], n = +process.argv[3];
const [code, g] = progs[which];
const opts = {globals: g};
let r;
for (let i = 0; i < n / 5; i++) r = exec(code, opts);
const t = process.hrtime.bigint();
for (let i = 0; i < n; i++) r = exec(code, opts);
console.log(which, (Number(process.hrtime.bigint() - t) / n).toFixed(0), 'ns/op', String(r.result).slice(0, 60), r.error ? String(r.error) : '');
