"""A calculation's result file larger than a platform takes: each platform's renderer says so
with the download link the report carries, or where the file stays when it has none."""

from __future__ import annotations

from pathlib import Path

from bot.discord.send import outs
from bot.render import delivery_pieces
from chatops.report import Report

UNTIL = 1796205767.0  # 2026-12-02 10:02:47 UTC


def report(path: Path, **link: object) -> dict:
    return Report(job_id=17, job_type="run_hpc.g16", namespace="run", outcome="succeeded",
                  text="Calculation 17: completed.",
                  files=[{"path": str(path), "name": "water.chk", **link}]).to_payload()


def test_discord_gives_the_link_instead_of_a_file_too_large(tmp_path: Path) -> None:
    result = tmp_path / "water.chk"
    result.write_bytes(b"x" * 3000)
    url = "https://chatops.example.org/results/T0K3N/water.chk"
    items = outs(delivery_pieces(report(result, url=url, until=UNTIL)), "x.txt", file_limit=2048)
    assert [(o.content, o.file_name) for o in items] == [
        ("Calculation 17: completed.", None),
        ("The file `water.chk` is 3 KiB, more than Discord accepts (2 KiB): download it until "
         f"2026-12-02 10:02:47 UTC (no login needed) from {url}", None)]
    small = outs(delivery_pieces(report(result, url=url, until=UNTIL)), "x.txt")
    assert [o.file_name for o in small] == [None, "water.chk"]  # within 10 MB: the file


def test_without_a_link_the_message_says_where_the_file_stays(tmp_path: Path) -> None:
    result = tmp_path / "water.chk"
    result.write_bytes(b"x" * 30)
    [_, note] = outs(delivery_pieces(report(result)), "x.txt", file_limit=10)
    assert note.content == ("The file `water.chk` is 30 bytes, more than Discord accepts (10 "
                            "bytes); it stays in the site's result storage (ask the site's "
                            "admins for it).")
