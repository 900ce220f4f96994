"""The login and /metrics as an attacker meets them: wrong guesses throttled without locking out
the right token, X-Forwarded-For believed only from trusted proxies, no redirect off the site
after login, and no figures without the metrics token."""

from __future__ import annotations

import pytest

from tests.support.web import web_service
from webserver.app import create_app

TOKEN = "the-right-token-0123456789"


def app_for(tmp_path, **env: str):
    return create_app(web_service(tmp_path / "home", CHATOPS_WEB_TOKEN=TOKEN, **env))


@pytest.mark.slow
def test_the_right_token_gets_in_after_20_wrong_ones(tmp_path) -> None:
    client = app_for(tmp_path).test_client()
    answers = [client.get(f"/login?token=wrong-{n}").status_code for n in range(20)]
    assert answers == [401] * 10 + [429] * 10
    throttled = client.get("/login?token=wrong-again")
    assert throttled.status_code == 429 and 0 < int(throttled.headers["Retry-After"]) <= 600
    assert ("Too many wrong logins from your address: wrong ones are refused for the next "
            "10 minutes. The right credentials still work.") in throttled.text
    response = client.get(f"/login?token={TOKEN}")
    assert response.status_code == 302 and response.headers["Location"] == "/"
    assert client.get("/").status_code == 200


def test_forwarded_addresses_are_believed_only_from_trusted_proxies(tmp_path) -> None:
    # Not trusted: a guesser cannot dodge the throttle by inventing addresses.
    client = app_for(tmp_path).test_client()
    answers = [client.get(f"/login?token=w{n}", headers={"X-Forwarded-For": f"203.0.113.{n}"})
               .status_code for n in range(11)]
    assert answers[-1] == 429
    # Behind a trusted proxy (the test client comes from 127.0.0.1) each client is counted
    # alone: one guesser does not throttle everyone else behind the same proxy.
    proxied = create_app(web_service(tmp_path / "h2", CHATOPS_WEB_TOKEN=TOKEN,
                                     CHATOPS_TRUSTED_PROXIES="10.0.0.0/8, 127.0.0.1"))
    client = proxied.test_client()
    guesser = {"X-Forwarded-For": "203.0.113.9, 10.1.2.3"}
    answers = [client.get(f"/login?token=w{n}", headers=guesser).status_code for n in range(11)]
    assert answers[-1] == 429
    other = {"X-Forwarded-For": "198.51.100.7"}
    assert client.get("/login?token=wrong", headers=other).status_code == 401


def test_a_bad_trusted_proxies_setting_is_a_setup_error(tmp_path) -> None:
    from chatops.service import SetupError

    with pytest.raises(SetupError, match="CHATOPS_TRUSTED_PROXIES: 'proxy.example' is not an "
                                         "address or a network"):
        app_for(tmp_path, CHATOPS_TRUSTED_PROXIES="127.0.0.1,proxy.example")


@pytest.mark.parametrize("target", [
    "//evil.example", "/\\evil.example", "/%09/evil.example", "/%0a/evil.example",
    "%09//evil.example", "https:evil.example", "https://evil.example/", "javascript:alert(1)",
    "/%5Cevil.example",
])
def test_next_never_leaves_the_site(tmp_path, target: str) -> None:
    client = app_for(tmp_path).test_client()
    response = client.get(f"/login?token={TOKEN}&next={target}")
    assert response.status_code == 302
    assert response.headers["Location"] == "/"


def test_next_keeps_a_path_on_the_site(tmp_path) -> None:
    client = app_for(tmp_path).test_client()
    response = client.get(f"/login?token={TOKEN}&next=/jobs%3Fstate%3Dfailed")
    assert response.headers["Location"] == "/jobs?state=failed"


def test_metrics_need_the_token(tmp_path) -> None:
    app = app_for(tmp_path, CHATOPS_METRICS_TOKEN="scrape-me-123456")
    client = app.test_client()
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": TOKEN}):
        refused = client.get("/metrics", headers=headers)
        assert refused.status_code == 401
        assert refused.text == "/metrics needs 'Authorization: Bearer <CHATOPS_METRICS_TOKEN>'.\n"
        assert refused.headers["WWW-Authenticate"].startswith("Bearer")
    scraped = client.get("/metrics", headers={"Authorization": "Bearer scrape-me-123456"})
    assert scraped.status_code == 200 and "chatops_queue_depth" in scraped.text
    assert client.get("/healthz").status_code in (200, 503)  # health stays open

    closed = app_for(tmp_path).test_client().get("/metrics")
    assert closed.status_code == 401
    assert closed.text.startswith("/metrics is closed: set CHATOPS_METRICS_TOKEN")
    public = app_for(tmp_path, CHATOPS_METRICS_PUBLIC="true").test_client().get("/metrics")
    assert public.status_code == 200 and "chatops_queue_depth" in public.text
