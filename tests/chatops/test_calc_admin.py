"""Users, approval, quotas and blocks: the admins' and users' commands, with their exact answers
and their audit."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import select

from chatops import identities
from chatops.calc.admin import CalcAdmin
from chatops.calc.submit import Attachment, Submitter
from chatops.commands import CommandHandler, Incoming
from chatops.config_loader import build_config
from chatops.db import audit, make_engine
from chatops.events import Requester
from chatops.queue import Queue
from tests.support.calc import local_queue

CLUSTER = {"host": "login.example.org", "user": "chatops", "key_file": "/k",
           "known_hosts": "/kh"}
RUNNERS = {"hpc": {"shout": {"program": "shout", "extensions": [".gjf"]}}}
DEC = datetime(2026, 12, 15, 12, tzinfo=UTC).timestamp()


def person(user: str, platform: str = "telegram", name: str | None = None) -> Requester:
    return Requester(platform=platform, user=user, channel=user, user_name=name or user,
                     is_direct=True, is_guest=False)


ADMIN = person("bob", "console")
ALICE = person("42", name="alice")


@pytest.fixture
def env(tmp_path: Path):
    settings, queue = local_queue(tmp_path)
    config = build_config({}, {"hpc": CLUSTER}, runners=RUNNERS, admins=["console:bob"],
                          calculations={"quota": 1, "approved_quota": 3,
                                        "audit_channel": "console:audit"})
    handler = CommandHandler(settings, config, queue)
    submitter = Submitter(settings, config, queue)
    admin = CalcAdmin(settings, config, queue, lambda job_id, who: handler.handle(
        Incoming(who, f"cancel {job_id}")).replies[0].text)

    def say(who: Requester, text: str) -> str:
        return admin.handle(who, text.split(), now=DEC).text

    def submit(who: Requester = ALICE) -> str:
        data = b"x\n"
        return submitter.submit(who, [], Attachment("w.gjf", 2, lambda: data), now=DEC).text

    return settings, queue, handler, say, submit


def actions(queue: Queue) -> list[tuple[str, str]]:
    with queue.engine.connect() as conn:
        return [(r.action, r.detail) for r in conn.execute(select(audit).order_by(audit.c.id))]


def test_a_new_user_is_registered_and_sees_their_quota(env) -> None:
    _, queue, _, say, submit = env
    assert say(ALICE, "quota") == "You have used 0 of 1 calculation this month (1 left)."
    assert submit().startswith("Calculation 1: `w.gjf` is queued")
    assert say(ALICE, "quota") == ("You have used 1 of 1 calculation this month (0 left); the "
                                   "next comes back on 2027-01-01 00:00:00 UTC.")
    assert actions(queue)[0] == ("registered", "telegram:42 (alice) is a new user")
    assert submit() == ("Not submitted: you have used all 1 calculation of your quota this "
                        "month. The next one comes back on 2027-01-01 00:00:00 UTC. An admin "
                        "can approve you for 3 a month.")


def test_approval_raises_the_quota(env) -> None:
    _, queue, _, say, submit = env
    submit()
    assert say(ALICE, "approve telegram:42") == ("Only admins may use `approve`; you are "
                                                 "telegram:42.")
    assert say(ADMIN, "approve telegram:42") == (
        "Approved telegram:42 (alice): they have used 1 of 3 calculations this month (2 left); "
        "the next comes back on 2027-01-01 00:00:00 UTC.")
    assert submit().startswith("Calculation 2: ")
    assert actions(queue)[-2] == ("approved", "console:bob approved telegram:42")
    assert say(ADMIN, "limit alice 10").startswith("telegram:42 (alice): they have used 2 of 10 "
                                                   "calculations this month (8 left)")
    assert say(ADMIN, "users") == "• telegram:42 alice: approved, 2 of 10 used"
    assert say(ADMIN, "users pending") == "No users match `pending`."


def test_users_are_named_by_id_at_name_or_one_match(env) -> None:
    _, queue, _, say, submit = env
    submit()
    submit(person("43", name="alina"))
    identities.record(queue.engine, "console", "carl", "Carl")
    assert say(ADMIN, "user ali") == ("`ali` matches 2 people: telegram:42, telegram:43. Name "
                                      "one as platform:id.")
    assert say(ADMIN, "user nobody") == ("Nobody is known as `nobody`. Name them as "
                                         "platform:id (for example telegram:123456789); `users` "
                                         "lists the users.")
    assert say(ADMIN, "approve @carl") == ("Approved console:carl: they have used 0 of 3 "
                                           "calculations this month (3 left).")
    shown = say(ADMIN, "user alina")
    assert shown.startswith("telegram:43 (alina): not approved, a user since 2026-12-15 "
                            "12:00:00 UTC.\nThey have used 1 of 1 calculation this month (0 "
                            "left); the next comes back on 2027-01-01 00:00:00 UTC.\nLast "
                            "calculations:\n• calculation 2: `w.gjf` with `shout` on hpc, "
                            "2026-12-15 12:00:00 UTC: queued")


def test_block_with_and_without_cancel(env) -> None:
    _, queue, handler, say, submit = env
    say(ADMIN, "limit telegram:42 5")
    submit()
    submit()
    assert say(ADMIN, "block telegram:42 mining coins") == (
        "Blocked telegram:42 (alice) (mining coins). Their 2 calculations in progress (1, 2) go "
        "on; `block telegram:42 --cancel` stops them.")
    assert [queue.get(i).state for i in (1, 2)] == ["queued", "queued"]
    assert submit() == ("Not submitted: you are blocked from running calculations (reason: "
                        "mining coins). Ask an admin if this is a mistake.")
    other = handler.handle(Incoming(ALICE, "status"))
    assert [r.text for r in other.replies] == [
        "Sorry, you are blocked (reason: mining coins). Ask an admin if this is a mistake."]
    assert say(ADMIN, "block telegram:42 --cancel") == (
        "Blocked telegram:42 (alice). Cancelling their 2 calculations: 1, 2.")
    assert [queue.get(i).state for i in (1, 2)] == ["cancelled", "cancelled"]
    assert say(ADMIN, "users blocked") == "• telegram:42 alice: blocked, 0 of 5 used"  # refunded
    assert say(ADMIN, "unblock telegram:42") == "Unblocked telegram:42 (alice)."
    assert submit().startswith("Calculation 3: ")
    assert [a for a, _ in actions(queue)] == [
        "limit", "submitted", "submitted", "blocked", "refused", "blocked",
        "unblocked", "submitted"]


def test_calcs_and_calc_show_a_users_calculations(env) -> None:
    _, _, _, say, submit = env
    assert say(ALICE, "calcs") == "You have run no calculations yet."
    submit()
    assert say(ALICE, "calcs") == ("Last calculations:\n• calculation 1: `w.gjf` with `shout` "
                                   "on hpc, 2026-12-15 12:00:00 UTC: queued")
    assert say(ALICE, "calc 1") == ("Calculation 1: `w.gjf` with runner `shout` on cluster hpc, "
                                    "sent 2026-12-15 12:00:00 UTC: queued.\n`cancel 1` stops it.")
    assert say(person("7"), "calc 1") == ("There is no calculation 1 of yours. `calcs` lists "
                                          "them.")


def test_audit_export_as_csv_and_jsonl(chatops) -> None:
    import csv
    import io
    import json

    from chatops.calc import audit as calc_audit
    from chatops.settings import load_settings as settings_of

    queue = Queue(make_engine(settings_of(chatops.env).database_url))
    old = datetime(2026, 11, 30, tzinfo=UTC).timestamp()
    calc_audit.record(queue, None, "approved", "console:bob approved telegram:42",
                      actor="console:bob", subject="telegram:42", now=old)
    calc_audit.record(queue, None, "submitted", 'telegram:42 submitted calculation 7: "a,b"',
                      actor="telegram:42", subject="telegram:42", calc_id=7, now=DEC)
    result = chatops("audit", "export", "--since", "2026-12-01", check=True)
    assert list(csv.reader(io.StringIO(result.stdout))) == [
        ["id", "at", "actor", "action", "subject", "calc_id", "detail"],
        ["2", "2026-12-15T12:00:00+00:00", "telegram:42", "submitted", "telegram:42", "7",
         'telegram:42 submitted calculation 7: "a,b"']]
    assert result.stderr == "(1 audit rows)\n"
    lines = chatops("audit", "export", "--since", "2026-11-01", "--format", "jsonl",
                    check=True).stdout.splitlines()
    assert [json.loads(line)["action"] for line in lines] == ["approved", "submitted"]
    bad = chatops("audit", "export", "--since", "yesterday")
    assert bad.returncode == 2 and "'yesterday' is not a date" in bad.stderr
    unknown = chatops("audit", "export", "--since", "2026-11-01", "--action", "bogus")
    assert (unknown.returncode, unknown.stdout, unknown.stderr) == (2, "", (
        "chatops: there is no audit action 'bogus'; the actions are registered, profile, "
        "submitted, refused, quota, approved, blocked, unblocked, limit, bind, succeeded, "
        "failed, cancelled, timed_out, refunded, linked, unlinked\n"))
    only = chatops("audit", "export", "--since", "2026-11-01", "--action", "approved",
                   "--format", "jsonl", check=True)
    assert [json.loads(line)["action"] for line in only.stdout.splitlines()] == ["approved"]


def test_calc_resends_the_results_until_retention_removes_them(env) -> None:
    from chatops.calc import store
    from chatops.calc.files import results_dir
    from chatops.prune import prune
    from chatops.report import Report

    settings, queue, _, say, submit = env
    submit()
    folder = results_dir(settings, 1)
    folder.mkdir(parents=True)
    (folder / "out.log").write_text("energy -76.0\n")
    claimed = queue.claim("test-worker", now=DEC)
    assert claimed.id == 1
    report = Report(job_id=1, job_type="run_hpc.shout", namespace="run", outcome="succeeded",
                    text="Calculation 1 (`w.gjf`), runner `shout` on cluster hpc: completed.",
                    files=[{"path": str(folder / "out.log"), "name": "out.log"}])
    queue.finish(1, "succeeded", summary="completed", payload=report.to_payload(), now=DEC)
    store.record_end(queue.engine, 1, "/remote/1", {"files": ["out.log"]}, now=DEC)
    queue.take_channel_deliveries("telegram", "42")  # the report itself, delivered
    assert say(ALICE, "calc 1") == ("Calculation 1: `w.gjf` with runner `shout` on cluster hpc, "
                                    "sent 2026-12-15 12:00:00 UTC: succeeded.\ncompleted\nIts "
                                    "report and result files follow.")
    [again] = queue.take_channel_deliveries("telegram", "42")
    assert '"files": [{"path": "' + str(folder / "out.log") in again.payload
    done = prune(settings, queue, 30 * 86400, now=DEC + 31 * 86400)
    assert done.jobs == 0 and done.bytes == len("energy -76.0\n")
    assert not folder.exists()
    assert say(ALICE, "calc 1").endswith("Its result files were removed on 2027-01-15 12:00:00 "
                                         "UTC: they are kept here only for a while.")


def test_bind_ties_a_person_to_their_cluster_account(env) -> None:
    _, queue, _, say, submit = env
    submit()
    assert say(ADMIN, "bind telegram:42 alice") == (
        "telegram:42 (alice) is now cluster user alice: Slurm's notifications for that account "
        "reach them.")
    assert [f"{r.platform}:{r.user_id}" for r in identities.by_cluster_user(queue.engine,
                                                                            "alice")] == [
        "telegram:42"]
    assert "Cluster user: alice." in say(ADMIN, "user telegram:42")
    assert say(ADMIN, "bind telegram:42 'x; rm'") == (
        "Use `bind <user> <cluster user>` (or `bind <user> -` to undo), with the account's "
        "login name.")
    assert say(ADMIN, "bind telegram:42 -") == "telegram:42 (alice) has no cluster user now."
    assert identities.by_cluster_user(queue.engine, "alice") == []
    assert actions(queue)[-2:] == [("bind", "console:bob bound telegram:42 to cluster user alice"),
                                   ("bind", "console:bob unbound telegram:42 from their cluster "
                                    "user")]


def test_link_makes_two_accounts_one_person(env) -> None:
    _, queue, _, say, submit = env
    console = person("alice", "console")
    submit()  # telegram:42 used its one calculation
    code = re.search(r"`link (\w+)`", say(ALICE, "link"))[1]
    assert say(console, f"link {code.lower()}") == (
        "This account and telegram:42 are one person now: you have used 1 of 1 calculation "
        "this month (0 left); the next comes back on 2027-01-01 00:00:00 UTC.")
    assert submit(console).startswith("Not submitted: you have used all 1 calculation")
    assert say(console, "calcs").startswith("Last calculations:\n• calculation 1: `w.gjf`")
    assert say(console, "calc 1").startswith("Calculation 1: `w.gjf`")
    say(ADMIN, "approve console:alice")  # acts on the person: both accounts
    assert say(ALICE, "quota").startswith("You have used 1 of 3 calculations")
    assert say(console, f"link {code}").startswith("That code is unknown, used or older")
    assert say(console, "unlink") == ("This account is on its own again: its own quota, "
                                      "profile and calculations.")
    assert say(console, "quota") == "You have used 0 of 1 calculation this month (1 left)."
    late = re.search(r"`link (\w+)`", say(ALICE, "link"))[1]
    from chatops.calc import store

    assert store.redeem_link_code(queue.engine, late, "console:alice", None,
                                  now=DEC + 601) is None  # ten minutes are over
    assert [a for a, _ in actions(queue)][-4:] == ["linked", "quota", "approved", "unlinked"]


def test_orgs_import_a_tree_and_profiles_name_them(chatops, tmp_path: Path) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text("label,name,alias,parent\nchem,Chemistry,,sci\nchem,Again,,\n")
    result = chatops("orgs", "import", str(bad))
    assert result.returncode == 1
    assert result.stderr == (f"{bad}: line 3: label 'chem' appears twice\n"
                             f"{bad}: organisation 'chem': parent 'sci' is not a label of the "
                             "file\n"
                             f"{bad}: nothing imported (2 problem(s))\n")
    good = tmp_path / "organizations.csv"
    good.write_text("label,name,alias,parent\nsci,Faculty of Science,FS,\n"
                    "chem,Department of Chemistry,DoC,sci\nphys,Department of Physics,,sci\n")
    result = chatops("orgs", "import", str(good), check=True)
    assert result.stdout == "imported 3 organisations (1 at the top)\n"
    from chatops.settings import load_settings as settings_of

    settings = settings_of(chatops.env)
    queue = Queue(make_engine(settings.database_url))
    config = build_config({}, {"hpc": CLUSTER}, runners=RUNNERS,
                          calculations={"organisations": {"chem": {"quota": 7}}})
    admin = CalcAdmin(settings, config, queue, lambda job_id, who: "")
    assert admin.handle(ALICE, ["quota"]).text.startswith("You have used 0 of 5 calculations")
    assert admin.handle(ALICE, "profile Ada Lovelace doc".split()).text == (
        "Your profile is now: Ada Lovelace, Faculty of Science › Department of Chemistry.")
    assert admin.handle(ALICE, ["quota"]).text.startswith("You have used 0 of 7 calculations")
    assert admin.handle(ALICE, "profile Ada Lovelace Biology".split()).text == (
        "`Biology` matches no organisation; give the organisation's label, name or alias as "
        "the admins loaded them.")


def test_an_organisation_without_a_quota_has_its_nearest_ancestors(chatops,
                                                                   tmp_path: Path) -> None:
    tree = tmp_path / "organizations.csv"
    tree.write_text("label,name,alias,parent\nuni,University,,\nsci,Faculty of Science,,uni\n"
                    "chem,Department of Chemistry,DoC,sci\nphys,Department of Physics,,sci\n")
    assert chatops("orgs", "import", str(tree), check=True).stdout == (
        "imported 4 organisations (1 at the top)\n")
    from chatops.settings import load_settings as settings_of

    settings = settings_of(chatops.env)
    queue = Queue(make_engine(settings.database_url))
    config = build_config({}, {"hpc": CLUSTER}, runners=RUNNERS, admins=["console:bob"],
                          calculations={"organisations": {
                              "uni": {"quota": 9, "approved_quota": 40},
                              "sci": {"approved_quota": 30}, "phys": {"quota": 2}}})
    admin = CalcAdmin(settings, config, queue, lambda job_id, who: "")
    carol = person("43", name="carol")
    assert admin.handle(ALICE, "profile Ada Lovelace DoC".split()).text == (
        "Your profile is now: Ada Lovelace, University › Faculty of Science › Department of "
        "Chemistry.")
    admin.handle(carol, "profile Carol Shaw phys".split())
    # chem sets nothing: University's quota; sci sets only approved_quota, which wins there
    assert admin.handle(ALICE, ["quota"]).text == (
        "You have used 0 of 9 calculations this month (9 left).")
    assert admin.handle(carol, ["quota"]).text == (
        "You have used 0 of 2 calculations this month (2 left).")
    admin.handle(ADMIN, "approve telegram:42".split())
    assert admin.handle(ALICE, ["quota"]).text == (
        "You have used 0 of 30 calculations this month (30 left).")
    admin.handle(ADMIN, "limit telegram:42 4".split())  # a user's own quota beats them all
    assert admin.handle(ALICE, ["quota"]).text == (
        "You have used 0 of 4 calculations this month (4 left).")
