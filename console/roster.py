"""The live page's roster at any size: a page of a run's people (100 at a time), optionally only
those in one state, with links to the pages beside it and a choice per state.

How many are in each state is cheap only for the run's own people (its summary holds them): a
run with batches shows each batch's figures instead (its step's counted and destinations, each
batch's counted and size), and the total of the state chosen once it is read. The query
parameters here are read once, with a message saying what is wrong (a 400 answer)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from typing import get_args
from urllib.parse import parse_qsl, urlencode

from domain.run_view import PAGE_AT_MOST, PeoplePage, PeopleQuery, PersonState, PersonView, RunView
from rendering.words import STATE_WORDS

PAGE_SIZE = 100
"""People on a page of the live roster."""
API_LIMIT = PAGE_AT_MOST
"""The most people one page of `GET /api/runs/{id}` holds (`PeopleQuery`'s own limit)."""
STATES: tuple[PersonState, ...] = get_args(PersonState)


def everyone(summary: RunView) -> int:
    """How many rows the run's roster has: its own people and each batch's (a run of 0.1.0
    lists everyone itself, its batches' rows merged into its own)."""
    if not summary.batches_list_their_people:
        return len(summary.people)
    return len(summary.people) + sum(batch.size for batch in summary.batches)


def read_state(value: str | None) -> PersonState | None:
    if not value:
        return None
    if value not in STATES:
        raise ValueError(f"state {value!r}: one of {', '.join(STATES)}")
    return value


def read_whole(name: str, value: str, least: int, most: int | None = None) -> int:
    """A query parameter that must be a whole number from `least` to `most`."""
    try:
        number = int(value)
    except ValueError:
        raise ValueError(f"{name} {value!r}: a whole number") from None
    if number < least:
        raise ValueError(f"{name} {value!r}: {least} or more")
    if most is not None and number > most:
        raise ValueError(f"{name} {value!r}: at most {most}")
    return number


def api_people_query(query: Mapping[str, str]) -> PeopleQuery | None:
    """`GET /api/runs/{id}`'s `offset`, `limit` (at most 1,000, the default) and `state`; None
    when none is given: everyone."""
    if not {"offset", "limit", "state"} & set(query):
        return None
    return PeopleQuery(
        offset=read_whole("offset", query.get("offset") or "0", 0),
        limit=read_whole("limit", query.get("limit") or str(API_LIMIT), 0, API_LIMIT),
        state=read_state(query.get("state")),
    )


@dataclass(frozen=True)
class RosterQuery:
    """What the run page's `?state=…&page=…` asks for."""

    state: PersonState | None = None
    page: int = 1

    @classmethod
    def read(cls, query: Mapping[str, str]) -> RosterQuery:
        """ValueError names the parameter that cannot be used."""
        page = read_whole("page", query["page"], 1) if query.get("page") else 1
        return cls(read_state(query.get("state")), page)

    @classmethod
    def kept(cls, text: str) -> RosterQuery:
        """The page a form came from (`query_string`), to go back to; the first if it is not one."""
        try:
            return cls.read(dict(parse_qsl(text)))
        except ValueError:
            return cls()

    @property
    def people(self) -> PeopleQuery:
        return PeopleQuery(offset=(self.page - 1) * PAGE_SIZE, limit=PAGE_SIZE, state=self.state)

    @property
    def query_string(self) -> str:
        """`state=reached&page=2`; empty for everyone's first page."""
        pairs = {"state": self.state or "", "page": str(self.page) if self.page > 1 else ""}
        return urlencode({name: value for name, value in pairs.items() if value})

    @property
    def suffix(self) -> str:
        """What a link to this page adds to the run's path: `?state=reached&page=2`, or nothing."""
        return f"?{self.query_string}" if self.query_string else ""


@dataclass(frozen=True)
class Choice:
    """A filter of the roster: everyone, or those in one state, with how many when that is cheap."""

    label: str
    href: str
    count: int | None
    current: bool


@dataclass(frozen=True)
class Roster:
    """One page of the roster, as the people section shows it."""

    workflow_id: str
    query: RosterQuery
    page: PeoplePage
    everyone: int
    counts: Mapping[str, int] | None
    """People in each state, when they are all the run's own (a run without batches)."""
    own_on_page: int
    """The page's first rows that are the run's own people: a moderator acts on them only."""
    bridge: bool

    @classmethod
    def of(cls, summary: RunView, query: RosterQuery, page: PeoplePage) -> Roster:
        own = [p for p in summary.people if query.state is None or p.state == query.state]
        offset = query.people.offset
        return cls(
            workflow_id=summary.workflow_id,
            query=query,
            page=page,
            everyone=everyone(summary),
            counts=None if summary.batches else Counter(p.state for p in summary.people),
            own_on_page=min(max(len(own) - offset, 0), len(page.people)),
            bridge=summary.has_bridge,
        )

    @property
    def people(self) -> list[PersonView]:
        return self.page.people

    @property
    def total(self) -> int:
        """People in the state chosen (everyone without one)."""
        return self.page.total

    @property
    def chosen(self) -> str:
        """The state chosen, in words (`not reached`); `everyone` without one."""
        return STATE_WORDS[self.query.state] if self.query.state else "everyone"

    @property
    def first(self) -> int:
        return self.query.people.offset + 1

    @property
    def last(self) -> int:
        return self.query.people.offset + len(self.page.people)

    @property
    def pages(self) -> int:
        return max(1, -(-self.total // PAGE_SIZE))

    @property
    def paged(self) -> bool:
        """Whether there is more than this page to go to (or it is past the first)."""
        return self.pages > 1 or self.query.page > 1

    @property
    def previous(self) -> str | None:
        page = min(self.query.page, self.pages + 1) - 1
        return self.href(self.query.state, page) if page >= 1 else None

    @property
    def next(self) -> str | None:
        return self.href(self.query.state, self.query.page + 1) if self.query.page < self.pages else None

    @property
    def choices(self) -> list[Choice]:
        """Everyone, then each state: those with anyone in them when the counts are known (and
        the one chosen), every state a run of its kind has otherwise."""
        choices = [Choice("everyone", self.href(None), self.everyone, self.query.state is None)]
        for state in STATES:
            count = None if self.counts is None else self.counts.get(state, 0)
            current = self.query.state == state
            if not current and (count == 0 or (not self.bridge and state in ("in-bridge", "left"))):
                continue
            choices.append(Choice(STATE_WORDS[state], self.href(state), count, current))
        return choices

    def href(self, state: PersonState | None, page: int = 1) -> str:
        return f"/runs/{self.workflow_id}{RosterQuery(state, page).suffix}"
