"""A lesson with a class, over the protocol client: one teacher and N followers on one real server.

The teacher opens a lesson, starts a class and moves through its steps; every follower joins with the code and
polls as its browser does (the follower's fragment reruns about every second, `StreamlitSession.poll_fragment`). For each
step we record when every follower shows it (its step counter arrives), and each follower answers the step's question with an answer chosen
by its number, so that the counts the teacher's page shows can be compared with what was sent. The server CPU
spent while the class only follows (nobody moves) is measured at the end. Used by tests/test_class_load.py (a few
followers, in CI) and bench/bench_class.py (30).
"""
from __future__ import annotations

import asyncio
import html
import re
import statistics
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from ui.lessons import LESSON_DIR, Question, load_lessons

from .load import cpu_seconds
from .protocol import StreamlitSession, element_texts

ANSWERS = re.compile(r"data-testid='class-answers'>(.*)</span>", re.S)


@dataclass
class ClassReport:
    followers: int
    arrival_s: dict[int, list[float]] = field(default_factory=dict)  # step -> seconds until each follower showed it
    expected: dict[int, dict[str, int]] = field(default_factory=dict)  # step -> answer -> how many were sent
    counted: dict[int, dict[str, int]] = field(default_factory=dict)  # step -> answer -> what the teacher saw
    errors: list[str] = field(default_factory=list)
    polls: int = 0  # follower polls answered
    follow_cpu_s: float = 0.0  # server CPU while the class only followed
    follow_s: float = 0.0  # how long that lasted

    def all_arrivals(self) -> list[float]:
        return [s for seconds in self.arrival_s.values() for s in seconds]

    def p95(self) -> float:
        values = sorted(self.all_arrivals())
        return values[min(len(values) - 1, int(round(0.95 * (len(values) - 1))))] if values else float("nan")

    def cpu_per_follower_minute(self) -> float:
        return self.follow_cpu_s / self.followers / (self.follow_s / 60) if self.follow_s else float("nan")

    def table(self) -> str:
        lines = ["| step | followers there | p50 s | p95 s | max s | answers sent → counted by the teacher's page |",
                 "|---|---|---|---|---|---|"]
        for step in sorted(set(self.arrival_s) | set(self.expected)):
            ordered = sorted(self.arrival_s.get(step, [])) or [float("nan")]
            sent, counted = self.expected.get(step), self.counted.get(step)
            answers = "—" if sent is None else (f"{sum(sent.values())} → exact" if sent == counted else
                                                f"{sent} → {counted}")
            lines.append(f"| {step} | {len(self.arrival_s.get(step, []))}/{self.followers} | "
                         f"{statistics.median(ordered):.2f} | {ordered[int(round(0.95 * (len(ordered) - 1)))]:.2f} | "
                         f"{ordered[-1]:.2f} | {answers} |")
        return "\n".join(lines)


class Follower(StreamlitSession):
    """A student's tab that notes when each step's counter (`n / N`, drawn at the top of the run before the page's
    panels) first reaches it: the moment the student sees the page move."""

    COUNTER = re.compile(r"data-testid='lesson-counter'>(\d+) / \d+<")

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.shown: dict[int, float] = {}  # step -> time.perf_counter() when its counter arrived

    def _on_delta(self, msg) -> None:
        super()._on_delta(msg)
        element = msg.delta.new_element if msg.delta.WhichOneof("type") == "new_element" else None
        if element is not None and element.WhichOneof("type") == "markdown":
            if found := self.COUNTER.search(element.markdown.body):
                self.shown.setdefault(int(found.group(1)), time.perf_counter())


def texts(session: StreamlitSession) -> list[str]:
    return [text for _path, element in session.elements() for text in element_texts(element)]


def counts_shown(session: StreamlitSession) -> dict[str, int]:
    """The answer counts on the teacher's page (the line under the chart)."""
    for text in texts(session):
        if found := ANSWERS.search(text):
            pairs = (item.rsplit(": <b>", 1) for item in found.group(1).split(" · "))
            return {html.unescape(label): int(count.removesuffix("</b>")) for label, count in pairs}
    return {}


def given_answer(question: Question, index: int):
    """What follower `index` answers: every option in turn (choice), right for even followers (number)."""
    if question.kind == "choice":
        return question.options[index % len(question.options)]
    return float(question.answer) + (0 if index % 2 == 0 else 1)


async def run_class(url: str, server_pid: int, followers: int, lesson_id: str = "windows-and-patches",
                    read_s: float = 4.0, follow_s: float = 20.0, join_spread_s: float = 5.0) -> ClassReport:
    """The teacher walks the whole lesson, `read_s` seconds per step; returns what the followers saw."""
    lesson = load_lessons(LESSON_DIR)[0][lesson_id]
    report = ClassReport(followers)
    asyncio.get_running_loop().set_default_executor(ThreadPoolExecutor(max_workers=max(8, 2 * followers)))
    teacher = StreamlitSession(url, timeout=180, fetch_media=False)
    students = [Follower(url, timeout=180, fetch_media=False) for _ in range(followers)]
    locks = [asyncio.Lock() for _ in students]
    seen = [student.shown for student in students]  # follower -> step -> when it first showed it
    done = asyncio.Event()

    def record(i: int, answer) -> None:
        report.errors += [f"follower {i}: {text[:200]}" for text in answer.exceptions]

    async def follow(i: int) -> None:
        student = students[i]
        await asyncio.sleep(join_spread_s * i / max(followers - 1, 1))
        async with locks[i]:
            record(i, await student.open(query=f"join={code}"))
        while not done.is_set():
            start = time.perf_counter()
            async with locks[i]:
                record(i, await student.poll_fragment())
                report.polls += 1
            every = next(iter(student.auto_reruns.values()), 1.0)  # the browser's run_every timer
            await asyncio.sleep(max(0.0, every - (time.perf_counter() - start)))

    async def answer_all(n: int, question: Question) -> None:
        key = f"{lesson_id}:{n}"

        async def one(i: int) -> None:
            async with locks[i]:
                given = given_answer(question, i)
                await students[i].set_widget(f"q-{key}", given)
                await students[i].click(f"qa-{key}")
        await asyncio.gather(*(one(i) for i in range(followers)))
        report.expected[n] = dict(Counter(f"{a:g}" if isinstance(a, float) else a
                                          for a in (given_answer(question, i) for i in range(followers))))

    try:
        await teacher.open(query=f"lesson={lesson_id}&present=1")
        await teacher.click("class-start")
        code = next(m.group(1) for t in texts(teacher) if (m := re.search(r"data-testid='class-code'[^>]*>(\w+)<", t)))
        tasks = [asyncio.create_task(follow(i)) for i in range(followers)]
        deadline = time.perf_counter() + join_spread_s + 60
        while not all(1 in s for s in seen):  # everyone has joined
            failed = [t for t in tasks if t.done()]
            if failed or time.perf_counter() > deadline:
                raise RuntimeError(f"followers did not join: {[repr(t.exception()) for t in failed][:3]}")
            await asyncio.sleep(0.2)
        for n, step in enumerate(lesson.steps, 1):
            if n > 1:
                moved = time.perf_counter()
                await teacher.click("lesson-next")
                deadline = moved + 30
                while not all(n in s for s in seen) and time.perf_counter() < deadline:
                    await asyncio.sleep(0.05)
                report.arrival_s[n] = [s[n] - moved for s in seen if n in s]
                missing = [i for i, s in enumerate(seen) if n not in s]
                report.errors += [f"follower {i} never showed step {n}" for i in missing]
            if step.question is not None:
                await answer_all(n, step.question)
                await asyncio.sleep(2.5)  # the teacher's counts refresh every 2 s
                await teacher.poll_fragment()
                report.counted[n] = counts_shown(teacher)
            await asyncio.sleep(read_s)
        cpu = cpu_seconds(server_pid)
        start = time.perf_counter()
        await asyncio.sleep(follow_s)  # the class only follows: what the polling alone costs
        report.follow_cpu_s, report.follow_s = cpu_seconds(server_pid) - cpu, time.perf_counter() - start
        done.set()
        await asyncio.gather(*tasks)
    except Exception as err:  # a hung run or a closed socket is an error of the run, reported
        report.errors.append(f"{type(err).__name__}: {str(err)[:300]}")
    finally:
        done.set()
        for session in (teacher, *students):
            await session.close()
            report.errors += session.errors
    return report


def follow_class(url: str, server_pid: int, followers: int, **kwargs) -> ClassReport:
    """`run_class` in a thread of its own (pytest's sync Playwright fixtures may already run an event loop here)."""
    result: list[ClassReport] = []
    worker = threading.Thread(target=lambda: result.append(asyncio.run(run_class(url, server_pid, followers, **kwargs))))
    worker.start()
    worker.join()
    return result[0]
