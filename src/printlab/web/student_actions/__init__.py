"""The student's own actions on a job: cancelling from the status page and sending a corrected file."""
