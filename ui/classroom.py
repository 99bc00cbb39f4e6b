"""A class that follows its teacher: the state every session of a lesson shares, behind one small interface.

`ClassStore` is what the app calls; `MemoryClassStore` keeps classes in this server process (the default; a store
shared by several processes implements the same methods). No Streamlit here.

Only the teacher moves a class: `create` returns a secret token that stays in the teacher's session (never in a URL
or on a student's screen), and `move` refuses any other. Codes are random from 31⁷ ≈ 2.8·10¹⁰ (letters and digits
without the look-alikes 0/O, 1/I/L) and a class is forgotten after 3 hours without its teacher or students doing
anything (polling to follow does not count).
"""
from __future__ import annotations

import secrets
import threading
import time
from collections import Counter
from dataclasses import dataclass, field

CODE_ALPHABET = "ABCDEFGHJKMNPQRSTUVWXYZ23456789"
CODE_LENGTH = 7
EXPIRY_S = 3 * 3600
PRESENT_S = 10.0  # a follower that polled within this many seconds counts as here now


@dataclass(frozen=True)
class ClassState:
    """What a follower reads when it polls."""

    code: str
    lesson: str  # lesson id
    step: int  # 1-based step the teacher is on
    joined: int  # students who joined
    here: int  # students who polled within PRESENT_S


class ClassError(LookupError):
    """No such class (a wrong code, or one that expired)."""


class ClassStore:
    """The interface: every method is safe to call from any session's thread."""

    def create(self, lesson: str, step: int) -> tuple[str, str]:
        """Start a class on `lesson` at `step`; returns (code, teacher token)."""
        raise NotImplementedError

    def state(self, code: str, member: str | None = None) -> ClassState:
        """The class now (ClassError if there is none); `member` polling marks that student as here."""
        raise NotImplementedError

    def join(self, code: str, member: str) -> ClassState:
        """Count `member` (a random id kept in the student's session) in the class."""
        raise NotImplementedError

    def move(self, code: str, token: str, step: int) -> None:
        """Move the class to `step`; PermissionError unless `token` is the teacher's."""
        raise NotImplementedError

    def answer(self, code: str, member: str, step: int, answer: str) -> None:
        """Record `member`'s answer to the question of `step` (a later answer replaces an earlier one)."""
        raise NotImplementedError

    def answers(self, code: str, step: int) -> dict[str, int]:
        """How many students gave each answer to the question of `step`."""
        raise NotImplementedError


@dataclass
class _Class:
    lesson: str
    step: int
    token: str
    active: float  # time.monotonic() of the last action (not of polls)
    members: dict[str, float] = field(default_factory=dict)  # member -> last poll
    answers: dict[int, dict[str, str]] = field(default_factory=dict)  # step -> member -> answer


class MemoryClassStore(ClassStore):
    """Classes in this process's memory: every session of one server shares them."""

    def __init__(self, clock=time.monotonic):
        self._classes: dict[str, _Class] = {}
        self._lock = threading.Lock()
        self._clock = clock

    def _get(self, code: str) -> _Class:
        now = self._clock()
        for stale in [c for c, k in self._classes.items() if now - k.active > EXPIRY_S]:
            del self._classes[stale]
        found = self._classes.get(normalise(code))
        if found is None:
            raise ClassError(code)
        return found

    def create(self, lesson: str, step: int) -> tuple[str, str]:
        with self._lock:
            while (code := new_code()) in self._classes:
                pass
            token = secrets.token_urlsafe(24)
            self._classes[code] = _Class(lesson, step, token, self._clock())
            return code, token

    def _state(self, code: str, found: _Class) -> ClassState:
        now = self._clock()
        here = sum(now - seen <= PRESENT_S for seen in found.members.values())
        return ClassState(normalise(code), found.lesson, found.step, len(found.members), here)

    def state(self, code: str, member: str | None = None) -> ClassState:
        with self._lock:
            found = self._get(code)
            if member is not None and member in found.members:
                found.members[member] = self._clock()
            return self._state(code, found)

    def join(self, code: str, member: str) -> ClassState:
        with self._lock:
            found = self._get(code)
            found.members[member] = found.active = self._clock()
            return self._state(code, found)

    def move(self, code: str, token: str, step: int) -> None:
        with self._lock:
            found = self._get(code)
            if not secrets.compare_digest(found.token, token):
                raise PermissionError("only the teacher's session can move the class")
            found.step, found.active = int(step), self._clock()

    def answer(self, code: str, member: str, step: int, answer: str) -> None:
        with self._lock:
            found = self._get(code)
            found.answers.setdefault(int(step), {})[member] = str(answer)
            found.active = self._clock()

    def answers(self, code: str, step: int) -> dict[str, int]:
        with self._lock:
            return dict(Counter(self._get(code).answers.get(int(step), {}).values()))


def new_code() -> str:
    return "".join(secrets.choice(CODE_ALPHABET) for _ in range(CODE_LENGTH))


def normalise(code: str) -> str:
    """A code as typed: case and spaces do not matter."""
    return "".join(str(code).split()).upper()
