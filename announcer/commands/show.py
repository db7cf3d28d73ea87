"""`plan` and `log`: what is planned, and what the ledger recorded, as tables or JSON."""

from __future__ import annotations

import json
import os
from contextlib import nullcontext
from datetime import datetime

from announcer.deliver.dispatch import Dispatcher
from announcer.deliver.ledger import clock, open_ledger
from announcer.plan import Plan, PlannedMessage, Record, State
from announcer.sources.config import Config, find_config, load_config
from announcer.sources.series import Loaded, load_series
from announcer.sources.timing import parse_now

UPCOMING = (State.PENDING, State.DUE, State.HELD, State.RETRY, State.SKIPPED, State.FAILED, State.UNCERTAIN,
            State.CLAIMED, State.TBA)


def local_time(moment: datetime, config: Config) -> str:
    """"Tue 2027-02-23 14:00 EST": a moment in the series' zone, for tables and messages."""
    return moment.astimezone(config.series.timezone).strftime("%a %Y-%m-%d %H:%M %Z")


def upcoming(plan: Plan, now: datetime) -> list[PlannedMessage]:
    """The messages `plan` lists (without --all) and `check` counts: still to settle, talk not started."""
    return [m for m in plan.messages if m.state in UPCOMING and m.closes > now]


def plan_rows(config_option: str | None, now_text: str | None, include_all: bool,
              as_json: bool) -> tuple[str, list[str]]:
    """The plan as a table (or JSON): due time in the series zone (for a sent message, when it
    went out, as the ledger says), talk, kind, state."""
    loaded = load_series(config_option)
    now = parse_now(now_text)
    plan, rows, sent, notes = plan_listing(loaded, now, include_all)
    zone = loaded.config.series.timezone
    if as_json:
        data = []
        for m in rows:
            data.append({"talk": m.talk_id, "kind": m.kind, "due": m.due.astimezone(zone).isoformat(),
                         "state": m.state})
            if m.key in sent:
                data[-1]["sent"] = sent[m.key].astimezone(zone).isoformat()
        return json.dumps(data, indent=2), plan.warnings + notes
    if not rows:
        return "nothing planned" + ("" if include_all else " (--all shows past messages)"), plan.warnings
    width = max(len(m.talk_id) for m in rows)
    kind_width = max(len(m.kind) for m in rows)
    lines = [f"{'DUE (' + zone.key + ')':<24}  {'TALK':<{width}}  {'KIND':<{kind_width}}  STATE"]
    lines += [f"{local_time(sent.get(m.key, m.due), loaded.config):<24}  {m.talk_id:<{width}}  "
              f"{m.kind:<{kind_width}}  {m.state}" for m in rows]
    return "\n".join(lines + [""] * bool(notes) + notes), plan.warnings


def plan_listing(loaded: Loaded, now: datetime,
                 include_all: bool) -> tuple[Plan, list[PlannedMessage], dict[str, datetime], list[str]]:
    """What `plan` lists, in order: the plan, its rows, when each sent one went out, and the notes."""
    plan, records = plan_and_records(loaded, now)
    notes = plan_notes(loaded, plan)
    rows = plan.messages + plan.history if include_all else upcoming(plan, now)
    sent = {m.key: records[m.key].updated for m in rows
            if m.state == "sent" and m.key in records and records[m.key].updated}
    rows.sort(key=lambda m: (sent.get(m.key, m.due), m.talk_id, m.key))
    return plan, rows, sent, notes


def plan_notes(loaded: Loaded, plan: Plan) -> list[str]:
    """Why messages wait: held by a new ledger, a talk that looks renamed, a refused login."""
    config = loaded.config
    notes = []
    held = [m for m in plan.messages if m.state == "held"]
    if held and plan.held_before is not None:
        notes.append(f"held: {len(held)} message(s) fell due before {local_time(plan.held_before, config)}, more "
                     "than an hour before the ledger was created; they are not sent unless you run "
                     "`announcer send --due --catch-up` (which sends those whose talk has not started)")
    notes += [f"not sent: {problem}" for problem in plan.renames.values()]
    if any(m.state in ("due", "retry") for m in plan.messages) and (refused := refused_login(config)):
        notes.append(f"due: {refused}")
    return notes


def refused_login(config: Config) -> str | None:
    """The refused login that keeps due messages waiting with the current settings and password, if any."""
    from announcer.deliver.logins import fingerprint, last_refused

    smtp = config.smtp
    if config.transport != "smtp" or smtp is None:
        return None
    with open_ledger(config, write=False) or nullcontext() as ledger:
        if ledger is None:
            return None
        refused = last_refused(ledger)
        password = os.environ.get(smtp.password_env) if smtp.password_env else None
        if smtp.auth == "oauth2":  # the token source's state, as the transport fingerprints it
            from announcer.deliver.oauth2 import token_source

            password = token_source(config).state()
        if refused is None or refused.fingerprint != fingerprint(ledger, repr(smtp), password):
            return None
    if clock() >= refused.next_try:
        return f"{refused.reason} (the next pass logs in again)"
    return refused.waiting()


def plan_at(loaded: Loaded, now: datetime) -> Plan:
    """The plan at `now`, from the talks and the ledger (if there is one yet)."""
    return plan_and_records(loaded, now)[0]


def plan_and_records(loaded: Loaded, now: datetime) -> tuple[Plan, dict[str, Record]]:
    """The plan at `now`, and the ledger's records it was made from (none before the first send)."""
    with open_ledger(loaded.config, write=False) or nullcontext() as ledger:
        records = ledger.records() if ledger else {}
        return Dispatcher(loaded.config, loaded.talks, ledger, None, None).plan(now, records), records


def log_lines(config_option: str | None, talk_id: str | None) -> str:
    """The ledger's history as text, oldest first."""
    config = load_config(find_config(config_option))
    ledger = open_ledger(config, write=False)
    if ledger is None:
        return f"nothing recorded yet (no ledger at {config.ledger_path})\n"
    with ledger:
        ledger.recover_abandoned(clock())  # a claim whose process died shows as uncertain, not as nothing
        events = ledger.history(talk_id)
    if not events:
        return "nothing recorded" + (f' for talk "{talk_id}"' if talk_id else "") + "\n"
    lines = []
    for event in events:
        detail = event.message_id or ""
        if event.detail:
            detail = f"{detail} {event.detail}".strip()
        lines.append(f"{local_time(event.at, config)}  {event.talk_id}  {event.kind}  {event.state}  {detail}".rstrip())
    return "\n".join(lines) + "\n"
