"""A URL shown to people leaves out its secrets, and nothing else."""

from __future__ import annotations

import pytest

from launchbay.domain.urls import origin_only, redacted


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("postgresql://app:hunter2@db:5432/lb", "postgresql://app:***@db:5432/lb"),
        (
            "postgresql+psycopg://app@db/lb?password=hunter2",
            "postgresql+psycopg://app@db/lb?password=***",
        ),
        (
            "postgresql://app@db/lb?sslmode=require&sslpassword=x",
            "postgresql://app@db/lb?sslmode=require&sslpassword=***",
        ),
        ("sqlite:////var/lib/launchbay/launchbay.db", "sqlite:////var/lib/launchbay/launchbay.db"),
        ("https://example.com/hook?token=abc#top", "https://example.com/hook?token=***#top"),
    ],
)
def test_a_urls_password_and_secret_parameters_are_redacted_and_the_rest_kept(url, shown):
    assert redacted(url) == shown


def test_a_url_whose_path_is_its_secret_shows_its_origin_only():
    assert (
        origin_only("https://u:p@hooks.slack.com/services/T/B/x") == "https://hooks.slack.com/***"
    )
