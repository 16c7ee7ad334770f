"""Kingdee K/3 Cloud WebAPI simulator: answers like the real WebAPI and writes into the Kingdee database.

Its writes land in the same PostgreSQL tables the log-based capture reads, so a change made through the API shows
up in CDC exactly as it would in production. Sessions, the request log and fault rules are the simulator's own
state (SQLite in ``--state-dir``); documents live only in the Kingdee database.
"""
