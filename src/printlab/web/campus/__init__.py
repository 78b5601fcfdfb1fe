"""Campus sign-in (OpenID Connect) for staff, and the admin page that decides who may work in PrintLab."""
