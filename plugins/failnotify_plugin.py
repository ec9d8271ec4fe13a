"""airflow-failnotify's plugin, for deployments that mount a plugins folder.

Copy (or mount) this file into ``$AIRFLOW_HOME/plugins``. When the package is installed with pip, its
``airflow.plugins`` entry point already registers the plugin; Airflow registers plugins by name and
would then skip the second one with a warning and a plugin import error (and the Task SDK's loader
would stop registering the entry-point plugins that follow it). So this file exposes the plugin class
only when no installed distribution declares the entry point.
"""

from __future__ import annotations

from airflow_failnotify.plugins.plugin import installed_through_entry_point

if not installed_through_entry_point():
    from airflow_failnotify.plugins.plugin import FailnotifyPlugin

    __all__ = ["FailnotifyPlugin"]
