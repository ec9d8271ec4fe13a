"""`make bench`: performance figures of airflow-failnotify (see bench/run.py)."""
