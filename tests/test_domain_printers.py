"""The printer rules with plain values: addresses and keys an admin types, and a printer's status in words."""

from __future__ import annotations

import pytest

from printlab.domain.history import admin_log_sentence
from printlab.domain.printers import (
    Activity,
    Connection,
    PrinterStatus,
    RunVerdict,
    Temperature,
    address_problem,
    api_key_problem,
    describe,
    filament_grams,
    follow_run,
    model_matches,
    next_poll_seconds,
    normal_address,
    same_file,
    takes_file,
    time_left_words,
)


@pytest.mark.parametrize(
    "address",
    ["http://192.168.1.40", "https://octopi.local", "http://octopi.local:5000/", "HTTP://Printer-3.lab.example.edu",
     "http://[fe80::1]:80", "http://10.0.0.7/octoprint"],
)  # fmt: skip
def test_addresses_a_lab_uses_are_accepted(address):
    assert address_problem(address) is None


@pytest.mark.parametrize(
    ("address", "words"),
    [
        ("", "Type the printer's address"),
        ("192.168.1.40", "must start with http:// or https://"),
        ("ftp://192.168.1.40", "must start with http:// or https://"),
        ("file:///etc/passwd", "must start with http:// or https://"),
        ("http://admin:secret@192.168.1.40", "Leave the user name and password out"),
        ("http://", "needs the printer's name or IP address"),
        ("http://octopi.local/?apikey=x", "Leave anything after ? or #"),
        ("http://octopi.local:99999", "isn't an address PrintLab can use"),
        ("http://octo pi.local", "no spaces"),
        ("http://octo_pi!.local", "isn't a computer name or IP address"),
        ("http://" + "a" * 300, "under 300 characters"),
    ],
)
def test_addresses_that_cant_work_are_refused_with_a_reason(address, words):
    assert words in (address_problem(address) or "")


def test_an_address_is_kept_lower_case_without_a_trailing_slash():
    assert normal_address("HTTP://OctoPi.Local:5000/octoprint/") == "http://octopi.local:5000/octoprint"


@pytest.mark.parametrize(
    ("key", "problem"),
    [("A1b2C3d4E5f6_-x", None), ("has space 123", "without spaces"), ("short", "too short"),
     ("k" * 201, "under 200"), ("clé-avec-accent", "without spaces")],
)  # fmt: skip
def test_api_keys_are_printable_ascii_of_a_sensible_length(key, problem):
    found = api_key_problem(key)
    assert (found is None) if problem is None else (problem in (found or ""))


def test_which_kinds_need_a_key():
    assert [c.value for c in Connection if c.needs_key] == ["OCTOPRINT", "PRUSALINK"]


@pytest.mark.parametrize(
    ("seconds", "words"),
    [(0, "less than a minute left"), (59, "less than a minute left"), (60, "about 1 minute left"),
     (40 * 60, "about 40 minutes left"), (3600, "about 1 hour left"), (2 * 3600 + 5 * 60, "about 2 hours 5 minutes left")],
)  # fmt: skip
def test_time_left_in_words(seconds, words):
    assert time_left_words(seconds) == words


SOFTWARE = "OctoPrint 1.11.8"


@pytest.mark.parametrize(
    ("status", "sentence"),
    [
        (PrinterStatus(Activity.IDLE, SOFTWARE, "Operational"), "Connected — OctoPrint 1.11.8, printer operational, idle"),
        (PrinterStatus(Activity.PRINTING, SOFTWARE, "Printing", "part.gcode", 42.4, 2400),
         "Connected — OctoPrint 1.11.8, printing part.gcode, 42% done, about 40 minutes left"),
        (PrinterStatus(Activity.PAUSED, SOFTWARE, "Paused", "part.gcode", 10.0),
         "Connected — OctoPrint 1.11.8, print of part.gcode paused, 10% done"),
        (PrinterStatus(Activity.BUSY, SOFTWARE, "Cancelling"), "Connected — OctoPrint 1.11.8, printer busy (cancelling)"),
        (PrinterStatus(Activity.DISCONNECTED, SOFTWARE, "Closed"),
         "Connected — OctoPrint 1.11.8, but it is not connected to the printer (closed)"),
        (PrinterStatus(Activity.ERROR, SOFTWARE, "Error", message="MAXTEMP triggered!"),
         "Connected — OctoPrint 1.11.8, but the printer reports an error: MAXTEMP triggered!"),
        (PrinterStatus(Activity.OFFLINE, message="Nothing answered at http://10.0.0.7."),
         "Offline — Nothing answered at http://10.0.0.7."),
    ],
)  # fmt: skip
def test_a_status_in_one_sentence(status, sentence):
    assert describe(status) == sentence


def test_finished_means_idle_with_the_file_printed_to_the_end():
    assert PrinterStatus(Activity.IDLE, file="a.gcode", progress=100.0).finished
    assert not PrinterStatus(Activity.IDLE, file="a.gcode", progress=None).finished  # cancelled
    assert not PrinterStatus(Activity.PRINTING, file="a.gcode", progress=100.0).finished
    assert not PrinterStatus(Activity.IDLE, progress=100.0).finished


def test_heaters_are_named_as_staff_name_them():
    heaters = ("tool0", "tool1", "bed", "chamber", "extruder", "extruder1", "heater_bed")
    assert [Temperature(h, 20, 0).label for h in heaters] == [
        "Nozzle", "Nozzle 2", "Bed", "Chamber", "Nozzle", "Nozzle 2", "Bed"
    ]  # fmt: skip


def test_the_admin_log_says_what_happened_to_a_printer():
    added = {"name": "Prusa MK4S", "connection": "OCTOPRINT", "address": "http://10.0.0.7", "key_saved": True}
    assert admin_log_sentence("PrinterAdded", added, "Alex Rivera") == (
        "Printer Prusa MK4S added by Alex Rivera, connected through OctoPrint at http://10.0.0.7"
    )
    assert admin_log_sentence("PrinterAdded", {"name": "Prusa XL", "connection": "NONE"}, "Alex Rivera") == (
        "Printer Prusa XL added by Alex Rivera"
    )
    changed = {"name": "Prusa MK4S", "fields": ["address", "api_key"], "connection": "OCTOPRINT"}
    assert admin_log_sentence("PrinterChanged", changed, "Alex Rivera") == (
        "Printer Prusa MK4S changed by Alex Rivera: address, API key replaced"
    )
    assert (
        admin_log_sentence("PrinterPaused", {"name": "Prusa XL"}, "Sam") == "Printer Prusa XL paused by Sam"
    )
    assert admin_log_sentence("PrinterBackInService", {"name": "Prusa XL"}, "Sam") == (
        "Printer Prusa XL put back in service by Sam"
    )
    assert (
        admin_log_sentence("PrinterRetired", {"name": "Prusa XL"}, None)
        == "Printer Prusa XL retired by PrintLab"
    )


# -- sending and following a print (issue 14) -------------------------------------------------------


@pytest.mark.parametrize(
    ("model", "printer", "matches"),
    [
        ("MK4S", "Prusa MK4S", True),
        ("Original Prusa MK4S 0.4 nozzle", "Prusa MK4S", True),
        ("XL", "Prusa XL", True),
        ("Creality Ender-3 Pro", "Ender 3 Pro", True),
        ("MK4", "Prusa MK4S", False),
        ("MINI", "Prusa MK4S", False),
        ("MK4S", "Prusa XL", False),
        ("", "Prusa MK4S", False),
    ],
)
def test_a_file_matches_the_printer_it_was_sliced_for_word_by_word(model, printer, matches):
    assert model_matches(model, printer) is matches


def test_each_kind_of_printer_takes_its_own_sliced_files():
    assert takes_file(Connection.OCTOPRINT, "Jane_a1b2.gcode")
    assert not takes_file(Connection.OCTOPRINT, "Jane_a1b2.bgcode")
    assert takes_file(Connection.PRUSALINK, "Jane_a1b2.BGCODE")
    assert not takes_file(Connection.MOONRAKER, "Jane_a1b2.3mf")
    assert not takes_file(Connection.NONE, "Jane_a1b2.gcode")


def test_a_file_name_the_printer_tidied_is_still_ours():
    assert same_file("Jane_Doe_a1b2_run3.gcode", "Jane Doe_a1b2_run3.gcode")
    assert same_file("gcodes/Jane_a1b2_run3.gcode", "Jane_a1b2_run3.gcode")
    assert not same_file("Jane_a1b2_run4.gcode", "Jane_a1b2_run3.gcode")
    assert not same_file(None, "Jane_a1b2_run3.gcode")


def test_polls_back_off_when_a_printer_stops_answering_and_never_wait_over_half_a_minute():
    assert [next_poll_seconds(n) for n in range(7)] == [5, 5, 10, 20, 30, 30, 30]


def test_filament_length_becomes_grams_by_the_materials_density():
    assert filament_grams(1000, 1.24) == 3.0  # a metre of 1.75 mm PLA


SENT = "Jane_a1b2_run3.gcode"


@pytest.mark.parametrize(
    ("status", "seen", "since", "verdict"),
    [
        (PrinterStatus(Activity.PRINTING, file=SENT, progress=40), True, 100, RunVerdict.GOING),
        (PrinterStatus(Activity.IDLE, file=SENT, progress=100), True, 100, RunVerdict.FINISHED),
        (PrinterStatus(Activity.IDLE, file=SENT, progress=100), False, 2, RunVerdict.FINISHED),
        # Just started: OctoPrint may still show the file selected and idle.
        (PrinterStatus(Activity.IDLE, file=SENT, progress=None), False, 2, RunVerdict.GOING),
        # After a cancel OctoPrint looks like "file selected, never started".
        (PrinterStatus(Activity.IDLE, file=SENT, progress=None), True, 100, RunVerdict.STOPPED),
        (PrinterStatus(Activity.IDLE, file=SENT, progress=None), False, 60, RunVerdict.STOPPED),
        (PrinterStatus(Activity.ERROR, message="Thermal runaway"), True, 100, RunVerdict.STOPPED),
        (PrinterStatus(Activity.OFFLINE, message="Nothing answered"), True, 100, RunVerdict.GOING),
        (PrinterStatus(Activity.PRINTING, file="other.gcode"), True, 100, RunVerdict.STOPPED),
        (PrinterStatus(Activity.DISCONNECTED), True, 100, RunVerdict.STOPPED),
    ],
)
def test_a_poll_says_whether_a_print_sent_from_printlab_goes_on_finished_or_stopped(
    status, seen, since, verdict
):
    got, reason = follow_run(status, SENT, seen_printing=seen, seconds_since_start=since)
    assert got is verdict
    assert (reason is not None) is (verdict is RunVerdict.STOPPED)


def test_a_stop_says_why_in_the_printers_words():
    error = PrinterStatus(Activity.ERROR, message="Thermal runaway")
    assert follow_run(error, SENT, seen_printing=True, seconds_since_start=9)[1] == "Thermal runaway"
    cancelled = PrinterStatus(Activity.IDLE, file=SENT)
    assert follow_run(cancelled, SENT, seen_printing=True, seconds_since_start=9)[1] == (
        "The print was cancelled on the printer."
    )


@pytest.mark.parametrize(
    ("service", "connection", "activity", "lane"),
    [
        (None, None, None, "not-connected"),  # a catalog printer without a record
        ("IN_SERVICE", "NONE", None, "not-connected"),
        ("RETIRED", "OCTOPRINT", "printing", "not-connected"),
        ("PAUSED", "OCTOPRINT", "printing", "out-of-service"),  # paused by the lab, whatever it says
        ("PAUSED", "NONE", None, "out-of-service"),
        ("IN_SERVICE", "MOONRAKER", None, "no-answer-yet"),
        ("IN_SERVICE", "OCTOPRINT", "idle", "idle"),
        ("IN_SERVICE", "PRUSALINK", "printing", "printing"),
        ("IN_SERVICE", "OCTOPRINT", "paused", "paused"),
        ("IN_SERVICE", "OCTOPRINT", "busy", "busy"),
        ("IN_SERVICE", "OCTOPRINT", "error", "error"),
        ("IN_SERVICE", "OCTOPRINT", "disconnected", "error"),
        ("IN_SERVICE", "OCTOPRINT", "offline", "offline"),
    ],
)
def test_a_board_lanes_state_comes_from_the_record_and_the_last_poll(service, connection, activity, lane):
    from printlab.domain.printers import LaneState, ServiceState, lane_state

    found = lane_state(
        ServiceState(service) if service else None,
        Connection(connection) if connection else None,
        Activity(activity) if activity else None,
    )
    assert found == LaneState(lane) and found.label
