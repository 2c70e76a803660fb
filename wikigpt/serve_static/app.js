// The chat page of `wikigpt serve`: plain JS, no framework, no CDN.
// It keeps the conversation in memory, sends the whole history on each turn (the API is
// stateless, like OpenAI's) and streams the answer through server-sent events.
"use strict";

const $ = (id) => document.getElementById(id);
const messagesEl = $("messages"), input = $("input"), sendBtn = $("send"), stopBtn = $("stop");
const temperature = $("temperature"), temperatureValue = $("temperature-value"), maxTokens = $("max-tokens");
const statusEl = $("status");

let model = null;         // id from GET /v1/models
let history = [];         // [{role, content}] of completed turns
let controller = null;    // AbortController of the generation in flight

// A message bubble: <div class="msg ROLE"><span class="text">...</span></div>; `.text` of the
// returned element is the span, so notes (stopped, cut) stay outside the message text.
function bubble(role, text) {
  const el = document.createElement("div");
  el.className = `msg ${role}`;
  const span = document.createElement("span");
  span.className = "text";
  span.textContent = text;  // textContent, never innerHTML: model output is untrusted text
  el.appendChild(span);
  el.text = span;
  messagesEl.appendChild(el);
  messagesEl.scrollTop = messagesEl.scrollHeight;
  return el;
}

function note(el, text) {
  const n = document.createElement("span");
  n.className = "note";
  n.textContent = text;
  el.appendChild(n);
}

function setBusy(busy) {
  sendBtn.hidden = busy;
  stopBtn.hidden = !busy;
  input.disabled = busy;
  if (!busy) input.focus();
}

async function errorMessage(resp) {
  try {
    const body = await resp.json();
    if (body && body.error && body.error.message) return `${resp.status}: ${body.error.message}`;
  } catch (_) { /* not JSON */ }
  return `${resp.status} ${resp.statusText}`;
}

// Yields the parsed JSON of each `data: {...}` event until `data: [DONE]`.
async function* sseEvents(body, signal) {
  const reader = body.getReader();
  const decoder = new TextDecoder();
  let buffer = "";
  try {
    while (true) {
      const { value, done } = await reader.read();
      if (done) return;
      buffer += decoder.decode(value, { stream: true });
      let cut;
      while ((cut = buffer.indexOf("\n\n")) >= 0) {
        const event = buffer.slice(0, cut);
        buffer = buffer.slice(cut + 2);
        for (const line of event.split("\n")) {
          if (!line.startsWith("data:")) continue;
          const data = line.slice(5).trim();
          if (data === "[DONE]") return;
          yield JSON.parse(data);
        }
      }
    }
  } finally {
    if (signal.aborted) reader.cancel().catch(() => {});
  }
}

async function send(text) {
  const userMsg = { role: "user", content: text };
  bubble("user", text);
  const answerEl = bubble("assistant", "");
  answerEl.classList.add("streaming");
  controller = new AbortController();
  setBusy(true);
  statusEl.textContent = "";
  let answer = "", finish = null, usage = null;
  const started = performance.now();
  try {
    const resp = await fetch("/v1/chat/completions", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({
        model, stream: true, stream_options: { include_usage: true },
        messages: [...history, userMsg],
        temperature: Number(temperature.value),
        max_tokens: Number(maxTokens.value) || undefined,
      }),
      signal: controller.signal,
    });
    if (!resp.ok) throw new Error(await errorMessage(resp));
    for await (const chunk of sseEvents(resp.body, controller.signal)) {
      if (chunk.error) throw new Error(chunk.error.message);
      if (chunk.usage) usage = chunk.usage;
      for (const choice of chunk.choices || []) {
        if (choice.delta && choice.delta.content) {
          answer += choice.delta.content;
          answerEl.text.textContent = answer;
          messagesEl.scrollTop = messagesEl.scrollHeight;
        }
        if (choice.finish_reason) finish = choice.finish_reason;
      }
    }
  } catch (err) {
    if (err.name !== "AbortError") {
      answerEl.classList.remove("streaming");
      if (!answer) answerEl.remove();
      bubble("error", String(err.message || err));
      controller = null;
      setBusy(false);
      return;  // the failed turn is not added to the history
    }
    finish = "stopped";
  }
  answerEl.classList.remove("streaming");
  // A stopped answer stays in the history as far as it got, so the next turn can refer to it.
  history.push(userMsg, { role: "assistant", content: answer });
  const secs = ((performance.now() - started) / 1000).toFixed(1);
  if (finish === "length") note(answerEl, "(cut at max tokens)");
  if (finish === "stopped") note(answerEl, "(stopped)");
  statusEl.textContent = usage ? `${usage.completion_tokens} tokens in ${secs} s` : `${secs} s`;
  controller = null;
  setBusy(false);
}

$("composer").addEventListener("submit", (e) => {
  e.preventDefault();
  const text = input.value.trim();
  if (!text || controller) return;
  input.value = "";
  send(text);
});
input.addEventListener("keydown", (e) => {
  if (e.key === "Enter" && !e.shiftKey) {
    e.preventDefault();
    $("composer").requestSubmit();
  }
});
stopBtn.addEventListener("click", () => { if (controller) controller.abort(); });
temperature.addEventListener("input", () => { temperatureValue.textContent = Number(temperature.value).toFixed(2); });
$("new-chat").addEventListener("click", () => {
  if (controller) controller.abort();
  history = [];
  messagesEl.replaceChildren();
  statusEl.textContent = "";
});

fetch("/v1/models").then((r) => r.json()).then((body) => {
  model = body.data[0].id;
  $("model-name").textContent = model;
  if (body.data[0].max_model_len) maxTokens.max = body.data[0].max_model_len;
}).catch(() => { statusEl.textContent = "could not reach the server"; });
input.focus();
