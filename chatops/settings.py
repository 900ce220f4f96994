"""Settings: read once from the environment into one typed object.

Names follow the design: ``CHATOPS_*`` for the service itself, each platform's usual names for
its credentials. Secrets are kept here only so the parts that need them can reach them; the
dispatcher never passes any of them to a job (see ``dispatcher/local.py``), and
chatops/redact.py keeps them out of logs, reports and the database.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class Settings:
    home: Path
    database_url: str
    config_path: Path
    workspace_dir: Path
    writeable_dir: Path
    logs_dir: Path
    spool_dir: Path
    run_dir: Path
    max_concurrency: int
    kill_grace_seconds: float
    poll_interval: float
    delivery_attempts: int
    environ: Mapping[str, str] = field(repr=False, default_factory=dict)

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")

    def job_log_dir(self, namespace: str, job_type: str, job_id: int) -> Path:
        """Each run its own folder, named by job id: two runs never share one."""
        return self.logs_dir / namespace / job_type / str(job_id)

    def secret(self, name: str) -> str | None:
        """A credential from the environment, by its platform's usual name."""
        value = self.environ.get(name)
        return value or None

    def named_values(self) -> Iterator[tuple[str, str]]:
        """Every setting by name, whatever its source: where redaction finds the secrets
        (chatops/redact.py)."""
        return iter(self.environ.items())


def load_settings(environ: Mapping[str, str] | None = None) -> Settings:
    env = dict(os.environ if environ is None else environ)
    home = Path(env.get("CHATOPS_HOME") or REPO_ROOT / "var").resolve()
    database_url = env.get("CHATOPS_DATABASE_URL") or f"sqlite:///{home / 'chatops.db'}"
    return Settings(
        home=home,
        database_url=database_url,
        config_path=Path(env.get("CHATOPS_CONFIG") or REPO_ROOT / "job_configs.py").resolve(),
        workspace_dir=Path(env.get("CHATOPS_WORKSPACE_DIR") or REPO_ROOT / "workspace").resolve(),
        writeable_dir=Path(env.get("CHATOPS_WRITEABLE_DIR") or home / "writeable").resolve(),
        logs_dir=Path(env.get("CHATOPS_LOGS_DIR") or home / "logs").resolve(),
        spool_dir=Path(env.get("CHATOPS_SPOOL_DIR") or home / "spool").resolve(),
        run_dir=Path(env.get("CHATOPS_RUN_DIR") or home / "run").resolve(),
        max_concurrency=int(env.get("CHATOPS_MAX_CONCURRENCY") or (os.cpu_count() or 1) * 4),
        kill_grace_seconds=float(env.get("CHATOPS_KILL_GRACE_SECONDS") or 5),
        poll_interval=float(env.get("CHATOPS_POLL_INTERVAL") or 0.5),
        delivery_attempts=int(env.get("CHATOPS_DELIVERY_ATTEMPTS") or 5),
        environ=env,
    )
