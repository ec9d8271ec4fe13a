"""The package's FastAPI app on the api-server (a plugin ``fastapi_apps`` entry), at ``/failnotify``.

Airflow mounts plugin apps WITHOUT authentication; each part authenticates its own way:

- ``/failnotify/ingest``: task-side capture (:mod:`~airflow_failnotify.api.ingest`), by the caller's
  task instance identity;
- ``/failnotify/health``: the minimal health for monitors (public) and its details (admins);
- ``/failnotify/api``: the JSON API of the React app and scripts (:mod:`~airflow_failnotify.api.web`):
  the Airflow UI's JWT, validated by Airflow's own ``get_user`` dependency, and the configured auth
  manager's rights on every route (the OpenAPI schema included). The routes call the same service
  layer and store as the FAB views, one module per resource under :mod:`airflow_failnotify.api.routes`.
  The built React bundle is served, without login (static code, no data), under ``/failnotify/api/ui/``.
"""
