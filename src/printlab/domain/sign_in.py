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


# -- personal PINs: a person's quick switch at a shared workstation ---------------------------------

#: A PIN is this many digits (short, typed often, on a computer the lab already signed in).
PIN_DIGITS = (4, 8)
#: Wrong PINs for one person before the PIN stops working for PIN_LOCK.
PIN_TRIES = 5
PIN_LOCK = timedelta(minutes=15)
#: A person switched in by PIN hands the workstation back after this long without a click.
PIN_IDLE = timedelta(minutes=15)
#: PINs anyone would try first.
_GUESSABLE = {"1234", "12345", "123456", "1234567", "12345678", "4321", "654321", "0000", "2580"}


def pin_problem(pin: str) -> str | None:
    """Why `pin` can't be a personal PIN, or None."""
    low, high = PIN_DIGITS
    if not pin.isascii() or not pin.isdigit() or not low <= len(pin) <= high:
        return f"A PIN is {low} to {high} digits."
    if len(set(pin)) == 1 or pin in _GUESSABLE:
        return "That PIN is one people guess first; choose another."
    return None
