"""Showing a failover to people: the narrated demos of `mockcore demo` (real HTTP calls against a fleet). The
pieces they share with the dashboard live beside, not inside: mockcore.calls (each HTTP call as a value),
mockcore.operations (the dashboard's buttons) and the fleet's view (`GET /_mock/view`, mockcore.view).

    command.py     `mockcore demo`;  scripts.py  the demos, step by step
    runner.py      finding the fleet, sending the calls, judging the answers
    output.py      rich terminal output, or JSON lines
    screenshot.py  the dashboard screenshot of the docs (Playwright)
"""
