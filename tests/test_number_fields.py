"""Numbers a person types (weights, print time, catalog prices and limits) are plain decimal digits:
1e5, 1e-400, 1_000, NaN, Infinity and -0 are refused with a message, never read as something else."""

from __future__ import annotations

from decimal import Decimal

import pytest
from sqlalchemy import func, select

from printlab import config as config_module
from printlab.domain.catalog import DEFAULT_CATALOG
from printlab.domain.catalog_edit import CatalogError, parse_section
from printlab.domain.pricing import PricingError, quote_cost, round_print_hours, to_decimal
from printlab.domain.statuses import Status
from printlab.models import Event, Job
from printlab.services.errors import ValidationError
from printlab.services.jobs import workflow
from printlab.services.lab import workstations

from .factories import STAFF, actor, make_job, make_staff

NOT_PLAIN = [
    "1e5",
    "1e-400",
    "1E2",
    "1_000",
    "1,000",
    "NaN",
    "nan",
    "Infinity",
    "-Infinity",
    "-0",
    "+5",
    "0x10",
    "٣",
]


@pytest.mark.parametrize("typed", NOT_PLAIN)
def test_to_decimal_refuses_numbers_not_written_in_plain_digits(typed):
    with pytest.raises(PricingError) as caught:
        to_decimal(typed, "Weight")
    assert str(caught.value) == "Weight must be a number written in digits, like 42.5"


def test_plain_numbers_and_numbers_from_code_still_read():
    assert to_decimal(" 42.5 ", "Weight") == Decimal("42.5")
    assert to_decimal(".5", "Weight") == Decimal("0.5")
    assert to_decimal(3, "Weight") == Decimal(3)
    assert to_decimal(0.1, "Weight") == Decimal("0.1")
    assert round_print_hours("2.2") == 2.5
    assert quote_cost("100", "Filament", DEFAULT_CATALOG.rates, DEFAULT_CATALOG.minimum_charge) > 0


@pytest.mark.parametrize("typed", ["1e-400", "1e5", "1_000", "NaN", "Infinity", "-0", "0"])
def test_approval_refuses_a_weight_that_is_not_a_plain_positive_number(session, storage, typed):
    job = make_job(session, storage, Status.UPLOADED)
    with pytest.raises(ValidationError) as caught:
        workflow.approve(session, storage, job.id, actor=actor(), weight_g=typed, time_hours="2")
    assert set(caught.value.errors) == {"weight_g"}
    session.rollback()
    again = session.get(Job, job.id)
    assert (again.status, again.weight_g, again.cost_usd) == (Status.UPLOADED.value, None, None)
    assert session.scalar(select(func.count()).select_from(Event).where(Event.job_id == job.id)) == 1


@pytest.mark.parametrize("typed", ["1e1", "1_0", "NaN", "Infinity", "-0"])
def test_approval_refuses_a_print_time_that_is_not_a_plain_number(session, storage, typed):
    job = make_job(session, storage, Status.UPLOADED)
    with pytest.raises(ValidationError) as caught:
        workflow.approve(session, storage, job.id, actor=actor(), weight_g="42", time_hours=typed)
    assert set(caught.value.errors) == {"time_hours"}


@pytest.mark.parametrize("typed", ["1e-400", "4_0", "NaN", "-0"])
def test_pickup_refuses_weighed_grams_that_are_not_a_plain_number(session, storage, typed):
    job = make_job(session, storage, Status.COMPLETED)
    with pytest.raises(ValidationError) as caught:
        workflow.record_pickup(
            session, storage, job.id, actor=actor(), method="CARD", weighed_g=typed, payment_reference="R-1"
        )
    assert set(caught.value.errors) == {"weighed_g"}
    session.rollback()
    assert session.get(Job, job.id).status == Status.COMPLETED.value


@pytest.mark.parametrize(
    ("field", "typed"),
    [
        ("upload_limit_mb", "1_000"),
        ("upload_limit_mb", "1e3"),
        ("minimum_charge", "NaN"),
        ("minimum_charge", "Infinity"),
        ("minimum_charge", "-0"),
        ("archive_after_days", "6_0"),
    ],
)
def test_catalog_limits_refuse_numbers_not_written_in_plain_digits(field, typed):
    form = {"minimum_charge": "3", "upload_limit_mb": "50", "confirm_link_hours": "48",
            "archive_after_days": "60", "prune_after_days": "400", field: typed}  # fmt: skip
    with pytest.raises(CatalogError) as caught:
        parse_section("limits", form, DEFAULT_CATALOG)
    assert set(caught.value.errors) == {field}
    assert "in digits" in caught.value.errors[field]


@pytest.mark.parametrize("typed", ["1e-400", "1_000", "NaN", "Infinity", "-0"])
def test_price_api_answers_422_for_a_weight_not_in_plain_digits(lab_env, session, typed):
    from printlab.web.app import create_app

    app = create_app({"TESTING": True}, config=config_module.load(lab_env))
    make_staff(session, STAFF)
    workstations.add_workstation(session, "LAB-PC-1", "a-long-password-1")
    client = app.test_client()
    app.config["WTF_CSRF_ENABLED"] = False
    assert (
        client.post("/login", data={"workstation": "LAB-PC-1", "password": "a-long-password-1"}).status_code
        == 303
    )
    response = client.get("/api/v1/price", query_string={"weight_g": typed, "method": "Filament"})
    app.extensions["printlab"].engine.dispose()
    assert response.status_code == 422
    assert response.get_json()["detail"] == "Weight must be a number written in digits, like 42.5"
