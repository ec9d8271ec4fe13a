"""``python -m airflow_failnotify`` is the ``failnotify`` command."""

from __future__ import annotations

import sys

from airflow_failnotify.cli import main

sys.exit(main())
