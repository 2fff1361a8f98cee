"""Entry points: the command line (``cli``), the add-on's JSON-lines service (``server``) and ``doctor``.

They parse, check and report; the work itself is done by the stage packages through :mod:`backend.pipeline`.
"""
