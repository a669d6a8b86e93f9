"""The portal in a real headless Chromium (Debian's `chromium`), driven by Playwright,
against a real server running real processes. Screenshots go to test-artifacts/screenshots."""

from __future__ import annotations

import re
import shutil
from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, Page, expect, sync_playwright

from tests.support import ROOT

pytestmark = pytest.mark.browser

SCREENSHOTS = ROOT / "test-artifacts" / "screenshots"
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        yield b
        b.close()


def sign_in(page: Page, server, token: str | None = None) -> None:
    page.goto(server.url + "/")
    expect(page).to_have_url(re.compile(r"/signin"))
    page.get_by_label("API token").fill(token or server.admin_token)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", name="Spaces")).to_be_visible()


def shoot(page: Page, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=SCREENSHOTS / f"{name}.png", full_page=True)


def test_a_developer_creates_watches_uses_extends_reads_and_deletes_a_space(browser, server):
    context = browser.new_context(viewport={"width": 1280, "height": 800}, color_scheme="light")
    page = context.new_page()
    sign_in(page, server)

    page.get_by_role("link", name="New space").first.click()
    expect(page.get_by_role("heading", name="New space")).to_be_visible()
    page.get_by_label("Name").fill("browser-1")
    expect(page.locator("#name-check")).to_have_text("available")
    page.get_by_label("Name").fill("Bad_Name")
    expect(page.locator("#name-check")).to_contain_text("is not valid")
    page.get_by_label("Name").fill("browser-1")
    page.get_by_label("Time to live").fill("1h")
    page.get_by_label("greeting").fill("Ahoy")
    shoot(page, "create-form-light")
    page.get_by_role("button", name="Create space").click()
    expect(page.get_by_role("heading", name=re.compile("browser-1"))).to_be_visible()

    page.get_by_role("link", name="Spaces", exact=True).click()
    page.evaluate("window.__notReloaded = true")
    row = page.locator("#space-browser-1")
    expect(row.locator(".badge")).to_have_text("ready", timeout=60_000)
    assert page.evaluate("window.__notReloaded") is True  # the row went live without a reload
    expect(row).to_contain_text("3/3")
    shoot(page, "dashboard-light")

    with context.expect_page() as opened:
        row.get_by_role("link", name="web/web").click()
    web = opened.value
    expect(web.locator("h1")).to_contain_text("Ahoy from space browser-1")
    expect(web.locator("#visits")).to_contain_text("Visits:")
    web.close()

    row.get_by_role("link", name="browser-1").click()
    countdown = page.locator("#expires")
    expect(countdown).to_have_text(re.compile(r"^in (59m|1h)"))
    before = countdown.get_attribute("data-expires")
    page.get_by_label("Extend by").select_option("4h")
    page.get_by_role("button", name="Extend").click()
    expect(countdown).to_have_text(re.compile(r"^in 4h5\dm"))
    assert countdown.get_attribute("data-expires") > before
    expect(page.locator(".timeline")).to_contain_text("TTL extended by 4h")
    shoot(page, "space-light")

    page.locator("#service-api").get_by_role("link", name="logs").click()
    expect(page.locator("#log")).to_contain_text("listening on 127.0.0.1")
    expect(page.get_by_role("link", name="Download")).to_be_visible()

    page.goto(server.url + "/spaces/browser-1")
    page.get_by_role("link", name="Delete…").click()
    expect(page.get_by_role("heading", name="Delete space browser-1?")).to_be_visible()
    page.get_by_role("button", name="Delete browser-1").click()
    expect(page.locator("#phase")).to_have_text(re.compile("deleting|deleted"))
    page.get_by_role("link", name="Spaces", exact=True).click()
    page.evaluate("window.__notReloaded = true")
    expect(page.locator("#space-browser-1")).to_have_count(0, timeout=30_000)
    assert page.evaluate("window.__notReloaded") is True
    context.close()


def test_the_portal_in_dark_mode_and_on_a_phone(browser, server):
    server.bay("space", "create", "dark-1", "--template", "demo", "--wait")
    for scheme, viewport in (
        ("dark", {"width": 1280, "height": 800}),
        ("light", {"width": 390, "height": 844}),
    ):
        context = browser.new_context(viewport=viewport, color_scheme=scheme)
        page = context.new_page()
        sign_in(page, server)
        expect(page.locator("#space-dark-1 .badge")).to_have_text("ready")
        suffix = scheme if viewport["width"] > 800 else "phone"
        background = page.evaluate("getComputedStyle(document.body).backgroundColor")
        if scheme == "dark":
            assert background == "rgb(15, 18, 22)"
        shoot(page, f"dashboard-{suffix}")
        page.goto(server.url + "/spaces/dark-1")
        expect(page.locator("#phase")).to_have_text("ready")
        shoot(page, f"space-{suffix}")
        page.goto(server.url + "/spaces/new")
        shoot(page, f"create-form-{suffix}")
        context.close()


def test_a_space_deleted_while_its_page_is_open_says_so(browser, server):
    server.bay("space", "create", "gone-1", "--template", "demo", "--wait")
    context = browser.new_context()
    page = context.new_page()
    sign_in(page, server)
    page.goto(server.url + "/spaces/gone-1")
    expect(page.locator("#phase")).to_have_text("ready")
    assert server.bay("space", "delete", "gone-1", "--wait").returncode == 0
    expect(page.locator(".notice")).to_contain_text("This space was deleted", timeout=15_000)
    expect(page.locator("#phase")).to_have_text("deleted")
    context.close()


def test_the_portal_and_the_api_docs_work_offline_with_every_asset_served_by_the_server(
    browser, server
):
    """The README: everything is served by the server itself. Every request to another host
    is refused here, as on an offline network, and recorded."""
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    outside: list[str] = []

    def only_the_server(route) -> None:
        if route.request.url.startswith(server.url):
            route.continue_()
        else:
            outside.append(route.request.url)
            route.abort()

    context.route("**/*", only_the_server)
    page = context.new_page()
    failed: list[str] = []
    # A navigation cancels what the page before it was still loading, and the docs pages'
    # Content-Security-Policy stops ReDoc's sidebar logo before it is asked of its CDN:
    # neither is a request that failed.
    page.on(
        "requestfailed",
        lambda r: (
            r.failure not in ("net::ERR_ABORTED", "csp") and failed.append(f"{r.url}: {r.failure}")
        ),
    )
    sign_in(page, server)
    page.goto(server.url + "/docs")
    expect(page.locator(".swagger-ui .title").first).to_contain_text("Launchbay")
    expect(page.get_by_text("/api/v1/spaces").first).to_be_visible()
    page.goto(server.url + "/redoc")
    expect(page.locator("h1").first).to_contain_text("Launchbay")
    assert page.request.get(server.url + "/favicon.ico").status == 200
    assert outside == [] and failed == []
    context.close()


def test_a_failure_is_read_retried_and_an_expiring_space_warned_and_ended_ones_listed(
    browser, server, templates
):
    """Issue 13's portal: the failed space's page shows the health check's answer and a
    collapsed log, Retry brings it to ready once the cause is gone; a space minutes from
    its expiry has a banner; extending beyond the maximum says so on the same page; an
    ended space is listed with why."""
    from tests.integration import templates as extra

    extra.install_curable(templates)
    context = browser.new_context(viewport={"width": 1280, "height": 900}, color_scheme="light")
    page = context.new_page()
    sign_in(page, server)

    assert server.bay("space", "create", "sick-1", "--template", "curable").returncode == 0
    page.goto(server.url + "/spaces/sick-1")
    expect(page.locator("#phase")).to_have_text("failed", timeout=60_000)
    reason = page.locator("#reason")
    expect(reason).to_contain_text("GET /healthz: 503: database unreachable: connection refused")
    expect(reason).to_contain_text("api: GET /healthz  (repeated ")
    expect(page.locator("#service-api .endpoint")).not_to_have_attribute("href", re.compile("."))
    shoot(page, "failed-space")
    page.goto(server.url + "/")
    expect(page.locator("#space-sick-1 .endpoint")).not_to_have_attribute("href", re.compile("."))
    page.goto(server.url + "/spaces/sick-1")

    (templates / "cured").write_text("the database is back\n")
    page.get_by_role("button", name="Retry").click()
    expect(page.locator("#action-notice")).to_contain_text("Retrying")
    expect(page.locator("#phase")).to_have_text("ready", timeout=60_000)
    expect(page.locator("#service-api a.endpoint")).to_have_attribute("href", re.compile("http"))

    assert (
        server.bay("space", "create", "brief", "--template", "demo", "--ttl", "5m").returncode == 0
    )
    page.goto(server.url + "/spaces/brief")
    banner = page.locator("#expiry-banner")
    expect(banner).to_contain_text("This space expires in 4m")
    expect(banner).to_contain_text("at most")
    expect(page.locator("#extend-room")).to_contain_text("at most 7h")  # demo: 8h in all
    page.get_by_label("or a custom duration").fill("30d")
    page.get_by_role("button", name="Extend").click()
    notice = page.locator("#action-notice")
    expect(notice).to_contain_text("cannot extend by 30d")
    expect(page.get_by_role("heading", name=re.compile("brief"))).to_be_visible()
    expect(
        page.get_by_role("navigation", name="Main")
    ).to_be_visible()  # the page, not a bare error
    shoot(page, "extend-refused")
    page.goto(server.url + "/")
    expect(page.locator("#space-brief .marker")).to_have_text("expiring")

    assert server.bay("space", "delete", "sick-1", "--wait").returncode == 0
    page.goto(server.url + "/")
    ended = page.locator("#ended-sick-1")
    expect(ended).to_contain_text("ended")
    expect(ended.locator(".why")).to_have_text("deleted by admin")
    shoot(page, "recently-ended")

    # 403 and 404 are pages of the portal, and say different things.
    page.goto(server.url + "/spaces/no-such-space")
    expect(page.get_by_role("heading", name=re.compile("Not found"))).to_be_visible()
    expect(page.get_by_role("navigation", name="Main")).to_be_visible()
    page.goto(server.url + "/x/not-a-link-launchbay-sent")
    expect(page.get_by_role("heading", name="This link cannot extend anything")).to_be_visible()
    context.close()


def test_choosing_another_template_shows_its_own_form_without_the_old_errors(
    browser, server, templates
):
    (templates / "plain.yaml").write_text(
        "name: plain\nttl: {default: 1h, max: 2h}\nparams:\n"
        "  flavour: {default: vanilla, description: what it serves}\nservices:\n"
        "  web:\n    process: {command: [sleep, '600']}\n"
    )
    (templates / "elsewhere.yaml").write_text(
        "name: elsewhere\nttl: {default: 1h, max: 2h}\nservices:\n"
        "  web:\n    helm: {chart: ./chart}\n"
    )
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    sign_in(page, server)
    page.goto(server.url + "/spaces/new?template=demo")
    options = page.locator("#pick option").all_inner_texts()
    assert "plain" in options and "elsewhere" not in options  # no runtime here runs it
    page.get_by_label("Name").fill("form-1")
    page.get_by_label("Time to live").fill("99d")
    page.get_by_role("button", name="Create space").click()
    expect(page.locator("p.error")).to_contain_text("99d")
    expect(page.get_by_label("greeting")).to_be_visible()

    page.locator("#pick").select_option("plain")
    expect(page.get_by_label("flavour")).to_be_visible()
    expect(page.get_by_label("greeting")).to_have_count(0)
    expect(page.locator("p.error")).to_have_count(0)
    context.close()


def test_a_phone_shows_each_space_as_a_dense_card(browser, server):
    for i in range(4):
        assert server.bay("space", "create", f"phone-{i}", "--template", "demo").returncode == 0
    context = browser.new_context(viewport={"width": 390, "height": 844}, is_mobile=True)
    page = context.new_page()
    sign_in(page, server)
    rows = page.locator("table.spaces tbody tr")
    expect(rows).to_have_count(4)
    heights = [rows.nth(i).bounding_box()["height"] for i in range(4)]
    assert max(heights) <= 170, heights  # was about 300: nine label/value lines each
    shoot(page, "dashboard-phone")
    context.close()


def test_not_yours_and_not_found_are_different_pages_in_the_portals_layout(browser, server):
    assert server.bay("space", "create", "admins", "--template", "demo").returncode == 0
    bob = server.bay("user", "create", "bob").stdout.strip()
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    page = context.new_page()
    sign_in(page, server, bob)
    page.goto(server.url + "/spaces/admins/delete")
    expect(page.get_by_role("heading", name=re.compile("Not yours to do"))).to_be_visible()
    expect(page.get_by_text("its owner or an admin can do it")).to_be_visible()
    expect(page.get_by_role("navigation", name="Main")).to_be_visible()
    page.goto(server.url + "/spaces/nowhere")
    expect(page.get_by_role("heading", name=re.compile("Not found"))).to_be_visible()
    expect(page.get_by_text("may have been deleted")).to_be_visible()
    context.close()
