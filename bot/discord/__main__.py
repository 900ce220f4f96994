"""``python -m bot.discord register``: create or update the slash commands for the application
named by DISCORD_APPLICATION_ID (run once after install, and after an upgrade)."""

from __future__ import annotations

import sys

from bot.discord.platform import DiscordPlatform
from chatops.service import open_service


def main(argv: list[str]) -> int:
    if argv != ["register"]:
        print("usage: python -m bot.discord register", file=sys.stderr)
        return 2
    platform = DiscordPlatform(open_service(need_schema=False))
    try:
        commands = platform.register_commands()
    finally:
        platform.close()
    print("registered: " + ", ".join(f"/{c['name']}" for c in commands))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
