"""The chat page of `wikigpt serve`, driven in a real headless Chromium (Debian's /usr/bin/chromium
via Playwright): type, watch the answer stream in, take a second turn, stop a third."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from tests.test_serve import NAME, Slow, tiny_gpt
from wikigpt.serve import Engine, Limits, create_app, serve_in_thread

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]

pytestmark = pytest.mark.skipif(not CHROMIUM.exists(), reason=f"{CHROMIUM} not installed (apt-get install chromium)")
sync_api = pytest.importorskip("playwright.sync_api")


@pytest.fixture(scope="module")
def server(tiny_tokenizer):
    engine = Engine(tiny_gpt(tiny_tokenizer.get_vocab_size(), Slow), tiny_tokenizer, NAME, 1)
    limits = Limits(max_tokens=128, default_max_tokens=24, max_concurrent=1)
    with serve_in_thread(create_app(engine, limits)) as url:
        yield url, engine
    engine.shutdown()


@pytest.fixture(scope="module")
def page(server):
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True)
        try:
            page = browser.new_page()
            page.set_default_timeout(20_000)
            page.problems = []
            page.on("console", lambda m: m.type == "error" and page.problems.append(m.text))
            page.on("pageerror", lambda e: page.problems.append(str(e)))
            page.requests = []
            page.on("request", lambda r: r.url.endswith("/v1/chat/completions") and page.requests.append(r.post_data_json))
            yield page
        finally:
            browser.close()


# Page functions are written as arrow functions: the page's CSP (no 'unsafe-eval') rejects the
# string-eval Playwright uses for plain expressions, which shows the CSP is really in force.


def bubbles(page, role):
    return page.locator(f"#messages .msg.{role}")


def texts(page, role):
    """The message text of each bubble (without the page's notes such as "(stopped)")."""
    return page.locator(f"#messages .msg.{role} .text").all_text_contents()


def ask(page, text):
    page.fill("#input", text)
    page.press("#input", "Enter")


def test_chat_page_streams_two_turns_and_stops(server, page):
    url, engine = server
    page.goto(url + "/")
    page.wait_for_function("() => document.getElementById('model-name').textContent.length > 0")
    assert page.text_content("#model-name") == NAME
    page.fill("#max-tokens", "12")
    # the temperature slider: set it to 0.25 the way a user's drag does (an input event)
    page.eval_on_selector("#temperature", "el => { el.value = '0.25'; el.dispatchEvent(new Event('input')); }")
    assert page.text_content("#temperature-value") == "0.25"

    ask(page, "What is the capital of France?")
    # Streamed: text shows in the answer bubble while it is still being generated.
    page.wait_for_function(
        "() => { const b = document.querySelector('#messages .msg.assistant');"
        " return b && b.classList.contains('streaming') && b.textContent.length > 0; }"
    )
    page.wait_for_selector("#messages .msg.assistant:not(.streaming)")
    page.wait_for_selector("#send:not([hidden])")
    first = texts(page, "assistant")[0]
    assert first.strip()
    assert "(cut at max tokens)" in bubbles(page, "assistant").nth(0).text_content()  # finish_reason length

    ask(page, "And what about Zürich?")
    page.wait_for_function("() => document.querySelectorAll('#messages .msg.assistant:not(.streaming)').length == 2")
    page.wait_for_selector("#send:not([hidden])")
    assert bubbles(page, "user").count() == 2 and bubbles(page, "assistant").count() == 2
    assert texts(page, "user") == ["What is the capital of France?", "And what about Zürich?"]
    assert all(t.strip() for t in texts(page, "assistant"))
    assert bubbles(page, "error").count() == 0

    # What the page sent: streaming, the controls' values, and the whole history on turn two.
    body = page.requests[1]
    assert body["stream"] is True and body["temperature"] == 0.25 and body["max_tokens"] == 12
    assert [m["role"] for m in body["messages"]] == ["user", "assistant", "user"]
    assert body["messages"][1]["content"] == first

    # Stop: a long answer, stopped once it has started; the page keeps what it got.
    page.fill("#max-tokens", "128")
    ask(page, "Tell me about the history of science.")
    page.wait_for_function(
        "() => { const b = document.querySelectorAll('#messages .msg.assistant')[2];"
        " return b && b.textContent.length > 0; }"
    )
    page.click("#stop")
    page.wait_for_selector("#send:not([hidden])")
    assert "(stopped)" in bubbles(page, "assistant").nth(2).text_content()
    assert texts(page, "assistant")[2].strip()
    deadline = time.monotonic() + 10
    while engine.active and time.monotonic() < deadline:  # the server stopped generating too
        time.sleep(0.02)
    assert not engine.active
    assert page.problems == []
