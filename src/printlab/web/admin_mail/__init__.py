"""The admin Mail page (outbox, sent log, failed emails with Retry, the mail folder) and the retention page."""
