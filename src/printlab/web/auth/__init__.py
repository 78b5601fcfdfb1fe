"""Workstation sign-in: one shared password per lab computer, a 12-hour session, and the guards pages use."""
