"""Uploads stream straight to the storage volume, hashed as they arrive, and stop at the lab's size limits
(one file's, and all of one job's files together)."""

from __future__ import annotations

import hashlib
import io
import secrets
from pathlib import Path
from typing import IO

from flask import Request, g

from printlab.services.files.storage import TEMP_FOLDER, JobTooLarge, ReceivedFile, TooLarge

#: What a request may carry beyond the lab's limit for a job's files: the form's other fields and the
#: multipart framing. A request announcing more than limit + this is refused before it is read.
FORM_OVERHEAD_BYTES = 1024 * 1024


class JobBudget:
    """What all the files of one request may add up to: the lab's limit for a whole job."""

    def __init__(self, limit_bytes: int):
        self.limit_bytes = limit_bytes
        self.spent = 0

    def spend(self, size: int) -> None:
        """Count `size` more bytes; raises JobTooLarge once the files together pass the limit."""
        self.spent += size
        if self.spent > self.limit_bytes:
            raise JobTooLarge(self.limit_bytes)


class HashingUpload(io.RawIOBase):
    """A temporary file on the storage volume that hashes and counts what the form parser writes.

    Memory stays at the parser's chunk size whatever the file size; going over the limit raises
    TooLarge at once, so a 5 GB upload is never written past the limit.
    """

    def __init__(self, directory: Path, limit_bytes: int, budget: JobBudget | None = None):
        super().__init__()
        self.budget = budget
        directory.mkdir(parents=True, exist_ok=True)
        self.path = directory / f"upload-{secrets.token_hex(8)}.part"
        self.limit_bytes = limit_bytes
        self.size = 0
        self._digest = hashlib.sha256()
        self._file = open(self.path, "xb+")  # noqa: SIM115 - closed by close()

    def writable(self) -> bool:
        return True

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def write(self, data: bytes) -> int:  # type: ignore[override]
        self.size += len(data)
        if self.size > self.limit_bytes:
            raise TooLarge(self.limit_bytes)
        if self.budget is not None:
            self.budget.spend(len(data))
        self._digest.update(data)
        return self._file.write(data)

    def read(self, size: int = -1) -> bytes:
        return self._file.read(size)

    def readline(self, size: int | None = -1) -> bytes:  # type: ignore[override]
        return self._file.readline(size if size is not None else -1)

    def seek(self, offset: int, whence: int = 0) -> int:
        return self._file.seek(offset, whence)

    def tell(self) -> int:
        return self._file.tell()

    def flush(self) -> None:
        if not self._file.closed:
            self._file.flush()

    def close(self) -> None:
        super().close()  # flushes first, through flush() above
        if not self._file.closed:
            self._file.close()

    def received(self) -> ReceivedFile:
        """Finish writing and hand the file over as a ReceivedFile (the caller then owns it)."""
        self._file.flush()
        return ReceivedFile(path=self.path, sha256=self._digest.hexdigest(), size=self.size)

    def discard(self) -> None:
        self.close()
        self.path.unlink(missing_ok=True)


class LabRequest(Request):
    """Flask request whose file parts go to the storage volume through HashingUpload."""

    #: Text fields are small; this bounds what a form can make the server hold in memory. Werkzeug
    #: also applies it to its parsing buffer, which holds up to one 64 KiB read plus a partial line
    #: of a file part: at 64 KiB exactly, real uploads were refused with 413.
    max_form_memory_size = 512 * 1024
    max_form_parts = 50

    def _get_file_stream(  # type: ignore[override]
        self,
        total_content_length: int | None,
        content_type: str | None,
        filename: str | None = None,
        content_length: int | None = None,
    ) -> IO[bytes]:
        from printlab.web.context import job_limit_bytes, lab, upload_limit_bytes

        if "upload_budget" not in g:
            g.upload_budget = JobBudget(job_limit_bytes())
        upload = HashingUpload(lab().storage.root / TEMP_FOLDER, upload_limit_bytes(), g.upload_budget)
        g.setdefault("incoming", []).append(upload)
        return upload  # type: ignore[return-value]


def discard_incoming(_exc: BaseException | None = None) -> None:
    """Teardown: remove any upload of this request that no job took over."""
    for upload in g.pop("incoming", []):
        upload.discard()
