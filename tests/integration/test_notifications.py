"""Notices (ready, failed, warnings before expiry, deleted) sent to a real HTTP receiver,
with a clock the test controls; the one-click extend link; Standard Webhooks signatures
checked by the receiver with its own code."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event
from sqlalchemy.exc import OperationalError

from launchbay.domain.auth import Actor
from launchbay.domain.errors import Invalid, NotFound
from launchbay.domain.notices import Channel, NotifyConfig
from launchbay.engine.assembly import Launchbay
from launchbay.engine.catalog import TemplateCatalog
from launchbay.engine.engine import Engine, EngineSettings
from launchbay.engine.requests import CreateSpace
from launchbay.runtimes.process import ProcessRuntime
from launchbay.store.db import StoreUnavailable
from tests.integration import templates as extra
from tests.receiver import Receiver
from tests.support import Clock, ServerProcess, wait_until

ANN = Actor("ann")
SECRET = b"a-signing-key-of-enough-length"


@pytest.fixture
def receiver():
    r = Receiver(SECRET)
    yield r
    r.close()


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def bay(store, templates: Path, tmp_path: Path, clock: Clock, receiver: Receiver):
    extra.install(templates, "LONG")
    extra.install_curable(templates)
    runtime = ProcessRuntime(tmp_path / "runtime", stop_grace=1.0)
    engine = Engine(
        store=store,
        runtimes={"process": runtime},
        catalog=TemplateCatalog(templates),
        settings=EngineSettings(),
        clock=clock,
    )
    made = Launchbay.of(
        engine,
        notify=NotifyConfig(public_url="http://portal.example"),
        channels=[
            Channel("json", f"{receiver.url}/json", secret=SECRET),
            Channel("slack", f"{receiver.url}/slack"),
        ],
    )
    engine.start()  # workers only: the test runs the notifier pass by pass
    yield made
    engine.stop()
    for name in runtime.spaces():
        runtime.destroy_orphan(name)


def phase_of(bay: Launchbay, name: str) -> str:
    return bay.queries.space(name).phase


def pass_at(bay: Launchbay, clock: Clock, moment: datetime) -> None:
    clock.now = moment
    bay.notifier.once()


def token_of(body: dict[str, Any]) -> str:
    return str(body["extend"]["url"]).rsplit("/", 1)[1]


def test_each_notice_reaches_both_channels_once_at_its_moment_signed(bay, clock, receiver):
    bay.requests.create(CreateSpace(name="note-1", template="long"), actor=ANN)
    wait_until(lambda: phase_of(bay, "note-1") == "ready", timeout=30, what="ready")
    bay.notifier.once()
    bay.notifier.once()
    assert receiver.kinds("/json") == ["space.ready"]
    assert len(receiver.kinds("/slack")) == 1
    ready = receiver.got[0][1] if receiver.got[0][0] == "/json" else receiver.got[1][1]
    assert ready["space"]["url"] == "http://portal.example/spaces/note-1"

    expires = bay.queries.space("note-1").expires_at
    # Before each offset nothing; at it, one warning; again, nothing more.
    for offset in (timedelta(hours=24), timedelta(hours=1), timedelta(minutes=10)):
        pass_at(bay, clock, expires - offset - timedelta(seconds=5))
        before = len(receiver.got)
        pass_at(bay, clock, expires - offset + timedelta(seconds=1))
        pass_at(bay, clock, expires - offset + timedelta(seconds=30))
        assert len(receiver.got) == before + 2, receiver.got[before:]
    warnings = [body for path, body in receiver.got if path == "/json"][1:]
    assert [w["type"] for w in warnings] == ["space.warning"] * 3
    assert "expires in 1d" in warnings[0]["text"] and "expires in 10m" in warnings[2]["text"]
    slack = [body["text"] for path, body in receiver.got if path == "/slack"]
    assert "<http://portal.example/spaces/note-1|note-1>" in slack[-1]
    assert "|Extend by 1h>" in slack[-1]
    assert receiver.bad_signatures == 0

    # The extend link: good once; the hour's link is refused once its expiry has passed.
    hour_link, ten_minute_link = token_of(warnings[1]), token_of(warnings[2])
    extended = bay.notifier.extend_by_link(ten_minute_link)
    assert extended.expires_at == expires + timedelta(hours=1)
    assert bay.queries.events("note-1")[0].message.startswith(
        "TTL extended by 1h through a notice's extend link"
    )
    with pytest.raises(Invalid, match="used already"):
        bay.notifier.extend_by_link(ten_minute_link)
    clock.now = expires + timedelta(seconds=1)
    with pytest.raises(Invalid, match="no longer valid"):
        bay.notifier.extend_by_link(hour_link)
    with pytest.raises(NotFound):
        bay.notifier.extend_by_link("not-a-token-launchbay-sent")
    assert bay.queries.space("note-1").expires_at == expires + timedelta(hours=1)

    # The extension moved the expiry: its warnings come again, for the new one.
    pass_at(bay, clock, expires + timedelta(hours=1) - timedelta(minutes=9))
    assert receiver.kinds("/json")[-1] == "space.warning"

    bay.requests.delete("note-1", actor=ANN)
    wait_until(lambda: phase_of(bay, "note-1") == "deleted", timeout=30, what="deleted")
    bay.notifier.once()
    bay.notifier.once()
    deleted = [body for path, body in receiver.got if path == "/json"][-1]
    assert deleted["type"] == "space.deleted" and "deleted by ann" in deleted["text"]
    assert receiver.kinds("/json").count("space.deleted") == 1


def test_a_failure_is_told_once_with_its_reason_and_a_channel_that_fails_is_tried_again(
    bay, clock, receiver
):
    bay.requests.create(CreateSpace(name="sick-1", template="curable"), actor=ANN)
    wait_until(lambda: phase_of(bay, "sick-1") == "failed", timeout=30, what="failed")
    receiver.fail_next = 1  # the first channel tried answers 503
    bay.notifier.once()
    assert len(receiver.got) == 1
    clock.now += timedelta(seconds=3)
    bay.notifier.once()
    clock.now += timedelta(seconds=30)
    bay.notifier.once()
    assert sorted(path for path, _ in receiver.got) == ["/json", "/slack"]
    failed = next(body for path, body in receiver.got if path == "/json")
    assert failed["type"] == "space.failed"
    assert "database unreachable" in failed["reason"] and failed["extend"] is None
    # The resend kept the message's id, so that a receiver that took the first can drop
    # it (it was once new on every attempt).
    first, again = [i for path, i in receiver.ids if path == "/json"]
    assert first == again and first.startswith("msg_")


def test_a_users_own_channel_must_point_where_the_server_allows(bay):
    with pytest.raises(Invalid, match=r"must start with https://hooks\.slack\.com/"):
        bay.notifier.add_channel(ANN, kind="json", url="http://169.254.169.254/latest")
    with pytest.raises(Invalid, match="slack or json"):
        bay.notifier.add_channel(ANN, kind="email", url="https://hooks.slack.com/x")
    assert bay.notifier.channels_of(ANN) == []


def test_a_user_adds_a_channel_with_bay_and_is_told_of_their_own_spaces_only(tmp_path, templates):
    """End to end: a real server with a config file, the `bay notify` commands, a real
    receiver checking the signature with the key `bay notify add` printed once."""
    mine, theirs = Receiver(), Receiver()
    config = tmp_path / "launchbay.yaml"
    config.write_text(
        "notifications:\n"
        f"  user_urls: ['{mine.url}/', '{theirs.url}/']\n"
        "  public_url: https://launchbay.example.com\n"
    )
    server = ServerProcess(
        home=tmp_path / "home",
        templates=templates,
        extra_args=["--config", str(config), "--sweep-interval", "0.2"],
    )
    server.home.mkdir()
    server.start()
    try:
        bob = server.bay("user", "create", "bob").stdout.strip()
        added = server.bay("notify", "add", "json", f"{mine.url}/json")
        assert added.returncode == 0, added.stderr
        mine.secret = added.stdout.split("signing key (shown once): ")[1].strip()
        assert mine.secret.startswith("whsec_")  # as Standard Webhooks' libraries take it
        assert (
            server.bay("notify", "add", "slack", f"{theirs.url}/slack", token=bob).returncode == 0
        )
        listed = server.bay("notify", "list").stdout
        assert f"{mine.url}/json" in listed and theirs.url not in listed
        outside = server.bay("notify", "add", "slack", "http://10.0.0.1/hook")
        assert outside.returncode == 2 and "is not allowed here" in outside.stderr

        assert server.bay("space", "create", "told", "--template", "demo", "--wait").returncode == 0
        wait_until(lambda: mine.kinds("/json") == ["space.ready"], timeout=30, what="ready notice")
        body = mine.got[0][1]
        assert body["space"]["url"] == "https://launchbay.example.com/spaces/told"
        assert body["extend"]["url"].startswith("https://launchbay.example.com/x/")
        assert mine.bad_signatures == 0 and theirs.got == []  # bob is not told of admin's space

        channel_id = listed.split()[0]
        assert server.bay("notify", "remove", channel_id).returncode == 0
        assert "no channels" in server.bay("notify", "list").stdout
        gone = server.bay("notify", "remove", channel_id)
        assert gone.returncode == 5 and f"you have no channel {channel_id}" in gone.stderr
    finally:
        server.stop()
        mine.close()
        theirs.close()


def test_an_extend_link_is_spent_only_by_an_extension_that_went_through(bay, receiver):
    # The link was once spent in a transaction of its own and the extension made in a
    # second: a database error in the second burned the link for nothing.
    bay.requests.create(CreateSpace(name="note-2", template="long"), actor=ANN)
    wait_until(lambda: phase_of(bay, "note-2") == "ready", timeout=30, what="ready")
    bay.notifier.once()
    (ready,) = [body for path, body in receiver.got if path == "/json"]
    token, expires = token_of(ready), bay.queries.space("note-2").expires_at

    def fail_the_extension(_conn, _cursor, statement: str, *_: object) -> None:
        if statement.lstrip().upper().startswith("UPDATE SPACES"):
            raise OperationalError(statement, {}, Exception("the database went away"))

    engine = bay.requests.engine.store.engine
    event.listen(engine, "before_cursor_execute", fail_the_extension)
    try:
        with pytest.raises(StoreUnavailable):
            bay.notifier.extend_by_link(token)
    finally:
        event.remove(engine, "before_cursor_execute", fail_the_extension)
    assert bay.queries.space("note-2").expires_at == expires
    assert bay.notifier.extend_by_link(token).expires_at == expires + timedelta(hours=1)
    bay.requests.delete("note-2", actor=ANN)
    wait_until(lambda: phase_of(bay, "note-2") == "deleted", timeout=30, what="deleted")
