"""The web console's upload box: a command with a file is a calculation, refused or queued as on
any platform, and its result files download only for whoever ran it (and admins)."""

from __future__ import annotations

import io
import re
from pathlib import Path

from chatops.calc.files import results_dir
from tests.support.web import web_service
from webserver.app import create_app

CONFIG = '''
admins = ["web:admin"]
raw_config = {}
clusters = {"hpc": {"host": "login.example.org", "user": "chatops", "key_file": "/k",
                    "known_hosts": "/kh"}}
runners = {"hpc": {"shout": {"program": "shout", "extensions": [".gjf"],
                             "max_input_bytes": 1000}}}
'''


def login(service, user: str):
    client = create_app(service).test_client()
    assert client.get(f"/login?token=tok-{user}").status_code in (200, 302)
    csrf = re.search(r'name="csrf-token" content="([^"]+)"', client.get("/console").text)[1]
    return client, csrf


def test_a_file_sent_from_the_console_is_a_calculation(tmp_path: Path) -> None:
    config = tmp_path / "job_configs.py"
    config.write_text(CONFIG)
    service = web_service(tmp_path / "home", config=config, CHATOPS_WEB_TOKEN="tok-admin")
    client, csrf = login(service, "admin")

    def send(name: str, data: bytes, text: str = "") -> dict:
        answer = client.post("/console/send", headers={"X-CSRF-Token": csrf},
                             data={"text": text, "file": (io.BytesIO(data), name)},
                             content_type="multipart/form-data")
        assert answer.status_code == 200, answer.text
        return answer.json

    refused = send("big.gjf", b"x" * 2000)
    assert (refused["refused"], refused["replies"][0]["text"]) == (True, (
        "Not submitted: `big.gjf` is 2 KiB; runner `shout` takes files up to 1 KiB. Send a "
        "smaller file."))
    queued = send("water.gjf", b"H 0 0 0\n", "run shout")
    job_id = queued["job_id"]
    assert queued["replies"][0]["text"].startswith(
        f"Calculation {job_id}: `water.gjf` is queued for runner `shout` on cluster hpc")
    folder = results_dir(service.settings, job_id)
    folder.mkdir(parents=True)
    (folder / "out.log").write_text("energy -76.0\n")
    download = client.get(f"/console/results/{job_id}/out.log")
    assert (download.status_code, download.data) == (200, b"energy -76.0\n")
    assert client.get(f"/console/results/{job_id}/../../etc/passwd").status_code == 404
    assert client.get(f"/console/results/{job_id + 1}/out.log").status_code == 404
    service.queue.engine.dispose()


def test_the_audit_page_is_for_admins_and_filters(tmp_path: Path) -> None:
    from chatops.calc import audit

    config = tmp_path / "job_configs.py"
    config.write_text(CONFIG)
    service = web_service(tmp_path / "home", config=config, CHATOPS_WEB_TOKEN="tok-admin")
    audit.record(service.queue, None, "approved", "web:admin approved telegram:42",
                 actor="web:admin", subject="telegram:42")
    audit.record(service.queue, None, "refused", "telegram:7 (eve): Not submitted: <b>x</b>",
                 actor="telegram:7", subject="telegram:7")
    client, _ = login(service, "admin")
    page = client.get("/audit")
    assert page.status_code == 200
    assert "web:admin approved telegram:42" in page.text
    assert "Not submitted: &lt;b&gt;x&lt;/b&gt;" in page.text  # escaped
    only = client.get("/audit?action=refused").text
    assert "approved telegram:42" not in only and "telegram:7 (eve)" in only
    assert "telegram:7 (eve)" not in client.get("/audit?person=telegram:42").text
    # the actions offered are those `chatops audit export --action` accepts
    assert [f'<option value="{a}"' in page.text for a in audit.ACTIONS] == [True] * len(
        audit.ACTIONS)
    assert client.get("/audit?action=nope").status_code == 400
    service.queue.engine.dispose()
