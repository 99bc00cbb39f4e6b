"""The class store, in this process's memory and in a real Redis server on loopback (Debian's redis-server): only
the teacher's token moves a class, answers are counted exactly, classes expire 3 hours after the last action (polls
do not count), codes are random and readable, and an unreachable Redis is one clear sentence."""
from __future__ import annotations

import time

import pytest

from ui import classroom
from ui.classroom import ClassError, ClassUnavailable, MemoryClassStore, RedisClassStore

from .browser import free_port


class Clock:
    def __init__(self):
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture(params=["memory", "redis"])
def make_store(request):
    """A function making a fresh store of each kind (with an optional clock)."""
    if request.param == "memory":
        return lambda clock=time.monotonic: MemoryClassStore(clock)
    url = request.getfixturevalue("redis_url")
    return lambda clock=time.time: RedisClassStore(url, clock)


def test_only_the_teachers_token_moves_the_class(make_store):
    store = make_store()
    code, token = store.create("attention", 1)
    store.join(code, "student-a")
    with pytest.raises(PermissionError):
        store.move(code, "a guess", 5)
    with pytest.raises(PermissionError):
        store.move(code, "", 5)
    assert store.state(code).step == 1
    store.move(code.lower(), token, 3)  # codes are typed in any case
    assert store.state(code).step == 3
    with pytest.raises(ClassError):
        store.state("NOPE123")
    with pytest.raises(ClassError):
        store.move("NOPE123", token, 2)


def test_answers_are_counted_exactly_and_a_changed_answer_replaces_the_first(make_store):
    store = make_store()
    code, _ = store.create("attention", 2)
    for i in range(30):
        store.join(code, f"s{i}")
        store.answer(code, f"s{i}", 2, "6" if i % 3 else "12")
    store.answer(code, "s0", 2, "6")  # s0 changes its mind
    store.answer(code, "s1", 3, "50")
    assert store.answers(code, 2) == {"6": 21, "12": 9}
    assert store.answers(code, 3) == {"50": 1}
    assert store.answers(code, 4) == {}
    state = store.state(code)
    assert (state.lesson, state.step, state.joined) == ("attention", 2, 30)


def test_polling_marks_a_student_here_but_a_stranger_is_not_counted(make_store):
    clock = Clock()
    store = make_store(clock)
    code, _ = store.create("attention", 1)
    store.join(code, "a")
    store.join(code, "b")
    clock.now += classroom.PRESENT_S + 1
    assert store.state(code, "a").here == 1  # a polled just now, b long ago
    assert store.state(code, "nobody").joined == 2  # polling does not join


def test_memory_classes_expire_after_three_hours_without_activity_not_polling():
    clock = Clock()
    store = MemoryClassStore(clock)
    code, token = store.create("attention", 1)
    store.join(code, "s")
    clock.now += classroom.EXPIRY_S - 1
    assert store.state(code, "s").here == 1  # polling: the student is here, but polling is not activity
    store.move(code, token, 2)  # the teacher acts: three more hours
    clock.now += classroom.EXPIRY_S - 1
    assert store.state(code).step == 2
    assert store.state(code).here == 0
    clock.now += 2
    with pytest.raises(ClassError):
        store.state(code)


def test_redis_keys_expire_three_hours_after_an_action_and_polls_do_not_renew_them(redis_url):
    import redis

    client = redis.Redis.from_url(redis_url, decode_responses=True)
    store = RedisClassStore(redis_url)
    code, token = store.create("attention", 1)
    store.join(code, "s")
    keys = [k for k in store._keys(code) if client.exists(k)]
    assert len(keys) == 2  # the class and its members; the answers key appears with the first answer
    for key in keys:
        assert classroom.EXPIRY_S - 5 <= client.ttl(key) <= classroom.EXPIRY_S
    for key in keys:
        client.expire(key, 100)
    store.state(code, "s")  # a poll
    assert all(client.ttl(k) <= 100 for k in keys)
    store.move(code, token, 2)  # an action
    assert all(client.ttl(k) > classroom.EXPIRY_S - 5 for k in keys)
    client.delete(*keys)  # what expiry does
    with pytest.raises(ClassError):
        store.state(code)


def test_two_stores_on_one_redis_are_one_class(redis_url):
    """What several server processes see: a class created through one is joined and moved through the other."""
    teacher_side, student_side = RedisClassStore(redis_url), RedisClassStore(redis_url)
    code, token = teacher_side.create("windows-and-patches", 1)
    student_side.join(code, "s")
    teacher_side.move(code, token, 4)
    assert student_side.state(code, "s").step == 4
    student_side.answer(code, "s", 4, "h/2 × w/2 × 2C")
    assert teacher_side.answers(code, 4) == {"h/2 × w/2 × 2C": 1}


def test_an_unreachable_redis_is_one_sentence():
    store = RedisClassStore(f"redis://127.0.0.1:{free_port()}/0")
    with pytest.raises(ClassUnavailable) as err:
        store.create("attention", 1)
    assert str(err.value).startswith("The class server (Redis) does not answer:")
    with pytest.raises(ClassUnavailable):
        store.state("ABCDEFG")


def test_codes_are_random_readable_and_unique(make_store):
    store = make_store()
    codes = {store.create("attention", 1)[0] for _ in range(300)}
    assert len(codes) == 300
    assert all(len(c) == classroom.CODE_LENGTH and set(c) <= set(classroom.CODE_ALPHABET) for c in codes)
    assert not set("01OIL") & set(classroom.CODE_ALPHABET)
    assert len(classroom.CODE_ALPHABET) ** classroom.CODE_LENGTH > 10**10


def test_the_environment_chooses_the_store(monkeypatch, redis_url):
    monkeypatch.delenv("VITVIZ_REDIS_URL", raising=False)
    assert isinstance(classroom.store_from_env(), MemoryClassStore)
    monkeypatch.setenv("VITVIZ_REDIS_URL", redis_url)
    assert isinstance(classroom.store_from_env(), RedisClassStore)
