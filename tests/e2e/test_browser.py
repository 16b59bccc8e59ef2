"""The web client and the admin in a real browser (headless Chromium) against a real daphne."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import httpx
import pytest
from playwright.sync_api import Browser, Page, Playwright, expect, sync_playwright

from tests.support.browser import launch, log_in, save_artifacts, site
from tests.support.live import LiveServer

# Longer than the default 5 s: a whole researched report takes a few seconds in CI.
expect.set_options(timeout=20_000)

started: list[LiveServer] = []
QUESTION = "What is quantum computing?"
ELABORATION = (
    "In more detail, this point rests on its background, the evidence for it and what "
    "follows from it. Each of these gives the reader the context to weigh it on its merits."
)


@pytest.fixture(scope="module")
def fast(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """A server whose demo streams quickly: whole workflows in a second or two."""
    with site(tmp_path_factory.mktemp("fast"), STREAM_DEMO_DELAY_MS="5") as server:
        started.append(server)
        yield server


@pytest.fixture(scope="module")
def slow(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """A server whose demo streams slowly, so that a stream can be stopped midway."""
    with site(tmp_path_factory.mktemp("slow"), STREAM_DEMO_DELAY_MS="150") as server:
        started.append(server)
        yield server


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    playwright: Playwright = sync_playwright().start()
    try:
        chromium = launch(playwright)
        yield chromium
        chromium.close()
    finally:
        playwright.stop()


@pytest.fixture
def page(browser: Browser, request: pytest.FixtureRequest) -> Iterator[Page]:
    """A fresh browser tab; on failure, a screenshot and the server logs in test-artifacts/."""
    context = browser.new_context(viewport={"width": 1100, "height": 900})
    tab = context.new_page()
    errors: list[str] = []
    tab.on("pageerror", lambda error: errors.append(str(error)))
    failed_before = request.session.testsfailed
    yield tab
    if request.session.testsfailed > failed_before:
        save_artifacts(tab, request.node.name, started)
    context.close()
    assert not errors, f"JavaScript errors on the page: {errors}"


def open_client(page: Page, server: LiveServer, transport: str = "sse") -> None:
    page.goto(f"{server.url}/")
    page.check(f"input[name=transport][value={transport}]")


def ask(page: Page, question: str, *, auto_accept: bool = False) -> None:
    page.fill("#question", question)
    if auto_accept:
        page.click(".options summary")
        page.check("#auto-accept")
    page.click("#ask")


def wait_for_new_session(page: Page, previous: str) -> None:
    expect(page.locator("#session-id")).not_to_have_text(previous)
    expect(page.locator("#session-id")).not_to_have_text("…")


def record(page: Page, server: LiveServer) -> dict[str, object]:
    session_id = page.text_content("#session-id")
    response = page.request.get(f"{server.url}/api/sessions/{session_id}")
    assert response.ok
    data: dict[str, object] = response.json()
    return data


@pytest.mark.parametrize(("transport", "label"), [("sse", "SSE"), ("websocket", "WebSocket")])
def test_chat_streams_plan_then_research_after_accepting(
    page: Page, fast: LiveServer, transport: str, label: str
) -> None:
    open_client(page, fast, transport)
    ask(page, QUESTION)

    expect(page.locator("#interrupt")).to_be_visible()
    expect(page.locator("#interrupt-text")).to_have_text("Please Review the Plan.")
    expect(page.locator("#session-status")).to_have_text("completed")
    expect(page.locator("#session-transport")).to_have_text(label)
    expect(page.locator(".agent-coordinator .tool-name")).to_have_text("handoff_to_planner")
    expect(page.locator(".agent-planner .plan-title")).to_have_text("Quantum computing")
    expect(page.locator(".agent-planner .plan-steps > li")).to_have_count(3)
    plan = record(page, fast)
    assert plan["transport"] == transport
    plan_session = str(plan["id"])

    page.get_by_role("button", name="Start research").click()
    wait_for_new_session(page, plan_session)
    expect(page.locator("#session-status")).to_have_text("completed")

    expect(page.locator("#interrupt")).to_be_hidden()
    expect(page.locator(".tool[data-tool=web_search]")).to_have_count(2)
    expect(page.locator(".tool[data-tool=web_search] .pages a")).to_have_count(6)
    expect(page.locator(".tool[data-tool=python_repl_tool]")).to_have_count(1)
    report = page.locator(".agent-reporter .markdown")
    expect(report.locator("h1")).to_have_text("Quantum computing")
    expect(report.locator("h2")).to_have_text(
        ["Question", "Key Points", "Findings", "Conclusion", "References"]
    )
    expect(report.locator("h2 + ul").last.locator("a")).to_have_count(6)
    expect(page.locator(".msg.streaming")).to_have_count(0)
    expect(page.locator(".stream-end")).to_have_count(0)
    research = record(page, fast)
    assert (research["status"], research["transport"]) == ("completed", transport)
    assert research["thread_id"] == plan["thread_id"]


def test_edit_plan_at_the_interrupt_replans_with_the_feedback(page: Page, fast: LiveServer) -> None:
    open_client(page, fast)
    ask(page, QUESTION)
    page.get_by_role("button", name="Edit plan").click()
    page.fill("#plan-feedback", "Focus on error correction")
    page.click("#send-feedback")

    expect(page.locator(".agent-planner")).to_have_count(2)
    revised = page.locator(".agent-planner").nth(1)
    expect(revised.locator(".plan-steps > li").first).to_contain_text(
        "Address the feedback: Focus on error correction"
    )
    expect(page.locator("#interrupt")).to_be_visible()
    expect(page.locator("#session-status")).to_have_text("completed")


@pytest.mark.parametrize(("transport", "label"), [("sse", "SSE"), ("websocket", "WebSocket")])
def test_stop_mid_stream_is_recorded_as_cancelled_by_the_user(
    page: Page, slow: LiveServer, transport: str, label: str
) -> None:
    log_in(page, slow)
    open_client(page, slow, transport)
    ask(page, QUESTION, auto_accept=True)
    expect(page.locator(".agent-planner")).to_be_visible()
    expect(page.locator("#session-status")).to_have_text("streaming")

    page.click("#stop")

    expect(page.locator("#session-status")).to_have_text("cancelled")
    expect(page.locator("#session-reason")).to_have_text("cancelled by a user")
    expect(page.locator(".stream-end")).to_have_text("Stream ended: The stream was cancelled.")
    expect(page.locator(".agent-reporter")).to_have_count(0)
    expect(page.locator(".msg.unfinished")).to_have_count(1)
    session_id = page.text_content("#session-id")

    page.click("#admin-link")
    expect(page.locator(".field-id .readonly")).to_have_text(str(session_id))
    expect(page.locator(".field-status .readonly")).to_have_text("cancelled")
    expect(page.locator(".field-end_reason .readonly")).to_have_text("cancelled by a user")
    expect(page.locator(".field-transport .readonly")).to_have_text(label)


def test_admin_lists_a_cancelled_session_with_its_reason(page: Page, slow: LiveServer) -> None:
    log_in(page, slow)
    page.click("text=Cancelled sessions")
    counts = page.locator("#cancel-counts tr[data-reason=user_cancel] td")
    before = int(counts.first.text_content() or "")

    with httpx.Client(base_url=slow.url, timeout=30) as client:
        chat = {"messages": [{"role": "user", "content": QUESTION}], "auto_accepted_plan": True}
        with client.stream("POST", "/api/chat/stream", json=chat) as response:
            session_id = response.headers["x-stream-session-id"]
            lines = response.iter_lines()
            assert any(line.startswith("id: ") for line in lines)
            assert client.post(f"/api/sessions/{session_id}/cancel").status_code == 202
            assert '"reason":"cancelled"' in "".join(lines)

    page.reload()
    expect(counts.first).to_have_text(str(before + 1))
    page.fill("#searchbar", session_id)
    page.press("#searchbar", "Enter")
    row = page.locator("#result_list tbody tr")
    expect(row).to_have_count(1)
    expect(row.locator("th")).to_have_text(session_id[:8])
    expect(row.locator("td.field-status")).to_have_text("cancelled")
    expect(row.locator("td.field-end_reason")).to_have_text("cancelled by a user")


def test_admin_cancelled_list_fits_a_1400_px_window(page: Page, slow: LiveServer) -> None:
    thread = f"research-thread-{uuid.uuid4()}"
    with httpx.Client(base_url=slow.url, timeout=30) as client:
        chat = {"messages": [{"role": "user", "content": QUESTION}], "thread_id": thread}
        with client.stream("POST", "/api/chat/stream", json=chat) as response:
            session_id = response.headers["x-stream-session-id"]
            lines = response.iter_lines()
            assert any(line.startswith("id: ") for line in lines)
            assert client.post(f"/api/sessions/{session_id}/cancel").status_code == 202
            assert '"reason":"cancelled"' in "".join(lines)

    page.set_viewport_size({"width": 1400, "height": 900})
    log_in(page, slow)
    # Sorted by two columns, whose headers are wider for the sort controls.
    page.goto(f"{slow.url}/admin/streaming/cancelledsession/?q={thread}&o=-7.8")
    expect(page.locator("#result_list tbody th")).to_have_text(session_id[:8])

    table = page.locator("#result_list")
    width, room = table.evaluate("t => [t.scrollWidth, t.closest('.results').clientWidth]")
    assert width <= room, "the list scrolls sideways"
    assert page.evaluate("document.documentElement.scrollWidth") <= 1400


def test_admin_action_cancels_the_stream_a_page_is_showing(page: Page, slow: LiveServer) -> None:
    log_in(page, slow)
    open_client(page, slow)
    ask(page, QUESTION, auto_accept=True)
    expect(page.locator("#session-status")).to_have_text("streaming")
    session_id = page.text_content("#session-id") or ""

    admin = page.context.new_page()
    admin.goto(f"{slow.url}/admin/streaming/streamsession/?q={session_id}")
    admin.check("#result_list tbody input.action-select")
    admin.select_option("select[name=action]", "cancel_sessions")
    admin.click("button[name=index]")
    expect(admin.locator(".messagelist li")).to_have_text("Sent a cancel to 1 running session.")

    expect(page.locator("#session-status")).to_have_text("cancelled")
    expect(page.locator("#session-reason")).to_have_text("cancelled by a user")


@pytest.mark.parametrize("transport", ["sse", "websocket"])
def test_prose_streams_text_with_its_line_breaks(
    page: Page, fast: LiveServer, transport: str
) -> None:
    text = "The tide comes in twice a day.\n\nIt is <b>useful</b> & cheap."
    open_client(page, fast, transport)
    page.click("#tab-prose")
    page.fill("#prose-text", text)
    page.select_option("#prose-option", "longer")
    page.click("#generate")

    expect(page.locator("#session-status")).to_have_text("completed")
    output = page.locator("#prose-output .prose-text")
    assert output.evaluate("node => node.textContent") == f"{text}\n\n{ELABORATION}"
    expect(page.locator("#prose-output b")).to_have_count(0)
    assert record(page, fast)["kind"] == "prose"


def test_markup_in_stream_content_renders_as_text(page: Page, fast: LiveServer) -> None:
    attack = 'Tell me about <script>window.pwned = 1</script><img src=x onerror="window.pwned = 2">'
    open_client(page, fast)
    ask(page, attack, auto_accept=True)
    expect(page.locator("#session-status")).to_have_text("completed")

    expect(page.locator("#workflow script")).to_have_count(0)
    expect(page.locator("#workflow img")).to_have_count(0)
    assert page.evaluate("typeof window.pwned") == "undefined"
    question = page.locator(".agent-reporter .markdown h2:text('Question') + p")
    expect(question).to_have_text(attack)
    expect(page.locator(".agent-coordinator .tool-args")).to_have_text(attack)


MARKDOWN_CASES = {
    "# Title\n\nSome **bold**, *italic* and `<b>code</b>`.\n\n1. one\n2. two": (
        "<h1>Title</h1>\n<p>Some <strong>bold</strong>, <em>italic</em> and "
        "<code>&lt;b&gt;code&lt;/b&gt;</code>.</p>\n<ol><li>one</li><li>two</li></ol>"
    ),
    "- [a_b](https://example.com/a_b_c?x=1&y=2)\n- [bad](javascript:alert(1))": (
        '<ul><li><a href="https://example.com/a_b_c?x=1&amp;y=2" target="_blank" '
        'rel="noopener noreferrer">a_b</a></li><li>[bad](javascript:alert(1))</li></ul>'
    ),
    '<img src=x onerror="alert(1)"> and [x](https://e.com/"onmouseover="alert)': (
        '<p>&lt;img src=x onerror="alert(1)"&gt; and <a href="https://e.com/&quot;onmouseover='
        '&quot;alert" target="_blank" rel="noopener noreferrer">x</a></p>'
    ),
    "```\n<script>alert(1)</script>\n```": (
        "<pre><code>&lt;script&gt;alert(1)&lt;/script&gt;</code></pre>"
    ),
}


def test_markdown_renderer_escapes_first(page: Page, fast: LiveServer) -> None:
    page.goto(f"{fast.url}/")
    rendered = page.evaluate(
        """async (sources) => {
            const { renderMarkdown } = await import("/static/streaming/markdown.js");
            return sources.map((source) => {
                const box = document.createElement("div");
                box.innerHTML = renderMarkdown(source);
                return box.innerHTML;
            });
        }""",
        list(MARKDOWN_CASES),
    )
    assert rendered == list(MARKDOWN_CASES.values())
