"""The /api/v1 JSON API: its operations (routes.py), their request and answer models (schemas.py), who may
call it (access.py), its one error shape (problems.py), and the document and reference page built from them."""
