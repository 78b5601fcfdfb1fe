"""Browser tests in headless Chromium against the real app."""
