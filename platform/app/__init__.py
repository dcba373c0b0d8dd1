"""The platform as a whole, what the commands start: `up` (up.py: the embedded default brought up
and provisioned), the scheduler service (scheduler.py) and the dependency check (doctor.py)."""
