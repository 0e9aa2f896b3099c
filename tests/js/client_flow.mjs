// A browser-like client flow with the npm socket.io-client, against a live FinStack server.
//
//   node tests/js/client_flow.mjs <base_url> <alice_login> <bob_login> <password>
//
// Logs both users in over HTTP, connects their sockets (long-polling upgraded to WebSocket, the client's default),
// receives a live notification, exchanges direct messages (a retried send is stored once), disconnects Bob,
// and catches him up after he reconnects: messages `after` his last one, notifications `since` his last one.
// Exits 0 when every step holds, 1 with the reason otherwise.

import { io } from "socket.io-client";

const [baseUrl, aliceLogin, bobLogin, password] = process.argv.slice(2);
if (!password) {
  console.error("usage: node client_flow.mjs <base_url> <alice_login> <bob_login> <password>");
  process.exit(2);
}
const STEP_TIMEOUT_MS = 5000;
setTimeout(() => fail("the whole flow took more than 60 s"), 60000).unref();

function fail(reason) {
  console.error(`FAIL: ${reason}`);
  process.exit(1);
}

function check(condition, reason) {
  if (!condition) fail(reason);
}

async function api(method, path, token, body) {
  const response = await fetch(baseUrl + path, {
    method,
    headers: { "Content-Type": "application/json", ...(token ? { Authorization: `Bearer ${token}` } : {}) },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await response.text();
  const data = text ? JSON.parse(text) : null;
  if (!response.ok) fail(`${method} ${path} → ${response.status} ${text}`);
  return data;
}

async function login(name) {
  const data = await api("POST", "/api/auth/login", null, { username: name, password });
  return { token: data.access_token, id: data.user.id, name };
}

// Every event a socket receives, in order, with a way to wait for the next one that matches.
function record(socket) {
  const seen = [];
  const waiters = [];
  socket.onAny((event, payload) => {
    seen.push({ event, payload });
    for (const waiter of [...waiters]) {
      if (waiter.event === event && waiter.match(payload)) {
        waiters.splice(waiters.indexOf(waiter), 1);
        waiter.resolve(payload);
      }
    }
  });
  return {
    seen,
    next(event, match = () => true) {
      const earlier = seen.find((item) => item.event === event && match(item.payload) && !item.taken);
      if (earlier) {
        earlier.taken = true;
        return Promise.resolve(earlier.payload);
      }
      return new Promise((resolve, reject) => {
        const waiter = { event, match, resolve };
        waiters.push(waiter);
        setTimeout(() => reject(new Error(`no ${event} within ${STEP_TIMEOUT_MS} ms`)), STEP_TIMEOUT_MS).unref();
      }).then((payload) => {
        const item = seen.find((entry) => entry.payload === payload);
        if (item) item.taken = true;
        return payload;
      });
    },
  };
}

function connect(user) {
  const socket = io(baseUrl, { auth: { token: user.token }, reconnection: false, timeout: STEP_TIMEOUT_MS });
  const events = record(socket);
  return new Promise((resolve, reject) => {
    socket.once("connect", () => resolve({ socket, events }));
    socket.once("connect_error", (error) => reject(new Error(`connect refused: ${error.message}`)));
  });
}

function waitUpgraded(socket) {
  if (socket.io.engine.transport.name === "websocket") return Promise.resolve();
  return new Promise((resolve) => socket.io.engine.once("upgrade", resolve));
}

async function main() {
  const alice = await login(aliceLogin);
  const bob = await login(bobLogin);
  console.log(`logged in: ${alice.name}, ${bob.name}`);

  // A refused connection says why.
  const refused = io(baseUrl, { auth: { token: "not-a-token" }, reconnection: false });
  const reason = await new Promise((resolve) => refused.once("connect_error", resolve));
  check(reason.data && reason.data.code === "token_invalid", `refusal reason: ${JSON.stringify(reason.data)}`);
  refused.close();

  const a = await connect(alice);
  let b = await connect(bob);
  await Promise.all([waitUpgraded(a.socket), waitUpgraded(b.socket)]);
  console.log(`connected over ${a.socket.io.engine.transport.name}`);

  // A live notification: Bob comments on a task assigned to Alice; Alice comments on Bob's.
  const task = await api("POST", "/api/tasks", bob.token, {
    entity_name: "Acme Ltd",
    task_type: "Call",
    task_time: "2030-01-01T09:00:00+00:00",
    contact_person_id: alice.id,
  });
  await api("POST", `/api/tasks/${task.id}/comments`, bob.token, { content: "Please call Acme" });
  const pushed = await a.events.next("notification", (n) => n.type === "task_commented");
  const stored = await api("GET", "/api/notifications", alice.token);
  check(stored.items.some((n) => n.id === pushed.id), "the pushed notification is stored with the same id");
  await api("POST", `/api/tasks/${task.id}/comments`, alice.token, { content: "Done, they will pay" });
  const bobsLastNotification = (await b.events.next("notification", (n) => n.type === "task_commented")).id;
  console.log("live notifications received");

  // Direct messages, both ways; the DM is created while both are connected.
  const conversation = await api("POST", "/api/chat/conversations", alice.token, {
    participant_ids: [bob.id],
    is_group: false,
    name: null,
  });
  const hello = { conversation_id: conversation.id, content: "Hi Bob", client_id: `js-${Date.now()}-1` };
  const ack = await a.socket.timeout(STEP_TIMEOUT_MS).emitWithAck("send_message", hello);
  check(ack.id && !ack.error, `send_message ack: ${JSON.stringify(ack)}`);
  const delivered = await b.events.next("chat_message", (m) => m.id === ack.id);
  check(delivered.content === "Hi Bob", "Bob got Alice's message");
  const retried = await a.socket.timeout(STEP_TIMEOUT_MS).emitWithAck("send_message", hello);
  check(retried.id === ack.id, "a retried client_id acks the original message");
  const reply = await b.socket.timeout(STEP_TIMEOUT_MS).emitWithAck("send_message", {
    conversation_id: conversation.id,
    content: "Hi Alice",
    client_id: `js-${Date.now()}-2`,
  });
  await a.events.next("chat_message", (m) => m.id === reply.id);
  const receipt = await a.socket.timeout(STEP_TIMEOUT_MS).emitWithAck("mark_read", {
    conversation_id: conversation.id,
    message_ids: [reply.id],
  });
  check(receipt.last_read_message_id === reply.id, `mark_read ack: ${JSON.stringify(receipt)}`);
  await b.events.next("read_receipt", (r) => r.user_id === alice.id);
  const bad = await a.socket.timeout(STEP_TIMEOUT_MS).emitWithAck("send_message", { conversation_id: "nope" });
  check(bad.error === "Validation failed", `a bad payload gets an error ack: ${JSON.stringify(bad)}`);
  console.log("direct messages exchanged");

  // Bob goes away; Alice writes twice and comments on Bob's task; Bob comes back and catches up.
  const bobsLastMessage = reply.id;
  b.socket.disconnect();
  const missed = [];
  for (const content of ["While you were away", "Call me back"]) {
    const sent = await a.socket.timeout(STEP_TIMEOUT_MS).emitWithAck("send_message", {
      conversation_id: conversation.id,
      content,
      client_id: `js-${Date.now()}-${content.length}`,
    });
    missed.push(sent.id);
  }
  const bobsTask = await api("POST", "/api/tasks", bob.token, {
    entity_name: "Globex",
    task_type: "Visit",
    task_time: "2030-02-01T09:00:00+00:00",
  });
  await api("POST", `/api/tasks/${bobsTask.id}/comments`, alice.token, { content: "Visit booked" });

  b = await connect(bob);
  const messages = await api(
    "GET",
    `/api/chat/conversations/${conversation.id}/messages?after=${bobsLastMessage}`,
    bob.token,
  );
  check(
    JSON.stringify(messages.items.map((m) => m.id)) === JSON.stringify(missed),
    `caught-up messages ${JSON.stringify(messages.items.map((m) => m.id))} != ${JSON.stringify(missed)}`,
  );
  const notifications = await api("GET", `/api/notifications?since=${bobsLastNotification}`, bob.token);
  // Oldest first: the two direct messages (Bob was offline, so each notified him), then the comment.
  const caughtUp = notifications.items.map((n) => [n.type, n.message]);
  check(
    JSON.stringify(caughtUp) ===
      JSON.stringify([
        ["chat_message", "While you were away"],
        ["chat_message", "Call me back"],
        ["task_commented", "Visit booked"],
      ]),
    `caught-up notifications: ${JSON.stringify(caughtUp)}`,
  );
  const afterReturn = await a.socket.timeout(STEP_TIMEOUT_MS).emitWithAck("send_message", {
    conversation_id: conversation.id,
    content: "Welcome back",
    client_id: `js-${Date.now()}-back`,
  });
  await b.events.next("chat_message", (m) => m.id === afterReturn.id);
  console.log("caught up after reconnect");

  a.socket.disconnect();
  b.socket.disconnect();
  console.log("OK");
  process.exit(0);
}

main().catch((error) => fail(error.stack || String(error)));
