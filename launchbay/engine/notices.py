"""The notifier: warnings before expiry, and every notice delivered to its channels.

Ready, failed and deleted are recorded by `Engine.set_phase` in the transaction of the
change itself; the notifier (on the leader) records the warnings that are due, then sends
whatever is owed to the server's channels and the owner's own, each channel once, trying
a failed one again with backoff. A notice that can be extended carries a one-click link,
good once, until the expiry it was sent for.
"""

from __future__ import annotations

import hashlib
import json
import logging
import secrets
import time
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Literal

import httpx

from launchbay.domain.auth import Actor
from launchbay.domain.durations import format_duration, parse_duration
from launchbay.domain.errors import Invalid, NotFound
from launchbay.domain.notices import (
    Channel,
    Notice,
    NoticeKind,
    NotifyConfig,
    check_user_url,
    key_bytes,
    new_key,
    sign,
    text_of,
    warning_due,
    warning_key,
)
from launchbay.domain.spec import extension_room
from launchbay.engine.engine import Engine, Loop
from launchbay.engine.requests import Requests
from launchbay.engine.views import ChannelView, SpaceView
from launchbay.store import notices as store
from launchbay.store import queries as q
from launchbay.store.models import ExtendLink, Space, UserChannel
from launchbay.store.models import Notice as NoticeRow

log = logging.getLogger(__name__)

# A channel that does not answer 2xx is tried again after 2, 4, 8 … seconds, at most 5
# minutes apart, and given up on after this many attempts (the notice records why).
MAX_ATTEMPTS = 8
TIMEOUT = 5.0


def post(url: str, body: bytes, headers: dict[str, str]) -> int:
    """POST and keep only the status: the answer's body is never read (a channel's server
    cannot fill our memory), redirects are not followed (nor can it send us elsewhere)."""
    with (
        httpx.Client(timeout=TIMEOUT, follow_redirects=False) as http,
        http.stream("POST", url, content=body, headers=headers) as response,
    ):
        return response.status_code


def digest_of(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def message_id(notice: str, channel: Channel) -> str:
    """One notice's `webhook-id` on one channel: the same on every attempt and from every
    replica, so that receivers drop a retry they already took (Standard Webhooks keeps
    the id across retries); `notice` names it among every server's notices."""
    return "msg_" + hashlib.sha256(f"{notice}|{channel.url}".encode()).hexdigest()[:32]


class Notifier:
    def __init__(
        self,
        engine: Engine,
        requests: Requests,
        *,
        config: NotifyConfig,
        channels: Sequence[Channel] = (),
        public_url: str,
    ) -> None:
        self.engine = engine
        self.requests = requests
        self.config = config
        self.channels = tuple(channels)
        self.public_url = (config.public_url or public_url).rstrip("/")
        self.offsets = config.offsets()
        self.extend_by = parse_duration(config.extend_by)
        self.keep_ended = parse_duration(config.keep_ended)

    def ended_since(self) -> datetime:
        """Spaces that ended since then are still listed, as recently ended."""
        return self.engine.clock() - self.keep_ended

    def loop(self) -> Loop:
        return Loop(
            "notifier", self.engine.settings.sweep_interval, lambda _: self.once(), leader_only=True
        )

    def once(self) -> None:
        self.warn()
        self.deliver()

    # -- warnings ------------------------------------------------------------------------

    def warn(self) -> None:
        """Record each warning that is due, once per offset and expiry. A warning stays
        due for its whole window: the read leaves out those recorded, so a pass writes
        only what is new."""
        now = self.engine.clock()
        if not self.offsets:
            return
        with self.engine.store.read() as s:
            due = {
                (space_id, warning_key(offset, expires_at)): expires_at
                for space_id, created_at, expires_at in store.expiring(
                    s, before=now + self.offsets[0]
                )
                if (
                    offset := warning_due(
                        created_at=created_at, expires_at=expires_at, now=now, offsets=self.offsets
                    )
                )
                is not None
            }
            for known in store.recorded(s, list(due)):
                del due[known]
        for (space_id, key), expires_at in due.items():
            with self.engine.store.write() as s:
                space = q.space_for_update(s, space_id)
                if space.expires_at != expires_at or space.live_name is None:
                    continue  # extended or deleted meanwhile
                left = timedelta(minutes=round((expires_at - now).total_seconds() / 60))
                store.add_notice(
                    s,
                    space,
                    NoticeKind.WARNING,
                    key=key,
                    text=text_of(NoticeKind.WARNING, left=max(left, timedelta(minutes=1))),
                    now=now,
                )

    # -- delivery ------------------------------------------------------------------------

    def deliver(self) -> None:
        now = self.engine.clock()
        with self.engine.store.read() as s:
            owed = [(n.id, n.space_id) for n in store.owed(s, now=now)]
        for notice_id, space_id in owed:
            try:
                self._deliver_one(notice_id, space_id)
            except Exception:  # per-notice boundary: one bad notice must not stop the rest
                log.exception("notice %s: delivery failed", notice_id)

    def _deliver_one(self, notice_id: int, space_id: int) -> None:
        with self.engine.store.read() as s:
            space = s.get(Space, space_id)
            notice = s.get(NoticeRow, notice_id)
            if space is None or notice is None or notice.sent_at is not None:
                return
            channels = list(self.channels) + [
                _channel(c, space.owner) for c in store.channels_of(s, space.owner)
            ]
            reached = dict(notice.reached)
            kind, text, attempts = notice.kind, notice.text, notice.attempts
            sent_as = f"{space_id}/{notice_id}/{notice.created_at.isoformat()}"
            facts = (space.name, space.owner, space.template, space.expires_at, space.reason)
        errors = []
        for channel in channels:
            if channel.url in reached:
                continue
            body = self._message(kind, text, facts, channel, space_id)
            error = self._send_one(channel, body, message_id=message_id(sent_as, channel))
            if error:
                errors.append(f"{channel.url}: {error}")
            else:
                reached[channel.url] = True
        now = self.engine.clock()
        with self.engine.store.write() as s:
            row = s.get(NoticeRow, notice_id)
            if row is None:
                return
            row.reached, row.attempts = reached, attempts + 1
            row.error = "; ".join(errors)[:2000]
            if not errors or row.attempts >= MAX_ATTEMPTS:
                row.sent_at = now
            else:
                row.next_at = now + timedelta(seconds=min(2**row.attempts, 300))

    def _send_one(self, channel: Channel, body: dict[str, object], *, message_id: str) -> str:
        payload = json.dumps(body).encode()
        headers = {"Content-Type": "application/json", "User-Agent": "launchbay"}
        if channel.kind == "json":
            stamp = int(time.time())  # when it is sent: receivers check it against theirs
            headers |= {
                "webhook-id": message_id,
                "webhook-timestamp": str(stamp),
                "webhook-signature": sign(
                    channel.secret, message_id=message_id, timestamp=stamp, body=payload
                ),
            }
        try:
            status = post(channel.url, payload, headers)
        except (httpx.HTTPError, OSError) as e:
            return f"{e.__class__.__name__}: {e}"[:300]
        return "" if 200 <= status < 300 else f"answered {status}"

    def _message(
        self,
        kind: NoticeKind,
        text: str,
        facts: tuple[str, str, str, datetime, str],
        channel: Channel,
        space_id: int,
    ) -> dict[str, object]:
        name, owner, template, expires_at, reason = facts
        link = ""
        if kind in (NoticeKind.WARNING, NoticeKind.READY):
            link = self._new_link(space_id, expires_at)
        notice = Notice(
            kind=kind,
            space=name,
            owner=owner,
            template=template,
            text=text,
            url=f"{self.public_url}/spaces/{name}",
            expires_at=expires_at,
            reason=reason if kind is not NoticeKind.READY else "",
            extend_url=link,
            extend_by=format_duration(self.extend_by) if link else "",
        )
        return notice.slack() if channel.kind == "slack" else notice.json()

    def _new_link(self, space_id: int, expires_at: datetime) -> str:
        token = secrets.token_urlsafe(32)
        with self.engine.store.write() as s:
            s.add(
                ExtendLink(
                    digest=digest_of(token),
                    space_id=space_id,
                    by_seconds=int(self.extend_by.total_seconds()),
                    valid_until=expires_at,
                )
            )
        return f"{self.public_url}/x/{token}"

    # -- the extend link -----------------------------------------------------------------

    def link_space(self, token: str) -> SpaceView:
        """The live space an unused, unexpired link extends (for its page), else NotFound."""
        with self.engine.store.read() as s:
            link = s.get(ExtendLink, digest_of(token))
            space = self._usable(link, s.get(Space, link.space_id) if link else None)
            return self.engine.view(space)

    def extend_by_link(self, token: str) -> SpaceView:
        """Extend once, as the space's owner, by the link's amount or what the template
        still allows if that is less; the link is used up in the transaction that extends,
        so an extension that fails leaves it good."""
        with self.engine.store.write() as s:
            link = store.link_for_update(s, digest_of(token))
            space = self._usable(link, q.space_for_update(s, link.space_id) if link else None)
            assert link is not None
            name, owner = space.name, space.owner
            template = self.engine.catalog.get(space.template)
            now = self.engine.clock()
            room = extension_room(
                created_at=space.created_at,
                expires_at=space.expires_at,
                policy=template.ttl,
                now=now,
            )
            by = min(timedelta(seconds=link.by_seconds), room)
            if by < timedelta(minutes=1):
                raise Invalid(
                    f"space {name!r} cannot be extended: it has had the "
                    f"{format_duration(template.ttl.max)} its template allows"
                )
            link.used_at = now
            self.requests.extend_in(
                s, space, by=by, actor=Actor(name=owner), via="a notice's extend link"
            )
        return self.engine.view(space)

    def _usable(self, link: ExtendLink | None, space: Space | None) -> Space:
        now = self.engine.clock()
        if link is None or space is None:
            raise NotFound("this extend link is not one Launchbay sent")
        if link.used_at is not None:
            raise Invalid("this extend link was used already: each link extends once")
        if now >= link.valid_until or space.live_name is None:
            raise Invalid(
                f"this extend link is no longer valid: space {space.name!r} expired or was deleted"
            )
        return space

    # -- users' own channels -------------------------------------------------------------

    def add_channel(self, actor: Actor, *, kind: str, url: str) -> tuple[ChannelView, str]:
        """A channel for the actor's own spaces; a JSON one gets a signing secret, shown
        once."""
        if kind not in ("slack", "json"):
            raise Invalid(f"channel kind must be slack or json, not {kind!r}")
        check_user_url(url, self.config.user_urls)
        secret = new_key() if kind == "json" else ""
        with self.engine.store.write() as s:
            user = store.user_by_name(s, actor.name)
            if user is None:
                raise NotFound(f"no user named {actor.name!r}")
            row = UserChannel(
                user_id=user.id, kind=kind, url=url, secret=secret, created_at=self.engine.clock()
            )
            s.add(row)
            s.flush()
            return ChannelView(row.id, kind, url), secret

    def channels_of(self, actor: Actor) -> list[ChannelView]:
        with self.engine.store.read() as s:
            return [ChannelView(c.id, c.kind, c.url) for c in store.channels_of(s, actor.name)]

    def remove_channel(self, actor: Actor, channel_id: int) -> None:
        with self.engine.store.write() as s:
            for row in store.channels_of(s, actor.name):
                if row.id == channel_id:
                    s.delete(row)
                    return
        raise NotFound(f"you have no channel {channel_id}")


def _channel(row: UserChannel, owner: str) -> Channel:
    kind: Literal["slack", "json"] = "json" if row.kind == "json" else "slack"
    return Channel(kind=kind, url=row.url, secret=key_bytes(row.secret), owner=owner)
