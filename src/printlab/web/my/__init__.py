"""A student's own requests: ask for a sign-in link by email, open it, see every job sent from the address."""
