"""Machinery every simulator shares: persistence, request log, fault injection, admin routes, process helper.

Nothing in here knows about a particular business system; a simulator passes in what differs (its error-body
shape, its reset hook, its extra admin routes).
"""
