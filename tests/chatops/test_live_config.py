"""Live config with a real `chatops run`: an edit to job_configs.py applies without a restart,
a broken edit keeps the running config and is reported once, the fix applies."""

from __future__ import annotations

import http.cookiejar
import json
import os
import re
import signal
import urllib.request
from pathlib import Path

import pytest

from chatops import live_config
from chatops.plain_text import render_delivery
from chatops.platform import Delivery
from chatops.service import open_queue
from chatops.settings import load_settings
from tests.support.cli import Chatops, spine_env
from tests.support.wait import wait_until

pytestmark = pytest.mark.slow  # a whole `chatops run`: seconds

TOKEN = "live-config-test-token"
BASE = '''
admins = ["web:admin"]
admin_channel = "console:admins"
raw_config = {
    "tests": {
        "jobs": {"echo": {"run_args_template": "echo {words}", "report_stdout": True}},
        "slack": [{"command": "echo [words]", "help": "echo", "action": "schedule_job",
                   "job_type": "echo"}],
    },
}
'''
EXTRA = BASE.rstrip().rstrip("}") + '''
    "extra": {
        "description": "added while running",
        "jobs": {"hi": {"run_args_template": "echo hi from extra", "report_stdout": True}},
        "slack": [{"command": "hi", "help": "say hi", "action": "schedule_job",
                   "job_type": "hi"}%s],
    },
}
'''
BYE = (',\n                  {"command": "bye", "help": "say bye", "action": "schedule_job", '
       '"job_type": "hi"}')


class Console:
    """The web console of the running service, as a browser uses it."""

    def __init__(self, url: str):
        self.url = url
        self.opener = urllib.request.build_opener(
            urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar()))
        self.opener.open(f"{url}/login?token={TOKEN}").read()
        page = self.opener.open(f"{url}/console").read().decode()
        self.csrf = re.search(r'name="csrf-token" content="([^"]+)"', page).group(1)

    def send(self, text: str) -> dict:
        request = urllib.request.Request(
            f"{self.url}/console/send", data=json.dumps({"text": text}).encode(),
            headers={"Content-Type": "application/json", "X-CSRF-Token": self.csrf})
        return json.loads(self.opener.open(request).read())

    def reply(self, text: str) -> str:
        return "\n".join(r["text"] for r in self.send(text)["replies"])

    def report_of(self, job_id: int) -> str:
        def poll() -> str | None:
            data = json.loads(self.opener.open(f"{self.url}/console/poll").read())
            return next((m["text"] for m in data["messages"] if m["job_id"] == job_id), None)
        return wait_until(poll, what=f"the report of job {job_id}")

    def page(self, path: str) -> str:
        return self.opener.open(f"{self.url}{path}").read().decode()


def test_edits_apply_to_a_running_service_and_a_broken_edit_does_not(tmp_path: Path) -> None:
    config = tmp_path / "job_configs.py"
    config.write_text(BASE)
    home = tmp_path / "home"
    home.mkdir()
    runner = Chatops(home, spine_env(home, CHATOPS_CONFIG=str(config), CHATOPS_WEB_TOKEN=TOKEN))
    runner("db", "upgrade", check=True)
    process = runner.start("run", "--port", "0")
    try:
        url = wait_until(lambda: re.search(r"web: (http://\S+)/ ", runner.log_text()),
                         what="chatops run to listen").group(1)
        web = Console(url)
        assert web.send("extra hi")["understood"] is False

        # Add a namespace: usable at once, by the web console and by the dispatcher.
        config.write_text(EXTRA % "")
        wait_until(lambda: web.reply("extra help").startswith("Commands in `extra`"),
                   what="the new namespace")
        assert web.report_of(web.send("extra hi")["job_id"]) == "hi from extra"
        applied = live_config.file_hash(config)
        [run] = live_config.running_processes(open_queue(load_settings(runner.env)))
        assert (run.role, run.config_hash, run.rejected_hash) == ("run", applied, None)
        assert applied[:12] in web.page("/config")

        # Break it: the running config still serves; the errors are logged and told once.
        config.write_text(EXTRA % "" + "\nraw_config['extra']['slack'][0]['job_type'] = 'nope'\n")
        errors = ("1 error(s):\n  namespace 'extra', command 'hi': 'job_type' 'nope' is not a "
                  "job of namespace 'extra' (hi)")
        wait_until(lambda: "for the admins: " + str(config) + ": " + errors in runner.log_text(),
                   what="the errors told to the admins")
        assert web.report_of(web.send("extra hi")["job_id"]) == "hi from extra"
        assert "the file on its host has errors" in web.page("/config")
        os.kill(process.pid, signal.SIGHUP)  # looking again at the same broken file ...
        wait_until(lambda: "still has the errors reported before" in runner.log_text(),
                   what="the second look")
        assert runner.log_text().count("for the admins: ") == 1  # ... tells nobody again
        queue = open_queue(load_settings(runner.env))
        told = [render_delivery(Delivery.from_row(d))
                for d in queue.take_channel_deliveries("console", "admins")]
        assert [t for t in told if errors in t] == [
            f"{config}: {errors}\nThe service keeps running the previous version "
            f"({applied[:12]}); fix the file and it is applied."]

        # Fix it (with one more command): applied.
        config.write_text(EXTRA % BYE)
        wait_until(lambda: "extra bye" in web.reply("extra help"), what="the fixed config")
        assert web.report_of(web.send("extra bye")["job_id"]) == "hi from extra"
        reload = runner("config", "reload")
        assert reload.returncode == 0, reload.stderr
        assert re.search(r"^  run on \S+ \(pid \d+\): runs it$", reload.stdout, re.M)
    finally:
        runner.stop_all()


def test_an_edit_naming_a_variable_the_process_lacks_says_to_restart(tmp_path: Path) -> None:
    config = tmp_path / "job_configs.py"
    config.write_text(BASE)
    home = tmp_path / "home"
    home.mkdir()
    runner = Chatops(home, spine_env(home, CHATOPS_CONFIG=str(config)))
    runner("db", "upgrade", check=True)
    try:
        runner.start_dispatcher()
        config.write_text(BASE.replace('"report_stdout": True}',
                                       '"report_stdout": True, "env": ["SITE_API_TOKEN"]}'))
        wait_until(lambda: "names environment variable(s) SITE_API_TOKEN that dispatcher "
                   in runner.log_text(), what="the restart warning")
        assert "secrets are read only at start, so restart it to use them." in runner.log_text()
    finally:
        runner.stop_all()
