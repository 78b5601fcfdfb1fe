"""The public pages: the submission form, the success page and the job status page."""
