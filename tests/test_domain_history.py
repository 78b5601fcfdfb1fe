"""Every event type the schema document lists, and every admin-log action, reads as a sentence with status labels and names, never a code."""

from __future__ import annotations

import re

import pytest

from printlab.domain.history import admin_log_sentence, job_event_sentence, without_repeats

#: The event types, copied from the customer's data-model document ("Event Types"), not from the code.
SCHEMA_EVENT_TYPES = (
    "JobCreated",
    "StaffApproved",
    "StaffRejected",
    "StatusChanged",
    "StudentConfirmed",
    "ConfirmationExpired",
    "NotesUpdated",
    "AdminOverride",
    "PrintFailed",
    "EmailSent",
    "FileDeleted",
    "JobArchived",
)
ALEX = "Alex Rivera"

#: (event type, details as the services write them, staff name or None, the sentence).
JOB_EVENTS = [
    (
        "JobCreated",
        {"to": "UPLOADED", "size_bytes": 684, "extension": ".stl"},
        None,
        "Submitted by the student",
    ),
    (
        "StaffApproved",
        {"from": "UPLOADED", "to": "PENDING", "weight_g": 42.0, "time_hours": 2.2, "cost_usd": "3.80"},
        ALEX,
        "Approved by Alex Rivera — quote $3.80 emailed",
    ),
    (
        "StaffRejected",
        {"from": "UPLOADED", "to": "REJECTED", "reasons": ["Walls too thin"], "other": "Needs supports"},
        ALEX,
        "Rejected by Alex Rivera — Walls too thin; Needs supports",
    ),
    (
        "StatusChanged",
        {"from": "PENDING", "to": "READYTOPRINT"},
        "Jo Smith",
        "Moved from Pending to Ready to Print by Jo Smith",
    ),
    (
        "StatusChanged",
        {"from": "READYTOPRINT", "to": "PRINTING", "printer": "Prusa MK4S"},
        ALEX,
        "Moved from Ready to Print to Printing by Alex Rivera — on the Prusa MK4S",
    ),
    (
        "StatusChanged",
        {"from": "COMPLETED", "to": "PAIDPICKEDUP", "payment": {"charged_usd": "3.65", "kept_quote": False}},
        ALEX,
        "Moved from Completed to Paid & Picked Up by Alex Rivera — paid $3.65",
    ),
    (
        "StatusChanged",
        {"from": "PAIDPICKEDUP", "to": "COMPLETED", "revert": True, "reason": "Wrong job"},
        ALEX,
        "Moved back from Paid & Picked Up to Completed by Alex Rivera — Wrong job",
    ),
    ("StudentConfirmed", {"from": "PENDING", "to": "READYTOPRINT"}, None, "Confirmed by the student"),
    (
        "ConfirmationExpired",
        {"expired_at": "2026-11-30T10:00:00"},
        None,
        "The quote link expired without a confirmation",
    ),
    ("NotesUpdated", {"length": 12}, ALEX, "Notes edited by Alex Rivera"),
    (
        "AdminOverride",
        {"from": "PENDING", "to": "REJECTED", "override": "change_status", "reason": "Student left"},
        ALEX,
        "Moved from Pending to Rejected by Alex Rivera (admin override) — Student left",
    ),
    (
        "PrintFailed",
        {"from": "PRINTING", "to": "READYTOPRINT", "reason": "Bed adhesion lost"},
        ALEX,
        "Print failed; moved back to Ready to Print by Alex Rivera — Bed adhesion lost",
    ),
    (
        "EmailSent",
        {"template": "quote", "message_id": "<x@printlab>", "outbox_id": 4, "attempt": 1},
        None,
        "Quote email sent",
    ),
    (
        "FileDeleted",
        {"files": ["Pending/….stl", "Pending/….stl.metadata.json"], "reason": "Too big"},
        ALEX,
        "2 files deleted by Alex Rivera — Too big",
    ),
    ("JobArchived", {"from": "PAIDPICKEDUP", "to": "ARCHIVED"}, None, "Archived automatically"),
]

MORE_JOB_EVENTS = [
    (
        "StudentCancelled",
        {"by": "student", "via": "status_link", "cancelled": True, "reason": "Cancelled by the student"},
        None,
        "Cancelled by the student (from the status page)",
    ),
    (
        "QuoteDeclined",
        {"by": "student", "via": "quote_link", "student_reason": "Too expensive"},
        None,
        "Quote declined by the student (from the quote page) — “Too expensive”",
    ),
    (
        "ChangesRequested",
        {"reasons": ["Walls too thin"], "other": "Add a flat base"},
        "Alex Rivera",
        "Changes asked for by Alex Rivera, waiting for the student's corrected file — Walls too thin; Add a flat base",
    ),
    (
        "FileReplaced",
        {"by": "student", "old_file": "_v1.stl", "new_file": ".3mf"},
        None,
        "Corrected .3mf file sent by the student; the earlier file is kept beside it (…_v1.stl)",
    ),
    (
        "StaffRejected",
        {"reasons": ["Walls too thin"], "other": None, "no_answer": True},
        None,
        "Rejected automatically: no corrected file arrived in time — asked for: Walls too thin",
    ),
    ("EmailSent", {"template": "pickup_reminder", "reminder": 2}, None, "Last pickup reminder email sent"),
    (
        "EmailSent",
        {"template": "receipt", "retried_by": ALEX},
        None,
        "Receipt email sent after Alex Rivera retried it",
    ),
    ("QuoteResent", {}, ALEX, "Quote sent again by Alex Rivera with a new confirm link"),
    ("QuoteResent", {}, None, "A new quote link sent at the student's request"),
    ("FileAttached", {"file": "_v2.gcode", "size_bytes": 900}, ALEX, "A .gcode file added by Alex Rivera"),
    (
        "EmailSent",
        {"template": "ready_for_pickup", "requested_by": ALEX},
        None,
        "Ready for pickup email sent again at Alex Rivera's request",
    ),
    (
        "AdminOverride",
        {"override": "break_lock", "was_locked_by": "Sam Lee", "reason": "Sam went home"},
        ALEX,
        "Sam Lee's open dialog released by Alex Rivera (admin override) — Sam went home",
    ),
    (
        "AdminOverride",
        {"override": "rewrite_sidecar", "reason": "Integrity repair"},
        None,
        "Sidecar written again from the database by PrintLab (integrity repair)",
    ),
    (
        "FileDeleted",
        {"retention": "pruned", "files": 2},
        None,
        "Files and the student's details removed at the end of the retention period",
    ),
    ("QuoteEdited", {"from": "PENDING", "to": "PENDING"}, ALEX, "Quote edited by Alex Rivera"),
    # Issue 14: a print sent to a connected printer, its end reported by the printer, and a stop.
    (
        "StatusChanged",
        {"from": "READYTOPRINT", "to": "PRINTING", "printer": "Prusa MK4S", "sent": True},
        ALEX,
        "Moved from Ready to Print to Printing by Alex Rivera — on the Prusa MK4S, sent to the printer "
        "from PrintLab",
    ),
    (
        "StatusChanged",
        {
            "from": "PRINTING",
            "to": "COMPLETED",
            "printer": "Prusa MK4S",
            "finished_on_printer": True,
            "started_by": "Alex Rivera",
            "printed_hours": 1.5,
            "printed_g": 38.2,
        },
        None,
        "Moved from Printing to Completed by PrintLab — the Prusa MK4S reported the print finished "
        "(started by Alex Rivera; printed in 1 h 30 min; 38.2 g of filament)",
    ),
    (
        "StatusChanged",
        {
            "from": "PRINTING",
            "to": "COMPLETED",
            "printer": "Prusa MK4S",
            "finished_on_printer": True,
            "printed_hours": 0.001,
        },
        None,
        "Moved from Printing to Completed by PrintLab — the Prusa MK4S reported the print finished "
        "(printed in under a minute)",
    ),
    (
        "PrinterStopped",
        {
            "printer": "Prusa MK4S",
            "reason": "The print was cancelled on the printer.",
            "started_by": "Alex Rivera",
        },
        None,
        "The Prusa MK4S stopped the print (started from PrintLab by Alex Rivera) — The print was cancelled "
        "on the printer.",
    ),
]

ADMIN_ACTIONS = [
    (
        "ApiTokenCreated",
        {"name": "Finance sync", "staff": "Jo Smith", "scope": "read"},
        ALEX,
        "API token “Finance sync” for Jo Smith (read only) made by Alex Rivera",
    ),
    (
        "ApiTokenRevoked",
        {"name": "Finance sync", "staff": "Jo Smith"},
        ALEX,
        "API token “Finance sync” for Jo Smith revoked by Alex Rivera",
    ),
    ("StaffAdded", {"name": "Jo Smith"}, ALEX, "Staff member Jo Smith added by Alex Rivera"),
    (
        "StaffDeactivated",
        {"name": "Jo Smith"},
        ALEX,
        "Staff member Jo Smith taken off the staff list by Alex Rivera",
    ),
    (
        "StaffReactivated",
        {"name": "Jo Smith"},
        ALEX,
        "Staff member Jo Smith put back on the staff list by Alex Rivera",
    ),
    (
        "WorkstationAdded",
        {"workstation": "FrontDesk", "admin": True},
        "the server console",
        "Workstation FrontDesk added as an admin workstation by the server console",
    ),
    (
        "WorkstationPasswordReset",
        {"workstation": "LAB-PC-1"},
        ALEX,
        "Workstation LAB-PC-1 given a new password by Alex Rivera",
    ),
    (
        "WorkstationDeactivated",
        {"workstation": "LAB-PC-1"},
        ALEX,
        "Workstation LAB-PC-1 switched off by Alex Rivera",
    ),
    (
        "WorkstationReactivated",
        {"workstation": "LAB-PC-1"},
        ALEX,
        "Workstation LAB-PC-1 switched on again by Alex Rivera",
    ),
    (
        "WorkstationAdminChanged",
        {"workstation": "LAB-PC-1", "admin": False},
        ALEX,
        "Workstation LAB-PC-1 made an ordinary workstation by Alex Rivera",
    ),
    (
        "WorkstationSignInReleased",
        {"workstation": "FrontDesk"},
        "the server console",
        "Workstation FrontDesk allowed to sign in again by the server console",
    ),
    (
        "SignInFailed",
        {"workstation": "FrontDesk", "address": "127.0.0.1"},
        None,
        "Wrong password for workstation FrontDesk from 127.0.0.1",
    ),
    (
        "CatalogChanged",
        {"section": "all", "fields": ["rejection_reasons", "lab"]},
        ALEX,
        "Catalog changed by Alex Rivera: rejection reasons, lab",
    ),
    ("CatalogChanged", {"section": "printers"}, ALEX, "Catalog changed by Alex Rivera: printers"),
    ("BannerChanged", {"banner": "Closed Friday"}, ALEX, "Banner set to “Closed Friday” by Alex Rivera"),
    ("BannerChanged", {"banner": ""}, ALEX, "Banner removed by Alex Rivera"),
    (
        "IntegrityRepair",
        {"repair": "orphan_to_lost_and_found", "path": "Pending/x.stl", "to": "Lost+Found/Pending/x.stl"},
        ALEX,
        "File Pending/x.stl, which belongs to no job, moved to Lost+Found/Pending/x.stl by Alex Rivera (integrity repair)",
    ),
    (
        "PrinterAdded",
        {
            "name": "Prusa MK4S",
            "connection": "MOONRAKER",
            "address": "http://voron.local",
            "key_saved": False,
        },
        ALEX,
        "Printer Prusa MK4S added by Alex Rivera, connected through Moonraker (Klipper) at http://voron.local",
    ),
    (
        "PrinterChanged",
        {"name": "Prusa MK4S", "fields": ["connection", "address", "api_key_removed"], "connection": "NONE"},
        ALEX,
        "Printer Prusa MK4S changed by Alex Rivera: connection, address, API key removed",
    ),
    ("PrinterPaused", {"name": "Prusa XL"}, ALEX, "Printer Prusa XL paused by Alex Rivera"),
    (
        "PrinterBackInService",
        {"name": "Prusa XL"},
        ALEX,
        "Printer Prusa XL put back in service by Alex Rivera",
    ),
    (
        "PrinterRetired",
        {"name": "Prusa XL"},
        "the server console",
        "Printer Prusa XL retired by the server console",
    ),
    ("StaffPinSet", {"name": "Jo Park", "own": True}, "Jo Park", "Jo Park set their own PIN"),
    ("StaffPinSet", {"name": "Jo Park", "own": False}, ALEX, "PIN for Jo Park set by Alex Rivera"),
    (
        "CampusPersonSeen",
        {"person": "Jo Park", "email": "jo@uni.example"},
        None,
        "Jo Park (jo@uni.example) signed in with a campus account for the first time",
    ),
    (
        "CampusRoleFromGroups",
        {"person": "Jo Park", "from": "NONE", "to": "STAFF"},
        None,
        "Jo Park is now staff, from their campus groups",
    ),
    (
        "CampusPersonApproved",
        {"person": "Jo Park", "role": "ADMIN"},
        ALEX,
        "Jo Park let in as an admin by Alex Rivera",
    ),
    ("CampusPersonRefused", {"person": "Jo Park"}, ALEX, "Jo Park's access removed by Alex Rivera"),
    (
        "CampusGroupRoleSet",
        {"group": "mkr-staff", "role": "STAFF"},
        ALEX,
        "Members of campus group mkr-staff made staff by Alex Rivera",
    ),
    (
        "CampusGroupRoleSet",
        {"group": "mkr-staff", "role": None},
        ALEX,
        "Campus group mkr-staff no longer gives a role (changed by Alex Rivera)",
    ),
]


def test_every_event_type_the_schema_lists_has_its_own_sentence():
    assert set(SCHEMA_EVENT_TYPES) <= {event for event, *_ in JOB_EVENTS}


@pytest.mark.parametrize(("event_type", "details", "by", "sentence"), JOB_EVENTS + MORE_JOB_EVENTS)
def test_a_job_event_reads_as_a_sentence(event_type, details, by, sentence):
    assert job_event_sentence(event_type, details, by) == sentence


@pytest.mark.parametrize(("action", "details", "by", "sentence"), ADMIN_ACTIONS)
def test_an_admin_log_entry_reads_as_a_sentence(action, details, by, sentence):
    assert admin_log_sentence(action, details, by) == sentence


def test_no_sentence_shows_a_code():
    names = {e for e, *_ in JOB_EVENTS + MORE_JOB_EVENTS} | {a for a, *_ in ADMIN_ACTIONS}
    codes = re.compile(r"\b(UPLOADED|PENDING|READYTOPRINT|PAIDPICKEDUP|" + "|".join(names) + r")\b")
    for event_type, details, by, _ in JOB_EVENTS + MORE_JOB_EVENTS:
        assert not codes.search(job_event_sentence(event_type, details, by)), event_type
    for action, details, by, _ in ADMIN_ACTIONS:
        assert not codes.search(admin_log_sentence(action, details, by)), action


def test_approving_is_one_line_though_it_writes_two_events():
    approve = {"from": "UPLOADED", "to": "PENDING", "cost_usd": "3.80"}
    events = [
        {"event_type": "JobCreated", "timestamp": 1, "triggered_by": None, "details": {"to": "UPLOADED"}},
        {"event_type": "StaffApproved", "timestamp": 2, "triggered_by": ALEX, "details": approve},
        {"event_type": "StatusChanged", "timestamp": 2, "triggered_by": ALEX, "details": approve},
        {"event_type": "StatusChanged", "timestamp": 3, "triggered_by": ALEX, "details": approve},
    ]
    kept = without_repeats(events)
    assert [(e["event_type"], e["timestamp"]) for e in kept] == [
        ("JobCreated", 1),
        ("StaffApproved", 2),
        ("StatusChanged", 3),
    ]
