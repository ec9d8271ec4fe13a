"""Adapters that read Airflow (DAGs, connections) for the service layer and the views."""
