"""The dashboard's age colours have words too: late and overdue cards say so, and a legend explains the colours."""

from __future__ import annotations

import html
import re
from datetime import timedelta

from printlab.clock import utcnow

from .conftest import sign_in_client
from .factories import make_job


def card_texts(page: str) -> dict[str, str]:
    """Each card's visible words (tags removed), by the student's name."""
    cards = re.findall(r'<li class="card age-(\w+)">(.*?)</li>', page, re.S)
    texts = {}
    for band, card in cards:
        words = " ".join(html.unescape(re.sub(r"<[^>]+>", " ", card)).split())
        name = re.search(r"(\w+) Student", words)
        assert name, words
        texts[name.group(1)] = f"{band}: {words.replace(name.group(0), '')}"
    return texts


def test_late_and_overdue_cards_say_so_and_a_legend_names_every_colour(app, session, storage):
    now = utcnow()
    for name, hours in (("Fresh", 2), ("Aging", 30), ("Late", 60), ("Overdue", 80)):
        make_job(
            session, storage, student_name=f"{name} Student", student_email=f"{name.lower()}@example.edu",
            now=now - timedelta(hours=hours),
        )  # fmt: skip
    client = sign_in_client(app.test_client(), session)
    page = client.get("/dashboard?status=UPLOADED").get_data(as_text=True)

    cards = card_texts(page)
    assert sorted(cards) == ["Aging", "Fresh", "Late", "Overdue"]
    assert cards["Overdue"].startswith("overdue:") and re.search(r"\boverdue\b", cards["Overdue"][9:])
    assert cards["Late"].startswith("late:") and re.search(r"\blate\b", cards["Late"][5:])
    for calm in ("Fresh", "Aging"):
        assert not re.search(r"\b(late|overdue)\b", cards[calm].split(":", 1)[1]), cards[calm]

    legend = re.search(r'<p class="age-legend"[^>]*>(.*?)</p>', page, re.S)
    assert legend, "no legend for the age colours"
    words = " ".join(html.unescape(re.sub(r"<[^>]+>", " ", legend.group(1))).split())
    for colour in ("green", "yellow", "orange", "red"):
        assert colour in words, words
    for band in ("age-fresh", "age-aging", "age-late", "age-overdue"):
        assert band in legend.group(1)
