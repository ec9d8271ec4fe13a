"""The JSON API of airflow-failnotify, mounted by the plugin at ``/failnotify/api`` (``fastapi_apps``).

The React app in the Airflow UI (and scripts) use it. Airflow mounts plugin apps WITHOUT
authentication; :mod:`airflow_failnotify.api.security` adds it to every route (the OpenAPI schema at
``/failnotify/api/openapi.json`` included): the Airflow UI's JWT, validated by Airflow's own
``get_user`` dependency, and the configured auth manager's rights. The routes call the same service
layer and store as the FAB views, one module per resource under :mod:`airflow_failnotify.api.routes`.
The built React bundle is served, without login (static code, no data), under ``/failnotify/api/ui/``.
"""
