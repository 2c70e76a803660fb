"""`wikigpt serve`: an OpenAI-compatible HTTP server with a chat page, on FastAPI + uvicorn.

    wikigpt serve                      # the SFT model on http://127.0.0.1:8000 (chat page at /)
    wikigpt serve --checkpoint DIR --tokenizer DIR --port 8080

Endpoints: `POST /v1/chat/completions` (plain, or `stream: true` as server-sent events ending
with `data: [DONE]`), `GET /v1/models`, `GET /health`, and the chat page at `/` (plain HTML/JS/CSS
from `wikigpt/serve_static/`, nothing fetched from a CDN). Any OpenAI client works:
`OpenAI(base_url="http://127.0.0.1:8000/v1", api_key="unused")`.

Safe by default:
- listens on 127.0.0.1 unless `--host` says otherwise; there is no authentication.
- caps (flags, with defaults) on the request body, the number of messages, a message's length,
  `max_tokens` and the number of generations running at once. A request over the concurrency cap
  is refused at once with 429 (never queued without bound): a small CPU model serves a couple of
  streams well and many badly. Errors have OpenAI's shape, `{"error": {message, type, param, code}}`.
- POSTs must be `Content-Type: application/json`: a cross-site page cannot send that without a
  CORS preflight, which this server never grants, so a web page cannot drive a local model.
- special-token literals in any message are stripped by `wikigpt.chat_template` before
  tokenization: a user typing `<|assistant|>` gets text, never the control token.
- weights are read from safetensors (no pickle); nothing in a request reaches the file system.

Decoding runs in a worker thread per generation (KV-cached `GPT.generate_stream`), so the event
loop keeps answering (health checks, 429s, other streams) while a model computes. Tokens travel to
the loop through an asyncio queue; when a streaming client disconnects, its generation stops at
the next token and its slot is freed.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import ipaddress
import json
import math
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, AsyncIterator

import torch
from fastapi import FastAPI, Request
from fastapi.responses import FileResponse, JSONResponse, StreamingResponse
from fastapi.staticfiles import StaticFiles
from starlette.datastructures import MutableHeaders
from starlette.exceptions import HTTPException as StarletteHTTPException

from wikigpt.chat_template import STOP_IDS, StreamDecoder, normalize_messages, truncate_history
from wikigpt.errors import WikigptError

STATIC_DIR = Path(__file__).with_name("serve_static")
ROLE_ALIASES = {"system": "system", "developer": "system", "user": "user", "assistant": "assistant"}
INLINE_TOKENIZE_CHARS = 8192
MAX_STOP_SEQUENCES = 16  # OpenAI allows 4; eval harnesses sometimes send more
SECURITY_HEADERS = {
    # The page loads only its own files; no inline script, nothing from elsewhere.
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; base-uri 'none'; "
    "form-action 'none'; frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}


@dataclass(frozen=True)
class Limits:
    """Per-request and per-server caps (see `wikigpt serve --help`)."""

    max_body_bytes: int = 256 * 1024
    max_messages: int = 64
    max_message_chars: int = 16_384
    max_tokens: int = 1024  # the largest max_tokens a request may ask for
    default_max_tokens: int = 256
    max_concurrent: int = 2  # generations running at once; more get 429


@dataclass(frozen=True)
class Sampling:
    temperature: float = 0.7
    top_k: int | None = 50
    top_p: float | None = 0.95
    seed: int | None = None


class ApiError(Exception):
    """An error answered as `{"error": {message, type, param, code}}` with an HTTP status."""

    def __init__(self, status: int, message: str, *, param: str | None = None, code: str | None = None,
                 type_: str = "invalid_request_error", headers: dict[str, str] | None = None):
        super().__init__(message)
        self.status, self.message, self.param, self.code, self.type, self.headers = status, message, param, code, type_, headers

    def body(self) -> dict[str, Any]:
        return {"error": {"message": self.message, "type": self.type, "param": self.param, "code": self.code}}

    def response(self) -> JSONResponse:
        return JSONResponse(self.body(), status_code=self.status, headers=self.headers)


# ---- request parsing ---------------------------------------------------------------------------


@dataclass
class ChatRequest:
    messages: list[dict[str, str]]
    max_tokens: int
    sampling: Sampling
    stream: bool
    include_usage: bool
    stop: list[str]


def _number(body: dict, key: str, lo: float, hi: float, *, lo_open: bool = False) -> float | None:
    value = body.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ApiError(400, f"'{key}' must be a number", param=key, code="invalid_type")
    if value < lo or value > hi or (lo_open and value == lo):
        interval = f"{'(' if lo_open else '['}{lo}, {hi}]"
        raise ApiError(400, f"'{key}' must be in {interval}, got {value}", param=key, code="invalid_value")
    return float(value)


def _integer(body: dict, key: str, lo: int, hi: int | None = None) -> int | None:
    value = body.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise ApiError(400, f"'{key}' must be an integer", param=key, code="invalid_type")
    if value < lo or (hi is not None and value > hi):
        bound = f">= {lo}" if hi is None else f"between {lo} and {hi}"
        raise ApiError(400, f"'{key}' must be {bound}, got {value}", param=key, code="invalid_value")
    return value


def _content(message: dict, i: int) -> str:
    content = message.get("content")
    param = f"messages[{i}].content"
    if content is None and message.get("role") == "assistant":
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, list):  # OpenAI content parts: only text parts mean anything here
        texts = []
        for j, part in enumerate(content):
            if not isinstance(part, dict) or part.get("type") != "text" or not isinstance(part.get("text"), str):
                raise ApiError(400, f"{param}[{j}]: only text content parts are supported", param=param, code="invalid_value")
            texts.append(part["text"])
        return "\n".join(texts)
    raise ApiError(400, f"{param} must be a string or a list of text parts", param=param, code="invalid_type")


def parse_chat_request(body: Any, limits: Limits, defaults: Sampling, model_name: str) -> ChatRequest:
    """Validate an OpenAI chat-completions body; raise ApiError (4xx) naming the bad field."""
    if not isinstance(body, dict):
        raise ApiError(400, "the request body must be a JSON object", code="invalid_type")
    model = body.get("model")
    if model is not None and model != model_name:
        raise ApiError(404, f"the model '{model}' does not exist; this server serves '{model_name}'",
                       param="model", code="model_not_found")
    messages = body.get("messages")
    if not isinstance(messages, list):
        raise ApiError(400, "'messages' is required and must be a list", param="messages", code="invalid_type")
    if not messages:
        raise ApiError(400, "'messages' must not be empty", param="messages", code="empty_array")
    if len(messages) > limits.max_messages:
        raise ApiError(400, f"too many messages: {len(messages)} > {limits.max_messages}", param="messages",
                       code="array_above_max_length")
    parsed = []
    for i, m in enumerate(messages):
        if not isinstance(m, dict):
            raise ApiError(400, f"messages[{i}] must be an object", param=f"messages[{i}]", code="invalid_type")
        role = ROLE_ALIASES.get(m.get("role"))  # type: ignore[arg-type]
        if role is None:
            raise ApiError(400, f"messages[{i}].role {m.get('role')!r} is not supported (system, user, assistant)",
                           param=f"messages[{i}].role", code="invalid_value")
        text = _content(m, i)
        if len(text) > limits.max_message_chars:
            raise ApiError(400, f"messages[{i}].content is {len(text)} characters; the limit is {limits.max_message_chars}",
                           param=f"messages[{i}].content", code="string_above_max_length")
        parsed.append({"role": role, "content": text})
    try:
        turns = normalize_messages(parsed)  # alternation, system folding, special-literal stripping
    except WikigptError as e:
        raise ApiError(400, str(e), param="messages", code="invalid_value") from None
    if turns[-1]["role"] != "user":
        raise ApiError(400, "the last message must be a user message", param="messages", code="invalid_value")

    for key in ("n",):
        if body.get(key) not in (None, 1):
            raise ApiError(400, "only n=1 is supported", param=key, code="invalid_value")
    if body.get("logprobs"):
        raise ApiError(400, "logprobs are not supported", param="logprobs", code="invalid_value")
    if body.get("tools"):
        raise ApiError(400, "tools are not supported", param="tools", code="invalid_value")

    key = "max_completion_tokens" if body.get("max_completion_tokens") is not None else "max_tokens"
    max_tokens = _integer(body, key, 1, limits.max_tokens)
    temperature = _number(body, "temperature", 0.0, 2.0)
    top_p = _number(body, "top_p", 0.0, 1.0, lo_open=True)
    top_k = _integer(body, "top_k", 0)  # an extension (vLLM has it too); 0 = off
    seed = _integer(body, "seed", -(2**63), 2**63 - 1)
    sampling = Sampling(
        temperature=defaults.temperature if temperature is None else temperature,
        top_k=defaults.top_k if top_k is None else (top_k or None),
        top_p=defaults.top_p if top_p is None else (top_p if top_p < 1.0 else None),
        seed=seed,
    )

    stream = body.get("stream", False)
    if stream is None:
        stream = False
    if not isinstance(stream, bool):
        raise ApiError(400, "'stream' must be a boolean", param="stream", code="invalid_type")
    options = body.get("stream_options") or {}
    if not isinstance(options, dict) or not isinstance(options.get("include_usage", False), bool):
        raise ApiError(400, "'stream_options' must be an object like {\"include_usage\": true}",
                       param="stream_options", code="invalid_type")

    stop = body.get("stop")
    stop = [] if stop is None else [stop] if isinstance(stop, str) else stop
    if not isinstance(stop, list) or len(stop) > MAX_STOP_SEQUENCES or not all(isinstance(s, str) and s for s in stop):
        raise ApiError(400, f"'stop' must be a non-empty string or a list of up to {MAX_STOP_SEQUENCES} of them",
                       param="stop", code="invalid_value")
    return ChatRequest(
        messages=parsed,
        max_tokens=limits.default_max_tokens if max_tokens is None else max_tokens,
        sampling=sampling,
        stream=stream,
        include_usage=bool(options.get("include_usage", False)),
        stop=stop,
    )


async def read_json_body(request: Request, max_bytes: int) -> Any:
    """The body as JSON, refusing non-JSON content types and bodies over `max_bytes` (413)."""
    ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if ctype != "application/json":
        raise ApiError(415, f"Content-Type must be application/json, got {ctype or 'none'!r}", code="unsupported_media_type")
    too_big = ApiError(413, f"request body over the {max_bytes}-byte limit", code="request_too_large")
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > max_bytes:
        raise too_big
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > max_bytes:
            raise too_big
    try:
        return json.loads(body)
    except (ValueError, RecursionError) as e:  # ValueError covers bad UTF-8 and JSON errors
        raise ApiError(400, f"the request body is not valid JSON: {str(e)[:200]}", code="invalid_json") from None


# ---- generation --------------------------------------------------------------------------------


def _stop_cut(text: str, start: int, stops: list[str]) -> tuple[int | None, int]:
    """(index of the first stop string in text, or None; how much of text is safe to emit).

    Text that could be the beginning of a stop string is held back until it is decided."""
    longest = max(len(s) for s in stops)
    lo = max(0, start - longest + 1)
    hits = [i for i in (text.find(s, lo) for s in stops) if i >= 0]
    if hits:
        return min(hits), min(hits)
    hold = 0
    for s in stops:
        for k in range(min(len(s) - 1, len(text)), 0, -1):
            if text.endswith(s[:k]):
                hold = max(hold, k)
                break
    return None, len(text) - hold


class Generation:
    """One request's decoding: a worker thread yields tokens into an asyncio queue.

    It owns one concurrency slot from the moment it is created: the worker releases it when it
    finishes (so a cancelled generation counts until its thread really stops), or `close()`
    releases it if the worker never started.
    """

    def __init__(self, engine: Engine, prompt_ids: list[int], max_new: int, sampling: Sampling, stops: list[str]):
        self.engine, self.prompt_ids, self.max_new, self.sampling, self.stops = engine, prompt_ids, max_new, sampling, stops
        self.cancelled = threading.Event()
        self.finish_reason: str | None = None
        self.completion_tokens = 0
        self.produced = 0  # tokens the worker has decoded so far
        self._queue: asyncio.Queue = asyncio.Queue()
        self._started = False
        self._released = False
        self._lock = threading.Lock()

    def _release(self) -> None:
        with self._lock:
            if self._released:
                return
            self._released = True
        self.engine.release(self)

    def close(self) -> None:
        """Stop decoding at the next token (idempotent; safe from any thread or task)."""
        self.cancelled.set()
        with self._lock:
            started = self._started
        if not started:
            self._release()

    def _work(self, loop: asyncio.AbstractEventLoop) -> None:
        def put(item):
            try:
                loop.call_soon_threadsafe(self._queue.put_nowait, item)
            except RuntimeError:  # the loop is closed (server shutting down): nobody listens
                self.cancelled.set()

        try:
            with contextlib.ExitStack() as stack:
                stack.enter_context(torch.inference_mode())
                if self.engine.device.type == "cuda":
                    stack.enter_context(torch.autocast("cuda", dtype=torch.bfloat16))
                generator = None
                if self.sampling.seed is not None:
                    generator = torch.Generator(device=self.engine.device).manual_seed(self.sampling.seed)
                stream = self.engine.model.generate_stream(
                    self.prompt_ids, self.max_new, temperature=self.sampling.temperature,
                    top_k=self.sampling.top_k, top_p=self.sampling.top_p, stop_ids=STOP_IDS, generator=generator,
                )
                for token in stream:
                    if self.cancelled.is_set():
                        break
                    self.produced += 1
                    put(("token", token))
            put(("end", None))
        except BaseException as e:  # reported to the client; the server carries on
            put(("error", e))
        finally:
            self._release()

    def start(self) -> None:
        with self._lock:
            if self._released:  # closed before it started (client gone): end at once
                self._queue.put_nowait(("end", None))
                return
            self._started = True
        loop = asyncio.get_running_loop()
        self.engine.pool.submit(self._work, loop)

    async def text(self) -> AsyncIterator[str]:
        """Text deltas as they complete; sets `finish_reason` and `completion_tokens` at the end."""
        self.start()
        decoder = StreamDecoder(self.engine.tokenizer)
        text, emitted, tokens, ended = "", 0, 0, False
        try:
            while not ended:
                batch = [await self._queue.get()]
                while not self._queue.empty():  # the loop fell behind: send what piled up as one delta
                    batch.append(self._queue.get_nowait())
                safe = emitted
                for kind, value in batch:
                    if kind == "error":
                        raise value
                    if kind == "token":
                        tokens += 1
                        text += decoder.push(value)
                    else:
                        text += decoder.flush()
                        ended = True
                    safe = len(text)
                    if self.stops and len(text) > emitted:
                        cut, safe = _stop_cut(text, emitted, self.stops)
                        if cut is not None:
                            if cut > emitted:
                                yield text[emitted:cut]
                            self.finish_reason, self.completion_tokens = "stop", tokens
                            return
                    if ended:
                        break
                if ended:
                    safe = len(text)  # a held-back partial stop string that never completed goes out
                if safe > emitted:
                    yield text[emitted:safe]
                    emitted = safe
            # Fewer tokens than allowed means the model said a stop token (which is not yielded).
            hit_limit = tokens >= self.max_new
            self.finish_reason = "length" if hit_limit else "stop"
            self.completion_tokens = tokens if hit_limit else tokens + 1
        finally:
            self.close()


class Engine:
    """The model, its tokenizer, and the concurrency slots shared by all requests."""

    def __init__(self, model, tokenizer, name: str, max_concurrent: int):
        if max_concurrent < 1:
            raise WikigptError(f"--max-concurrent must be >= 1, got {max_concurrent}")
        self.model, self.tokenizer, self.name = model.eval(), tokenizer, name
        self.device = next(model.parameters()).device
        self.block_size = model.config.block_size
        self.capacity = max_concurrent
        self.pool = ThreadPoolExecutor(max_workers=max_concurrent, thread_name_prefix="wikigpt-generate")
        self.active: set[Generation] = set()
        self._lock = threading.Lock()
        self.created = int(time.time())

    def prepare(self, messages: list[dict[str, str]], max_tokens: int) -> tuple[list[int], int]:
        """Prompt ids (oldest exchanges dropped to fit) and how many tokens may be generated."""
        block = self.block_size
        # Leave room for the answer, but never shrink the prompt below half the context.
        max_prompt = max(block - max_tokens, block // 2)
        try:
            _, ids = truncate_history(self.tokenizer, messages, max_prompt)
        except WikigptError as e:
            raise ApiError(400, str(e), param="messages", code="context_length_exceeded") from None
        return ids, min(max_tokens, block - len(ids))

    def _busy(self) -> ApiError:
        return ApiError(
            429, f"the server is busy: {self.capacity} generation(s) already running; retry shortly",
            type_="rate_limit_error", code="too_many_concurrent_requests", headers={"Retry-After": "1"},
        )

    def check_capacity(self) -> None:
        if len(self.active) >= self.capacity:
            raise self._busy()

    def try_start(self, prompt_ids: list[int], max_new: int, sampling: Sampling, stops: list[str]) -> Generation:
        """A Generation holding a slot, or ApiError 429 when all slots are busy."""
        with self._lock:
            if len(self.active) >= self.capacity:
                raise self._busy()
            gen = Generation(self, prompt_ids, max_new, sampling, stops)
            self.active.add(gen)
        return gen

    def release(self, gen: Generation) -> None:
        with self._lock:
            self.active.discard(gen)

    def shutdown(self) -> None:
        with self._lock:
            running = list(self.active)
        for gen in running:
            gen.cancelled.set()
        self.pool.shutdown(wait=False, cancel_futures=True)


# ---- HTTP --------------------------------------------------------------------------------------


def _completion_id() -> str:
    return "chatcmpl-" + uuid.uuid4().hex


def _usage(prompt: int, completion: int) -> dict[str, int]:
    return {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}


def _sse(obj: Any) -> str:
    return f"data: {json.dumps(obj, ensure_ascii=False)}\n\n"


class _GenerationStream(StreamingResponse):
    """A StreamingResponse that always closes its generation, even when the client leaves before
    the body iterator ever started (then the iterator's own `finally` would never run)."""

    def __init__(self, content, generation: Generation, **kwargs):
        super().__init__(content, **kwargs)
        self.generation = generation

    async def __call__(self, scope, receive, send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            self.generation.close()


async def _watch_disconnect(request: Request, gen: Generation) -> None:
    """For plain (non-streaming) requests: stop decoding if the client hangs up."""
    while True:
        message = await request.receive()
        if message["type"] == "http.disconnect":
            gen.close()
            return


class SecurityHeaders:
    """Adds SECURITY_HEADERS to every response. Plain ASGI, not BaseHTTPMiddleware, which would
    buffer streams and hide client disconnects from the streaming response."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)

        async def send_with_headers(message):
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for key, value in SECURITY_HEADERS.items():
                    headers.setdefault(key, value)
            await send(message)

        await self.app(scope, receive, send_with_headers)


def create_app(engine: Engine, limits: Limits = Limits(), defaults: Sampling = Sampling()) -> FastAPI:
    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI):
        yield
        engine.shutdown()

    # No /docs: FastAPI's docs pages load their scripts from a CDN.
    app = FastAPI(title="wikigpt", docs_url=None, redoc_url=None, openapi_url=None, lifespan=lifespan)
    app.state.engine, app.state.limits = engine, limits

    @app.exception_handler(ApiError)
    async def api_error(request: Request, exc: ApiError):
        return exc.response()

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException):
        code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code)
        return ApiError(exc.status_code, str(exc.detail), code=code).response()

    @app.exception_handler(Exception)
    async def server_error(request: Request, exc: Exception):
        return ApiError(500, f"internal error: {type(exc).__name__}", type_="server_error", code="internal_error").response()

    app.add_middleware(SecurityHeaders)

    @app.get("/", include_in_schema=False)
    async def index():
        return FileResponse(STATIC_DIR / "index.html", headers={"Cache-Control": "no-cache"})

    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")

    @app.get("/health")
    async def health():
        return {"status": "ok", "model": engine.name, "generations_active": len(engine.active),
                "generations_max": engine.capacity}

    def model_card() -> dict[str, Any]:
        return {"id": engine.name, "object": "model", "created": engine.created, "owned_by": "wikigpt",
                "max_model_len": engine.block_size}

    @app.get("/v1/models")
    async def models():
        return {"object": "list", "data": [model_card()]}

    @app.get("/v1/models/{model_id}")
    async def model(model_id: str):
        if model_id != engine.name:
            raise ApiError(404, f"the model '{model_id}' does not exist", param="model", code="model_not_found")
        return model_card()

    @app.post("/v1/chat/completions")
    async def chat_completions(request: Request):
        body = await read_json_body(request, limits.max_body_bytes)
        req = parse_chat_request(body, limits, defaults, engine.name)
        engine.check_capacity()  # refuse early, before tokenizing; try_start decides for real
        if sum(len(m["content"]) for m in req.messages) > INLINE_TOKENIZE_CHARS:
            # Tokenizing up to --max-body-bytes of text takes a moment: keep it off the event loop.
            prompt_ids, max_new = await asyncio.to_thread(engine.prepare, req.messages, req.max_tokens)
        else:  # a short chat tokenizes in microseconds; a thread hop would cost more
            prompt_ids, max_new = engine.prepare(req.messages, req.max_tokens)
        gen = engine.try_start(prompt_ids, max_new, req.sampling, req.stop)
        cid, created = _completion_id(), int(time.time())
        if req.stream:
            return _GenerationStream(
                _stream_events(gen, cid, created, engine.name, len(prompt_ids), req.include_usage),
                gen, media_type="text/event-stream",
                headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
            )
        watcher = asyncio.create_task(_watch_disconnect(request, gen))
        try:
            text = "".join([piece async for piece in gen.text()])
        finally:
            watcher.cancel()
            gen.close()
        return {
            "id": cid, "object": "chat.completion", "created": created, "model": engine.name,
            "system_fingerprint": None,
            "choices": [{"index": 0, "message": {"role": "assistant", "content": text},
                         "logprobs": None, "finish_reason": gen.finish_reason}],
            "usage": _usage(len(prompt_ids), gen.completion_tokens),
        }

    return app


async def _stream_events(gen: Generation, cid: str, created: int, model: str, n_prompt: int,
                         include_usage: bool) -> AsyncIterator[str]:
    def chunk(delta: dict, finish: str | None = None) -> dict:
        obj = {"id": cid, "object": "chat.completion.chunk", "created": created, "model": model,
               "system_fingerprint": None,
               "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}]}
        if include_usage:
            obj["usage"] = None
        return obj

    try:
        yield _sse(chunk({"role": "assistant", "content": ""}))
        async for piece in gen.text():
            yield _sse(chunk({"content": piece}))
        yield _sse(chunk({}, gen.finish_reason))
        if include_usage:
            yield _sse({"id": cid, "object": "chat.completion.chunk", "created": created, "model": model,
                        "system_fingerprint": None, "choices": [], "usage": _usage(n_prompt, gen.completion_tokens)})
    except Exception as e:  # headers are sent: report in-band, as OpenAI does
        yield _sse(ApiError(500, f"generation failed: {type(e).__name__}: {e}", type_="server_error",
                            code="internal_error").body())
    finally:
        gen.close()
    yield "data: [DONE]\n\n"


@contextlib.contextmanager
def serve_in_thread(app: FastAPI, host: str = "127.0.0.1", port: int = 0):
    """Run `app` with uvicorn in a background thread; yields the base URL. Port 0 = a free port
    (bound here first, so there is no race between picking and listening). For tests/benchmarks."""
    import socket

    import uvicorn

    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", timeout_graceful_shutdown=2))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True, name="uvicorn")
    thread.start()
    try:
        deadline = time.monotonic() + 20
        while not server.started:
            if not thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("uvicorn did not start")
            time.sleep(0.02)
        yield f"http://{host}:{sock.getsockname()[1]}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()


# ---- command line ------------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    d, s = Limits(), Sampling()
    p = argparse.ArgumentParser(prog="wikigpt serve", description="OpenAI-compatible server with a chat page at /.",
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--model", choices=["sft", "base"], default="sft", help="pipeline model to serve (default: sft)")
    p.add_argument("--checkpoint", type=Path, help="a model directory (model.safetensors + config.json); overrides --model")
    p.add_argument("--tokenizer", type=Path, default=Path("data/tokenizer"), help="tokenizer directory or tokenizer.json")
    p.add_argument("--name", help="model id clients send and /v1/models lists (default: wikigpt-<dir name>)")
    p.add_argument("--host", default="127.0.0.1", help="interface to listen on (default: 127.0.0.1, this machine only)")
    p.add_argument("--port", type=int, default=8000, help="TCP port")
    p.add_argument("--device", default="auto", help="auto | cpu | cuda | mps")
    p.add_argument("--threads", type=int, help="torch CPU threads (default: torch's choice)")
    g = p.add_argument_group("limits")
    g.add_argument("--max-concurrent", type=int, default=d.max_concurrent, help="generations at once; more get 429")
    g.add_argument("--max-tokens", type=int, default=d.max_tokens, help="largest max_tokens a request may ask for")
    g.add_argument("--default-max-tokens", type=int, default=d.default_max_tokens, help="when a request sets none")
    g.add_argument("--max-messages", type=int, default=d.max_messages, help="messages per request")
    g.add_argument("--max-message-chars", type=int, default=d.max_message_chars, help="characters per message")
    g.add_argument("--max-body-bytes", type=int, default=d.max_body_bytes, help="request body size (413 beyond)")
    g = p.add_argument_group("sampling defaults (a request's own values win)")
    g.add_argument("--temperature", type=float, default=s.temperature, help="0 = greedy")
    g.add_argument("--top-k", type=int, default=s.top_k, help="0 = off")
    g.add_argument("--top-p", type=float, default=s.top_p, help="1 = off")
    p.add_argument("--log-level", default="info", choices=["critical", "error", "warning", "info", "debug"])
    return p


def _check_args(args: argparse.Namespace) -> None:
    for flag in ("max_concurrent", "max_tokens", "default_max_tokens", "max_messages", "max_message_chars", "max_body_bytes"):
        if getattr(args, flag) < 1:
            raise WikigptError(f"--{flag.replace('_', '-')} must be >= 1")
    if args.default_max_tokens > args.max_tokens:
        raise WikigptError("--default-max-tokens must not exceed --max-tokens")
    if not 0 <= args.temperature <= 2 or args.top_k < 0 or not 0 < args.top_p <= 1:
        raise WikigptError("sampling defaults: need 0 <= --temperature <= 2, --top-k >= 0, 0 < --top-p <= 1")
    if not 0 <= args.port <= 65535:
        raise WikigptError(f"--port {args.port} is not a TCP port")


def _is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


def cli(argv: list[str]) -> int:
    import uvicorn

    from wikigpt.chat import MODEL_DIRS, load_chat_model, pick_device

    args = build_parser().parse_args(argv)
    _check_args(args)
    if args.threads:
        torch.set_num_threads(args.threads)
    model_dir = args.checkpoint if args.checkpoint is not None else MODEL_DIRS[args.model]
    model, tokenizer = load_chat_model(model_dir, args.tokenizer, pick_device(args.device))
    name = args.name or f"wikigpt-{Path(model_dir).resolve().name}"
    limits = Limits(args.max_body_bytes, args.max_messages, args.max_message_chars, args.max_tokens,
                    args.default_max_tokens, args.max_concurrent)
    defaults = Sampling(args.temperature, args.top_k or None, args.top_p if args.top_p < 1 else None)
    app = create_app(Engine(model, tokenizer, name, args.max_concurrent), limits, defaults)
    if not _is_loopback(args.host):
        print(f"warning: listening on {args.host}: anyone who can reach port {args.port} can use the model "
              "(there is no authentication)")
    print(f"serving {name} from {model_dir} on http://{args.host}:{args.port}/ (chat page), "
          f"OpenAI API at http://{args.host}:{args.port}/v1")
    uvicorn.run(app, host=args.host, port=args.port, log_level=args.log_level, timeout_graceful_shutdown=5)
    return 0
