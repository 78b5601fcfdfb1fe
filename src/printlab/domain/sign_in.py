"""How long a computer waits after wrong workstation passwords: free tries, then growing delays, capped.

Counted per (workstation, client address), so one computer typing wrong passwords slows down only
itself; a much higher lab-wide ceiling per workstation stops an attack spread over many addresses.
"""

from __future__ import annotations

from datetime import timedelta

#: Wrong passwords a computer may type for a workstation before it has to wait.
FREE_TRIES = 5
#: The first wait, doubled with each further wrong password.
FIRST_DELAY = timedelta(seconds=30)
#: The longest a computer waits between tries.
MAX_DELAY = timedelta(minutes=15)
#: A computer's count starts again this long after its last wrong password.
FORGET_AFTER = timedelta(hours=1)
#: Wrong passwords for one workstation, from all addresses together, that stop every new try...
LAB_WIDE_CEILING = 100
#: ...within this window (and for this long after the last of them).
CEILING_WINDOW = timedelta(minutes=15)


def delay_after(failures: int) -> timedelta:
    """The wait a computer must keep after its `failures`-th wrong password in a row."""
    if failures < FREE_TRIES:
        return timedelta(0)
    doublings = min(failures - FREE_TRIES, 16)  # 30 s × 2^16 is far past the cap already
    return min(FIRST_DELAY * (2**doublings), MAX_DELAY)


def wait_text(wait: timedelta) -> str:
    """'45 seconds', '3 minutes': how long to wait, in words."""
    seconds = max(1, int(wait.total_seconds() + 0.999))
    if seconds < 90:
        return f"{seconds} seconds"
    minutes = (seconds + 59) // 60
    return f"{minutes} minutes"
