"""schemathesis against a live `printlab serve`: every /api/v1 operation in the document, called with
generated requests (valid and invalid), must answer without a server error and as the document says."""

from __future__ import annotations

import json
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest

from printlab.domain.statuses import Status
from printlab.services.api import tokens

from .factories import STAFF, make_job, make_staff
from .servers import PrintlabServer

SCHEMATHESIS = Path(sys.executable).with_name("schemathesis")
CONFIG = Path(__file__).with_name("schemathesis.toml")


@pytest.fixture
def server(lab_env: dict[str, str], tmp_path: Path):  # type: ignore[no-untyped-def]
    running = PrintlabServer(lab_env | {"PRINTLAB_WORKER": "off"}, tmp_path / "serve.log").ready()
    yield running
    running.stop()
    assert "Traceback" not in running.output()


@pytest.mark.timeout(900)  # some 700 generated requests through a live server: minutes on a busy machine
def test_every_operation_answers_as_documented(server, session, storage, tmp_path):
    make_staff(session)
    jobs = [
        make_job(session, storage, status, student_email=f"student{n}@example.edu").id
        for n, status in enumerate((Status.UPLOADED, Status.PENDING, Status.PRINTING, Status.COMPLETED))
    ]
    # Most generated job ids name one of these jobs, so the answers about a real job (its fields, its
    # history, its files) are checked against the document too, not only the 404s of made-up ids.
    config = tmp_path / "schemathesis.toml"
    config.write_text(
        CONFIG.read_text()
        + f"\n[dictionaries.jobs]\nvalues = {json.dumps(jobs)}\n"
        + '\n[parameters]\n"path.job_id" = { dictionary = "jobs", probability = 0.8 }\n'
    )
    secret = tokens.create(
        session, name="Schemathesis", staff_name=STAFF, scope="write", rate_per_minute=6000
    ).secret
    run = subprocess.run(
        [
            str(SCHEMATHESIS), "--config-file", str(config), "run", f"http://127.0.0.1:{server.port}/api/v1/openapi.json",
            "--header", f"Authorization: Bearer {secret}",
            "--checks", "all", "--max-examples", "40", "--seed", "1", "--no-color",
            "--report-dir", str(tmp_path / "report"),
        ],
        capture_output=True, text=True, timeout=900, check=False, cwd=tmp_path,
    )  # fmt: skip
    assert run.returncode == 0, run.stdout[-8000:] + run.stderr[-2000:]
    with urllib.request.urlopen(f"http://127.0.0.1:{server.port}/api/v1/openapi.json", timeout=30) as answer:
        operations = sum(len(item) for item in json.load(answer)["paths"].values())
    assert operations >= 19 and f"✅ {operations} passed" in run.stdout, run.stdout[-3000:]  # every one ran
