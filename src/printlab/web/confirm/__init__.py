"""The student's quote page, reached from the link in the quote email."""
