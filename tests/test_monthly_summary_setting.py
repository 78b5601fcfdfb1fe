"""Who gets the lab's monthly summary: a list of addresses in the catalog, else the contact address."""

from __future__ import annotations

import pytest

from printlab.domain.catalog import DEFAULT_CATALOG, LabDetails
from printlab.domain.catalog_edit import CatalogError, parse_section


def lab_form(**changes: str) -> dict[str, str]:
    lab = DEFAULT_CATALOG.lab
    form = {name: str(getattr(lab, name)) for name in LabDetails.__dataclass_fields__}
    form.update(changes)
    return form


def test_the_summary_goes_to_the_contact_address_until_a_list_is_given():
    assert DEFAULT_CATALOG.lab.summary_recipients == ("makerspace@example.edu",)
    changes = parse_section(
        "lab", lab_form(summary_emails="manager@example.edu; finance@example.edu,"), DEFAULT_CATALOG
    )
    assert changes["lab"].summary_emails == "manager@example.edu, finance@example.edu"
    assert changes["lab"].summary_recipients == ("manager@example.edu", "finance@example.edu")


@pytest.mark.parametrize(
    "typed", ["manager@", "manager@example.edu, not an address", ",".join(["a@b.edu"] * 11)]
)
def test_a_summary_list_with_a_bad_address_is_refused(typed):
    with pytest.raises(CatalogError) as refused:
        parse_section("lab", lab_form(summary_emails=typed), DEFAULT_CATALOG)
    assert "summary_emails" in refused.value.errors
