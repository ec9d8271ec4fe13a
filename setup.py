"""Distribution airflow-failnotify: an Apache Airflow 3 provider for failure notification by email."""

from __future__ import annotations

from pathlib import Path

from setuptools import find_packages, setup

HERE = Path(__file__).parent

setup(
    name="airflow-failnotify",
    version="0.1.0",
    description="Email notification when Airflow integrations fail, go quiet or cannot reach their source",
    long_description=(HERE / "README.md").read_text(encoding="utf-8"),
    long_description_content_type="text/markdown",
    python_requires=">=3.10",
    # The package only: devtools/ (dev servers, demo), tests/ and bench/ stay in the clone.
    packages=find_packages(include=["airflow_failnotify", "airflow_failnotify.*"]),
    include_package_data=True,
    package_data={
        "airflow_failnotify": [
            "templates/**/*",
            "plugins/templates/**/*",
            "plugins/static/**/*",
            # The React app's bundle, built from ui/ by `make ui` (not committed; see ui/vite.config.ts).
            "plugins/static/ui/*.js",
            "store/migrations/*.py",
            "store/migrations/*.mako",
            "store/migrations/versions/*.py",
            "dags/*.py",
        ]
    },
    install_requires=[
        "apache-airflow>=3.1,<4",
        "apache-airflow-providers-smtp>=2.0,<4",
        "apache-airflow-providers-fab>=3.0,<4",
        "apache-airflow-providers-standard>=1.0,<2",
        "sqlalchemy>=1.4.49,<3",
        "alembic>=1.13,<2",
        "reportlab>=4.0,<6",
        "requests>=2.28,<3",
        # OAuth 2.0 signed assertions (jwt_bearer, private_key_jwt): RS256 through cryptography
        "PyJWT[crypto]>=2.15.1,<3",
        "cryptography>=41",
        "PyYAML>=6.0,<7",
        "Jinja2>=3.1,<4",
        "croniter>=2.0,<8",  # the Settings view shows when the job runs next
    ],
    extras_require={
        "postgres": ["psycopg2-binary>=2.9,<3", "asyncpg>=0.29,<1"],  # asyncpg: Airflow 3.3 on PostgreSQL
        # CeleryExecutor with a Redis broker (the production topology in README.md). kombu below 5.7:
        # 5.7's redis extra conflicts with the pinned packaging.
        "celery": [
            "apache-airflow-providers-celery>=3.10,<4",
            "celery[redis]>=5.5,<6",
            "kombu>=5.5,<5.7",
            "redis>=5,<7",
            "asyncpg>=0.29,<1",
        ],
        "devtools": ["aiosmtpd>=1.4,<2", "cryptography>=41"],
        "test": [
            "pytest>=8,<10",
            "pytest-timeout>=2.3,<3",
            "aiosmtpd>=1.4,<2",
            "pypdf>=4,<8",
            "playwright>=1.40,<2",
            "psycopg2-binary>=2.9,<3",
            "ruff>=0.6",
            "mypy>=1.10",
            "types-requests",
            "types-PyYAML",
        ],
    },
    entry_points={
        "apache_airflow_provider": [
            "provider_info=airflow_failnotify.get_provider_info:get_provider_info",
        ],
        "airflow.plugins": [
            "failnotify=airflow_failnotify.plugins.plugin:FailnotifyPlugin",
        ],
        "console_scripts": [
            "failnotify=airflow_failnotify.cli:main",
        ],
    },
    classifiers=[
        "Framework :: Apache Airflow",
        "Framework :: Apache Airflow :: Provider",
        "Programming Language :: Python :: 3",
        "License :: OSI Approved :: Apache Software License",
    ],
)
