// The demo page: follows the players p1 and p2 through the sync protocol and shows them live.
// A button sends a client write ("+5 gold"); the server applies it once (mutation id) and every
// browser sees it.
import { SyncClient } from "./eventsourced-sync.js";

const params = new URLSearchParams(location.search);
const token = params.get("token") || "demo-ann";
const players = ["p1", "p2"];
const url = `${location.protocol === "https:" ? "wss" : "ws"}://${location.host}/sync`;
const client = new SyncClient(url, { token, reconnectDelayMs: Number(params.get("reconnect_ms") || 1000) });

document.getElementById("client").textContent = token;
const log = (text) => {
  const el = document.getElementById("log");
  el.textContent = `${new Date().toLocaleTimeString()} ${text}\n` + el.textContent.slice(0, 2000);
};

function row(id) {
  let tr = document.getElementById(`player-${id}`);
  if (tr) return tr;
  tr = document.createElement("tr");
  tr.id = `player-${id}`;
  tr.innerHTML = `<td class="name"></td><td class="num gold"></td><td class="num level"></td>
    <td class="num version"></td><td><button class="give">+5 gold</button></td>`;
  tr.querySelector(".give").addEventListener("click", () => give(id, 5));
  document.getElementById("players").appendChild(tr);
  return tr;
}

function render(id) {
  const doc = client.get("players", id);
  const tr = row(id);
  const body = doc.body || {};
  tr.querySelector(".name").textContent = body.name ?? id;
  tr.querySelector(".gold").textContent = body.gold ?? "";
  tr.querySelector(".level").textContent = body.level ?? "";
  tr.querySelector(".version").textContent = doc.version;
  tr.dataset.version = doc.version;
}

async function give(id, amount) {
  const doc = client.get("players", id);
  const gold = doc.body?.gold ?? 0;
  try {
    const reply = await client.write("players", id, {
      op: "patch",
      patch: [
        { op: "test", path: "/gold", value: gold },
        { op: "replace", path: "/gold", value: gold + amount },
      ],
    });
    log(`+${amount} gold for ${id}: version ${reply.version}`);
  } catch (e) {
    log(`write refused (${e.code}): ${e.message}`);
  }
}

client.onChange = (collection, id) => render(id);
client.onStatus = (status, detail) => {
  const el = document.getElementById("status");
  el.dataset.status = status;
  el.textContent = status;
  document.body.dataset.status = status;
  if (detail && detail.code) log(`${status} (${detail.code} ${detail.reason || ""})`);
  else log(status);
};
client.onError = (e) => log(`error: ${e.message}`);

for (const id of players) {
  client.subscribe("players", id);
  row(id);
}
client.connect();
window.syncClient = client; // for the browser test and the curious
