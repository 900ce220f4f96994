"""The dashboard's Schedules page (pause and resume from it) and Config page (the version of
job_configs.py each process runs)."""

from __future__ import annotations

import re
from pathlib import Path

from chatops import live_config
from tests.support.web import web_service
from webserver.app import create_app

CONFIG = '''
raw_config = {
    "ops": {
        "default_channel": "console:ops",
        "jobs": {"check": {"run_args_template": "echo checked"}},
        "schedules": [{"name": "nightly", "job_type": "check", "cron": "0 2 * * *",
                       "timezone": "Europe/Oslo"}],
    },
}
'''


def test_the_schedules_page_lists_and_pauses_and_the_config_page_shows_versions(
        tmp_path: Path) -> None:
    config = tmp_path / "job_configs.py"
    config.write_text(CONFIG)
    service = web_service(tmp_path / "home", config=config, CHATOPS_WEB_TOKEN="pages-token")
    client = create_app(service).test_client()
    client.get("/login?token=pages-token")
    page = client.get("/schedules").text
    assert "<code>ops/nightly</code>" in page and "cron 0 2 * * * (Europe/Oslo)" in page
    assert "not run yet" in page and re.search(r"\d{4}-\d\d-\d\d 02:00:00 CES?T", page)
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
    paused = client.post("/schedules/ops/nightly/pause", data={"csrf_token": csrf},
                         follow_redirects=True).text
    assert "Paused schedule `ops/nightly`" in paused and "paused by admin since" in paused
    assert "Resume</button>" in paused

    live = live_config.LiveConfig(service.settings, service.queue, service.config, "web").start()
    try:
        versions = client.get("/config").text
        version = live_config.file_hash(config)[:12]
        assert f"version <code>{version}</code>" in versions
        assert re.search(rf"<td>web</td>.*<code>{version}</code>", versions, re.S)
    finally:
        live.close()
    assert "No process has reported" in client.get("/config").text
