"""The command grammar: built-ins, literal-vs-parameter precedence, escaping, greedy last param."""

from __future__ import annotations

import pytest

from chatops.config_loader import build_config
from chatops.grammar import Cancel, Help, Logs, Matched, NotUnderstood, Status, parse

CONFIG = build_config({
    "ns": {
        "jobs": {
            "say": {"run_args_template": "echo {name}"},
            "special": {"run_args_template": "echo special"},
            "plus": {"run_args_template": "echo plus"},
            "two": {"run_args_template": "echo {a} {b}"},
        },
        "slack": [
            {"command": "say hello [name]", "help": "h", "action": "schedule_job",
             "job_type": "say"},
            {"command": "say hello world", "help": "h", "action": "schedule_job",
             "job_type": "special"},
            {"command": "c++ (build).*", "help": "h", "action": "schedule_job",
             "job_type": "plus"},
            {"command": "two [a] and [b]", "help": "h", "action": "schedule_job",
             "job_type": "two"},
        ],
    },
})


@pytest.mark.parametrize(("text", "expected"), [
    ("help", Help()),
    ("", Help()),
    ("HELP ns", Help("ns")),
    ("ns help", Help("ns")),
    ("status", Status()),
    ("cancel 12", Cancel(12)),
    ("cancel #12", Cancel(12)),
    ("logs 7", Logs(7)),
    ("logs 7 stderr", Logs(7, stderr=True)),
])
def test_builtins(text: str, expected: object) -> None:
    assert parse(text, CONFIG) == expected


def test_literal_command_wins_over_parameterised_one() -> None:
    result = parse("ns say hello world", CONFIG)
    assert isinstance(result, Matched) and result.command.job_type == "special"
    result = parse("ns Say HELLO Bob", CONFIG)  # literal words are case-insensitive
    assert isinstance(result, Matched)
    assert (result.command.job_type, result.args) == ("say", {"name": "Bob"})


def test_last_parameter_takes_the_rest_with_spaces() -> None:
    result = parse("ns say hello Bob the Builder", CONFIG)
    assert result.args == {"name": "Bob the Builder"}
    result = parse("ns two x and y z", CONFIG)
    assert result.args == {"a": "x", "b": "y z"}


def test_literal_words_are_not_regular_expressions() -> None:
    assert isinstance(parse("ns c++ (build).*", CONFIG), Matched)
    assert isinstance(parse("ns cc (build)xx", CONFIG), NotUnderstood)
    assert isinstance(parse("ns c+ (build).*", CONFIG), NotUnderstood)


def test_words_after_a_full_literal_command_are_not_understood() -> None:
    result = parse("ns c++ (build).* please", CONFIG)
    assert isinstance(result, NotUnderstood) and result.namespace == "ns"


def test_unknown_and_malformed() -> None:
    assert parse("nope", CONFIG) == NotUnderstood("nope")
    assert isinstance(parse("cancel twelve", CONFIG), NotUnderstood)
    assert isinstance(parse("logs 3 both", CONFIG), NotUnderstood)
    assert isinstance(parse("ns say", CONFIG), NotUnderstood)


def test_notify_me_and_stop() -> None:
    from chatops.grammar import Notify

    assert parse("notify me", CONFIG) == Notify(on=True)
    assert parse("Notify STOP", CONFIG) == Notify(on=False)
    assert isinstance(parse("notify everyone", CONFIG), NotUnderstood)
