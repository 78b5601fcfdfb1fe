"""The printer rules with plain values: addresses and keys an admin types, and a printer's status in words."""

from __future__ import annotations

import pytest

from printlab.domain.history import admin_log_sentence
from printlab.domain.printers import (
    Activity,
    Connection,
    PrinterStatus,
    Temperature,
    address_problem,
    api_key_problem,
    describe,
    normal_address,
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
