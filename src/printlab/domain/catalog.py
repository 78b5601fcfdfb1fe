"""The lab catalog of SPEC §2: what students may choose and what the lab charges, with its defaults."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from decimal import Decimal


@dataclass(frozen=True)
class PrintMethod:
    name: str  # "Filament" — the word used in stored file names and on the form
    description: str
    rate_per_gram: Decimal
    colors: tuple[str, ...]
    #: g/cm³ of the material, for the weight estimate at upload (PLA ≈ 1.24, standard resin ≈ 1.10).
    density_g_cm3: float = 1.24


@dataclass(frozen=True)
class Printer:
    name: str
    method: str
    build_volume_mm: tuple[float, float, float]


@dataclass(frozen=True)
class LabDetails:
    name: str = "Makerspace 3D Print Lab"
    pickup_location: str = "Front desk, Makerspace"
    opening_hours: str = "Mon–Fri 9:00–17:00"
    contact_email: str = "makerspace@example.edu"
    time_zone: str = "America/Chicago"
    hold_days: int = 30
    #: Days a completed print may wait uncollected before the student gets a pickup reminder.
    pickup_reminder_days: int = 7
    #: A second, last reminder goes out this many days before the hold period ends (0: none).
    final_reminder_days_before_hold_ends: int = 3
    #: Who gets the monthly summary, comma-separated ("" sends it to the contact address).
    summary_emails: str = ""

    @property
    def summary_recipients(self) -> tuple[str, ...]:
        """The addresses the monthly summary goes to."""
        listed = tuple(a.strip() for a in self.summary_emails.split(",") if a.strip())
        return listed or (self.contact_email,)


FILAMENT_COLORS = (
    "True Red",
    "True Orange",
    "Light Orange",
    "True Yellow",
    "Dark Yellow",
    "Lime Green",
    "Green",
    "Forest Green",
    "Blue",
    "Electric Blue",
    "Midnight Purple",
    "Light Purple",
    "Clear",
    "True White",
    "Gray",
    "True Black",
    "Brown",
    "Copper",
    "Bronze",
    "True Silver",
    "True Gold",
    "Glow in the Dark",
    "Color Changing",
)
RESIN_COLORS = ("Black", "White", "Gray", "Clear")


@dataclass(frozen=True)
class Catalog:
    """Everything a lab configures about its service. Defaults are SPEC §2's."""

    disciplines: tuple[str, ...] = (
        "Art",
        "Architecture",
        "Landscape Architecture",
        "Interior Design",
        "Engineering",
        "Hobby/Personal",
        "Other",
    )
    methods: tuple[PrintMethod, ...] = (
        PrintMethod(
            "Filament",
            "FDM: melted plastic, layer by layer. Strong, cheap, visible layers.",
            Decimal("0.10"),
            FILAMENT_COLORS,
        ),
        PrintMethod(
            "Resin",
            "SLA: light-cured resin. Fine detail and smooth surfaces, smaller parts.",
            Decimal("0.20"),
            RESIN_COLORS,
            1.10,
        ),
    )
    printers: tuple[Printer, ...] = (
        Printer("Prusa MK4S", "Filament", (250, 210, 220)),
        Printer("Prusa XL", "Filament", (360, 360, 360)),
        Printer("Raise3D Pro 2 Plus", "Filament", (305, 305, 605)),
        Printer("Formlabs Form 3", "Resin", (145, 145, 175)),
    )
    minimum_charge: Decimal = Decimal("3.00")
    rejection_reasons: tuple[str, ...] = (
        "Non-manifold or broken mesh",
        "Walls too thin",
        "Unsupported overhangs",
        "Too large for the printer",
        "Not scaled correctly",
        "File corrupt or unreadable",
        "Violates lab policy",
    )
    lab: LabDetails = field(default_factory=LabDetails)
    #: The largest model file a student may send, in MB (each part of a job on its own).
    upload_limit_mb: int = 50
    #: The largest a whole job may be, every part together, in MB.
    job_upload_limit_mb: int = 200
    model_extensions: tuple[str, ...] = (".stl", ".obj", ".3mf", ".step", ".stp")
    confirm_link_hours: int = 72
    #: Days a student has to send a corrected file after staff asked for changes; then the job is
    #: rejected automatically.
    changes_reply_days: int = 14
    archive_after_days: int = 90
    prune_after_days: int = 365
    #: Submissions one email address, and one browser, may send in an hour (raised around deadlines).
    submissions_per_hour: int = 10

    @property
    def rates(self) -> dict[str, Decimal]:
        return {m.name: m.rate_per_gram for m in self.methods}

    def method(self, name: str) -> PrintMethod | None:
        return next((m for m in self.methods if m.name == name), None)

    def printer(self, name: str) -> Printer | None:
        return next((p for p in self.printers if p.name == name), None)

    def printers_for(self, method: str) -> tuple[Printer, ...]:
        return tuple(p for p in self.printers if p.method == method)

    def with_changes(self, **changes: object) -> Catalog:
        return replace(self, **changes)  # type: ignore[arg-type]


DEFAULT_CATALOG = Catalog()
