"""The results' copy to a WebDAV folder, against a real WebDAV server (wsgidav): folders made
once, files put exactly, and a refusal said without the account's password."""

from __future__ import annotations

from pathlib import Path

import pytest

from chatops.calc import webdav
from chatops.redact import secret_values
from chatops.settings import load_settings
from tests.support.webdav import WebDAV


@pytest.fixture
def dav(tmp_path: Path):
    server = WebDAV(tmp_path)
    yield server
    server.stop()


def test_files_are_put_into_the_persons_folder_twice_over(dav: WebDAV, tmp_path: Path) -> None:
    result = tmp_path / "out 1.chk"
    result.write_bytes(b"\x00\xffenergy")
    files = [{"path": str(result), "name": "out 1.chk"}]
    for _ in range(2):  # a second copy (a re-run of the end) finds the folders there
        folder = webdav.copy(dav.with_account("/results"), ["telegram-42", "7"], files)
        assert folder == f"{dav.url}/results/telegram-42/7/"
    assert dav.get("/results/telegram-42/7/out%201.chk").content == b"\x00\xffenergy"


def test_a_wrong_password_is_said_without_any_password(dav: WebDAV) -> None:
    url = dav.with_account().replace(dav.password, "wrong-password-123")
    with pytest.raises(webdav.WebDAVError) as refused:
        webdav.copy(url, ["telegram-42", "7"], [])
    assert str(refused.value) == f"MKCOL {dav.url}/results/ was answered 401 Not Authorized"


def test_the_url_is_a_secret_for_redaction(dav: WebDAV) -> None:
    settings = load_settings({"CHATOPS_RESULTS_WEBDAV_URL": dav.with_account()})
    assert dav.password in secret_values(settings)
    assert webdav.shown(dav.with_account()) == f"{dav.url}/results"
