"""Reading the TwiML the application answers with, the few verbs rallycall uses."""

from __future__ import annotations

from dataclasses import dataclass, field
from xml.etree import ElementTree

DEFAULT_LANGUAGE = "en-US"
"""What Twilio speaks a `<Say>` without a `language` in."""


@dataclass(frozen=True)
class Say:
    text: str
    language: str = ""
    """The `language` attribute as written; empty: Twilio's default."""

    @property
    def spoken_in(self) -> str:
        return self.language or DEFAULT_LANGUAGE


@dataclass(frozen=True)
class Gather:
    action: str
    prompts: tuple[Say, ...]


@dataclass(frozen=True)
class JoinConference:
    room: str
    attributes: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Redirect:
    url: str


@dataclass(frozen=True)
class Hangup:
    pass


Verb = Say | Gather | JoinConference | Redirect | Hangup


def parse(document: str) -> list[Verb]:
    """The verbs of a `<Response>`, in order; anything else is ignored as Twilio would warn."""
    root = ElementTree.fromstring(document)
    verbs: list[Verb] = []
    for element in root:
        if element.tag == "Say":
            verbs.append(_say(element))
        elif element.tag == "Gather":
            prompts = tuple(_say(child) for child in element if child.tag == "Say")
            verbs.append(Gather(element.get("action", ""), prompts))
        elif element.tag == "Dial":
            conference = element.find("Conference")
            if conference is not None:
                verbs.append(JoinConference((conference.text or "").strip(), dict(conference.attrib)))
        elif element.tag == "Redirect":
            verbs.append(Redirect((element.text or "").strip()))
        elif element.tag == "Hangup":
            verbs.append(Hangup())
    return verbs


def _say(element: ElementTree.Element) -> Say:
    return Say(element.text or "", element.get("language", ""))
