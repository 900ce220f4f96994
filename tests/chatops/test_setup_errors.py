"""Every `chatops` subcommand, run with each setting missing or wrong: exit 3 and a message
naming the setting, never a traceback. Real processes against real stand-ins of the chat APIs
(a refused token, an unreachable URL)."""

from __future__ import annotations

import socket
import subprocess
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from bot.registry import PLATFORMS
from chatops.settings import check_environment
from tests.support.cli import CHATOPS, Chatops, spine_env
from tests.support.fake_discord import APP_ID, FakeDiscord, Signer
from tests.support.fake_telegram import FakeTelegram

pytestmark = pytest.mark.slow  # ≈150 short processes

# Credentials and API URLs of the chat platforms: none are inherited from the machine.
PLATFORM_PREFIXES = ("SLACK_", "TELEGRAM_", "DISCORD_", "MATRIX_", "GITHUB_")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


PORT = free_port()
BOTS = [("bot", name) for name in ("console", "slack", "telegram", "discord", "matrix")]
SERVERS = [("run", "--port", str(PORT)), ("web", "--port", str(PORT)), ("dispatcher",)]
WITH_CONFIG = [*SERVERS, *BOTS, ("bot", "discord", "--register"), ("chat", "status"),
               ("jobs", "list"), ("jobs", "show", "1"), ("jobs", "cancel", "1"),
               ("jobs", "logs", "1")]
DATABASE_ONLY = [("db", "upgrade"), ("db", "backup", "/tmp/chatops-never-written.db"),
                 ("notifications", "list"), ("notifications", "retry"),
                 ("notifications", "drop", "--all-dead"), ("prune", "--older-than", "90d")]
EVERY = [*WITH_CONFIG, *DATABASE_ONLY, ("config", "check")]
NEED_SCHEMA = [args for args in [*WITH_CONFIG, *DATABASE_ONLY] if args != ("db", "upgrade")]
RUN_JOBS = [("run", "--port", str(PORT)), ("dispatcher",)]


@dataclass
class Case:
    name: str
    env: dict[str, str]
    says: list[str]
    commands: list[tuple[str, ...]] = field(default_factory=list)


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    home = tmp_path_factory.mktemp("setup") / "home"
    env = base_env(home)
    Chatops(home, env)("db", "upgrade", check=True)
    yield home


def base_env(home: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in spine_env(home).items() if not k.startswith(PLATFORM_PREFIXES)}
    env.update(extra)
    return env


def run_all(home: Path, case: Case) -> None:
    """Run each command with the case's settings, a few at a time; fail listing every command
    that did not exit 3 with the message, or printed a traceback."""
    env = base_env(home, **case.env)

    def one(args: tuple[str, ...]) -> str | None:
        try:
            done = subprocess.run([CHATOPS, *args], env=env, capture_output=True, text=True,
                                  timeout=90, stdin=subprocess.DEVNULL)
        except subprocess.TimeoutExpired:
            return f"chatops {' '.join(args)}: still running after 90 s (the setting was ignored)"
        output = done.stdout + done.stderr
        problems = []
        if done.returncode != 3:
            problems.append(f"exit {done.returncode}")
        if "Traceback" in output:
            problems.append("a traceback")
        problems += [f"no {text!r}" for text in case.says if text not in done.stderr]
        if problems:
            return f"chatops {' '.join(args)}: {', '.join(problems)}:\n{output}"
        return None

    with ThreadPoolExecutor(4) as pool:
        failures = [f for f in pool.map(one, case.commands) if f]
    assert not failures, "\n".join(failures)


def test_wrong_values_are_refused_by_every_command(home: Path) -> None:
    run_all(home, Case(
        "wrong values",
        {"CHATOPS_MAX_CONCURRENCY": "many", "CHATOPS_LOG_LEVEL": "LOUD",
         "CHATOPS_SMTP_PORT": "smtp", "CHATOPS_WEB_SECURE_COOKIE": "maybe",
         "CHATOPS_KILL_GRACE_SECONDS": "-1"},
        ["chatops: settings with wrong values:",
         "CHATOPS_MAX_CONCURRENCY must be a whole number, not 'many'",
         "CHATOPS_LOG_LEVEL must be one of DEBUG, INFO, WARNING, ERROR, CRITICAL, not 'LOUD'",
         "CHATOPS_SMTP_PORT must be a whole number, not 'smtp'",
         "CHATOPS_WEB_SECURE_COOKIE must be true or false (or on/off, yes/no, 1/0), not "
         "'maybe'",
         "CHATOPS_KILL_GRACE_SECONDS must be at least 0, not '-1'"],
        EVERY))


def test_each_number_and_switch_setting_is_checked() -> None:
    from chatops.settings import BOOLEANS, NUMBERS

    for name in NUMBERS:
        assert check_environment({name: "x"})[0].startswith(f"{name} must be ")
        assert check_environment({name: "-5"}) == [
            f"{name} must be at least {NUMBERS[name][1]:g}, not '-5'"]
    for name in BOOLEANS:
        assert check_environment({name: "perhaps"})[0].startswith(f"{name} must be true or ")
        assert check_environment({name: "off"}) == []
    assert check_environment({}) == []


@pytest.mark.parametrize("case", [
    Case("PostgreSQL unreachable",
         {"CHATOPS_DATABASE_URL": "postgresql://chatops:s3cret@127.0.0.1:1/chatops"},
         ["chatops: cannot reach the database postgresql+psycopg://chatops:***@127.0.0.1:1/"
          "chatops: connection failed", "CHATOPS_DATABASE_URL right?"],
         [*NEED_SCHEMA, ("db", "upgrade")]),
    Case("not a database URL", {"CHATOPS_DATABASE_URL": "chatops.db"},
         ["chatops: CHATOPS_DATABASE_URL is not a database chatops can use"],
         [*NEED_SCHEMA, ("db", "upgrade")]),
    Case("a database without its driver", {"CHATOPS_DATABASE_URL": "mysql://u@127.0.0.1/db"},
         ["chatops: CHATOPS_DATABASE_URL is not a database chatops can use"],
         [("db", "upgrade"), ("jobs", "list"), ("run", "--port", str(PORT))]),
    Case("CHATOPS_HOME that cannot be made", {"CHATOPS_HOME": "/dev/null/chatops"},
         ["chatops: CHATOPS_HOME (/dev/null/chatops) cannot be created: Not a directory"],
         [*NEED_SCHEMA, ("db", "upgrade")]),
], ids=lambda case: case.name)
def test_database_settings(home: Path, case: Case) -> None:
    run_all(home, case)


def test_a_database_not_created_yet(tmp_path: Path, home: Path) -> None:
    run_all(home, Case("no schema", {"CHATOPS_HOME": str(tmp_path / "empty")},
                       ["is missing or not up to date: run `chatops db upgrade` first"],
                       NEED_SCHEMA))


def test_config_settings(home: Path, tmp_path: Path) -> None:
    broken = tmp_path / "broken.py"
    broken.write_text("raw_config = {\n")
    run_all(home, Case("config missing", {"CHATOPS_CONFIG": str(tmp_path / "nope.py")},
                       [f"{tmp_path / 'nope.py'}: no such config file"], WITH_CONFIG))
    run_all(home, Case("config broken", {"CHATOPS_CONFIG": str(broken)},
                       [f"chatops: job_configs has errors ({broken})", "SyntaxError",
                        f"Check it with: chatops config check {broken}"], WITH_CONFIG))


@pytest.mark.parametrize(("name", "commands"), [
    ("CHATOPS_RUN_DIR", [*RUN_JOBS, *BOTS, ("chat", "status")]),
    ("CHATOPS_LOGS_DIR", RUN_JOBS),
    ("CHATOPS_SPOOL_DIR", RUN_JOBS),
    ("CHATOPS_WRITEABLE_DIR", RUN_JOBS),
])
def test_folders_that_cannot_be_used(home: Path, name: str, commands: list) -> None:
    run_all(home, Case(name, {name: "/dev/null/folder"},
                       [f"chatops: {name} (/dev/null/folder) cannot be used: Not a directory; "
                        "make it writable by the account chatops runs as"], commands))


def test_a_workspace_that_is_not_there(home: Path, tmp_path: Path) -> None:
    run_all(home, Case("workspace", {"CHATOPS_WORKSPACE_DIR": str(tmp_path / "none")},
                       [f"CHATOPS_WORKSPACE_DIR ({tmp_path / 'none'}) is not a folder"],
                       RUN_JOBS))


def test_web_address_taken_or_unknown(home: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = str(taken.getsockname()[1])
        run_all(home, Case("port taken", {}, [
            f"chatops: the web server cannot listen on 127.0.0.1:{port}: Address already in "
            "use; choose another with --port"], [("run", "--port", port), ("web", "--port", port)]))
    run_all(home, Case("no such host", {}, ["chatops: the web server cannot listen on "
                                            "nohost.invalid:"],
                       [("run", "--host", "nohost.invalid", "--port", "0"),
                        ("web", "--host", "nohost.invalid", "--port", "0")]))


def test_chat_platforms_missing_settings(home: Path) -> None:
    for platform, says in (
            ("slack", "chatops: SLACK_BOT_TOKEN is not set: Slack needs the app's Bot User"),
            ("telegram", "chatops: TELEGRAM_BOT_TOKEN is not set: Telegram needs the bot's "
                         "token from @BotFather"),
            ("discord", "chatops: Discord needs DISCORD_BOT_TOKEN and DISCORD_APPLICATION_ID "
                        "and DISCORD_PUBLIC_KEY"),
            ("matrix", "chatops: Matrix needs MATRIX_HOMESERVER_URL, MATRIX_USER_ID, "
                       "MATRIX_ACCESS_TOKEN or MATRIX_PASSWORD")):
        commands = [("bot", platform)]
        if platform == "discord":
            commands.append(("bot", "discord", "--register"))
        run_all(home, Case(platform, {}, [says], commands))
    known = ", ".join(sorted(PLATFORMS))  # console, discord, ... telegram
    run_all(home, Case("unknown", {}, [f"chatops: unknown platform 'icq'; known platforms: "
                                       f"{known}"], [("bot", "icq")]))


def test_telegram_settings_wrong(home: Path) -> None:
    telegram = FakeTelegram("7:the-right-token")
    serving = [("bot", "telegram"), ("run", "--port", str(PORT))]
    try:
        run_all(home, Case("refused", {"TELEGRAM_BOT_TOKEN": "7:a-wrong-token",
                                       "TELEGRAM_API_URL": telegram.url},
                           ["chatops: TELEGRAM_BOT_TOKEN was refused by Telegram"], serving))
    finally:
        telegram.close()
    run_all(home, Case("unreachable", {"TELEGRAM_BOT_TOKEN": "7:x",
                                       "TELEGRAM_API_URL": f"http://127.0.0.1:{free_port()}"},
                       ["chatops: cannot reach the Telegram Bot API at http://127.0.0.1:",
                        "(is TELEGRAM_API_URL right?)"], serving))
    run_all(home, Case("webhook", {"TELEGRAM_BOT_TOKEN": "7:x",
                                   "TELEGRAM_WEBHOOK_URL": "https://chatops.example/hook"},
                       ["chatops: TELEGRAM_WEBHOOK_URL must end in /telegram/<secret path>, "
                        "not '/hook'"], [*serving, ("web", "--port", str(PORT))]))


def test_discord_settings_wrong(home: Path) -> None:
    discord_api = FakeDiscord()
    good = {"DISCORD_BOT_TOKEN": "bot-token", "DISCORD_APPLICATION_ID": APP_ID,
            "DISCORD_PUBLIC_KEY": Signer().public_hex, "DISCORD_API_URL": discord_api.url}
    serving = [("bot", "discord"), ("bot", "discord", "--register"),
               ("run", "--port", str(PORT))]
    try:
        for _ in serving:
            discord_api.fail_next("/users/@me", status=401)
        run_all(home, Case("refused", good, ["chatops: DISCORD_BOT_TOKEN was refused by "
                                             "Discord"], serving))
    finally:
        discord_api.close()
    run_all(home, Case("unreachable", {**good, "DISCORD_API_URL":
                                       f"http://127.0.0.1:{free_port()}/api/v10"},
                       ["chatops: cannot reach the Discord API at http://127.0.0.1:",
                        "(is DISCORD_API_URL right?)"], serving))
    run_all(home, Case("public key", {**good, "DISCORD_PUBLIC_KEY": "not-hex"},
                       ["chatops: DISCORD_PUBLIC_KEY must be the application's public key in "
                        "hex"], [*serving, ("web", "--port", str(PORT))]))


def test_matrix_and_slack_settings_wrong(home: Path) -> None:
    account = {"MATRIX_USER_ID": "@chatops:localhost", "MATRIX_ACCESS_TOKEN": "syt_x"}
    run_all(home, Case("homeserver not a URL", {**account,
                                                "MATRIX_HOMESERVER_URL": "matrix.example"},
                       ["chatops: MATRIX_HOMESERVER_URL must be the homeserver's https:// URL, "
                        "not 'matrix.example'"],
                       [("bot", "matrix"), ("run", "--port", str(PORT)),
                        ("web", "--port", str(PORT))]))
    run_all(home, Case("homeserver unreachable",
                       {**account, "MATRIX_HOMESERVER_URL": f"http://127.0.0.1:{free_port()}"},
                       ["chatops: cannot reach the Matrix homeserver at http://127.0.0.1:",
                        "(is MATRIX_HOMESERVER_URL right?)"],
                       [("bot", "matrix"), ("run", "--port", str(PORT))]))
    run_all(home, Case("slack unreachable",
                       {"SLACK_BOT_TOKEN": "xoxb-1", "SLACK_APP_TOKEN": "xapp-1",
                        "SLACK_API_URL": f"http://127.0.0.1:{free_port()}/api/"},
                       ["chatops: cannot reach the Slack Web API at http://127.0.0.1:"],
                       [("bot", "slack"), ("run", "--port", str(PORT))]))


def test_a_half_configured_platform_is_named_at_start(home: Path) -> None:
    env = base_env(home, DISCORD_BOT_TOKEN="bot-token", MATRIX_HOMESERVER_URL="https://m.example")
    port = free_port()
    process = subprocess.Popen([CHATOPS, "run", "--port", str(port)], env=env,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        banner = process.stdout.readline()  # printed once everything has started
    finally:
        process.terminate()
        out, err = process.communicate(timeout=60)
    assert banner.startswith("chatops is running: database sqlite:///")
    assert banner.rstrip().endswith("platforms console.")
    assert ("WARNING chatops.platforms: discord is not started: DISCORD_APPLICATION_ID and "
            "DISCORD_PUBLIC_KEY are not set (see DEPLOY.md, section Discord)\n") in err
    assert ("WARNING chatops.platforms: matrix is not started: MATRIX_USER_ID and "
            "MATRIX_ACCESS_TOKEN or MATRIX_PASSWORD are not set (see DEPLOY.md, section "
            "Matrix)\n") in err
    assert "Traceback" not in err
    assert process.returncode == 0
