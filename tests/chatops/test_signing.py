"""The service's signing key: processes that need it at once all end up with the one key, kept
private; a configured key wins; an empty key file is refused with what to do."""

from __future__ import annotations

import stat
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from chatops.settings import SetupError, load_settings
from chatops.signing import SECRET_KEY_FILE, secret_key


def test_racing_first_users_share_one_generated_key(tmp_path: Path) -> None:
    settings = load_settings({"CHATOPS_HOME": str(tmp_path / "home")})
    with ThreadPoolExecutor(8) as pool:
        keys = set(pool.map(lambda _: secret_key(settings), range(32)))
    path = tmp_path / "home" / SECRET_KEY_FILE
    assert keys == {path.read_text().strip()} and len(keys.pop()) == 64
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert sorted(p.name for p in path.parent.iterdir()) == [SECRET_KEY_FILE]  # nothing aside


def test_a_configured_key_wins_and_an_empty_file_is_refused(tmp_path: Path) -> None:
    (tmp_path / SECRET_KEY_FILE).write_text("\n")
    assert secret_key(load_settings({"CHATOPS_HOME": str(tmp_path),
                                     "CHATOPS_WEB_SECRET_KEY": "k" * 40})) == "k" * 40
    with pytest.raises(SetupError, match=f"{tmp_path}/{SECRET_KEY_FILE} holds no key: remove "
                                         r"it \(a new one is made\), or set "
                                         "CHATOPS_WEB_SECRET_KEY"):
        secret_key(load_settings({"CHATOPS_HOME": str(tmp_path)}))
