"""The web console (``cdchub console``): sign in, trace a document, replay dead letters, see flow health.

``app`` holds the routes, ``auth`` the password hash, session cookies and CSRF tokens, ``credentials`` the console
password, ``views`` what the pages show (from ``cdchub.trace``, ``cdchub.dead_letter_admin``, ``cdchub.flow_status``)
and ``pages`` the HTML.
"""
