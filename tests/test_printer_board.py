"""The printer board on both databases: each printer's queue in order and moved by staff (stale and bad
moves refused, nothing changed), the lanes' states, the refresh poll's 304, the dashboard's Printing
cards and the student's "Printing — about 40 minutes left"."""

from __future__ import annotations

import itertools
import re
from datetime import timedelta

import pytest
from sqlalchemy import select, update

from printlab.clock import utcnow
from printlab.domain.catalog import DEFAULT_CATALOG
from printlab.domain.printers import LaneState, temperatures_from, temperatures_words
from printlab.domain.statuses import Status
from printlab.domain.student_messages import printing_label
from printlab.models import DashboardVersion, Job, PrintRunState, QueuePlace
from printlab.services.errors import ValidationError
from printlab.services.printers import queue
from printlab.services.views.dashboard import JobQuery, list_jobs
from printlab.services.views.my_requests import my_requests
from printlab.services.views.printer_board import printer_board
from printlab.services.views.student_status import student_view

from .conftest import sign_in_client
from .factories import make_job
from .fleet_factories import SECRET, add_fleet, make_poll, make_printer, make_run, set_run

MK4S, XL = "Prusa MK4S", "Prusa XL"


_students = itertools.count(1)


def a_job(session, storage, status: Status, printer: str = MK4S, name: str = "Jane Doe") -> Job:  # type: ignore[no-untyped-def]
    """A job in `status` for `printer`, from a student of its own (the same file twice is a duplicate)."""
    number = next(_students)
    return make_job(
        session, storage, status, printer=printer, student_name=name,
        student_email=f"{name.lower().replace(' ', '.')}.{number}@example.edu",
    )  # fmt: skip


def ready(session, storage, printer: str = MK4S, *, minutes_ago: int = 0, name: str = "Jane Doe") -> Job:  # type: ignore[no-untyped-def]
    """A Ready-to-Print job for `printer`, its confirmation `minutes_ago`."""
    job = a_job(session, storage, Status.READYTOPRINT, printer, name)
    session.execute(
        update(Job)
        .where(Job.id == job.id)
        .values(student_confirmed_at=utcnow() - timedelta(minutes=minutes_ago))
    )
    session.commit()
    return job


def lane_of(session, name: str = MK4S):  # type: ignore[no-untyped-def]
    session.rollback()  # a fresh snapshot: the app's requests commit on their own connections
    board = printer_board(session, DEFAULT_CATALOG)
    return next(lane for lane in board.lanes if lane.name == name)


def queue_ids(session, name: str = MK4S) -> list[str]:  # type: ignore[no-untyped-def]
    return [job.id for job in lane_of(session, name).queue]


def version(session) -> int:  # type: ignore[no-untyped-def]
    session.rollback()
    return session.scalar(select(DashboardVersion.version))


# -- the queue ---------------------------------------------------------------------------------------


def test_a_queue_holds_its_printers_ready_jobs_oldest_confirmation_first(session, storage):
    newest = ready(session, storage, minutes_ago=5, name="Cara New")
    oldest = ready(session, storage, minutes_ago=50, name="Ann Old")
    middle = ready(session, storage, minutes_ago=20, name="Ben Mid")
    on_xl = ready(session, storage, XL, name="Dan Other")
    a_job(session, storage, Status.PENDING, MK4S)  # not confirmed: in no queue
    a_job(session, storage, Status.PRINTING, MK4S)  # at the printer: not queued

    assert queue_ids(session) == [oldest.id, middle.id, newest.id]
    assert queue_ids(session, XL) == [on_xl.id]
    lane = lane_of(session)
    assert lane.seen == ",".join([oldest.id, middle.id, newest.id])
    assert [job.student_name for job in lane.queue] == ["Ann Old", "Ben Mid", "Cara New"]
    assert lane.queue[0].file_name == "stl_binary_20mm_xyz_cube.stl"


def test_moving_a_job_saves_the_whole_order_and_a_later_job_joins_at_the_end(session, storage):
    first, second, third = (ready(session, storage, minutes_ago=m) for m in (30, 20, 10))
    before = version(session)
    moved = queue.move(session, MK4S, third.id, 1, seen=[first.id, second.id, third.id])
    assert (moved.place, moved.total, moved.changed) == (1, 3, True)
    assert moved.display_name == third.display_name
    assert queue_ids(session) == [third.id, first.id, second.id]
    places = dict(session.execute(select(QueuePlace.job_id, QueuePlace.position)).all())
    assert places == {third.id: 1, first.id: 2, second.id: 3}
    assert version(session) == before + 1  # the board's and dashboard's polls see the move

    later = ready(session, storage, minutes_ago=60)  # confirmed earliest, but the order was set: last
    assert queue_ids(session) == [third.id, first.id, second.id, later.id]
    queue.move(session, MK4S, later.id, 3, seen=[third.id, first.id, second.id, later.id])
    assert queue_ids(session) == [third.id, first.id, later.id, second.id]


def test_moving_a_job_to_its_own_place_changes_nothing(session, storage):
    first, second = ready(session, storage, minutes_ago=9), ready(session, storage)
    before = version(session)
    moved = queue.move(session, MK4S, second.id, 2, seen=[first.id, second.id])
    assert moved.changed is False
    assert version(session) == before and session.scalar(select(QueuePlace.job_id)) is None


def test_a_move_from_a_queue_that_changed_meanwhile_is_refused_and_changes_nothing(session, storage):
    first, second, third = (ready(session, storage, minutes_ago=m) for m in (30, 20, 10))
    shown = [first.id, second.id, third.id]
    queue.move(session, MK4S, third.id, 1, seen=shown)  # another computer moves first
    before = version(session)
    with pytest.raises(queue.QueueChanged, match="Prusa MK4S's queue changed while you were looking"):
        queue.move(session, MK4S, first.id, 3, seen=shown)
    assert queue_ids(session) == [third.id, first.id, second.id] and version(session) == before

    joined = ready(session, storage)  # a job joined since the page was shown
    with pytest.raises(queue.QueueChanged):
        queue.move(session, MK4S, first.id, 1, seen=[third.id, first.id, second.id])
    assert queue_ids(session) == [third.id, first.id, second.id, joined.id]


def test_two_computers_moving_in_one_queue_at_once_one_move_wins_the_other_is_told(engine, session, storage):
    """Ten trials: both send a move from the same queue at the same instant; the lane's locked rows make
    them take turns, so the second sees a changed queue and is refused, never a mix of both."""
    from concurrent.futures import ThreadPoolExecutor
    from threading import Barrier

    from sqlalchemy.orm import Session

    jobs = [ready(session, storage, minutes_ago=m).id for m in (40, 30, 20, 10)]
    for _ in range(10):
        shown = queue_ids(session)
        start = Barrier(2)

        def mover(job_id: str, place: int, shown: list[str] = shown, start: Barrier = start) -> object:
            with Session(engine) as own:
                start.wait()
                try:
                    return queue.move(own, MK4S, job_id, place, seen=shown)
                except queue.QueueChanged as exc:
                    return exc

        with ThreadPoolExecutor(2) as pool:
            answers = list(pool.map(mover, [shown[3], shown[0]], [1, 4]))
        moved = [a for a in answers if isinstance(a, queue.Moved)]
        refused = [a for a in answers if isinstance(a, queue.QueueChanged)]
        assert len(moved) == 1 and len(refused) == 1, answers
        winner = moved[0]
        expected = [job for job in shown if job != winner.job_id]
        expected.insert(winner.place - 1, winner.job_id)
        assert queue_ids(session) == expected
    assert sorted(queue_ids(session)) == sorted(jobs)


def test_moves_that_cannot_be_made_say_why_and_change_nothing(session, storage):
    first, second = ready(session, storage, minutes_ago=9), ready(session, storage)
    other = ready(session, storage, XL)
    printing = a_job(session, storage, Status.PRINTING, MK4S)
    seen = [first.id, second.id]
    before = version(session)
    cases = [
        (MK4S, printing.id, 1, "is Printing, not Ready to Print"),
        (MK4S, other.id, 1, "is queued for Prusa XL, not Prusa MK4S"),
        (MK4S, "no-such-job", 1, "isn't in PrintLab any more"),
        (MK4S, "", 1, "isn't in PrintLab any more"),
        ("Bambu X1", first.id, 1, "Choose one of the lab's printers"),
        (MK4S, first.id, 0, "Choose a place from 1 to 2"),
        (MK4S, first.id, 3, "Choose a place from 1 to 2"),
        (MK4S, first.id, None, "Choose a place from 1 to 2"),
    ]
    for printer, job_id, place, words in cases:
        with pytest.raises(ValidationError, match=words):
            queue.move(session, printer, job_id, place, seen=seen)
    assert queue_ids(session) == seen and version(session) == before
    assert session.scalar(select(QueuePlace.job_id)) is None


# -- the lanes ---------------------------------------------------------------------------------------


def test_each_catalog_printer_has_a_lane_in_the_state_its_record_and_poll_give(session, storage):
    mk4s = make_printer(session, MK4S)
    xl = make_printer(session, XL, address="http://10.0.0.8")
    make_printer(session, "Raise3D Pro 2 Plus", "NONE", state="PAUSED")
    # Formlabs Form 3 has no record: a lane all the same, not connected.
    make_poll(session, mk4s, "idle", temperatures=[{"heater": "tool0", "actual": 24.6, "target": 0},
                                                     {"heater": "bed", "actual": 23.1, "target": None}])  # fmt: skip
    make_poll(session, xl, "offline", message="The printer didn't answer at http://10.0.0.8.", progress=None)
    board = printer_board(session, DEFAULT_CATALOG)
    states = {lane.name: lane.state for lane in board.lanes}
    assert states == {
        MK4S: LaneState.IDLE,
        XL: LaneState.OFFLINE,
        "Raise3D Pro 2 Plus": LaneState.OUT_OF_SERVICE,
        "Formlabs Form 3": LaneState.NOT_CONNECTED,
    }
    lanes = {lane.name: lane for lane in board.lanes}
    assert lanes[MK4S].temperatures == "Nozzle 25 °C · Bed 23 °C"
    assert lanes[MK4S].message is None and lanes[MK4S].detail == "Operational"
    assert lanes[XL].message == "The printer didn't answer at http://10.0.0.8."
    assert lanes[XL].last_answer is not None
    assert LaneState.OUT_OF_SERVICE.label == "Out of service — paused by the lab"


def test_a_paused_connected_printer_is_out_of_service_whatever_it_last_said(session, storage):
    mk4s = make_printer(session, MK4S)
    make_poll(session, mk4s, "error", message="Thermal runaway")
    assert lane_of(session).state == LaneState.ERROR and lane_of(session).message == "Thermal runaway"
    from printlab.services.printers import fleet

    fleet.set_state(session, mk4s.id, "PAUSED")
    lane = lane_of(session)
    assert lane.state == LaneState.OUT_OF_SERVICE and lane.message is None and lane.temperatures == ""


def test_a_retired_record_or_one_without_a_connection_leaves_a_not_connected_lane_with_its_queue(
    session, storage
):
    make_printer(session, MK4S, "NONE")
    retired = make_printer(session, XL)
    from printlab.services.printers import fleet

    fleet.set_state(session, retired.id, "RETIRED")
    queued = ready(session, storage, XL)
    assert lane_of(session).state == LaneState.NOT_CONNECTED
    xl = lane_of(session, XL)
    assert xl.state == LaneState.NOT_CONNECTED and [job.id for job in xl.queue] == [queued.id]


def test_a_connected_printer_not_heard_from_yet_says_so(session, storage):
    make_printer(session, MK4S)
    assert lane_of(session).state == LaneState.NO_ANSWER_YET


def test_a_lane_shows_its_print_with_progress_time_left_and_who_started_it(session, storage):
    mk4s = make_printer(session, MK4S)
    job = a_job(session, storage, Status.PRINTING, MK4S)
    started = utcnow() - timedelta(minutes=30)
    make_run(session, job, mk4s, started_at=started)
    make_poll(session, mk4s, "printing", file=f"{job.display_name}.gcode", progress=42.5, seconds_left=2400)
    lane = lane_of(session)
    assert lane.state == LaneState.PRINTING and lane.other_print is None
    [entry] = lane.printing
    assert entry.job.id == job.id and entry.job.file_name == "stl_binary_20mm_xyz_cube.stl"
    assert entry.live is not None
    assert (entry.live.progress, entry.live.time_left) == (42.5, "about 40 minutes left")
    assert (entry.live.requested_by, entry.live.started_at) == ("Alex Rivera", started)


def test_a_print_started_by_hand_shows_in_its_printers_lane_without_progress(session, storage):
    job = a_job(session, storage, Status.PRINTING, XL)
    [entry] = lane_of(session, XL).printing
    assert entry.job.id == job.id and entry.live is None and entry.since is not None


def test_a_file_the_printer_prints_that_printlab_did_not_send_is_shown_as_such(session, storage):
    mk4s = make_printer(session, MK4S)
    make_poll(session, mk4s, "printing", file="calibration_cube.gcode", progress=10.0, seconds_left=600)
    lane = lane_of(session)
    assert lane.printing == [] and lane.other_print == ("calibration_cube.gcode", 10.0)


def test_the_board_reads_the_same_few_statements_for_20_printers_and_200_queued_jobs(app, session, storage):
    """Five statements whatever the fleet's size (checked in test_query_counts through the page too)."""
    from sqlalchemy import event

    from printlab.domain.catalog import Printer
    from printlab.models import LabSetting
    from printlab.services.lab.catalog import encode_setting

    template = a_job(session, storage, Status.READYTOPRINT)
    printers = tuple(Printer(f"Printer {n:02}", "Filament", (250, 210, 220)) for n in range(1, 21))
    session.merge(LabSetting(key="printers", value=encode_setting("printers", printers), updated_at=utcnow()))
    session.commit()
    catalog = DEFAULT_CATALOG.with_changes(printers=printers)
    session.execute(update(Job).where(Job.id == template.id).values(printer="Printer 01"))
    session.commit()
    template = session.get(Job, template.id)

    def count() -> int:
        statements: list[str] = []
        engine = session.get_bind()
        listener = lambda *args: statements.append(args[2])  # noqa: E731
        event.listen(engine, "before_cursor_execute", listener)
        try:
            board = printer_board(session, catalog)
        finally:
            event.remove(engine, "before_cursor_execute", listener)
        assert len(board.lanes) == 20
        found = [s for s in statements if not s.strip().upper().startswith(("BEGIN", "SAVEPOINT", "RELEASE"))]
        return len(found)

    small = count()
    add_fleet(session, template, printers, 200)
    big = count()
    lanes = printer_board(session, catalog).lanes
    assert sum(len(lane.queue) for lane in lanes) == 201 - 10  # ten of them print now
    assert sum(1 for lane in lanes for entry in lane.printing if entry.live and entry.live.progress) == 10
    assert small == big == 5


# -- the pages ---------------------------------------------------------------------------------------


def csrf(client, path: str = "/printers") -> str:  # type: ignore[no-untyped-def]
    found = re.search(r'name="csrf_token" value="([^"]+)"', client.get(path).get_data(as_text=True))
    return found.group(1) if found else ""


def test_the_board_is_for_signed_in_staff(client):
    assert client.get("/printers").status_code == 302
    assert client.get("/printers/lanes").status_code == 302
    assert client.post("/printers/queue", data={}).status_code in (302, 400)


def test_the_board_page_shows_lanes_and_moves_a_job_without_script(client, session, storage):
    sign_in_client(client, session)
    mk4s = make_printer(session, MK4S)
    make_poll(session, mk4s, "idle")
    first, second = (
        ready(session, storage, minutes_ago=9, name="Ann Old"),
        ready(session, storage, name="Ben New"),
    )
    page = client.get("/printers").get_data(as_text=True)
    assert "<h1>Printers</h1>" in page and 'aria-current="page">Printers</a>' in page
    assert page.index("Ann Old") < page.index("Ben New") and "Out of service" not in page
    assert "Idle" in page and "Not connected" in page  # MK4S connected; the others have no record
    answer = client.post(
        "/printers/queue",
        data={"csrf_token": csrf(client), "printer": MK4S, "job": second.id, "place": "1",
              "seen": f"{first.id},{second.id}"},
    )  # fmt: skip
    assert answer.status_code == 303 and answer.location.endswith(f"/printers#q-{second.id}")
    page = client.get("/printers").get_data(as_text=True)
    assert f"Moved {second.display_name} to place 1 of 2 in Prusa MK4S" in page
    assert page.index("Ben New") < page.index("Ann Old")


def test_a_stale_or_bad_move_answers_with_the_board_and_a_message(client, session, storage):
    sign_in_client(client, session)
    first, second = ready(session, storage, minutes_ago=9), ready(session, storage)
    token = csrf(client)
    stale = client.post(
        "/printers/queue",
        data={"csrf_token": token, "printer": MK4S, "job": second.id, "place": "1", "seen": second.id},
    )
    assert stale.status_code == 409
    assert "queue changed while you were looking" in stale.get_data(as_text=True)
    bad = client.post(
        "/printers/queue",
        data={"csrf_token": token, "printer": MK4S, "job": second.id, "place": "1½",
              "seen": f"{first.id},{second.id}"},
    )  # fmt: skip
    assert bad.status_code == 422 and "Choose a place from 1 to 2" in bad.get_data(as_text=True)
    json_answer = client.post(
        "/printers/queue",
        data={"csrf_token": token, "printer": MK4S, "job": "nope", "place": "1", "seen": ""},
        headers={"Accept": "application/json"},
    )
    assert json_answer.status_code == 422 and "isn't in PrintLab" in json_answer.get_json()["message"]
    moved = client.post(
        "/printers/queue",
        data={"csrf_token": token, "printer": MK4S, "job": second.id, "place": "1",
              "seen": f"{first.id},{second.id}"},
        headers={"Accept": "application/json"},
    )  # fmt: skip
    assert moved.status_code == 200 and moved.get_json()["ok"] is True
    assert queue_ids(session) == [second.id, first.id]
    no_token = client.post("/printers/queue", data={"printer": MK4S, "job": first.id, "place": "1"})
    assert no_token.status_code == 400 and queue_ids(session) == [second.id, first.id]


@pytest.fixture
def one_minute(monkeypatch):  # type: ignore[no-untyped-def]
    """The pages' clock held still: the polls' tags change with the minute, and a slow run may cross one."""
    still = utcnow()
    for module in ("web.printers.board", "services.views.printer_board", "web.dashboard.routes",
                   "services.views.dashboard"):  # fmt: skip
        monkeypatch.setattr(f"printlab.{module}.utcnow", lambda: still)


def test_an_unchanged_lanes_poll_is_a_304_and_each_kind_of_change_makes_it_new(
    client, session, storage, one_minute
):
    sign_in_client(client, session)
    mk4s = make_printer(session, MK4S)
    make_poll(session, mk4s, "idle")
    first, second = ready(session, storage, minutes_ago=9), ready(session, storage)

    def poll(etag: str | None = None):  # type: ignore[no-untyped-def]
        return client.get("/printers/lanes", headers={"If-None-Match": etag} if etag else {})

    fresh = poll()
    etag = fresh.headers["ETag"]
    assert fresh.status_code == 200 and "Prusa MK4S" in fresh.get_data(as_text=True)
    assert poll(etag).status_code == 304

    changes = [
        lambda: queue.move(session, MK4S, second.id, 1, seen=[first.id, second.id]),
        lambda: make_poll(session, mk4s, "printing", progress=3.0, now=utcnow() + timedelta(seconds=1)),
        lambda: make_run(session, session.get(Job, first.id), mk4s, PrintRunState.SENDING),
        lambda: set_run(session, run_of(session, first.id), state=PrintRunState.NOT_STARTED),
        lambda: make_printer(session, XL, address="http://10.0.0.8"),
    ]
    for number, change in enumerate(changes):
        change()
        answer = poll(etag)
        assert answer.status_code == 200, number
        etag = answer.headers["ETag"]
        assert poll(etag).status_code == 304, number


def run_of(session, job_id: str):  # type: ignore[no-untyped-def]
    from printlab.models import PrintRun

    session.rollback()
    return session.scalars(
        select(PrintRun).where(PrintRun.job_id == job_id).order_by(PrintRun.id.desc())
    ).first()


# -- the dashboard and the student's pages --------------------------------------------------------------


def test_printing_cards_show_progress_and_a_stopped_print_is_flagged(client, session, storage, one_minute):
    sign_in_client(client, session)
    mk4s = make_printer(session, MK4S)
    job = a_job(session, storage, Status.PRINTING, MK4S)
    run = make_run(session, job, mk4s)
    make_poll(session, mk4s, "printing", progress=61.0, seconds_left=45 * 60)
    page = list_jobs(session, JobQuery(status=Status.PRINTING), DEFAULT_CATALOG)
    [card] = page.cards
    assert (
        card.live is not None
        and card.live.progress == 61.0
        and card.live.time_left == "about 45 minutes left"
    )
    html = client.get("/dashboard?status=PRINTING").get_data(as_text=True)
    assert "61% done · about 45 minutes left" in html and 'aria-label="' in html and "<progress" in html

    etag = client.get("/dashboard/cards?status=PRINTING").headers["ETag"]
    assert client.get("/dashboard/cards?status=PRINTING", headers={"If-None-Match": etag}).status_code == 304
    set_run(
        session, run, state=PrintRunState.STOPPED, message="Print cancelled on the printer", ended_at=utcnow()
    )
    changed = client.get("/dashboard/cards?status=PRINTING", headers={"If-None-Match": etag})
    assert changed.status_code == 200
    html = changed.get_data(as_text=True)
    assert "Printer stopped: Print cancelled on the printer" in html and "Print failed" in html
    assert "<progress" not in html


def test_the_students_page_says_how_long_the_print_has_left(session, storage):
    mk4s = make_printer(session, MK4S)
    job = a_job(session, storage, Status.PRINTING, MK4S)
    assert student_view(session, job, DEFAULT_CATALOG).status_label == "Printing"
    make_run(session, job, mk4s)
    assert student_view(session, job, DEFAULT_CATALOG).status_label == "Printing"  # no poll yet
    make_poll(session, mk4s, "printing", progress=30.0, seconds_left=40 * 60 + 10)
    assert student_view(session, job, DEFAULT_CATALOG).status_label == "Printing — about 40 minutes left"
    [mine] = my_requests(session, job.student_email, SECRET).requests
    assert mine.status_label == "Printing — about 40 minutes left"
    make_poll(session, mk4s, "offline", message="No answer", seconds_left=None)
    assert student_view(session, job, DEFAULT_CATALOG).status_label == "Printing"


def test_printing_words_and_temperatures_in_plain_values():
    assert printing_label(None) == "Printing"
    assert printing_label(30) == "Printing — less than a minute left"
    assert printing_label(7500) == "Printing — about 2 hours 5 minutes left"
    stored = [{"heater": "tool0", "actual": 214.8, "target": 215}, {"heater": "bed", "actual": 60, "target": 60},
              {"heater": "chamber", "actual": None, "target": None}, "junk", {"heater": 3}]  # fmt: skip
    assert temperatures_words(temperatures_from(stored)) == "Nozzle 215/215 °C · Bed 60/60 °C"
    assert temperatures_from(None) == () and temperatures_words(()) == ""
