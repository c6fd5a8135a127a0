"""`feedtax lab`: the course's Data Engineering lab as a marimo workbench on this machine's own measurements.

workbench holds what each part computes (plain functions, tested without a browser); notebook.py is the marimo app
that lays them out behind each part's Lock.
"""
