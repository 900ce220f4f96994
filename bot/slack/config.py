"""The Slack settings, read from the service's environment, and the start-up checks.

Tokens are checked against Slack before anything else happens (``auth.test`` for the bot token,
``apps.connections.open`` for the app-level token) so a wrong one stops start-up with the name
of the variable to fix. Token values never appear in messages.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError, SlackClientError

from bot.render import upload_limit
from chatops.service import SetupError
from chatops.settings import Settings

DEFAULT_API_URL = "https://slack.com/api/"
SETTING_NAMES = ("SLACK_BOT_TOKEN", "SLACK_APP_TOKEN", "SLACK_SIGNING_SECRET")
BAD_TOKEN_ERRORS = {"invalid_auth", "not_authed", "account_inactive", "token_revoked",
                    "token_expired", "not_allowed_token_type"}
FILE_LIMIT = 1024**3  # Slack takes files up to 1 GB


@dataclass(frozen=True)
class SlackSettings:
    bot_token: str | None
    app_token: str | None = field(default=None, repr=False)
    signing_secret: str | None = field(default=None, repr=False)
    api_url: str = DEFAULT_API_URL
    support_channel: str | None = None
    ack_reaction: str = "eyes"
    success_reaction: str = "white_check_mark"
    failure_reaction: str = "x"
    templates_dir: str | None = None  # the site's Slurm notification templates
    file_limit: int = FILE_LIMIT  # bytes one upload may have

    def __repr__(self) -> str:  # never print a token, whatever prints this
        return (f"SlackSettings(api_url={self.api_url!r}, socket_mode={bool(self.app_token)}, "
                f"http_events={bool(self.signing_secret)})")

    @classmethod
    def from_settings(cls, settings: Settings) -> SlackSettings:
        env = settings.environ

        def reaction(name: str, default: str) -> str:
            return (env.get(name) or default).strip().strip(":")

        api_url = env.get("SLACK_API_URL") or DEFAULT_API_URL
        return cls(
            bot_token=settings.secret("SLACK_BOT_TOKEN"),
            app_token=settings.secret("SLACK_APP_TOKEN"),
            signing_secret=settings.secret("SLACK_SIGNING_SECRET"),
            api_url=api_url if api_url.endswith("/") else api_url + "/",
            support_channel=env.get("CHATOPS_SLACK_SUPPORT_CHANNEL") or None,
            ack_reaction=reaction("CHATOPS_SLACK_ACK_REACTION", "eyes"),
            success_reaction=reaction("CHATOPS_SLACK_SUCCESS_REACTION", "white_check_mark"),
            failure_reaction=reaction("CHATOPS_SLACK_FAILURE_REACTION", "x"),
            templates_dir=env.get("CHATOPS_TEMPLATES_DIR") or None,
            file_limit=upload_limit(env, "slack", FILE_LIMIT),
        )


def is_configured(settings: Settings) -> bool:
    """Slack runs when any of its credentials is set (a missing one is then reported)."""
    return any(settings.secret(name) for name in SETTING_NAMES)


def check_bot_token(client: WebClient, api_url: str) -> dict:
    """``auth.test`` with the bot token: who the bot is, or a SetupError naming the variable."""
    try:
        return client.auth_test().data  # type: ignore[return-value]
    except SlackApiError as exc:
        error = exc.response.get("error", "unknown error")
        if error in BAD_TOKEN_ERRORS:
            raise SetupError(f"SLACK_BOT_TOKEN was refused by Slack ({error}): copy the Bot "
                             "User OAuth Token (xoxb-…) from your app's OAuth & Permissions "
                             "page") from None
        raise SetupError(f"SLACK_BOT_TOKEN could not be checked: auth.test said {error}") from None
    except (SlackClientError, OSError) as exc:
        raise SetupError(f"cannot reach the Slack Web API at {api_url} to check "
                         f"SLACK_BOT_TOKEN: {type(exc).__name__}: {exc} (is SLACK_API_URL "
                         "right?)") from None


def check_app_token(app_token: str, api_url: str) -> None:
    """The app-level token opens Socket Mode connections; check it can."""
    if not app_token.startswith("xapp-"):
        raise SetupError("SLACK_APP_TOKEN must be an app-level token starting with xapp- "
                         "(Basic Information → App-Level Tokens, scope connections:write)")
    try:
        WebClient(base_url=api_url, retry_handlers=[]).apps_connections_open(app_token=app_token)
    except SlackApiError as exc:
        error = exc.response.get("error", "unknown error")
        raise SetupError(f"SLACK_APP_TOKEN was refused by Slack ({error}): it needs the "
                         "connections:write scope and Socket Mode enabled for the app") from None
    except (SlackClientError, OSError) as exc:
        raise SetupError(f"cannot reach the Slack Web API at {api_url} to check "
                         f"SLACK_APP_TOKEN: {type(exc).__name__}: {exc}") from None


def require_bot_token(slack: SlackSettings) -> str:
    if not slack.bot_token:
        raise SetupError("SLACK_BOT_TOKEN is not set: Slack needs the app's Bot User OAuth "
                         "Token (xoxb-…); see DEPLOY.md, section Slack")
    return slack.bot_token
