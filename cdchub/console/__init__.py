"""The web console (``cdchub console``): sign in, trace a document (with a picture of its path), replay dead letters
(a whole flow's after a dry-run preview), see every flow's health with sparklines of the last hour.

``app`` holds the routes, ``auth`` the password hash, session cookies and CSRF tokens, ``credentials`` the console
password, ``views`` what the pages show (from ``cdchub.trace``, ``cdchub.dead_letter_admin``, ``cdchub.flow_status``),
``replay_preview`` the dry run of a flow's dead-letter replay, ``pictures`` the geometry of the SVG pictures and
``pages`` the rendering of the Jinja2 templates in ``templates/`` (autoescaped) with the stylesheet in ``static/``.
"""
