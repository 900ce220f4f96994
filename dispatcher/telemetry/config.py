"""The daemon's configuration: Sonar's daemon ini file, validated, as typed settings.

Every file Sonar's daemon accepts is accepted (sections and keys of Sonar's ``src/daemon.rs``
and ``doc/HOWTO-DAEMON.md``, with their older names), plus the keys of Sonar's earlier daemon
documentation that this implementation builds (``[kafka] poll-interval``, ``compression``,
``api-token-file``, ``cert-file``/``key-file``, ``[jobs] delta-coding``, ``dump``, ``[debug]
dump``) and a few of its own (buffer, control message age, full-record interval). Everything
else is an error, and :func:`load_config` reports every error of a file at once, each with its
line. A key Sonar accepts whose feature is not built here becomes a warning, never silence.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dispatcher.telemetry import ini
from dispatcher.telemetry.ini import Duration

# Section names as written -> the section they configure.
SECTIONS = {
    "global": "global", "kafka": "kafka", "http": "http", "directory": "directory",
    "sample": "sample", "ps": "sample", "sysinfo": "sysinfo", "jobs": "jobs", "slurm": "jobs",
    "cluster": "cluster", "programs": "programs", "debug": "debug",
}

# (section, key) -> value parser. Older names are in ALIASES.
KEYS: dict[tuple[str, str], Callable[[str], Any]] = {
    ("global", "cluster"): ini.text,
    ("global", "role"): ini.choice("node", "master"),
    ("global", "lock-directory"): ini.text,
    ("global", "topic-prefix"): ini.text,
    ("global", "hostname-only"): ini.boolean,
    ("global", "domain"): ini.text,
    ("global", "buffer-directory"): ini.text,
    ("global", "buffer-size"): ini.volume,
    ("kafka", "broker-address"): ini.text,
    ("kafka", "rest-endpoint"): ini.text,
    ("kafka", "http-proxy"): ini.text,
    ("kafka", "http-payload-limit"): ini.volume,
    ("kafka", "sending-window"): ini.duration,
    ("kafka", "timeout"): ini.duration,
    ("kafka", "poll-interval"): ini.duration,
    ("kafka", "control-max-age"): ini.duration,
    ("kafka", "compression"): ini.choice("none", "gzip", "snappy"),
    ("kafka", "ca-file"): ini.text,
    ("kafka", "cert-file"): ini.text,
    ("kafka", "key-file"): ini.text,
    ("kafka", "sasl-password"): ini.text,
    ("kafka", "sasl-password-file"): ini.text,
    ("kafka", "api-token-file"): ini.text,
    ("http", "api-root"): ini.text,
    ("http", "http-proxy"): ini.text,
    ("http", "http-payload-limit"): ini.volume,
    ("http", "sending-window"): ini.duration,
    ("http", "timeout"): ini.duration,
    ("http", "ca-file"): ini.text,
    ("http", "upload-password"): ini.text,
    ("http", "upload-password-file"): ini.text,
    ("directory", "data-directory"): ini.text,
    ("sample", "cadence"): ini.cadence,
    ("sample", "exclude-system-jobs"): ini.boolean,
    ("sample", "load"): ini.boolean,
    ("sample", "batchless"): ini.boolean,
    ("sample", "rollup"): ini.boolean,
    ("sample", "exclude-users"): ini.strings,
    ("sample", "exclude-commands"): ini.strings,
    ("sample", "min-cpu-time"): ini.duration,
    ("sysinfo", "cadence"): ini.cadence,
    ("sysinfo", "on-startup"): ini.boolean,
    ("jobs", "cadence"): ini.cadence,
    ("jobs", "window"): ini.duration,
    ("jobs", "uncompleted"): ini.boolean,
    ("jobs", "batch-size"): ini.count,
    ("jobs", "delta-coding"): ini.boolean,
    ("jobs", "full-record-every"): ini.count,
    ("jobs", "dump"): ini.text,
    ("cluster", "cadence"): ini.cadence,
    ("cluster", "on-startup"): ini.boolean,
    ("cluster", "domain"): ini.text,
    ("programs", "curl-command"): ini.program,
    ("programs", "sacct-command"): ini.program,
    ("programs", "scontrol-command"): ini.program,
    ("programs", "sinfo-command"): ini.program,
    ("programs", "topo-svg-command"): ini.text,
    ("programs", "topo-text-command"): ini.text,
    ("debug", "verbose"): ini.boolean,
    ("debug", "time-limit"): ini.duration,
    ("debug", "oneshot"): ini.boolean,
    ("debug", "output-delay"): ini.duration,
    ("debug", "dump"): ini.boolean,
}

# Older or alternative names Sonar accepts, and keys Sonar reads in one section but stores in
# another: (section, key as written) -> (section, key).
ALIASES = {
    ("global", "lockdir"): ("global", "lock-directory"),
    ("kafka", "remote-host"): ("kafka", "broker-address"),
    ("kafka", "rest-proxy"): ("kafka", "http-proxy"),
    ("kafka", "dump"): ("debug", "dump"),
    ("jobs", "incomplete"): ("jobs", "uncompleted"),
    ("sysinfo", "topo-svg-command"): ("programs", "topo-svg-command"),
    ("sysinfo", "topo-text-command"): ("programs", "topo-text-command"),
}

# Keys Sonar accepts whose feature this daemon does not have: a warning names each one used.
NOT_BUILT = {
    ("kafka", "rest-endpoint"): "sending through a Kafka REST proxy is not built here; use "
                                "broker-address",
    ("kafka", "http-proxy"): "it only applies to rest-endpoint, which is not built here",
    ("kafka", "http-payload-limit"): "it only applies to rest-endpoint, which is not built here",
    ("http", "http-payload-limit"): "messages are not split by size here; use [jobs] batch-size",
    ("programs", "curl-command"): "this daemon sends HTTP itself and never runs curl",
    ("global", "domain"): "it has no effect (Sonar ignores it too)",
    ("cluster", "domain"): "it has no effect (Sonar ignores it too)",
}

# Settings that name files: they must exist where the daemon runs (``check`` only warns).
FILE_KEYS = (
    ("kafka", "ca-file"), ("kafka", "cert-file"), ("kafka", "key-file"),
    ("kafka", "sasl-password-file"), ("kafka", "api-token-file"), ("http", "ca-file"),
    ("http", "upload-password-file"),
)

DEFAULT_BUFFER_DIRECTORY = "/var/spool/chatops-telemetry"
DEFAULT_BUFFER_SIZE = 100 * 1024 * 1024
DEFAULT_FULL_RECORD_EVERY = 12


class ConfigError(Exception):
    def __init__(self, errors: list[str], warnings: list[str] | None = None):
        super().__init__("\n".join(errors))
        self.errors = errors
        self.warnings = warnings or []


# ------------------------------------------------------------------------------ settings
def _d(text: str) -> Duration:
    return ini.duration(text)


@dataclass(frozen=True)
class KafkaSettings:
    broker_address: str = ""
    rest_endpoint: str = ""
    sending_window: Duration = field(default_factory=lambda: _d("5m"))
    timeout: Duration = field(default_factory=lambda: _d("30m"))
    poll_interval: Duration = field(default_factory=lambda: _d("5m"))
    control_max_age: Duration = field(default_factory=lambda: _d("30m"))
    compression: str = "none"
    ca_file: str | None = None
    cert_file: str | None = None
    key_file: str | None = None
    sasl_password: str | None = None
    sasl_password_file: str | None = None
    api_token_file: str | None = None


@dataclass(frozen=True)
class HttpSettings:
    api_root: str
    http_proxy: str = ""
    sending_window: Duration = field(default_factory=lambda: _d("5m"))
    timeout: Duration = field(default_factory=lambda: _d("30m"))
    ca_file: str | None = None
    upload_password: str | None = None
    upload_password_file: str | None = None


@dataclass(frozen=True)
class SampleSettings:
    cadence: Duration | None = None
    exclude_system_jobs: bool = True
    load: bool = True
    batchless: bool = False
    rollup: bool = False
    exclude_users: tuple[str, ...] = ()
    exclude_commands: tuple[str, ...] = ()
    min_cpu_time: Duration | None = None


@dataclass(frozen=True)
class OnStartupSettings:
    """``[sysinfo]`` and ``[cluster]``: a cadence, and whether to run once at start too."""

    cadence: Duration | None = None
    on_startup: bool = True


@dataclass(frozen=True)
class JobsSettings:
    cadence: Duration | None = None
    window: Duration | None = None  # None: twice the cadence
    uncompleted: bool = False
    batch_size: int | None = None
    delta_coding: bool = False
    full_record_every: int = DEFAULT_FULL_RECORD_EVERY
    dump: str | None = None

    @property
    def window_seconds(self) -> int:
        if self.window is not None:
            return self.window.seconds
        return 2 * self.cadence.seconds if self.cadence else 0


@dataclass(frozen=True)
class ProgramSettings:
    sacct: str = "sacct"  # "" disables
    scontrol: str = "scontrol"
    sinfo: str = "sinfo"
    topo_svg: str | None = None
    topo_text: str | None = None


@dataclass(frozen=True)
class DebugSettings:
    verbose: bool = False
    time_limit: Duration | None = None
    oneshot: bool = False
    output_delay: Duration | None = None
    dump: bool = False


@dataclass(frozen=True)
class Config:
    path: Path
    cluster: str
    role: str  # "node" | "master"
    lock_directory: str | None = None
    topic_prefix: str | None = None
    hostname_only: bool = True
    buffer_directory: str = DEFAULT_BUFFER_DIRECTORY
    buffer_size: int = DEFAULT_BUFFER_SIZE
    kafka: KafkaSettings | None = None
    http: HttpSettings | None = None
    data_directory: str | None = None
    sample: SampleSettings = field(default_factory=SampleSettings)
    sysinfo: OnStartupSettings = field(default_factory=OnStartupSettings)
    jobs: JobsSettings = field(default_factory=JobsSettings)
    cluster_state: OnStartupSettings = field(default_factory=OnStartupSettings)
    programs: ProgramSettings = field(default_factory=ProgramSettings)
    debug: DebugSettings = field(default_factory=DebugSettings)
    warnings: tuple[str, ...] = ()
    lines: dict[tuple[str, str], int] = field(default_factory=dict, compare=False)

    def where(self, section: str, key: str) -> str:
        """``path:line`` of a setting, for messages."""
        line = self.lines.get((section, key))
        return f"{self.path}:{line}" if line else str(self.path)

    def missing_files(self) -> list[str]:
        """A message for each referenced file that does not exist on this host."""
        settings = {"kafka": self.kafka, "http": self.http}
        missing = []
        for section, key in FILE_KEYS:
            value = getattr(settings[section], key.replace("-", "_"), None)
            if value and not Path(value).is_file():
                missing.append(f"{self.where(section, key)}: [{section}] {key}: no such file "
                               f"{value!r} on this host")
        return missing


# ------------------------------------------------------------------------------ loading
def load_config(path: str | Path) -> Config:
    """Read and validate ``path``; raise ConfigError with every error (and the warnings)."""
    path = Path(path)
    try:
        source = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError([f"{path}: cannot read the file: {exc.strerror}"]) from exc
    except UnicodeDecodeError as exc:
        raise ConfigError([f"{path}: not a text file (UTF-8): {exc.reason}"]) from exc
    return parse_config(source, path)


def parse_config(source: str, path: str | Path = "<config>") -> Config:
    path = Path(path)
    errors: list[str] = []
    warnings: list[str] = []
    values: dict[tuple[str, str], Any] = {}
    lines: dict[tuple[str, str], int] = {}
    sections: dict[str, int] = {}  # section -> first header line
    wrong: set[tuple[str, str]] = set()  # keys whose value was refused (said once)

    for item in ini.read_lines(source):
        if isinstance(item, tuple):
            errors.append(f"{path}:{item[0]}: {item[1]}")
            continue
        where = f"{path}:{item.number}"
        if item.key is None:
            if item.section not in SECTIONS:
                errors.append(f"{where}: unknown section [{item.section}] (known: "
                              f"{', '.join('[' + s + ']' for s in SECTIONS)})")
            else:
                sections.setdefault(SECTIONS[item.section], item.number)
            continue
        if item.section == "?" or (item.section and item.section not in SECTIONS):
            continue  # the header's error says it
        if not item.section:
            errors.append(f"{where}: {item.key} is outside any section (put it under a "
                          "[section] header)")
            continue
        section = SECTIONS[item.section]
        key = ALIASES.get((section, item.key), (section, item.key))
        parse = KEYS.get(key)
        if parse is None:
            known = ", ".join(k for s, k in KEYS if s == section)
            errors.append(f"{where}: unknown key {item.key!r} in [{item.section}] "
                          f"(known: {known})")
            continue
        try:
            values[key] = parse(item.value)
        except ValueError as exc:
            errors.append(f"{where}: [{item.section}] {item.key}: {exc}")
            wrong.add(key)
            continue
        lines[key] = item.number
        if key in NOT_BUILT:
            warnings.append(f"{where}: [{item.section}] {item.key} is accepted but "
                            f"{NOT_BUILT[key]}")

    _check_whole(values, lines, sections, path, errors, wrong)
    if errors:
        raise ConfigError(errors, warnings)
    return _build(values, lines, sections, path, warnings)


def _check_whole(values: dict, lines: dict, sections: dict, path: Path,
                 errors: list[str], wrong: set) -> None:
    """Rules about the file as a whole (Sonar's, and those of the keys built here)."""
    def at(section: str, key: str | None = None) -> str:
        line = lines.get((section, key)) if key else sections.get(section)
        return f"{path}:{line}" if line else str(path)

    for key in ("cluster", "role"):
        if not values.get(("global", key)) and ("global", key) not in wrong:
            errors.append(f"{at('global')}: [global] {key} is required")
    sinks = [s for s in ("kafka", "http", "directory") if s in sections]
    if len(sinks) > 1:
        errors.append(f"{path}: more than one data sink is configured ("
                      f"{', '.join('[' + s + ']' for s in sinks)}): keep one")
    if "kafka" in sections:
        broker, rest = values.get(("kafka", "broker-address")), values.get(("kafka",
                                                                            "rest-endpoint"))
        if broker and rest:
            errors.append(f"{at('kafka')}: [kafka] broker-address and rest-endpoint exclude "
                          "each other: keep one")
        if not broker and not rest:
            errors.append(f"{at('kafka')}: [kafka] needs broker-address (host:port)")
        _exclusive(values, "kafka", "sasl-password", "sasl-password-file", at, errors)
        has_password = values.get(("kafka", "sasl-password")) or values.get(
            ("kafka", "sasl-password-file"))
        tls = bool(values.get(("kafka", "ca-file")))
        if has_password and broker and not tls:
            errors.append(f"{at('kafka')}: [kafka] sasl-password and sasl-password-file "
                          "require ca-file (passwords only travel over TLS)")
        cert, key = values.get(("kafka", "cert-file")), values.get(("kafka", "key-file"))
        if bool(cert) != bool(key):
            errors.append(f"{at('kafka')}: [kafka] cert-file and key-file go together: set "
                          "both or neither")
        if (cert or key) and not tls:
            errors.append(f"{at('kafka')}: [kafka] cert-file and key-file require ca-file")
        if values.get(("kafka", "api-token-file")) and not tls:
            errors.append(f"{at('kafka', 'api-token-file')}: [kafka] api-token-file requires "
                          "TLS: set ca-file")
    if "http" in sections:
        if not values.get(("http", "api-root")):
            errors.append(f"{at('http')}: [http] needs api-root (the upload URL's root)")
        _exclusive(values, "http", "upload-password", "upload-password-file", at, errors)
    if "directory" in sections:
        if not values.get(("directory", "data-directory")):
            errors.append(f"{at('directory')}: [directory] needs data-directory")
        if values.get(("global", "topic-prefix")):
            errors.append(f"{at('global', 'topic-prefix')}: a data directory does not allow "
                          "a topic prefix")


def _exclusive(values: dict, section: str, a: str, b: str, at: Callable, errors: list) -> None:
    if (section, a) in values and (section, b) in values:
        errors.append(f"{at(section, b)}: [{section}] {a} and {b} exclude each other: "
                      "keep one")


def _pick(values: dict, section: str, cls: type, **renames: str) -> Any:
    """An instance of ``cls`` from the section's values (key ``a-b`` -> field ``a_b``)."""
    names = {f for f in cls.__dataclass_fields__}
    kwargs = {}
    for (s, key), value in values.items():
        name = renames.get(key, key.replace("-", "_"))
        if s == section and name in names:
            kwargs[name] = value
    return cls(**kwargs)


def _build(values: dict, lines: dict, sections: dict, path: Path,
           warnings: list[str]) -> Config:
    g = {key: value for (s, key), value in values.items() if s == "global"}
    return Config(
        path=path, cluster=g["cluster"], role=g["role"],
        lock_directory=g.get("lock-directory"), topic_prefix=g.get("topic-prefix"),
        hostname_only=g.get("hostname-only", True),
        buffer_directory=g.get("buffer-directory", DEFAULT_BUFFER_DIRECTORY),
        buffer_size=g.get("buffer-size", DEFAULT_BUFFER_SIZE),
        kafka=_pick(values, "kafka", KafkaSettings) if "kafka" in sections else None,
        http=_pick(values, "http", HttpSettings) if "http" in sections else None,
        data_directory=values.get(("directory", "data-directory")),
        sample=_pick(values, "sample", SampleSettings),
        sysinfo=_pick(values, "sysinfo", OnStartupSettings),
        jobs=_pick(values, "jobs", JobsSettings),
        cluster_state=_pick(values, "cluster", OnStartupSettings),
        programs=_pick(values, "programs", ProgramSettings, **{
            "sacct-command": "sacct", "scontrol-command": "scontrol",
            "sinfo-command": "sinfo", "topo-svg-command": "topo_svg",
            "topo-text-command": "topo_text"}),
        debug=_pick(values, "debug", DebugSettings),
        warnings=tuple(warnings), lines=dict(lines),
    )
