"""The status module: the seed's three spellings of every status and SPEC §4's transition table, as plain values."""

import pytest

from printlab.domain.statuses import (
    DUPLICATE_BLOCKING,
    NOT_STAFF_ACTIONS,
    STATUS_FOLDERS,
    TRANSITIONS,
    Action,
    InvalidTransition,
    Status,
    allowed_actions,
    transition_for,
)

# code, folder, label — copied from seed/database-schema.md and SPEC §4, not from the code.
SPELLINGS = [
    ("UPLOADED", "Uploaded", "Uploaded"),
    ("PENDING", "Pending", "Pending"),
    ("READYTOPRINT", "ReadyToPrint", "Ready to Print"),
    ("PRINTING", "Printing", "Printing"),
    ("COMPLETED", "Completed", "Completed"),
    ("PAIDPICKEDUP", "PaidPickedUp", "Paid & Picked Up"),
    ("REJECTED", None, "Rejected"),
    ("ARCHIVED", "Archived", "Archived"),
]

# SPEC §4, row by row: (action, from, to, event, email template or None).
SPEC_TABLE = {
    (Action.SUBMIT, None, Status.UPLOADED, "JobCreated", "receipt"),
    (Action.APPROVE, Status.UPLOADED, Status.PENDING, "StaffApproved", "quote"),
    (Action.REJECT, Status.UPLOADED, Status.REJECTED, "StaffRejected", "rejected"),
    (Action.CONFIRM, Status.PENDING, Status.READYTOPRINT, "StudentConfirmed", "confirmed"),
    (Action.FORCE_CONFIRM, Status.PENDING, Status.READYTOPRINT, "AdminOverride", None),
    (Action.START_PRINTING, Status.READYTOPRINT, Status.PRINTING, "StatusChanged", None),
    (Action.COMPLETE, Status.PRINTING, Status.COMPLETED, "StatusChanged", "ready_for_pickup"),
    (Action.PRINT_FAILED, Status.PRINTING, Status.READYTOPRINT, "PrintFailed", None),
    (Action.RECORD_PICKUP, Status.COMPLETED, Status.PAIDPICKEDUP, "StatusChanged", "payment_receipt"),
    (Action.REVERT, Status.COMPLETED, Status.PRINTING, "StatusChanged", None),
    (Action.REVERT, Status.PAIDPICKEDUP, Status.COMPLETED, "StatusChanged", None),
    (Action.ARCHIVE, Status.PAIDPICKEDUP, Status.ARCHIVED, "JobArchived", None),
    (Action.ARCHIVE, Status.REJECTED, Status.ARCHIVED, "JobArchived", None),
    # staff actions that once needed an admin override (issue 11)
    (Action.CANCEL, Status.PENDING, Status.REJECTED, "StaffRejected", "rejected"),
    (Action.CANCEL, Status.READYTOPRINT, Status.REJECTED, "StaffRejected", "rejected"),
    (Action.EDIT_QUOTE, Status.PENDING, Status.PENDING, "StaffApproved", "quote"),
    (Action.EDIT_QUOTE, Status.READYTOPRINT, Status.PENDING, "StaffApproved", "quote"),
    (Action.CONFIRM_FOR_STUDENT, Status.PENDING, Status.READYTOPRINT, "StudentConfirmed", "confirmed"),
    # the student's own moves and "needs changes" (issue 13)
    (Action.STUDENT_CANCEL, Status.UPLOADED, Status.REJECTED, "StudentCancelled", "withdrawn"),
    (Action.STUDENT_CANCEL, Status.PENDING, Status.REJECTED, "StudentCancelled", "withdrawn"),
    (Action.DECLINE_QUOTE, Status.PENDING, Status.REJECTED, "QuoteDeclined", "withdrawn"),
    (Action.REQUEST_CHANGES, Status.UPLOADED, Status.UPLOADED, "ChangesRequested", "changes_needed"),
    (Action.REPLACE_FILE, Status.UPLOADED, Status.UPLOADED, "FileReplaced", "receipt"),
    (Action.NO_CORRECTED_FILE, Status.UPLOADED, Status.REJECTED, "StaffRejected", "changes_expired"),
}
ALLOWED = {(action, source) for action, source, *_ in SPEC_TABLE}
DISALLOWED = [(a, s) for a in Action for s in Status if (a, s) not in ALLOWED]


def test_there_are_exactly_the_eight_seed_statuses_in_seed_order():
    assert [s.code for s in Status] == [code for code, _, _ in SPELLINGS]


@pytest.mark.parametrize(("code", "folder", "label"), SPELLINGS)
def test_each_status_has_the_seed_spellings(code, folder, label):
    status = Status(code)
    assert status.code == status.value == code
    assert status.folder == folder
    assert status.label == label
    assert str(status) == code  # what the database column stores


def test_status_folders_are_the_seed_folders_in_workflow_order_and_rejected_has_none():
    assert STATUS_FOLDERS == (
        "Uploaded",
        "Pending",
        "ReadyToPrint",
        "Printing",
        "Completed",
        "PaidPickedUp",
        "Archived",
    )
    assert Status.REJECTED.folder is None


def test_spellings_are_distinct():
    assert len({s.label for s in Status}) == len(Status)
    assert len({s.folder for s in Status if s.folder}) == len(STATUS_FOLDERS)


@pytest.mark.parametrize("text", ["pending", " Pending ", "PENDING", "pEnDiNg"])
def test_parse_accepts_a_code_in_any_case(text):
    assert Status.parse(text) is Status.PENDING


@pytest.mark.parametrize("text", ["", "Ready to Print", "ReadyToPrint/", "DONE", "PENDING;"])
def test_parse_refuses_anything_else_and_lists_the_codes(text):
    with pytest.raises(ValueError, match="expected one of UPLOADED, PENDING, READYTOPRINT"):
        Status.parse(text)


def test_transition_table_is_spec_section_4_row_by_row():
    rows = [(t.action, t.source, t.target, t.event_type, t.email) for t in TRANSITIONS]
    assert len(rows) == len(set(rows)), "a row appears twice"
    assert set(rows) == SPEC_TABLE


@pytest.mark.parametrize(
    ("action", "source", "target", "event", "email"),
    sorted((row for row in SPEC_TABLE if row[1] is not None), key=str),  # submit has no current status
)
def test_transition_for_returns_the_row(action, source, target, event, email):
    row = transition_for(action, source)
    assert (row.target, row.event_type, row.email) == (target, event, email)


def test_allowed_actions_follow_the_table():
    assert allowed_actions(Status.UPLOADED) == [
        Action.APPROVE, Action.REJECT, Action.STUDENT_CANCEL, Action.REQUEST_CHANGES, Action.REPLACE_FILE,
        Action.NO_CORRECTED_FILE,
    ]  # fmt: skip
    assert allowed_actions(Status.PENDING) == [
        Action.CONFIRM, Action.FORCE_CONFIRM, Action.CANCEL, Action.EDIT_QUOTE, Action.CONFIRM_FOR_STUDENT,
        Action.STUDENT_CANCEL, Action.DECLINE_QUOTE,
    ]  # fmt: skip
    assert allowed_actions(Status.READYTOPRINT) == [Action.START_PRINTING, Action.CANCEL, Action.EDIT_QUOTE]
    assert allowed_actions(Status.PRINTING) == [Action.COMPLETE, Action.PRINT_FAILED]
    assert allowed_actions(Status.COMPLETED) == [Action.RECORD_PICKUP, Action.REVERT]
    assert allowed_actions(Status.PAIDPICKEDUP) == [Action.REVERT, Action.ARCHIVE]
    assert allowed_actions(Status.REJECTED) == [Action.ARCHIVE]
    assert allowed_actions(Status.ARCHIVED) == []


def test_the_disallowed_list_covers_every_other_pair():
    assert len(DISALLOWED) == len(Action) * len(Status) - (len(SPEC_TABLE) - 1)


@pytest.mark.parametrize(("action", "status"), DISALLOWED)
def test_every_disallowed_move_raises_a_readable_invalid_transition(action, status):
    with pytest.raises(InvalidTransition) as caught:
        transition_for(action, status)
    error = caught.value
    assert (error.action, error.current) == (action, status)
    message = str(error)
    assert message.startswith(f"Can't {action.value.replace('_', ' ')} a job that is {status.label}")
    assert "_" not in message  # words, not identifiers
    allowed = [a.value.replace("_", " ") for a in allowed_actions(status) if a not in NOT_STAFF_ACTIONS]
    assert f"(allowed now: {', '.join(allowed) or 'nothing'})" in message


def test_the_hint_staff_read_leaves_out_the_students_own_moves():
    with pytest.raises(InvalidTransition) as caught:
        transition_for(Action.START_PRINTING, Status.UPLOADED)
    assert str(caught.value).endswith("(allowed now: approve, reject, request changes).")


def test_an_archived_job_allows_nothing_and_says_so():
    with pytest.raises(
        InvalidTransition, match=r"Can't approve a job that is Archived \(allowed now: nothing\)"
    ):
        transition_for(Action.APPROVE, Status.ARCHIVED)


def test_only_early_statuses_block_a_duplicate_upload():
    assert set(DUPLICATE_BLOCKING) == {Status.UPLOADED, Status.PENDING, Status.READYTOPRINT}
