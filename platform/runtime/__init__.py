"""How the platform runs: child processes (process.py), cron expressions (cron.py), and the fault
points the crash tests stop at (faults.py). Nothing here imports the rest of the package."""
