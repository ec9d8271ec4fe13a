"""The package's FastAPI app on the api-server (a plugin ``fastapi_apps`` entry): the ingest API."""
