"""Exports for the finance office: a period's jobs, payments and events as CSV or XLSX, streamed row by
row in constant memory (export.py, sheets.py, writers.py), and the monthly statement per account code.
It only reads; it may import domain, models, clock and services.lab (the catalog), never jobs or web.
"""
