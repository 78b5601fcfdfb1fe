"""Database tables: the seed's Staff, Job and Event exactly as documented, plus the few the spec needs."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    Numeric,
    String,
    Text,
    UniqueConstraint,
    false,
    text,
    true,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from printlab.clock import utcnow
from printlab.domain.statuses import Status

# A naming convention keeps constraint names identical on SQLite and PostgreSQL, which Alembic's
# batch mode on SQLite needs to find a constraint again.
NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

_STATUS_CODES = ", ".join(f"'{s.value}'" for s in Status)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class Staff(Base):
    __tablename__ = "staff"

    name: Mapped[str] = mapped_column(String(100), primary_key=True)
    is_active: Mapped[bool | None] = mapped_column(Boolean, default=True)
    added_at: Mapped[datetime | None] = mapped_column(DateTime, default=utcnow)
    deactivated_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)

    actions: Mapped[list[Event]] = relationship(
        primaryjoin="Staff.name == foreign(Event.triggered_by)",
        back_populates="attributed_staff",
        lazy="select",
        viewonly=True,
    )


class Job(Base):
    __tablename__ = "job"
    __table_args__ = (
        CheckConstraint(f"status IN ({_STATUS_CODES})", name="status"),
        # Each dashboard tab is keyset-paged on (created_at, id) within one status (migration 0005).
        Index("ix_job_status_created_at", "status", "created_at", "id"),
    )

    id: Mapped[str] = mapped_column(String, primary_key=True)
    student_name: Mapped[str | None] = mapped_column(String(100))
    student_email: Mapped[str | None] = mapped_column(String(100))
    discipline: Mapped[str | None] = mapped_column(String(50))
    class_number: Mapped[str | None] = mapped_column(String(50))

    original_filename: Mapped[str | None] = mapped_column(String(256))
    display_name: Mapped[str | None] = mapped_column(String(256))
    #: Relative to the storage root, POSIX separators (e.g. "Pending/JaneDoe_..._a1b2c3.3mf"), so a
    #: restored backup or a share mounted elsewhere still resolves.
    file_path: Mapped[str | None] = mapped_column(String(512))
    #: Relative to the storage root, like file_path.
    metadata_path: Mapped[str | None] = mapped_column(String(512))

    status: Mapped[str | None] = mapped_column(String(50), index=True)
    printer: Mapped[str | None] = mapped_column(String(64))
    color: Mapped[str | None] = mapped_column(String(32))
    #: The print method ("Filament" or "Resin"): it picks the price rate and the file name part.
    material: Mapped[str | None] = mapped_column(String(32))
    weight_g: Mapped[float | None] = mapped_column(Float)
    time_hours: Mapped[float | None] = mapped_column(Float)
    cost_usd: Mapped[Decimal | None] = mapped_column(Numeric(6, 2))

    acknowledged_minimum_charge: Mapped[bool | None] = mapped_column(Boolean, default=False)
    student_confirmed: Mapped[bool | None] = mapped_column(Boolean, default=False)
    student_confirmed_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    #: SHA-256 hex of the capability token; the token itself is only ever in the student's email.
    confirm_token: Mapped[str | None] = mapped_column(String(128), nullable=True, unique=True)
    confirm_token_expires: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    is_confirmation_expired: Mapped[bool] = mapped_column(Boolean, default=False, nullable=False)
    confirmation_last_sent_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)

    reject_reasons: Mapped[Any | None] = mapped_column(JSON, nullable=True)
    staff_viewed_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    last_updated_by: Mapped[str | None] = mapped_column(String(100), nullable=True)
    notes: Mapped[str | None] = mapped_column(Text, nullable=True)

    locked_by: Mapped[str | None] = mapped_column(String(100), nullable=True)
    locked_until: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)

    file_hash: Mapped[str | None] = mapped_column(String(64), nullable=True, index=True)

    created_at: Mapped[datetime | None] = mapped_column(DateTime, default=utcnow, index=True)
    #: Also the job's version: a caller's stale view is detected by comparing it.
    updated_at: Mapped[datetime | None] = mapped_column(DateTime, default=utcnow, onupdate=utcnow)

    events: Mapped[list[Event]] = relationship(back_populates="job", lazy="select", order_by="Event.id")
    analysis: Mapped[JobAnalysis | None] = relationship(back_populates="job", lazy="select", uselist=False)
    parts: Mapped[list[JobPart]] = relationship(
        back_populates="job", lazy="select", order_by="JobPart.number"
    )

    @property
    def status_enum(self) -> Status:
        return Status(self.status)


class Event(Base):
    """Append-only audit trail; the database itself refuses UPDATE and DELETE (see migrations)."""

    __tablename__ = "event"
    __table_args__ = (
        # The reports count each staff member's actions in a period from this index alone (migration
        # 0015); the seed's own single-column indexes stay as the customer listed them.
        Index("ix_event_staff_timestamp", "triggered_by", "timestamp"),
        # ... and find a period's approvals, rejections and overrides without walking the others.
        Index("ix_event_type_timestamp", "event_type", "timestamp"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    job_id: Mapped[str] = mapped_column(String, ForeignKey("job.id"), nullable=False, index=True)
    timestamp: Mapped[datetime | None] = mapped_column(DateTime, default=utcnow, index=True)
    event_type: Mapped[str | None] = mapped_column(String(50))
    details: Mapped[Any | None] = mapped_column(JSON, nullable=True)
    triggered_by: Mapped[str | None] = mapped_column(String(100), index=True)
    workstation_id: Mapped[str | None] = mapped_column(String(100))

    job: Mapped[Job] = relationship(back_populates="events")
    attributed_staff: Mapped[Staff | None] = relationship(
        primaryjoin="foreign(Event.triggered_by) == Staff.name", back_populates="actions", viewonly=True
    )


# ---------------------------------------------------------------------------------------------
# Beyond the seed: each table below exists because a part of the spec has nowhere else to live.
# docs/data-model.md gives the reason for each.


class Workstation(Base):
    """A lab computer that signs in once per shift with its own shared password."""

    __tablename__ = "workstation"

    id: Mapped[str] = mapped_column(String(100), primary_key=True)
    password_hash: Mapped[str] = mapped_column(String(255), nullable=False)
    is_admin: Mapped[bool] = mapped_column(Boolean, default=False, nullable=False)
    is_active: Mapped[bool] = mapped_column(Boolean, default=True, nullable=False)
    added_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow, nullable=False)
    last_login_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    #: Written into each session at sign-in and compared on every request; sign-out, a password reset
    #: and deactivation add one, which ends every session of the workstation at once (migration 0006).
    session_epoch: Mapped[int] = mapped_column(Integer, default=0, server_default="0", nullable=False)


class SignInThrottle(Base):
    """Wrong workstation passwords typed from one client address: the count and how long it must wait."""

    __tablename__ = "sign_in_throttle"

    workstation_id: Mapped[str] = mapped_column(
        String(100), ForeignKey("workstation.id", ondelete="CASCADE"), primary_key=True
    )
    #: The client address as the app sees it (behind nginx, the forwarded one).
    address: Mapped[str] = mapped_column(String(64), primary_key=True)
    failures: Mapped[int] = mapped_column(Integer, default=0, nullable=False)
    last_failure_at: Mapped[datetime] = mapped_column(DateTime, nullable=False, index=True)
    #: No try from this address is checked before this time (UTC); None: it may try now.
    blocked_until: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)


class PaymentMethod:
    """How a payment was made (the `payment.method` codes, migration 0010)."""

    CASH = "CASH"
    CARD = "CARD"
    CAMPUS_CARD = "CAMPUS_CARD"
    ACCOUNT = "ACCOUNT"  # an internal transfer to a department, course or grant code
    WAIVER = "WAIVER"  # nothing to pay: the whole price was waived, with a reason


class PaymentKind:
    """What a payment row is: the pickup's charge, or a later row that changes the balance."""

    CHARGE = "CHARGE"
    REFUND = "REFUND"
    CORRECTION = "CORRECTION"
    REVERSAL = "REVERSAL"  # written by a revert of Record pickup


_METHODS = ", ".join(f"'{v}'" for v in ("CASH", "CARD", "CAMPUS_CARD", "ACCOUNT", "WAIVER"))
_KINDS = ", ".join(f"'{v}'" for v in ("CHARGE", "REFUND", "CORRECTION", "REVERSAL"))


class Payment(Base):
    """Money recorded for a job, append-only: refunds, corrections and reverts are new rows (0010).

    A job's balance (what was paid) is the sum of its rows' `charged_usd`.
    """

    __tablename__ = "payment"
    __table_args__ = (
        CheckConstraint(f"method IS NULL OR method IN ({_METHODS})", name="method"),
        CheckConstraint(f"kind IN ({_KINDS})", name="kind"),
        # A period's revenue and pickups are read from this index alone (migration 0018); the job
        # is there for a report narrowed to a printer, method, discipline or class.
        Index("ix_payment_recorded_at_kind_charged", "recorded_at", "kind", "charged_usd", "job_id"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    job_id: Mapped[str] = mapped_column(String, ForeignKey("job.id"), nullable=False, index=True)
    weighed_g: Mapped[float | None] = mapped_column(Float, nullable=True)
    quoted_usd: Mapped[Decimal | None] = mapped_column(Numeric(6, 2), nullable=True)
    #: Negative for a refund, a reversal or a correction that gives money back.
    charged_usd: Mapped[Decimal] = mapped_column(Numeric(6, 2), nullable=False)
    kept_quote: Mapped[bool] = mapped_column(Boolean, default=False, nullable=False)
    payment_reference: Mapped[str | None] = mapped_column(String(100), nullable=True)
    #: The only column that may change: the personal-data prune clears it.
    picked_up_by: Mapped[str | None] = mapped_column(String(100), nullable=True)
    recorded_by: Mapped[str] = mapped_column(String(100), nullable=False)
    workstation_id: Mapped[str | None] = mapped_column(String(100), nullable=True)
    recorded_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow, nullable=False)
    #: A PaymentMethod code; None for payments recorded before methods existed.
    method: Mapped[str | None] = mapped_column(String(20), nullable=True)
    #: For an internal transfer: the account code it was charged to.
    account_code: Mapped[str | None] = mapped_column(
        String(40), ForeignKey("account_code.code"), nullable=True, index=True
    )
    kind: Mapped[str] = mapped_column(String(20), default=PaymentKind.CHARGE, server_default="CHARGE")
    #: Why: a discount or waiver, a refund, a correction, a reversal.
    reason: Mapped[str | None] = mapped_column(Text, nullable=True)
    #: The price before a discount or waiver, and what was taken off it.
    list_usd: Mapped[Decimal | None] = mapped_column(Numeric(8, 2), nullable=True)
    discount_usd: Mapped[Decimal | None] = mapped_column(Numeric(8, 2), nullable=True)
    #: The payment a refund, correction or reversal is about (an id, not a foreign key: migration 0010).
    refund_of: Mapped[int | None] = mapped_column(Integer, nullable=True, index=True)


class AccountCode(Base):
    """A department, course or grant code an internal transfer may be charged to (kept by admins)."""

    __tablename__ = "account_code"

    code: Mapped[str] = mapped_column(String(40), primary_key=True)
    name: Mapped[str] = mapped_column(String(200), nullable=False)
    is_active: Mapped[bool] = mapped_column(Boolean, default=True, server_default=true(), nullable=False)
    added_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow, nullable=False)
    added_by: Mapped[str | None] = mapped_column(String(100), nullable=True)


class LabPrinter(Base):
    """One of the lab's printers as a machine (issue 14): the catalog printer it is, how PrintLab
    reaches it, and whether the lab uses it. Jobs keep naming printers by their catalog name."""

    __tablename__ = "printer"
    __table_args__ = (
        CheckConstraint("connection IN ('NONE', 'OCTOPRINT', 'MOONRAKER', 'PRUSALINK')", name="connection"),
        CheckConstraint("state IN ('IN_SERVICE', 'PAUSED', 'RETIRED')", name="state"),
        # One record per catalog printer in use; a retired one keeps its row beside its successor.
        Index(
            "ix_printer_name_in_use",
            "name",
            unique=True,
            sqlite_where=text("state <> 'RETIRED'"),
            postgresql_where=text("state <> 'RETIRED'"),
        ),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    #: The catalog printer's name, as `job.printer` and the lab catalog spell it.
    name: Mapped[str] = mapped_column(String(64), nullable=False)
    #: A domain.printers.Connection code.
    connection: Mapped[str] = mapped_column(String(20), nullable=False, default="NONE", server_default="NONE")
    #: http(s)://host[:port][/prefix] of the printer's software; None when not connected.
    address: Mapped[str | None] = mapped_column(String(300), nullable=True)
    #: The API key, AES-GCM encrypted under a key derived from the lab's secret key
    #: (services/printers/api_keys.py); never shown again, never logged. None: no key saved.
    api_key_sealed: Mapped[str | None] = mapped_column(Text, nullable=True)
    #: A domain.printers.ServiceState code.
    state: Mapped[str] = mapped_column(
        String(20), nullable=False, default="IN_SERVICE", server_default="IN_SERVICE"
    )
    added_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow, nullable=False)
    added_by: Mapped[str | None] = mapped_column(String(100), nullable=True)
    changed_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow, nullable=False)
    changed_by: Mapped[str | None] = mapped_column(String(100), nullable=True)


class PrinterPoll(Base):
    """What a connected printer said when the worker last asked (issue 14), one row per printer.

    Written only by the worker's poller (services/printers/polling.py); pages read it and never wait
    for a printer. `next_poll_at` is also the claim: a worker takes a printer's poll by moving it
    forward with a conditional UPDATE, so two workers never poll one printer at the same moment.
    """

    __tablename__ = "printer_poll"
    __table_args__ = (Index("ix_printer_poll_next_poll_at", "next_poll_at"),)

    printer_id: Mapped[int] = mapped_column(Integer, ForeignKey("printer.id"), primary_key=True)
    #: A domain.printers.Activity value ("idle", "printing", …, "offline").
    activity: Mapped[str] = mapped_column(String(20), nullable=False, default="offline")
    software: Mapped[str | None] = mapped_column(String(100), nullable=True)
    detail: Mapped[str | None] = mapped_column(String(200), nullable=True)
    file: Mapped[str | None] = mapped_column(String(256), nullable=True)
    progress: Mapped[float | None] = mapped_column(Float, nullable=True)
    seconds_left: Mapped[int | None] = mapped_column(Integer, nullable=True)
    seconds_printed: Mapped[int | None] = mapped_column(Integer, nullable=True)
    #: [{"heater": "tool0", "actual": 210.0, "target": 210.0}, …]
    temperatures: Mapped[Any] = mapped_column(JSON, nullable=True)
    #: The printer's error, or why it couldn't be reached.
    message: Mapped[str | None] = mapped_column(Text, nullable=True)
    #: The last time the worker asked, and the last time the printer answered.
    polled_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    answered_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    #: Polls in a row that got no answer (the backoff grows with it; 0 once it answers).
    failures: Mapped[int] = mapped_column(Integer, nullable=False, default=0, server_default="0")
    next_poll_at: Mapped[datetime] = mapped_column(DateTime, nullable=False, default=utcnow)
    #: When what the printer says last changed (not merely asked again): the board's freshness.
    changed_at: Mapped[datetime] = mapped_column(DateTime, nullable=False, default=utcnow)


class PrintRunState:
    """A print run's state codes (`print_run.state`)."""

    SENDING = "SENDING"  # staff pressed "Start printing"; a worker uploads the file and starts it
    NOT_STARTED = "NOT_STARTED"  # the printer refused or couldn't be reached; the job never moved
    PRINTING = "PRINTING"  # the printer took it; the job is Printing
    STOPPED = "STOPPED"  # the printer reported an error or a cancel; staff must confirm what happened
    FINISHED = "FINISHED"  # the printer reported it done; the job moved to Completed by itself
    FAILED = "FAILED"  # staff confirmed "Print failed"
    ENDED = "ENDED"  # a staff move (complete, revert, override) closed it by hand

    ALL = (SENDING, NOT_STARTED, PRINTING, STOPPED, FINISHED, FAILED, ENDED)
    #: A job has at most one run in these; a printer at most one SENDING or PRINTING.
    OPEN = (SENDING, PRINTING, STOPPED)


_OPEN_RUN = text("state IN ('SENDING', 'PRINTING', 'STOPPED')")
_BUSY_RUN = text("state IN ('SENDING', 'PRINTING')")


class PrintRun(Base):
    """One job sent to one connected printer from PrintLab (issue 14): who started it, what the printer
    reported, and how it ended. Unconnected printers have no runs (staff use the manual buttons)."""

    __tablename__ = "print_run"
    __table_args__ = (
        CheckConstraint(
            "state IN ('SENDING', 'NOT_STARTED', 'PRINTING', 'STOPPED', 'FINISHED', 'FAILED', 'ENDED')",
            name="state",
        ),
        # Two workers (or two staff) can never start one job twice, nor two jobs on one printer.
        Index(
            "ix_print_run_job_open", "job_id", unique=True, sqlite_where=_OPEN_RUN, postgresql_where=_OPEN_RUN
        ),
        Index(
            "ix_print_run_printer_busy",
            "printer_id",
            unique=True,
            sqlite_where=_BUSY_RUN,
            postgresql_where=_BUSY_RUN,
        ),
        Index("ix_print_run_job_id", "job_id"),
        Index("ix_print_run_state", "state"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    job_id: Mapped[str] = mapped_column(String, ForeignKey("job.id"), nullable=False)
    printer_id: Mapped[int] = mapped_column(Integer, ForeignKey("printer.id"), nullable=False)
    #: The catalog printer's name when the run began (a record may be renamed or retired later).
    printer_name: Mapped[str] = mapped_column(String(64), nullable=False)
    state: Mapped[str] = mapped_column(String(20), nullable=False)
    #: The job's sliced file sent (its stored name in the job's folder) and its name on the printer.
    source_file: Mapped[str] = mapped_column(String(256), nullable=False)
    printer_file: Mapped[str] = mapped_column(String(256), nullable=False)
    requested_at: Mapped[datetime] = mapped_column(DateTime, nullable=False, default=utcnow)
    requested_by: Mapped[str | None] = mapped_column(String(100), nullable=True)
    workstation_id: Mapped[str | None] = mapped_column(String(100), nullable=True)
    #: Tries at sending it so far, and when the worker may try again (backoff) while SENDING.
    attempts: Mapped[int] = mapped_column(Integer, nullable=False, default=0, server_default="0")
    next_attempt_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    started_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    ended_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    #: Why it didn't start, or the reason the printer gave for stopping.
    message: Mapped[str | None] = mapped_column(Text, nullable=True)
    #: What the printer reported at the end, where it reports it.
    seconds_printed: Mapped[int | None] = mapped_column(Integer, nullable=True)
    filament_mm: Mapped[float | None] = mapped_column(Float, nullable=True)
    filament_g: Mapped[float | None] = mapped_column(Float, nullable=True)


class QueuePlace(Base):
    """A Ready-to-Print job's place in its printer's queue on the board (issue 14). Jobs without a row
    follow the placed ones, oldest confirmation first; a reorder writes the lane's places."""

    __tablename__ = "queue_place"

    job_id: Mapped[str] = mapped_column(String, ForeignKey("job.id"), primary_key=True)
    position: Mapped[int] = mapped_column(Integer, nullable=False)


class CampusPerson(Base):
    """Someone who signed in with their campus account (issue 15): who the provider says they are, the
    staff name their actions are recorded under, and the role their groups or an admin gave them."""

    __tablename__ = "campus_person"
    __table_args__ = (
        UniqueConstraint("issuer", "subject", name="uq_campus_person_issuer_subject"),
        CheckConstraint("role IN ('NONE', 'STAFF', 'ADMIN')", name="role"),
        CheckConstraint("approval IN ('PENDING', 'APPROVED', 'REFUSED')", name="approval"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    #: The provider and its stable id for the person (`sub`): together, the one key for an account.
    issuer: Mapped[str] = mapped_column(String(300), nullable=False)
    subject: Mapped[str] = mapped_column(String(255), nullable=False)
    name: Mapped[str] = mapped_column(String(100), nullable=False)
    email: Mapped[str | None] = mapped_column(String(254), nullable=True)
    #: The groups sent at the latest sign-in.
    groups: Mapped[Any] = mapped_column(JSON, nullable=True)
    #: The staff record actions are attributed to ("Acting as" is this person); None until approved.
    staff_name: Mapped[str | None] = mapped_column(String(100), ForeignKey("staff.name"), nullable=True)
    #: A domain.campus.Role code; from the group mapping at each sign-in, or an admin's approval.
    role: Mapped[str] = mapped_column(String(10), nullable=False, default="NONE", server_default="NONE")
    #: A domain.campus.Approval code.
    approval: Mapped[str] = mapped_column(
        String(10), nullable=False, default="PENDING", server_default="PENDING"
    )
    #: True when an admin set the role by hand: the group mapping no longer changes it.
    role_set_by_admin: Mapped[bool] = mapped_column(
        Boolean, nullable=False, default=False, server_default=false()
    )
    first_seen_at: Mapped[datetime] = mapped_column(DateTime, nullable=False, default=utcnow)
    last_sign_in_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    #: Written into each session and compared on every request; "sign out everywhere", a refusal and a
    #: removal add one, which ends all of the person's sessions at once.
    session_epoch: Mapped[int] = mapped_column(Integer, nullable=False, default=0, server_default="0")


class CampusGroupRole(Base):
    """A campus group an admin gave a role: its members are staff (or admins) at their first sign-in."""

    __tablename__ = "campus_group_role"
    __table_args__ = (CheckConstraint("role IN ('STAFF', 'ADMIN')", name="role"),)

    group: Mapped[str] = mapped_column(String(200), primary_key=True)
    role: Mapped[str] = mapped_column(String(10), nullable=False)
    added_at: Mapped[datetime] = mapped_column(DateTime, nullable=False, default=utcnow)
    added_by: Mapped[str | None] = mapped_column(String(100), nullable=True)


class StaffPin(Base):
    """A staff member's personal PIN for switching in at a shared workstation (issue 15), argon2-hashed,
    with the wrong tries that lock it for a while. `epoch` grows with each change, ending switches."""

    __tablename__ = "staff_pin"

    staff_name: Mapped[str] = mapped_column(String(100), ForeignKey("staff.name"), primary_key=True)
    pin_hash: Mapped[str] = mapped_column(String(255), nullable=False)
    set_at: Mapped[datetime] = mapped_column(DateTime, nullable=False, default=utcnow)
    set_by: Mapped[str | None] = mapped_column(String(100), nullable=True)
    failures: Mapped[int] = mapped_column(Integer, nullable=False, default=0, server_default="0")
    locked_until: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    epoch: Mapped[int] = mapped_column(Integer, nullable=False, default=0, server_default="0")


class OutboxStatus:
    PENDING = "PENDING"
    SENT = "SENT"
    FAILED = "FAILED"
    #: Not sent because it no longer applied when its turn came (a newer quote link replaced it, the
    #: print was collected before its reminder went out); `last_error` says why.
    CANCELLED = "CANCELLED"
    ALL = (PENDING, SENT, FAILED, CANCELLED)


class OutboxMessage(Base):
    """An email waiting to be delivered, written in the same transaction as the change behind it."""

    __tablename__ = "outbox_message"
    __table_args__ = (
        CheckConstraint("status IN ('PENDING', 'SENT', 'FAILED', 'CANCELLED')", name="status"),
        Index("ix_outbox_message_due", "status", "next_attempt_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    job_id: Mapped[str | None] = mapped_column(String, ForeignKey("job.id"), nullable=True, index=True)
    #: Which message: receipt, quote, confirmed, rejected, ready_for_pickup, pickup_reminder,
    #: quote_expired, payment_receipt, payment_refund.
    template: Mapped[str] = mapped_column(String(40), nullable=False)
    recipient: Mapped[str] = mapped_column(String(254), nullable=False)
    #: Values the template needs that the job row can't give later (a confirm link's raw token).
    context: Mapped[Any | None] = mapped_column(JSON, nullable=True)
    status: Mapped[str] = mapped_column(String(20), default=OutboxStatus.PENDING, nullable=False)
    attempts: Mapped[int] = mapped_column(Integer, default=0, nullable=False)
    #: Not before this time. While a worker holds the row it is the end of that worker's lease, so
    #: a crashed worker's message becomes due again by itself.
    next_attempt_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow, nullable=False)
    last_error: Mapped[str | None] = mapped_column(Text, nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow, nullable=False)
    sent_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    #: The Message-ID header, fixed at the first attempt and reused by every retry, so a copy sent
    #: twice (a crash after the mail server accepted it) is recognisably the same message.
    message_id: Mapped[str | None] = mapped_column(String(255), nullable=True, unique=True)
    #: The worker (host:pid:…) that holds the row, or that sent it.
    claimed_by: Mapped[str | None] = mapped_column(String(200), nullable=True)
    #: Set just before the message is handed to the mail server, cleared when the outcome is
    #: recorded: still set on a row whose lease ran out means that send was interrupted.
    sending_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)


class LabSetting(Base):
    """One entry of the lab catalog as edited by an admin; absent keys take the built-in default."""

    __tablename__ = "lab_setting"

    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[Any] = mapped_column(JSON, nullable=False)
    updated_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow, nullable=False)
    updated_by: Mapped[str | None] = mapped_column(String(100), nullable=True)


class TaskStatus:
    PENDING = "PENDING"
    DONE = "DONE"
    FAILED = "FAILED"


class Task(Base):
    """Background work (model analysis, sweeps) claimed by a worker; lives in the database so any
    worker on any machine can take it, and none takes it twice."""

    __tablename__ = "task"
    __table_args__ = (
        CheckConstraint("status IN ('PENDING', 'DONE', 'FAILED')", name="status"),
        Index("ix_task_due", "status", "run_after"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    kind: Mapped[str] = mapped_column(String(40), nullable=False)
    job_id: Mapped[str | None] = mapped_column(String, ForeignKey("job.id"), nullable=True, index=True)
    payload: Mapped[Any | None] = mapped_column(JSON, nullable=True)
    status: Mapped[str] = mapped_column(String(20), default=TaskStatus.PENDING, nullable=False)
    attempts: Mapped[int] = mapped_column(Integer, default=0, nullable=False)
    #: Not before this time; a claimed task's lease pushes it forward, so a crashed worker's task
    #: becomes due again by itself.
    run_after: Mapped[datetime] = mapped_column(DateTime, default=utcnow, nullable=False)
    last_error: Mapped[str | None] = mapped_column(Text, nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow, nullable=False)
    finished_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)


class AnalysisState:
    PENDING = "PENDING"
    DONE = "DONE"
    FAILED = "FAILED"


class JobMilestone(Base):
    """When a job first reached each stage of a print, for the reports (migration 0011).

    Written by every status change in the same transaction (services/jobs/milestones.py), so a
    report reads one row per job instead of replaying its event trail. A revert clears the time of
    the status it undoes. The upload is the job's `created_at`.
    """

    __tablename__ = "job_milestone"

    job_id: Mapped[str] = mapped_column(String, ForeignKey("job.id"), primary_key=True)
    #: Copies of the job's own columns as of its latest move (only moves change them), so a report
    #: reads this table alone unless it is filtered by discipline or class.
    uploaded_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    printer: Mapped[str | None] = mapped_column(String(64), nullable=True)
    material: Mapped[str | None] = mapped_column(String(32), nullable=True)
    time_hours: Mapped[float | None] = mapped_column(Float, nullable=True)
    weight_g: Mapped[float | None] = mapped_column(Float, nullable=True)
    approved_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    confirmed_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    printing_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    completed_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    picked_up_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    #: How long each stage took, in hours (domain.reports.stage_hours), kept with the times above so
    #: a report reads a stage's durations from the index on its end alone (migration 0015).
    hours_to_approval: Mapped[float | None] = mapped_column(Float, nullable=True)
    hours_to_confirmation: Mapped[float | None] = mapped_column(Float, nullable=True)
    hours_to_printing: Mapped[float | None] = mapped_column(Float, nullable=True)
    hours_to_completion: Mapped[float | None] = mapped_column(Float, nullable=True)
    hours_to_pickup: Mapped[float | None] = mapped_column(Float, nullable=True)
    #: What the printer reported for the print that completed it (issue 14), None for a print not
    #: run from PrintLab or a printer that doesn't report it; reports prefer these to the estimates.
    printed_hours: Mapped[float | None] = mapped_column(Float, nullable=True)
    printed_g: Mapped[float | None] = mapped_column(Float, nullable=True)
    #: Copies of the job's discipline and class (migration 0018), so a filtered report reads this
    #: table alone too.
    discipline: Mapped[str | None] = mapped_column(String(50), nullable=True)
    class_number: Mapped[str | None] = mapped_column(String(50), nullable=True)

    __table_args__ = (
        # One index per stage: when it ended, then how long it took (completion also carries what
        # the printer use sums), so a period's stage times are read without visiting the table.
        Index("ix_job_milestone_approved_at", "approved_at", "hours_to_approval"),
        Index("ix_job_milestone_confirmed_at", "confirmed_at", "hours_to_confirmation"),
        Index("ix_job_milestone_printing_at", "printing_at", "hours_to_printing"),
        Index(
            "ix_job_milestone_completed_at",
            "completed_at",
            "hours_to_completion",
            "printer",
            "material",
            "time_hours",
            "weight_g",
            "printed_hours",
            "printed_g",
        ),
        Index("ix_job_milestone_picked_up_at", "picked_up_at", "hours_to_pickup"),
    )


#: The job_milestone column for each status a print's stages end in.
MILESTONE_COLUMNS: dict[str, str] = {
    Status.PENDING.value: "approved_at",
    Status.READYTOPRINT.value: "confirmed_at",
    Status.PRINTING.value: "printing_at",
    Status.COMPLETED.value: "completed_at",
    Status.PAIDPICKEDUP.value: "picked_up_at",
}
#: The job_milestone column for how long each stage took (domain.reports.STAGES order).
STAGE_HOURS_COLUMNS: tuple[str, ...] = (
    "hours_to_approval",
    "hours_to_confirmation",
    "hours_to_printing",
    "hours_to_completion",
    "hours_to_pickup",
)


class CountedAction(Base):
    """An approval, rejection, cancellation or archiving override, beside its event (migration 0018).

    The reports count these per period and staff member; which of them an event was is in its
    `details` (domain.reports.counted_action), too slow to read for a semester's ~30,000 events, so
    `add_event` writes this row in the event's own transaction and a count reads an index alone.
    """

    __tablename__ = "counted_action"

    #: The event's id; not a foreign key, so the event table's own refusal of TRUNCATE is what
    #: answers one (events are never deleted, so the id always names its event).
    event_id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    job_id: Mapped[str] = mapped_column(String, ForeignKey("job.id"), nullable=False)
    timestamp: Mapped[datetime] = mapped_column(DateTime, nullable=False)
    #: One of domain.reports.COUNTED_ACTIONS.
    action: Mapped[str] = mapped_column(String(20), nullable=False)
    triggered_by: Mapped[str | None] = mapped_column(String(100), nullable=True)

    event: Mapped[Event] = relationship(primaryjoin="foreign(CountedAction.event_id) == Event.id")

    __table_args__ = (Index("ix_counted_action_action_timestamp", "action", "timestamp", "triggered_by"),)


class JobAnalysis(Base):
    """What the upload analysis found about a job's model, and its thumbnail."""

    __tablename__ = "job_analysis"
    __table_args__ = (CheckConstraint("state IN ('PENDING', 'DONE', 'FAILED')", name="state"),)

    job_id: Mapped[str] = mapped_column(String, ForeignKey("job.id"), primary_key=True)
    state: Mapped[str] = mapped_column(String(20), default=AnalysisState.PENDING, nullable=False)
    #: Triangles, extents, volume, watertight, fits, weight and cost ranges, problems (JSON).
    results: Mapped[Any | None] = mapped_column(JSON, nullable=True)
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    #: A small PNG; kept in the database so a file move can never race with the worker writing it.
    thumbnail_png: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)
    analysed_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)

    job: Mapped[Job] = relationship(back_populates="analysis")


class JobPart(Base):
    """One model file of a job sent in several parts (issue 13), with its copies and its analysis.

    Part 1 is the job's main file (`job.file_path` and `job.file_hash` keep pointing at it); a
    part's stored name is the job's followed by "_p<number>" (domain.naming.part_file_name), in the
    job's folder. A job sent before parts existed has no rows: its own file is its one part.
    """

    __tablename__ = "job_part"
    __table_args__ = (
        CheckConstraint("number BETWEEN 1 AND 10", name="number"),
        CheckConstraint("copies BETWEEN 1 AND 20", name="copies"),
        CheckConstraint("state IN ('PENDING', 'DONE', 'FAILED')", name="state"),
        UniqueConstraint("job_id", "number"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    job_id: Mapped[str] = mapped_column(String, ForeignKey("job.id"), nullable=False)
    #: 1 for the job's main file, then 2, 3… in the order the student chose them.
    number: Mapped[int] = mapped_column(Integer, nullable=False)
    #: The name of the student's file (inside a .zip: the member's own name, without folders).
    original_filename: Mapped[str] = mapped_column(String(256), nullable=False)
    #: SHA-256 of the file, for the duplicate rule (as job.file_hash for part 1).
    file_hash: Mapped[str] = mapped_column(String(64), nullable=False, index=True)
    size_bytes: Mapped[int] = mapped_column(BigInteger, nullable=False)
    copies: Mapped[int] = mapped_column(Integer, nullable=False, default=1)
    #: The part's own model check, as job_analysis holds the whole job's.
    state: Mapped[str] = mapped_column(String(20), default=AnalysisState.PENDING, nullable=False)
    results: Mapped[Any | None] = mapped_column(JSON, nullable=True)
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    thumbnail_png: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)
    analysed_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)

    job: Mapped[Job] = relationship(back_populates="parts")


class ChangeOutcome:
    """How a "needs changes" request ended."""

    REPLACED = "REPLACED"  # the student sent a corrected file
    NO_ANSWER = "NO_ANSWER"  # no file within the catalog's days: the sweep rejected the job
    MOVED_ON = "MOVED_ON"  # the job left Uploaded otherwise (cancelled, rejected, approved anyway)


class JobChangeRequest(Base):
    """Staff asked the student for a corrected file instead of rejecting the job (issue 13).

    The job stays Uploaded; an open row (no `closed_at`) is what "waiting for the student" means.
    The reply link's token is stored only as its hash, like a quote link's.
    """

    __tablename__ = "job_change_request"
    __table_args__ = (
        CheckConstraint("outcome IN ('REPLACED', 'NO_ANSWER', 'MOVED_ON')", name="outcome"),
        # The dashboard's waiting count and the sweep read the open rows by when they run out.
        Index("ix_job_change_request_closed_at_expires_at", "closed_at", "expires_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    job_id: Mapped[str] = mapped_column(String, ForeignKey("job.id"), nullable=False, index=True)
    requested_at: Mapped[datetime] = mapped_column(DateTime, nullable=False)
    #: The staff member who asked ("Acting as").
    requested_by: Mapped[str] = mapped_column(String(100), nullable=False)
    #: {"reasons": [catalog reasons], "other": free text or null}, as the student reads them.
    reasons: Mapped[Any] = mapped_column(JSON, nullable=False)
    #: SHA-256 of the reply link's token; kept after use, so a replayed link is recognised.
    token_hash: Mapped[str] = mapped_column(String(64), nullable=False, unique=True)
    expires_at: Mapped[datetime] = mapped_column(DateTime, nullable=False)
    closed_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    outcome: Mapped[str | None] = mapped_column(String(20), nullable=True)


class JobResubmission(Base):
    """A job sent as the corrected version of an earlier, rejected one (issue 13)."""

    __tablename__ = "job_resubmission"

    #: The new job.
    job_id: Mapped[str] = mapped_column(String, ForeignKey("job.id"), primary_key=True)
    earlier_job_id: Mapped[str] = mapped_column(String, ForeignKey("job.id"), nullable=False, index=True)
    created_at: Mapped[datetime] = mapped_column(DateTime, nullable=False)


class WorkerHeartbeat(Base):
    """The last sign of life of each worker (thread or process), for /healthz and the admin page."""

    __tablename__ = "worker_heartbeat"

    worker_id: Mapped[str] = mapped_column(String(200), primary_key=True)
    last_seen: Mapped[datetime] = mapped_column(DateTime, default=utcnow, nullable=False)
    started_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow, nullable=False)


class StudentSignInLink(Base):
    """A "See my requests" sign-in link emailed to a student: single use, short-lived, only its hash kept."""

    __tablename__ = "student_sign_in_link"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    #: SHA-256 of the link's token; the token itself only travels in the email.
    token_hash: Mapped[str] = mapped_column(String(64), nullable=False, unique=True)
    #: The address the link was sent to, lower-cased; it counts the links asked for in an hour.
    email: Mapped[str] = mapped_column(String(100), nullable=False, index=True)
    created_at: Mapped[datetime] = mapped_column(DateTime, nullable=False, index=True)
    expires_at: Mapped[datetime] = mapped_column(DateTime, nullable=False)
    #: When the link signed a browser in; a used link never works again.
    used_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)


class StudentSession(Base):
    """A browser signed in as a student's email address: revocable, its cookie's id kept only as a hash."""

    __tablename__ = "student_session"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    #: SHA-256 of the random id in the browser's cookie.
    token_hash: Mapped[str] = mapped_column(String(64), nullable=False, unique=True)
    #: The address signed in as, lower-cased ("Sign out everywhere" ends all of its sessions).
    email: Mapped[str] = mapped_column(String(100), nullable=False, index=True)
    created_at: Mapped[datetime] = mapped_column(DateTime, nullable=False)
    expires_at: Mapped[datetime] = mapped_column(DateTime, nullable=False, index=True)
    #: Set by "Sign out" (this browser) or "Sign out everywhere" (every browser of the address).
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)


class ApiToken(Base):
    """A personal API token an admin made for one staff member: only its hash kept, scoped, expiring, revocable."""

    __tablename__ = "api_token"
    __table_args__ = (
        CheckConstraint("scope IN ('read', 'write')", name="scope"),
        CheckConstraint("rate_per_minute BETWEEN 1 AND 6000", name="rate_per_minute"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    #: What the token is for, in the admin's words ("Finance sync"); unique among tokens.
    name: Mapped[str] = mapped_column(String(100), nullable=False, unique=True)
    #: The staff member the token acts as: its actions are theirs (`triggered_by`).
    staff_name: Mapped[str] = mapped_column(String(100), ForeignKey("staff.name"), nullable=False, index=True)
    #: read: look only; write: also move jobs through the workflow.
    scope: Mapped[str] = mapped_column(String(10), nullable=False)
    #: SHA-256 of the token; the token itself is shown once, when made.
    token_hash: Mapped[str] = mapped_column(String(64), nullable=False, unique=True)
    #: The token's first characters ("plt_AbC1"), so a person can tell their tokens apart.
    prefix: Mapped[str] = mapped_column(String(12), nullable=False)
    #: Requests allowed per minute with this token.
    rate_per_minute: Mapped[int] = mapped_column(Integer, nullable=False)
    created_at: Mapped[datetime] = mapped_column(DateTime, nullable=False)
    created_by: Mapped[str | None] = mapped_column(String(100), nullable=True)
    expires_at: Mapped[datetime] = mapped_column(DateTime, nullable=False)
    #: The last request made with it (written at most once a minute).
    last_used_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    revoked_by: Mapped[str | None] = mapped_column(String(100), nullable=True)


class WebhookEndpoint(Base):
    """An HTTPS address an admin registered to be told of chosen events, signed with its own secret (0021)."""

    __tablename__ = "webhook_endpoint"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    #: What it is, in the admin's words ("Finance system"); unique.
    name: Mapped[str] = mapped_column(String(100), nullable=False, unique=True)
    url: Mapped[str] = mapped_column(String(2000), nullable=False)
    #: The event kinds it is sent (domain.webhooks.EVENTS), a JSON list.
    events: Mapped[list[str]] = mapped_column(JSON, nullable=False)
    #: The Standard Webhooks signing secret ("whsec_…"), sealed (services/sealing.py).
    secret_sealed: Mapped[str] = mapped_column(String(200), nullable=False)
    #: An admin allowed it on the lab's own network (private, loopback or link-local addresses).
    allow_private: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False)
    #: False: paused; nothing new is queued for it.
    enabled: Mapped[bool] = mapped_column(Boolean, nullable=False, default=True)
    created_at: Mapped[datetime] = mapped_column(DateTime, nullable=False)
    created_by: Mapped[str | None] = mapped_column(String(100), nullable=True)
    updated_at: Mapped[datetime] = mapped_column(DateTime, nullable=False)


class WebhookDeliveryStatus:
    PENDING = "PENDING"
    DELIVERED = "DELIVERED"
    FAILED = "FAILED"


class WebhookDelivery(Base):
    """One event for one endpoint: written in the transaction of the change, sent by the worker (0021).

    The body is stored exactly as signed and sent, so every attempt (and a retry after a worker's
    restart) sends the same bytes under the same `message_id` (the `webhook-id` receivers de-duplicate by).
    """

    __tablename__ = "webhook_delivery"
    __table_args__ = (
        CheckConstraint("status IN ('PENDING', 'DELIVERED', 'FAILED')", name="status"),
        # The worker's due rows; the endpoint page's log, newest first.
        Index("ix_webhook_delivery_status_next_attempt_at", "status", "next_attempt_at"),
        Index("ix_webhook_delivery_endpoint_id_id", "endpoint_id", "id"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    endpoint_id: Mapped[int] = mapped_column(Integer, ForeignKey("webhook_endpoint.id"), nullable=False)
    #: The `webhook-id` header ("msg_…"): the same on every attempt.
    message_id: Mapped[str] = mapped_column(String(40), nullable=False, unique=True)
    kind: Mapped[str] = mapped_column(String(40), nullable=False)
    body: Mapped[str] = mapped_column(Text, nullable=False)
    job_id: Mapped[str | None] = mapped_column(String, nullable=True)
    status: Mapped[str] = mapped_column(String(10), nullable=False)
    attempts: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(DateTime, nullable=False)
    #: The worker that claimed the current attempt, and since when it has been sending (a lease).
    claimed_by: Mapped[str | None] = mapped_column(String(200), nullable=True)
    sending_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    #: A worker stopped mid-send: the receiver may have it already (same `webhook-id`).
    interrupted: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False)
    created_at: Mapped[datetime] = mapped_column(DateTime, nullable=False)
    delivered_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    last_attempt_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    #: The endpoint's HTTP status on the last attempt (None: no answer).
    last_status_code: Mapped[int | None] = mapped_column(Integer, nullable=True)
    #: Why the last attempt failed, in words.
    last_error: Mapped[str | None] = mapped_column(String(500), nullable=True)
    retried_by: Mapped[str | None] = mapped_column(String(100), nullable=True)


class AdminLogEntry(Base):
    """Append-only record of admin actions that concern no single job (staff, workstations, catalog).

    Like events, the database refuses UPDATE and DELETE on it.
    """

    __tablename__ = "admin_log"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    timestamp: Mapped[datetime] = mapped_column(DateTime, default=utcnow, nullable=False, index=True)
    #: What was done: StaffAdded, StaffDeactivated, StaffReactivated, WorkstationAdded,
    #: WorkstationPasswordReset, WorkstationAdminChanged, WorkstationDeactivated, WorkstationReactivated,
    #: CatalogChanged, BannerChanged, ...
    action: Mapped[str] = mapped_column(String(50), nullable=False)
    details: Mapped[Any | None] = mapped_column(JSON, nullable=True)
    triggered_by: Mapped[str | None] = mapped_column(String(100), nullable=True)
    workstation_id: Mapped[str | None] = mapped_column(String(100), nullable=True)


# -- kept by database triggers (migration 0008) --------------------------------------------------
# The three tables below are written only by triggers on `job` and `job_analysis`, in the same
# transaction as the change they follow, so no code path (workflow, admin override, sweeps, repair,
# a raw SQL fix) can leave them behind. The application only reads them.

#: Objects the search migrations make that the models can't describe: SQLite's FTS5 table (and the
#: shadow tables FTS5 keeps beside it), PostgreSQL's trigram GIN index (0008) and the expression
#: index on the lower-cased student email (0009). Schema comparisons skip them.
SEARCH_INDEX_OBJECTS = frozenset(
    {
        "job_search_fts",
        "job_search_fts_data",
        "job_search_fts_idx",
        "job_search_fts_docsize",
        "job_search_fts_config",
        "job_search_fts_content",
        "ix_job_search_search_text_trgm",
        "ix_job_student_email_lower",
    }
)


def modelled(name: str | None, type_: str, parent_names: object) -> bool:
    """For schema comparisons (Alembic's include_name): False for the search objects above."""
    return name not in SEARCH_INDEX_OBJECTS


class JobSearch(Base):
    """One row per job: the text staff search in, the job's status, and when it entered that status."""

    __tablename__ = "job_search"
    # No index on status or created_at, on purpose: a search must start from the text index's
    # matches; given one, SQLite walked a whole tab in date order, probing the matches per row.

    #: An integer key: SQLite's FTS5 index refers to rows by it.
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    job_id: Mapped[str] = mapped_column(String, unique=True, nullable=False)
    status: Mapped[str | None] = mapped_column(String(50))
    created_at: Mapped[datetime | None] = mapped_column(DateTime)
    #: The job's updated_at when its status last changed (the app's clock, like every job time).
    status_since: Mapped[datetime | None] = mapped_column(DateTime)
    #: Name, email, class, stored and original file names, lower-cased, one per line.
    search_text: Mapped[str] = mapped_column(Text, nullable=False, default="")


class JobStatusCount(Base):
    """The number of jobs in each status: the dashboard's tab counts without counting the jobs."""

    __tablename__ = "job_status_count"

    status: Mapped[str] = mapped_column(String(50), primary_key=True)
    jobs: Mapped[int] = mapped_column(Integer, nullable=False, default=0)


class DashboardVersion(Base):
    """A single row whose number grows with every committed change to a job or its analysis."""

    __tablename__ = "dashboard_version"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    version: Mapped[int] = mapped_column(BigInteger, nullable=False, default=0)
