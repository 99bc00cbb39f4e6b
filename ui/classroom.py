"""A class that follows its teacher: the state every session of a lesson shares, behind one small interface.

`ClassStore` is what the app calls; `MemoryClassStore` keeps classes in this server process (the default),
`RedisClassStore` in Redis, so that a teacher and students on different server processes are in the same class
(`VITVIZ_REDIS_URL`, see `store_from_env`). No Streamlit here.

Only the teacher moves a class: `create` returns a secret token that stays in the teacher's session (never in a URL
or on a student's screen), and `move` refuses any other. Codes are random from 31⁷ ≈ 2.8·10¹⁰ (letters and digits
without the look-alikes 0/O, 1/I/L) and a class is forgotten after 3 hours without its teacher or students doing
anything (polling to follow does not count).
"""
from __future__ import annotations

import os
import secrets
import threading
import time
from collections import Counter
from dataclasses import dataclass, field

from vitviz.i18n import _

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


class ClassUnavailable(ClassError):
    """The shared class state cannot be reached (its Redis server does not answer)."""


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
    return "".join(secrets.choice(CODE_ALPHABET) for _i in range(CODE_LENGTH))


def normalise(code: str) -> str:
    """A code as typed: case and spaces do not matter."""
    return "".join(str(code).split()).upper()


class RedisClassStore(ClassStore):
    """Classes in Redis, shared by every server process that uses the same Redis (`redis://host:port/db`).

    A class is three keys, all expiring EXPIRY_S after the last action (a poll does not renew them): `…:class`
    (lesson, step, token), `…:members` (member -> time of its last poll) and `…:answers` ("step:member" -> answer).
    Times are wall-clock seconds: the processes share no monotonic clock."""

    PREFIX = "vitviz:class:"

    def __init__(self, url: str, clock=time.time):
        import redis  # only a server that shares its classes needs it

        self._redis = redis.Redis.from_url(url, socket_timeout=2, socket_connect_timeout=2, decode_responses=True)
        self._errors = (redis.RedisError, OSError)
        self._clock = clock

    def _keys(self, code: str) -> tuple[str, str, str]:
        base = self.PREFIX + normalise(code)
        return base + ":class", base + ":members", base + ":answers"

    def _call(self, work):
        try:
            return work(self._redis)
        except self._errors as err:
            raise ClassUnavailable(_("The class server (Redis) does not answer: {error}").format(error=err)) from None

    def _touch(self, pipe, code: str) -> None:
        for key in self._keys(code):
            pipe.expire(key, EXPIRY_S)

    def _found(self, code: str) -> dict:
        found = self._call(lambda r: r.hgetall(self._keys(code)[0]))
        if not found:
            raise ClassError(code)
        return found

    def _state(self, code: str, found: dict) -> ClassState:
        seen = self._call(lambda r: r.hvals(self._keys(code)[1]))
        now = self._clock()
        here = sum(now - float(t) <= PRESENT_S for t in seen)
        return ClassState(normalise(code), found["lesson"], int(found["step"]), len(seen), here)

    def create(self, lesson: str, step: int) -> tuple[str, str]:
        token = secrets.token_urlsafe(24)
        while True:
            code = new_code()
            key = self._keys(code)[0]
            if self._call(lambda r: r.hsetnx(key, "token", token)):  # a code in use is never taken over
                break

        def write(r):
            pipe = r.pipeline()
            pipe.hset(key, mapping={"lesson": lesson, "step": int(step)})
            self._touch(pipe, code)
            pipe.execute()
        self._call(write)
        return code, token

    def state(self, code: str, member: str | None = None) -> ClassState:
        found = self._found(code)
        members = self._keys(code)[1]
        if member is not None and self._call(lambda r: r.hexists(members, member)):
            self._call(lambda r: r.hset(members, member, self._clock()))
        return self._state(code, found)

    def join(self, code: str, member: str) -> ClassState:
        found = self._found(code)

        def write(r):
            pipe = r.pipeline()
            pipe.hset(self._keys(code)[1], member, self._clock())
            self._touch(pipe, code)
            pipe.execute()
        self._call(write)
        return self._state(code, found)

    def move(self, code: str, token: str, step: int) -> None:
        found = self._found(code)
        if not secrets.compare_digest(found["token"], token):
            raise PermissionError("only the teacher's session can move the class")

        def write(r):
            pipe = r.pipeline()
            pipe.hset(self._keys(code)[0], "step", int(step))
            self._touch(pipe, code)
            pipe.execute()
        self._call(write)

    def answer(self, code: str, member: str, step: int, answer: str) -> None:
        self._found(code)

        def write(r):
            pipe = r.pipeline()
            pipe.hset(self._keys(code)[2], f"{int(step)}:{member}", str(answer))
            self._touch(pipe, code)
            pipe.execute()
        self._call(write)

    def answers(self, code: str, step: int) -> dict[str, int]:
        self._found(code)
        given = self._call(lambda r: r.hgetall(self._keys(code)[2]))
        prefix = f"{int(step)}:"
        return dict(Counter(a for k, a in given.items() if k.startswith(prefix)))


def store_from_env() -> ClassStore:
    """Redis when VITVIZ_REDIS_URL is set (several server processes), else this process's memory."""
    url = os.environ.get("VITVIZ_REDIS_URL")
    return RedisClassStore(url) if url else MemoryClassStore()
