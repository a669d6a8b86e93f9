"""`bay notify`: your own notification channels."""

from typing import Annotated

import typer

from launchbay.cli.common import Output, api_client, check_output, emit

notify_app = typer.Typer(
    no_args_is_help=True,
    help="Your own notification channels: told when your spaces are ready, failed, about to "
    "expire or deleted.",
)


@notify_app.command("add")
def notify_add(
    kind: Annotated[str, typer.Argument(metavar="KIND", help="slack or json")],
    url: Annotated[str, typer.Argument(metavar="URL", help="the webhook's URL")],
    output: Output = "table",
) -> None:
    """Add a channel: a Slack incoming webhook, or a JSON webhook signed as Standard
    Webhooks are (its signing key is printed once)."""
    as_json = check_output(output)
    channel = api_client().post("/api/v1/me/channels", {"kind": kind, "url": url})
    if as_json:
        return emit(channel)
    print(f"channel {channel['id']}: {channel['kind']} {channel['url']}")
    if channel.get("secret"):
        print(f"signing key (shown once): {channel['secret']}")


@notify_app.command("list")
def notify_list(output: Output = "table") -> None:
    """Your channels."""
    as_json = check_output(output)
    channels = api_client().get("/api/v1/me/channels")
    if as_json:
        return emit(channels)
    if not channels:
        print("no channels; add one with `bay notify add slack URL`")
    for channel in channels:
        print(f"{channel['id']:<4} {channel['kind']:<6} {channel['url']}")


@notify_app.command("remove")
def notify_remove(
    channel_id: Annotated[int, typer.Argument(metavar="ID", help="as `bay notify list` shows")],
) -> None:
    """Remove one of your channels."""
    api_client().delete(f"/api/v1/me/channels/{channel_id}")
    print(f"channel {channel_id} removed")
