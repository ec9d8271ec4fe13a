"""Channels: how a rendered :class:`~airflow_failnotify.core.notification.Notification` reaches people.

One module per channel; today only email (:mod:`airflow_failnotify.channels.email`).
"""
