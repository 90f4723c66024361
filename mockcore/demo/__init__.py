"""Showing a failover to people: the narrated demos of `mockcore demo` (real HTTP calls against a fleet), and the
pieces the dashboard shares with them (the calls, the fleet summary, the lifecycle operations).

    command.py     `mockcore demo`;  scripts.py  the demos, step by step
    runner.py      finding the fleet, sending the calls, judging the answers
    calls.py       each HTTP call as a value;  output.py  rich terminal output, or JSON lines
    fleetview.py   a state document summarised for people
    operations.py  the dashboard's buttons;    screenshot.py  the README's dashboard screenshot (Playwright)
"""
