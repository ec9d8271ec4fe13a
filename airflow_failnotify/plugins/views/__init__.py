"""FAB views of the plugin, served by Airflow 3 under ``/pluginsv2/failnotify/``; one module per page.

Every view derives from :class:`~airflow_failnotify.plugins.views.base.FailnotifyBaseView`, whose
blueprint runs the auth bridge (:func:`airflow_failnotify.plugins.auth.authenticate`) before each
request: no view is public. Authorization is per action, through the helpers of
:mod:`airflow_failnotify.plugins.auth`:

============================================  ==============================================
Integrations list (``integrations``)          the DAGs the user may read (auth manager)
Configure (read) / (Save, Update, Test)        DAG read / DAG edit (and edit of the backward DAG)
Unregister (confirm page + POST)               DAG edit
Bulk configure (``bulk``)                      DAG edit of each selected DAG (others skipped)
Error Management (``errors``)                  DAG read of the chosen integration; all of them
                                               for admins or users who may read every DAG
Send now / Retry (``errors``), Settings        admin level (:func:`auth.is_admin`)
============================================  ==============================================

Validation is never done here: forms become the registration dict of
:mod:`airflow_failnotify.core.config` (see :mod:`airflow_failnotify.plugins.forms`). What the pages
learn from Airflow (DAGs, connections) comes from :mod:`airflow_failnotify.lookups`.
"""

from __future__ import annotations

from airflow_failnotify.plugins.views.bulk import BulkView
from airflow_failnotify.plugins.views.configure import ConfigureView
from airflow_failnotify.plugins.views.errors import ErrorsView
from airflow_failnotify.plugins.views.integrations import IntegrationsView
from airflow_failnotify.plugins.views.settings import SettingsView

__all__ = ["BulkView", "ConfigureView", "ErrorsView", "IntegrationsView", "SettingsView"]
