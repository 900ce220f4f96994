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
